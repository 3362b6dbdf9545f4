/**
 * Before an offload copies anything: does the card fit? A card that cannot fit
 * is refused up front (AGENT_NOT_ENOUGH_SPACE, naming the bytes needed and free)
 * instead of filling the disk and stopping half-way with AGENT_STORE_FULL.
 *
 * Needed on each destination: every file still to copy, rounded up to the file
 * system's block size. A file whose size equals an asset already stored in this
 * laptop store may be the same content (a dual-slot twin: stored once, nothing
 * written), so it is not counted: the check never refuses a card that fits. Those
 * rare files that turn out new are still guarded by the per-file AGENT_STORE_FULL.
 */
import { statfs } from 'node:fs/promises';
import { formatBytes } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from '../errors.js';
import { hasLaptopCopyIn, type AgentState } from '../state/agent-state.js';
import type { FileRecord } from '../state/records.js';
import type { AgentTarget } from '../targets.js';

/** Throws AGENT_NOT_ENOUGH_SPACE when `files` cannot fit on one of `targets`. */
export async function checkSpace(
  state: AgentState,
  targets: readonly AgentTarget[],
  files: readonly FileRecord[],
): Promise<void> {
  const laptop = targets.find((t) => t.name === 'laptop');
  const sizes: number[] = [];
  const stored = new Map<number, boolean>();
  for (const f of files) {
    let maybeStored = stored.get(f.size);
    if (maybeStored === undefined) {
      maybeStored = false;
      // A size no asset has (known in memory for most states: no database read per size).
      const hashes = (await state.hasAssetOfSize(f.size)) ? await state.assetHashesOfSize(f.size) : [];
      for (const h of hashes) {
        if (hasLaptopCopyIn(await state.getAsset(h), laptop?.root)) {
          maybeStored = true;
          break;
        }
      }
      stored.set(f.size, maybeStored);
    }
    if (!maybeStored) sizes.push(f.size);
  }
  if (sizes.length === 0) return;
  for (const t of targets) {
    let fs;
    try {
      fs = await statfs(t.root);
    } catch {
      continue; // a destination that cannot be asked is judged by its writes, as before
    }
    const block = Math.max(1, fs.bsize);
    const needed = sizes.reduce((n, s) => n + Math.ceil(s / block) * block, 0);
    const free = fs.bavail * fs.bsize;
    if (needed > free) {
      const where = t.name === 'laptop' ? `the laptop store ${t.root}` : `the field drive ${t.root}`;
      throw new AgentError(
        AGENT_CODES.notEnoughSpace,
        `The card needs ${formatBytes(needed)} (${needed} bytes) on ${where}, which has ${formatBytes(free)} (${free} bytes) free: nothing was copied. Free space there (or configure a larger store) and ingest it again.`,
        { detail: { target: t.name, root: t.root, neededBytes: needed, freeBytes: free } },
      );
    }
  }
}
