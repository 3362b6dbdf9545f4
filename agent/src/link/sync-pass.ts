/**
 * One sync pass over an authenticated link (protocol/SPEC.md §3.4–3.7):
 * offer the agent's queue in batches, send each wanted file from the studio's
 * durable offset in chunks within the window, record every Receipt durably
 * (AgentState.recordStudioReceipt, sync:true) before counting it.
 *
 * Memory is bounded by the window: a chunk is read only when the window has
 * room for it, and ws buffers at most a window of chunks.
 */
import { open, type FileHandle } from 'node:fs/promises';
import {
  MAX_BATCH_FILES,
  MAX_CHUNK_BYTES,
  MAX_COPIES_PER_FILE,
  MAX_NAMES_PER_FILE,
  ProtoCode,
  type AgentCopy,
  type CodedError,
  type Message,
  type MessageOf,
  type OfferFile,
} from '@studio321/protocol';
import { hasVerifiedCopy, type PendingAsset, type StudioReceipt } from '../state/agent-state.js';
import { storeCopyDamagedError, type SyncQueue } from '../state/store-copy.js';
import type { LinkClient } from './client.js';
import { LINK_CODES, LinkError } from './errors.js';

export interface SyncNack {
  hash: string;
  code: string;
  message: string;
  retryable: boolean;
}

export interface SyncPassResult {
  offered: number;
  filesSent: number;
  bytesSent: number;
  /** Files the studio already had (receipt without transfer). */
  have: number;
  receipts: number;
  nacks: SyncNack[];
  /** Bytes sent again after a resume (below the studio's durable offset they are never re-sent). */
  bytesResent: number;
  maxResentOnResume: number;
}

export interface SyncPassOptions {
  batchSize?: number;
  chunkSize?: number;
  /** Highest offset sent per hash, kept across reconnects to measure re-sent bytes. */
  sentMemory?: Map<string, number>;
  onReceipt?: (hash: string) => void;
  signal?: AbortSignal;
  /** Accumulator: counts are added here (kept when the pass fails half-way). */
  stats?: SyncPassResult;
}

export function emptySyncResult(): SyncPassResult {
  return {
    offered: 0,
    filesSent: 0,
    bytesSent: 0,
    have: 0,
    receipts: 0,
    nacks: [],
    bytesResent: 0,
    maxResentOnResume: 0,
  };
}

let batchSeq = 0;

function toAgentCopies(a: PendingAsset): AgentCopy[] {
  return a.copies
    .filter((c) => c.verified)
    .slice(0, MAX_COPIES_PER_FILE)
    .map((c) => ({
      target: c.target,
      device: c.device || 'unknown',
      media: c.media || 'unknown',
      location: c.location || 'field',
      verifiedAt: Math.max(0, Date.parse(c.verifiedAt ?? '') || 0),
      method: c.method ?? 'readback-blake3',
    }));
}

function toOfferFile(a: PendingAsset): OfferFile {
  return {
    hash: a.blake3,
    size: a.size,
    names: a.names
      .slice(0, MAX_NAMES_PER_FILE)
      .map((n) => ({ shoot: n.shoot, card: n.card, path: n.path, mtime: Math.trunc(n.mtime) })),
    copies: toAgentCopies(a),
  };
}

/** A local refusal, reported like a Nack: not retryable until the user acts. */
function nackOf(hash: string, err: CodedError): SyncNack {
  return { hash, code: err.code, message: err.message, retryable: false };
}

function toReceipt(m: MessageOf<'receipt'>): StudioReceipt {
  return {
    blake3: m.hash,
    size: m.size,
    committedAt: new Date(m.committedAt).toISOString(),
    copies: m.copies.map((c) => ({
      target: c.target,
      device: c.device,
      path: c.path,
      media: c.media,
      location: c.location,
      verifiedAt: new Date(c.verifiedAt).toISOString(),
      method: c.method,
    })),
  };
}

export async function syncPass(
  link: LinkClient,
  queue: SyncQueue,
  opts: SyncPassOptions = {},
): Promise<SyncPassResult> {
  const batchSize = Math.min(opts.batchSize ?? MAX_BATCH_FILES, MAX_BATCH_FILES);
  const chunkSize = Math.min(opts.chunkSize ?? MAX_CHUNK_BYTES, MAX_CHUNK_BYTES);
  const sentMemory = opts.sentMemory ?? new Map<string, number>();
  const res: SyncPassResult = opts.stats ?? emptySyncResult();
  const window = link.window;

  let inFlight = 0;
  const acked = new Map<string, number>();
  const sent = new Map<string, number>();
  const outstanding = new Map<string, () => void>();
  const settled = new Set<string>();
  const receipted = new Set<string>();
  let wantWaiter: { batchId: string; resolve: (w: MessageOf<'want'>) => void } | undefined;
  let windowWaiter: (() => void) | undefined;
  let failure: CodedError | undefined;
  let receiptChain: Promise<void> = Promise.resolve();
  let checks: Promise<void> = Promise.resolve();
  let drained: (() => void) | undefined;

  const wakeWindow = (): void => {
    const w = windowWaiter;
    windowWaiter = undefined;
    w?.();
  };
  const settle = (hash: string): void => {
    settled.add(hash);
    const done = outstanding.get(hash);
    outstanding.delete(hash);
    done?.();
    if (outstanding.size === 0) drained?.();
  };
  const release = (hash: string): void => {
    const s = sent.get(hash) ?? 0;
    const a = acked.get(hash) ?? 0;
    inFlight = Math.max(0, inFlight - Math.max(0, s - a));
    acked.set(hash, s);
    wakeWindow();
  };

  const onMessage = (m: Message): void => {
    switch (m.t) {
      case 'want':
        if (wantWaiter?.batchId === m.batchId) {
          const w = wantWaiter;
          wantWaiter = undefined;
          w.resolve(m);
        }
        return;
      case 'ack': {
        const prev = acked.get(m.hash) ?? 0;
        if (m.offset > prev) {
          inFlight = Math.max(0, inFlight - (m.offset - prev));
          acked.set(m.hash, m.offset);
          wakeWindow();
        }
        return;
      }
      case 'receipt':
        receiptChain = receiptChain
          .then(async () => {
            await queue.recordStudioReceipt(toReceipt(m)); // durable before it counts
            receipted.add(m.hash);
            res.receipts++;
            opts.onReceipt?.(m.hash);
            settle(m.hash);
          })
          .catch((err: unknown) => {
            failure ??= new LinkError(
              LINK_CODES.incomplete,
              `Recording the studio receipt of ${m.hash} failed: ${err instanceof Error ? err.message : String(err)}`,
              { cause: err, retryable: true },
            );
            link.close();
          });
        return;
      case 'nack':
        release(m.hash);
        if (m.code !== ProtoCode.HashMismatch && m.code !== ProtoCode.SizeMismatch) {
          res.nacks.push({ hash: m.hash, code: m.code, message: m.message, retryable: m.retryable });
          settle(m.hash);
          return;
        }
        // The bytes sent did not hash (or add up) to the offer: in flight, or the laptop copy itself?
        checks = checks
          .then(async () => {
            const damaged = await queue.checkStoreCopy(m.hash);
            res.nacks.push(
              damaged === undefined
                ? { hash: m.hash, code: m.code, message: m.message, retryable: m.retryable }
                : nackOf(m.hash, damaged),
            );
            settle(m.hash);
          })
          .catch((err: unknown) => {
            failure ??= new LinkError(
              LINK_CODES.incomplete,
              `Checking the laptop copy of ${m.hash} failed: ${err instanceof Error ? err.message : String(err)}`,
              { cause: err, retryable: true },
            );
            link.close();
          });
        return;
      default:
        return;
    }
  };
  const onClose = (err: CodedError): void => {
    failure ??= err;
    wakeWindow();
    drained?.();
    if (wantWaiter !== undefined) {
      wantWaiter = undefined;
    }
    closedResolve();
  };
  let closedResolve!: () => void;
  const closed = new Promise<void>((r) => {
    closedResolve = r;
  });
  link.on('message', onMessage);
  link.on('close', onClose);
  if (link.closedError !== undefined) onClose(link.closedError);

  const check = (): void => {
    if (failure !== undefined) throw failure;
    opts.signal?.throwIfAborted();
  };

  const sendFile = async (asset: PendingAsset, offset: number): Promise<void> => {
    const hash = asset.blake3;
    const before = sentMemory.get(hash);
    if (before !== undefined && before > offset) {
      const resent = before - offset;
      res.bytesResent += resent;
      res.maxResentOnResume = Math.max(res.maxResentOnResume, resent);
    }
    acked.set(hash, offset);
    sent.set(hash, offset);
    let pos = offset;
    /** The laptop copy cannot be read: check it (a damaged one is recorded so) and end the session. */
    const unreadable = async (err: unknown): Promise<never> => {
      const damaged = await queue.checkStoreCopy(hash);
      if (damaged !== undefined) res.nacks.push(nackOf(hash, damaged));
      const why =
        damaged ??
        new LinkError(
          LINK_CODES.incomplete,
          `Reading the laptop copy ${asset.storePath} failed: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err, retryable: true },
        );
      // The studio wants this file and a wanted file cannot be skipped (SPEC §3.4): end the
      // session with an Error; the next one no longer offers a damaged copy.
      await link
        .send({ t: 'error', code: why.code, message: why.message.slice(0, 1000), retryable: true })
        .catch(() => undefined);
      link.close();
      throw new LinkError(LINK_CODES.incomplete, `The laptop copy of ${hash} could not be sent: ${why.message}`, {
        cause: why,
        retryable: true,
      });
    };
    let fh: FileHandle | undefined;
    try {
      fh = asset.size > offset ? await open(asset.storePath, 'r') : undefined;
    } catch (err) {
      return unreadable(err);
    }
    /** Reads the chunk at `at` (shorter, or empty, when the laptop copy is shorter than recorded). */
    const readChunk = async (at: number): Promise<Buffer> => {
      const len = Math.min(chunkSize, asset.size - at);
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh!.read(buf, got, len - got, at + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === len ? buf : buf.subarray(0, got);
    };
    // One chunk is read ahead while the current one waits for the window and is sent:
    // at most chunkSize more in memory, and the disk read overlaps the link.
    let ahead: Promise<Buffer> | undefined;
    try {
      ahead = pos < asset.size ? readChunk(pos) : undefined;
      while (pos < asset.size) {
        check();
        let data: Buffer;
        try {
          data = await ahead!;
        } catch (err) {
          ahead = undefined;
          return await unreadable(err);
        }
        ahead = undefined;
        const got = data.byteLength;
        if (got === 0) break; // laptop copy shorter than recorded: the studio Nacks the size
        if (pos + got < asset.size) {
          ahead = readChunk(pos + got);
          ahead.catch(() => undefined); // awaited in the next round or in finally
        }
        while (inFlight + got > window) {
          await Promise.race([
            new Promise<void>((r) => {
              windowWaiter = r;
            }),
            closed,
          ]);
          check();
        }
        inFlight += got;
        await link.send({ t: 'chunk', hash, offset: pos, data });
        pos += got;
        res.bytesSent += got;
        sent.set(hash, pos);
        sentMemory.set(hash, Math.max(sentMemory.get(hash) ?? 0, pos));
      }
    } finally {
      await ahead?.catch(() => undefined);
      await fh?.close();
    }
    check();
    await link.send({ t: 'file-end', hash, size: asset.size });
    res.filesSent++;
  };

  try {
    let after: string | undefined;
    const seen = new Set<string>();
    for (;;) {
      check();
      const raw = await queue.pendingForStudio(batchSize, after);
      const batch = raw.filter((a) => !seen.has(a.blake3));
      const lastQueued = [...raw].reverse().find((a) => !receipted.has(a.blake3));
      if (batch.length === 0) {
        if (raw.length < batchSize || lastQueued === undefined || lastQueued.blake3 === after) break;
        after = lastQueued.blake3;
        continue;
      }
      for (const a of batch) seen.add(a.blake3);
      after = lastQueued?.blake3;
      // A laptop copy found damaged is not offered (it cannot be sent); it is reported every pass
      // until the card is ingested again (store-copy.ts).
      const sendable: PendingAsset[] = [];
      for (const a of batch) {
        if (hasVerifiedCopy(a, 'laptop')) sendable.push(a);
        else
          res.nacks.push(
            nackOf(a.blake3, storeCopyDamagedError(a.storePath, 'is not sent to the studio', { blake3: a.blake3 })),
          );
      }
      if (sendable.length === 0) continue;
      const batchId = `b${process.pid}-${++batchSeq}`;
      const files = sendable.map(toOfferFile);
      const wantP = new Promise<MessageOf<'want'>>((resolve) => {
        wantWaiter = { batchId, resolve };
      });
      for (const f of files) outstanding.set(f.hash, () => undefined);
      res.offered += files.length;
      await link.send({ t: 'offer', batchId, files });
      const want = await Promise.race([wantP, closed.then(() => undefined)]);
      check();
      if (want === undefined)
        throw (
          failure ??
          new LinkError(LINK_CODES.connectionLost, 'Link closed while waiting for Want.', { retryable: true })
        );
      res.have += want.have.length;
      const byHash = new Map(sendable.map((a) => [a.blake3, a]));
      for (const w of want.wants) {
        const asset = byHash.get(w.hash);
        if (asset === undefined || w.offset > asset.size)
          throw new LinkError(
            LINK_CODES.badPeer,
            `The studio wants ${w.hash} at ${w.offset}, which was not offered so. Update studiod.`,
          );
        await sendFile(asset, w.offset);
      }
      // Hashes neither wanted, had nor nacked before the Want cannot complete in this pass.
      const answered = new Set([...want.wants.map((w) => w.hash), ...want.have]);
      for (const f of files) if (!answered.has(f.hash) && !settled.has(f.hash)) settle(f.hash);
    }
    if (outstanding.size > 0) {
      await Promise.race([
        new Promise<void>((r) => {
          drained = r;
          if (outstanding.size === 0) r();
        }),
        closed,
      ]);
    }
    await receiptChain;
    await checks;
    check();
    return res;
  } finally {
    link.off('message', onMessage);
    link.off('close', onClose);
  }
}
