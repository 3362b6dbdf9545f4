/**
 * `field-agent status` as the bin runs it from one CommonJS file (agent/dist/bin/status.cjs, made
 * from this module by scripts/bundle-status.mjs after `tsc -b`): node's ES module loader costs about
 * 40-60 CPU-ms more to load the same code as ~20 modules than its CommonJS loader does as one
 * file, most of status's time above node's own start. The same code as `field-agent status`
 * through main.ts (the bin falls back to it when the file is missing or older than its inputs).
 */
import { reportError, type CommandIo } from './common.js';
import { statusCommand } from './status.js';

export async function runStatus(argv: string[], io: CommandIo): Promise<number> {
  try {
    return await statusCommand(argv, io);
  } catch (err) {
    return reportError(err, io, argv.includes('--json'));
  }
}
