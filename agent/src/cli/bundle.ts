/**
 * Commands from one CommonJS file each (agent/dist/bin/<command>.cjs, made by scripts/bundle-agent.mjs
 * after `tsc -b` from `<command>-entry.ts`): node's ES module loader resolves, reads, links and
 * evaluates each of a command's modules through promises, where its CommonJS loader reads and compiles
 * one file synchronously: for `status` that was 40-60 CPU-ms of its start above node's own, for `sync`
 * about 0.1 CPU-s (twenty agents starting at once on two cores wait for each other's). The bin runs a
 * command from its file only while it is current: no file it was made from (listed beside it,
 * `<command>.cjs.inputs.json`, relative to it) is newer than it. A `tsc -b` without the bundling step
 * leaves it stale, and the command then loads its ES modules as every other command does: never older code.
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { CommandIo } from './common.js';

/** What each bundle exports (`status-entry.ts`, `sync-entry.ts`): its command, coded errors reported. */
export interface CommandBundle {
  run(argv: string[], io: CommandIo): Promise<number>;
}

/** Whether the bundle at `bundle` exists and no file it lists as made from is newer than it (or gone). */
export function bundleIsCurrent(bundle: URL): boolean {
  try {
    const made = statSync(bundle).mtimeMs;
    const inputs = JSON.parse(readFileSync(new URL(`${bundle.href}.inputs.json`), 'utf8')) as unknown;
    if (!Array.isArray(inputs) || inputs.length === 0) return false;
    return inputs.every((rel) => typeof rel === 'string' && statSync(new URL(rel, bundle)).mtimeMs <= made);
  } catch {
    return false; // not made, or an input gone: the ES modules
  }
}

/** The bundle's exports while it is current (bundleIsCurrent), else undefined. */
export function loadBundle(bundle: URL): CommandBundle | undefined {
  return bundleIsCurrent(bundle) ? (createRequire(bundle)(fileURLToPath(bundle)) as CommandBundle) : undefined;
}
