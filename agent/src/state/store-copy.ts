/**
 * The laptop store's copy of an asset, once it turns out damaged.
 *
 * A laptop copy counts only while it still hashes to the ledger's BLAKE3. Two
 * readers can find that it does not: the field-drive back-fill, which reads it
 * as its source (backfill.ts), and the studio sync, when the studio refuses the
 * bytes it was sent or the file cannot be read (link/sync-pass.ts). Either way the
 * copy fact is kept with `verified: false` (one synced batch), so:
 *  - it no longer counts toward safe to format (the card stays);
 *  - the sync no longer offers the asset (it is reported instead, every pass);
 *  - ingesting the card again copies the file anew, under the next free name
 *    (offload/offloader.ts; a hot-folder file: when the folder is watched again, at the
 *    agent's next start); the damaged file itself is never touched.
 */
import type { CodedError, Logger } from '@studio321/protocol';
import { verifyFile } from '@studio321/protocol/durable';
import { AGENT_CODES, AgentError } from '../errors.js';
import {
  hasVerifiedCopy,
  type AgentState,
  type MhlOutboxEntry,
  type PendingAsset,
  type StudioReceipt,
} from './agent-state.js';
import type { AssetRecord } from './records.js';
import { storeAvailable } from '../targets.js';

/** The message of AGENT_STORE_COPY_DAMAGED for the laptop copy at `path`; `consequence` says what was not done with it. */
export function storeCopyDamagedMessage(path: string, consequence: string): string {
  return `The laptop copy ${path} is missing or no longer matches its recorded BLAKE3: it no longer counts as a copy and ${consequence}. Keep the card (do not format it), check the laptop disk, and ingest the card again: the file is copied again under a new name (a hot-folder file: at the agent's next start).`;
}

/** AGENT_STORE_COPY_DAMAGED for the laptop copy at `path`; `consequence` says what was not done with it. */
export function storeCopyDamagedError(
  path: string,
  consequence: string,
  detail: Record<string, unknown>,
  cause?: unknown,
): AgentError {
  return new AgentError(AGENT_CODES.storeCopyDamaged, storeCopyDamagedMessage(path, consequence), {
    ...(cause === undefined ? {} : { cause }),
    detail: { ...detail, path },
  });
}

/**
 * The root of the laptop store holding the asset's laptop copy (its path minus the store-relative
 * path), or undefined when the two do not fit together.
 */
export function laptopStoreRoot(asset: AssetRecord): string | undefined {
  const path = asset.paths['laptop'];
  const tail = `/${asset.storePath}`;
  return path?.endsWith(tail) === true ? path.slice(0, -tail.length) : undefined;
}

/**
 * Whether a missing or unreadable laptop copy says anything about the copy: only while its store is
 * there (targets.ts: its marker is). An unplugged store's copies are unavailable, never damaged.
 */
export async function laptopStorePresent(asset: AssetRecord): Promise<boolean> {
  const root = laptopStoreRoot(asset);
  return root !== undefined && (await storeAvailable(root));
}

/** Records the `target` copy (default: the laptop's) of `asset` as damaged (one synced batch); nothing when it did not count anyway. */
export async function markCopyDamaged(state: AgentState, asset: AssetRecord, target = 'laptop'): Promise<void> {
  const fact = asset.copies.find((c) => c.target === target);
  if (fact?.verified) await state.recordCopies(asset.blake3, {}, [{ ...fact, verified: false }]);
}

/**
 * Re-reads the laptop copy of `blake3` against the ledger's size and BLAKE3.
 * Damaged (missing, another size or hash, unreadable bytes): marked so and
 * returned as AGENT_STORE_COPY_DAMAGED. Intact, already not counted, or not
 * checkable now (asset unknown, a failure that says nothing about the file such
 * as EMFILE): undefined.
 */
export async function checkStoreCopy(
  state: AgentState,
  blake3: string,
  opts: { signal?: AbortSignal } = {},
): Promise<AgentError | undefined> {
  const asset = await state.getAsset(blake3);
  const path = asset?.paths['laptop'];
  if (asset === undefined || path === undefined || !hasVerifiedCopy(asset, 'laptop')) return undefined;
  let verdict;
  try {
    verdict = await verifyFile(path, { size: asset.size, blake3: asset.blake3 }, opts);
  } catch {
    return undefined;
  }
  if (verdict.ok || !(await laptopStorePresent(asset))) return undefined;
  await markCopyDamaged(state, asset);
  return storeCopyDamagedError(path, 'was not sent to the studio', { blake3, verdict: verdict.code });
}

/** The part of the agent state the studio sync (link/sync-pass.ts) needs: its queue, receipts, and the laptop copy check. */
export interface SyncQueue {
  pendingForStudio(limit: number, after?: string): Promise<PendingAsset[]>;
  recordStudioReceipt(r: StudioReceipt): Promise<void>;
  /** Several receipts in one synced batch (the sync pass records the receipts that came together so). */
  recordStudioReceipts?(rs: readonly StudioReceipt[]): Promise<void>;
  /**
   * Re-reads the laptop copy of `blake3` after the studio refused its bytes or it could not be
   * read: damaged → recorded so (no longer a copy, no longer offered) and returned; else undefined.
   */
  checkStoreCopy(blake3: string): Promise<CodedError | undefined>;
  /** Files and bytes waiting for a studio receipt (reported in the agent's Hello; the sync progress totals). */
  depth?(): Promise<{ files: number; bytes: number }>;
  /** The ASC MHL generations waiting for the studio (link/mhl-send.ts), and one leaving that list. */
  mhlOutbox?(): Promise<MhlOutboxEntry[]>;
  mhlGenerationSent?(e: MhlOutboxEntry): Promise<void>;
}

/** The SyncQueue of the real agent state; damaged laptop copies are logged. */
export function syncQueueOf(state: AgentState, log?: Logger): SyncQueue {
  return {
    pendingForStudio: (limit, after) => state.pendingForStudio(limit, after),
    recordStudioReceipt: (r) => state.recordStudioReceipt(r),
    recordStudioReceipts: (rs) => state.recordStudioReceipts(rs),
    depth: () => state.queueDepth(),
    mhlOutbox: () => state.mhlOutbox(),
    mhlGenerationSent: (e) => state.mhlGenerationSent(e),
    checkStoreCopy: async (blake3) => {
      const err = await checkStoreCopy(state, blake3);
      if (err !== undefined) log?.error({ event: 'store-copy-damaged', err }, err.message);
      return err;
    },
  };
}
