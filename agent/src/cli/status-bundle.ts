/**
 * `field-agent status` from one CommonJS file (agent/dist/bin/status.cjs, made by
 * scripts/bundle-status.mjs after `tsc -b` from status-entry.ts): node's ES module loader costs about
 * 40-60 CPU-ms more to load the same code as ~20 modules than its CommonJS loader as one file,
 * most of what status takes above node's own start. The bin runs status from it only while it is
 * current: no file it was made from (listed beside it, `status.cjs.inputs.json`, relative to it)
 * is newer than it. A `tsc -b` without the bundling step leaves it stale, and status then loads
 * its ES modules as every other command does: never older code.
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What status.cjs exports (status-entry.ts). */
export type StatusBundle = typeof import('./status-entry.js');

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
export function loadStatusBundle(bundle: URL): StatusBundle | undefined {
  return bundleIsCurrent(bundle) ? (createRequire(bundle)(fileURLToPath(bundle)) as StatusBundle) : undefined;
}
