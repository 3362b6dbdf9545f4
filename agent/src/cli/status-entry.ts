/**
 * `field-agent status` as the bin runs it from one CommonJS file (agent/dist/bin/status.cjs, made
 * from this module by scripts/bundle-agent.mjs after `tsc -b`, see bundle.ts): the same code as
 * `field-agent status` through main.ts (the bin falls back to it when the file is missing or older
 * than its inputs).
 */
import { reporting } from './common.js';
import { statusCommand } from './status.js';

export const run = reporting(statusCommand);
