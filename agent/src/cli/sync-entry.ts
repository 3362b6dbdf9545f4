/**
 * `field-agent sync` as the bin runs it from one CommonJS file (agent/dist/bin/sync.cjs, made from
 * this module by scripts/bundle-agent.mjs after `tsc -b`, see bundle.ts): the same code as
 * `field-agent sync` through main.ts (the bin falls back to it when the file is missing or older
 * than its inputs).
 */
import { reporting } from './common.js';
import { syncCommand } from './sync.js';

export const run = reporting(syncCommand);
