/**
 * One sync pass over an authenticated link (protocol/SPEC.md §3.4–3.7), as an
 * object: its fields are the pass's state (the window and the bytes in flight,
 * the batch waiting for its Want, the per-hash offsets and outcomes), its
 * methods the steps. `syncPass(link, queue, opts)` runs one; the link is any
 * SyncLink (LinkClient on a real session).
 *
 * The steps, in the order `run` takes them:
 *  1. `#nextBatch`: the next batch of the agent's queue (`pendingForStudio`),
 *     files not yet taken in this pass. `#sendable`: a laptop copy already found
 *     damaged is not offered (it cannot be sent); it is reported as
 *     AGENT_STORE_COPY_DAMAGED, every pass, until the card is ingested again.
 *  2. `#offer`: send the Offer, wait for its Want (§3.4), count the files the
 *     studio already has.
 *  3. `#checkWant`: every wanted hash must have been offered, at an offset
 *     within its size; else LINK_BAD_PEER, before any byte is sent.
 *  4. `#sendFile`, each wanted file in the Want's order: from the studio's
 *     durable offset (§3.7, bytes re-sent after a resume are counted), Chunks
 *     within the window (`#waitForRoom`, §3.5), then FileEnd. A laptop copy that
 *     cannot be read is re-checked through the queue (`checkStoreCopy`) and the
 *     session ends with an Error: a wanted file cannot be skipped (`#unreadable`,
 *     LINK_INCOMPLETE).
 *  5. `#settleUnanswered`: offered hashes neither wanted nor had (nor Nacked
 *     before the Want) cannot complete in this pass. Then step 1 again, until
 *     the queue has nothing more.
 *  6. `#finish`: wait until every offered hash has its Receipt or Nack, every
 *     Receipt is recorded and every copy check is done; the first failure is
 *     thrown.
 *
 * Meanwhile the studio's messages arrive as events (`#onMessage`):
 *  - Want: resolves step 2 (for the batch waiting for it);
 *  - Ack: releases the file's bytes below its offset from the window;
 *  - Receipt: recorded durably through the queue (`recordStudioReceipts`,
 *    sync: true; many to one batch: each lingers up to RECEIPT_LINGER_MS for
 *    those that follow it), in order, and only then counted (§3.6);
 *  - Nack: releases all the file's bytes and is reported with its code and
 *    retryable flag; after PROTO_HASH_MISMATCH or PROTO_SIZE_MISMATCH the laptop
 *    copy is re-read first (`checkStoreCopy`), and a damaged one is reported as
 *    AGENT_STORE_COPY_DAMAGED instead;
 *  - the link closing (`#onClose`) or the abort signal ends every wait; the
 *    pass throws why (after an abort, closing the link is the caller's).
 *
 * Memory is bounded by the window, whatever the file size: the link holds at most
 * a window of chunks (LinkClient: one, the one being written), and the pass reads
 * the next chunk only when the window has room for it and the link has written the
 * one before (on this thread, just before it is sent: `#sendChunks`). Each chunk is read
 * straight into its Chunk frame (encodeChunkFrame), after FRAME_HEADROOM bytes
 * where the link writes its WebSocket header, and a frame the link has written is
 * reused for a later chunk (`#frames`): no copy of the bytes into an encoder or a
 * WebSocket frame, and no fresh buffer per chunk for the garbage collector.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { posix } from 'node:path';
import {
  CHUNK_HEADER_BYTES,
  encodeChunkFrame,
  MAX_BATCH_FILES,
  MAX_CHUNK_BYTES,
  MAX_COPIES_PER_FILE,
  MAX_NAMES_PER_FILE,
  PROTO_CODES,
  type AgentCopy,
  type CodedError,
  type Message,
  type MessageOf,
  type OfferFile,
  type ProgressTracker,
  utcDay,
} from '@studio321/protocol';
import { GroupCommit } from '@studio321/protocol/durable';
import { hasVerifiedCopy, type PendingAsset, type StudioReceipt } from '../state/agent-state.js';
import { storeCopyDamagedError, type SyncQueue } from '../state/store-copy.js';
import { LINK_CODES, LinkError } from './errors.js';
import { FRAME_HEADROOM, type SyncLink } from './sync-link.js';

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
  /**
   * Bytes sent and files settled are added here (its totals: the queue when the sync began); bytes
   * the studio already has (Want `have`, a resume offset) are taken off its total.
   */
  progress?: ProgressTracker;
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
      // The card path as readdir returned it; the wire carries its NFC form (SPEC.md §5). A file
      // renamed at ingest is offered under its new name, with its name on the card in `capture`.
      .map((n) => ({
        shoot: n.shoot,
        card: n.card,
        path: (n.renamed ?? n.path).normalize('NFC'),
        mtime: Math.trunc(n.mtime),
        ...(n.capture === undefined && n.renamed === undefined
          ? {}
          : {
              capture: {
                ...(n.capture ?? { day: utcDay(n.mtime), dateSource: 'mtime' as const }),
                ...(n.renamed === undefined ? {} : { originalName: posix.basename(n.path).normalize('NFC') }),
              },
            }),
      })),
    copies: toAgentCopies(a),
    ...(a.xxh3 === undefined ? {} : { xxh3: a.xxh3 }),
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

/**
 * How long a Receipt waits for those that follow it before they are recorded together (one synced
 * batch): the batch's reads of the status summary and its fsync are paid per batch, so a receipt
 * recorded four to a batch costs the agent nearly three times the CPU of one recorded sixteen or
 * more to a batch. Nothing waits on it but the count (a Receipt not recorded yet is re-offered and
 * receipted again after a crash).
 */
const RECEIPT_LINGER_MS = 200;

/** Frames kept for reuse: the most a pass has in flight (the link's high-water mark in chunks, and two). */
const MAX_SPARE_FRAMES = 8;

/** Where a chunk's data starts in its buffer: the link's headroom, then the Chunk header (encodeChunkFrame). */
const DATA_AT = FRAME_HEADROOM + CHUNK_HEADER_BYTES;

/** A chunk read into its frame: `got` bytes at DATA_AT. */
interface ReadChunk {
  frame: Buffer;
  got: number;
}

/**
 * Reads `len` bytes of `fd` at `at` into `frame` at DATA_AT (fewer, or none, when the file is
 * shorter), on this thread. The pass reads each chunk just before it gives the frame to the link:
 * the TLS socket then encrypts bytes that are still in this core's cache, and the frame read into
 * is the one just written (see #sendChunks).
 */
function readInto(fd: number, frame: Buffer, at: number, len: number): ReadChunk {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, frame, DATA_AT + got, len - got, at + got);
    if (n === 0) break;
    got += n;
  }
  return { frame, got };
}

/** A failure of this agent's side while the session is up, reported as LINK_INCOMPLETE (retryable). */
function incomplete(what: string, err: unknown): LinkError {
  return new LinkError(LINK_CODES.incomplete, `${what} failed: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    retryable: true,
  });
}

/** One sync pass; `run()` once. See the file header for its steps. */
export class SyncPass {
  /** The counts: the caller's accumulator when given (kept when the pass fails half-way). */
  readonly result: SyncPassResult;
  readonly #link: SyncLink;
  readonly #queue: SyncQueue;
  readonly #batchSize: number;
  readonly #chunkSize: number;
  /** Highest offset sent per hash, across passes (the caller's), to count bytes re-sent on resume. */
  readonly #sentMemory: Map<string, number>;
  readonly #onReceipt: ((hash: string) => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #progress: ProgressTracker | undefined;
  #ran = false;

  // The window (SPEC §3.5): Chunk bytes sent and not yet acknowledged, across all files.
  readonly #window: number;
  #inFlight = 0;
  /** Per hash: the offset sent up to, and the offset acknowledged (or released by a Nack). */
  readonly #sent = new Map<string, number>();
  readonly #acked = new Map<string, number>();
  /** The chunk waiting for window room; woken by an Ack or a Nack. */
  #windowWaiter: (() => void) | undefined;

  // The batches.
  /** The queue position of the last batch (`pendingForStudio`'s `after`). */
  #after: string | undefined;
  /** Hashes taken from the queue in this pass (offered, or reported damaged): never taken twice. */
  readonly #taken = new Set<string>();
  /** The batch waiting for its Want. */
  #wantWaiter: { batchId: string; resolve: (w: MessageOf<'want'>) => void } | undefined;
  /** Offered and not yet settled: no Receipt or Nack yet, and not left out of its Want. */
  readonly #outstanding = new Set<string>();
  readonly #settled = new Set<string>();
  readonly #receipted = new Set<string>();
  /** Offered and settled by nothing yet, not even a Receipt waiting to be recorded. */
  readonly #awaitingReceipt = new Set<string>();
  /** Step 6 waiting for the last outstanding hash. */
  #drained: (() => void) | undefined;

  // The end.
  #failure: CodedError | undefined;
  /**
   * Receipts are recorded in the order they came, durable before they count, many to one synced
   * batch: those that came within RECEIPT_LINGER_MS of the first (`#lingering`, at most
   * MAX_BATCH_FILES) are handed over together, and groups handed over while a batch was being
   * written go together in the next one (a group commit).
   */
  readonly #receipts: GroupCommit<StudioReceipt[]>;
  /** Receipts waiting to be handed to `#receipts`, and the timer that hands them over. */
  #lingering: Array<MessageOf<'receipt'>> = [];
  #lingerTimer: NodeJS.Timeout | undefined;
  /** The last receipt's recording (never rejects). */
  #recording: Promise<void> = Promise.resolve();
  /** Laptop copies re-read after a hash or size mismatch, one after another. */
  #checking: Promise<void> = Promise.resolve();
  /** Resolves when the link closes or the signal aborts: every wait races it. */
  readonly #stopped: Promise<void>;
  #stop!: () => void;
  /** Chunk frames the link has written, to be read into again. */
  readonly #frames: Buffer[] = [];
  /** The hash whose FileEnd went out behind its last Chunk. */
  #fileEndSent: string | undefined;

  constructor(link: SyncLink, queue: SyncQueue, opts: SyncPassOptions = {}) {
    this.#link = link;
    this.#queue = queue;
    this.#batchSize = Math.min(opts.batchSize ?? MAX_BATCH_FILES, MAX_BATCH_FILES);
    this.#chunkSize = Math.min(opts.chunkSize ?? MAX_CHUNK_BYTES, MAX_CHUNK_BYTES);
    this.#sentMemory = opts.sentMemory ?? new Map<string, number>();
    this.#onReceipt = opts.onReceipt;
    this.#signal = opts.signal;
    this.#progress = opts.progress;
    this.result = opts.stats ?? emptySyncResult();
    this.#receipts = new GroupCommit<StudioReceipt[]>(async (groups) => {
      const rs = groups.flat();
      if (queue.recordStudioReceipts !== undefined) await queue.recordStudioReceipts(rs);
      else for (const r of rs) await queue.recordStudioReceipt(r);
    });
    this.#window = link.window;
    this.#stopped = new Promise<void>((resolve) => {
      this.#stop = resolve;
    });
  }

  /** Runs the pass (steps 1–6); resolves with `result`, or rejects with the first failure. */
  async run(): Promise<SyncPassResult> {
    if (this.#ran) throw new TypeError('A SyncPass runs once: make a new one for the next pass.');
    this.#ran = true;
    this.#link.on('message', this.#onMessage);
    this.#link.on('close', this.#onClose);
    this.#signal?.addEventListener('abort', this.#onAbort);
    if (this.#link.closedError !== undefined) this.#onClose(this.#link.closedError);
    try {
      for (;;) {
        const batch = await this.#nextBatch();
        if (batch === undefined) break;
        const sendable = this.#sendable(batch);
        if (sendable.length === 0) continue;
        const want = await this.#offer(sendable);
        this.#notToSend(sendable.filter((a) => want.have.includes(a.blake3)).reduce((n, a) => n + a.size, 0));
        for (const { asset, offset } of this.#checkWant(want, sendable)) await this.#sendFile(asset, offset);
        this.#settleUnanswered(sendable, want);
      }
      await this.#finish();
      return this.result;
    } finally {
      // Receipts that came are recorded even when the pass fails (they are the studio's word),
      // and counted in this pass's result before it ends: a pass that fails (a laptop copy it
      // cannot read) must not report fewer receipts than it recorded.
      this.#flushReceipts();
      this.#link.off('message', this.#onMessage);
      this.#link.off('close', this.#onClose);
      this.#signal?.removeEventListener('abort', this.#onAbort);
      await this.#recording.catch(() => undefined); // a failure to record is the pass's own (#fail)
    }
  }

  // ---- the steps -----------------------------------------------------------

  /** Step 1: the next files of the queue not yet taken in this pass; undefined when there are none. */
  async #nextBatch(): Promise<PendingAsset[] | undefined> {
    for (;;) {
      this.#check();
      const raw = await this.#queue.pendingForStudio(this.#batchSize, this.#after);
      const batch = raw.filter((a) => !this.#taken.has(a.blake3));
      const lastQueued = [...raw].reverse().find((a) => !this.#receipted.has(a.blake3));
      if (batch.length === 0) {
        if (raw.length < this.#batchSize || lastQueued === undefined || lastQueued.blake3 === this.#after)
          return undefined;
        this.#after = lastQueued.blake3;
        continue;
      }
      for (const a of batch) this.#taken.add(a.blake3);
      this.#after = lastQueued?.blake3;
      return batch;
    }
  }

  /**
   * Step 1, continued: the files whose laptop copy still counts. One found damaged is not offered
   * (it cannot be sent); it is reported every pass until the card is ingested again (store-copy.ts).
   */
  #sendable(batch: PendingAsset[]): PendingAsset[] {
    const sendable: PendingAsset[] = [];
    for (const a of batch) {
      if (hasVerifiedCopy(a, 'laptop')) sendable.push(a);
      else
        this.result.nacks.push(
          nackOf(a.blake3, storeCopyDamagedError(a.storePath, 'is not sent to the studio', { blake3: a.blake3 })),
        );
    }
    return sendable;
  }

  /** Step 2: offer the batch and wait for its Want (SPEC §3.4). */
  async #offer(assets: PendingAsset[]): Promise<MessageOf<'want'>> {
    const batchId = `b${process.pid}-${++batchSeq}`;
    const files = assets.map(toOfferFile);
    const wanted = new Promise<MessageOf<'want'>>((resolve) => {
      this.#wantWaiter = { batchId, resolve };
    });
    for (const f of files) {
      this.#outstanding.add(f.hash);
      this.#awaitingReceipt.add(f.hash);
    }
    this.result.offered += files.length;
    await this.#link.send({ t: 'offer', batchId, files });
    const want = await Promise.race([wanted, this.#stopped.then(() => undefined)]);
    this.#check();
    if (want === undefined)
      throw (
        this.#failure ??
        new LinkError(LINK_CODES.connectionLost, 'Link closed while waiting for Want.', { retryable: true })
      );
    this.result.have += want.have.length;
    return want;
  }

  /**
   * Step 3: the wanted files, each of which must have been offered, at an offset within its size.
   * The whole Want is checked before any byte is sent: a studio that breaks the protocol gets nothing.
   */
  #checkWant(want: MessageOf<'want'>, offered: PendingAsset[]): Array<{ asset: PendingAsset; offset: number }> {
    const byHash = new Map(offered.map((a) => [a.blake3, a]));
    return want.wants.map((w) => {
      const asset = byHash.get(w.hash);
      if (asset === undefined || w.offset > asset.size)
        throw new LinkError(
          LINK_CODES.badPeer,
          `The studio wants ${w.hash} at ${w.offset}, which was not offered so. Update studiod.`,
        );
      return { asset, offset: w.offset };
    });
  }

  /** Step 4: one wanted file, from the studio's durable offset: Chunks within the window, then FileEnd. */
  async #sendFile(asset: PendingAsset, offset: number): Promise<void> {
    const hash = asset.blake3;
    const before = this.#sentMemory.get(hash);
    if (before !== undefined && before > offset) {
      const resent = before - offset;
      this.result.bytesResent += resent;
      this.result.maxResentOnResume = Math.max(this.result.maxResentOnResume, resent);
    }
    this.#acked.set(hash, offset);
    this.#sent.set(hash, offset);
    this.#notToSend(offset);
    if (offset < asset.size) {
      let fd: number;
      try {
        fd = openSync(asset.storePath, 'r');
      } catch (err) {
        return this.#unreadable(asset, err);
      }
      try {
        await this.#sendChunks(asset, offset, (at, len) => readInto(fd, this.#takeFrame(), at, len));
      } finally {
        closeSync(fd);
      }
    }
    this.#check();
    // Sent already behind the file's last Chunk (#sendChunk), unless the studio Nacked it first.
    if (this.#fileEndSent !== hash) await this.#link.send({ t: 'file-end', hash, size: asset.size });
    this.result.filesSent++;
  }

  /**
   * Step 4, the Chunks. Each chunk is read when the window has room for it and the link has
   * written the one before (sendFrame resolves then), straight into the frame that came back:
   * read, encrypted and sent while its bytes are in this core's cache. A chunk read ahead on the
   * thread pool and encrypted milliseconds later comes back from memory, into a frame that had
   * left the cache too (about 0.25 CPU-s a GiB more for a bare TLS sender, README "Session 16").
   * The socket's own buffer keeps the link busy meanwhile.
   */
  async #sendChunks(
    asset: PendingAsset,
    offset: number,
    readAt: (at: number, len: number) => ReadChunk,
  ): Promise<void> {
    const hash = asset.blake3;
    let pos = offset;
    while (pos < asset.size) {
      this.#check();
      const len = Math.min(this.#chunkSize, asset.size - pos);
      await this.#waitForRoom(len);
      // Nacked mid-transfer (the studio could not stage it): no more Chunks; the FileEnd follows (SPEC §3.6).
      if (this.#settled.has(hash)) break;
      let chunk: ReadChunk;
      try {
        chunk = readAt(pos, len);
      } catch (err) {
        return await this.#unreadable(asset, err);
      }
      const { frame, got } = chunk;
      if (got === 0) {
        this.#frames.push(frame);
        break; // laptop copy shorter than recorded: the studio Nacks the size
      }
      this.#inFlight += got;
      await this.#sendChunk(hash, pos, frame, got, asset.size);
      pos += got;
      this.result.bytesSent += got;
      this.#progress?.addBytes(got);
      this.#sent.set(hash, pos);
      this.#sentMemory.set(hash, Math.max(this.#sentMemory.get(hash) ?? 0, pos));
    }
  }

  /** A frame to read the next chunk into: one the link has written, or a new one. */
  #takeFrame(): Buffer {
    return this.#frames.pop() ?? Buffer.allocUnsafeSlow(DATA_AT + this.#chunkSize);
  }

  /**
   * Step 4, one Chunk: its frame goes to the link as it is, and comes back for reuse once written.
   * A link without `sendFrame` gets the message; that frame is never reused (the link may keep it).
   */
  async #sendChunk(hash: string, offset: number, frame: Buffer, got: number, size: number): Promise<void> {
    const built = encodeChunkFrame(frame.subarray(FRAME_HEADROOM), hash, offset, got);
    if (this.#link.sendFrame === undefined) {
      await this.#link.send({ t: 'chunk', hash, offset, data: frame.subarray(DATA_AT, DATA_AT + got) });
      return;
    }
    const recycle = (): void => {
      if (this.#frames.length < MAX_SPARE_FRAMES) this.#frames.push(frame);
    };
    // A file's last Chunk: its FileEnd goes in the same write (step 4 then sends none).
    if (offset + got === size) {
      this.#fileEndSent = hash;
      await this.#link.sendFrame(built, recycle, { t: 'file-end', hash, size });
      return;
    }
    await this.#link.sendFrame(built, recycle);
  }

  /** Step 4: waits until `bytes` more fit in the window (an Ack or a Nack makes room). */
  async #waitForRoom(bytes: number): Promise<void> {
    while (this.#inFlight + bytes > this.#window) {
      await Promise.race([
        new Promise<void>((resolve) => {
          this.#windowWaiter = resolve;
        }),
        this.#stopped,
      ]);
      this.#check();
    }
  }

  /** Step 4 failed: the laptop copy cannot be read. Check it (a damaged one is recorded so) and end the session. */
  async #unreadable(asset: PendingAsset, err: unknown): Promise<never> {
    const hash = asset.blake3;
    const damaged = await this.#queue.checkStoreCopy(hash);
    if (damaged !== undefined) this.result.nacks.push(nackOf(hash, damaged));
    const why = damaged ?? incomplete(`Reading the laptop copy ${asset.storePath}`, err);
    // The studio wants this file and a wanted file cannot be skipped (SPEC §3.4): end the
    // session with an Error; the next one no longer offers a damaged copy.
    await this.#link
      .send({ t: 'error', code: why.code, message: why.message.slice(0, 1000), retryable: true })
      .catch(() => undefined);
    this.#link.close();
    throw new LinkError(LINK_CODES.incomplete, `The laptop copy of ${hash} could not be sent: ${why.message}`, {
      cause: why,
      retryable: true,
    });
  }

  /** Step 5: hashes neither wanted, had, nor Nacked before the Want cannot complete in this pass. */
  #settleUnanswered(offered: PendingAsset[], want: MessageOf<'want'>): void {
    const answered = new Set([...want.wants.map((w) => w.hash), ...want.have]);
    for (const a of offered) if (!answered.has(a.blake3) && !this.#settled.has(a.blake3)) this.#settle(a.blake3);
  }

  /** Step 6: every offered hash has its Receipt or Nack, recorded and checked; else the first failure. */
  async #finish(): Promise<void> {
    this.#flushReceipts();
    if (this.#outstanding.size > 0) {
      await Promise.race([
        new Promise<void>((resolve) => {
          this.#drained = resolve;
        }),
        this.#stopped,
      ]);
    }
    await this.#recording;
    await this.#checking;
    this.#check();
  }

  // ---- the studio's messages -----------------------------------------------

  readonly #onMessage = (m: Message): void => {
    switch (m.t) {
      case 'want':
        if (this.#wantWaiter?.batchId === m.batchId) {
          const w = this.#wantWaiter;
          this.#wantWaiter = undefined;
          w.resolve(m);
        }
        return;
      case 'ack':
        this.#onAck(m);
        return;
      case 'receipt':
        this.#onReceiptMessage(m);
        return;
      case 'nack':
        this.#onNack(m);
        return;
      default:
        return;
    }
  };

  /** Ack: the bytes of the file below `offset` leave the window. */
  #onAck(m: MessageOf<'ack'>): void {
    const prev = this.#acked.get(m.hash) ?? 0;
    if (m.offset > prev) {
      this.#inFlight = Math.max(0, this.#inFlight - (m.offset - prev));
      this.#acked.set(m.hash, m.offset);
      this.#wakeWindow();
    }
  }

  /**
   * Receipt: recorded durably through the queue, and only then counted (SPEC §3.6). It waits in
   * `#lingering` for the receipts that follow it, at most RECEIPT_LINGER_MS, and no longer once
   * every hash offered has its Receipt (none is to come) or the pass ends.
   */
  #onReceiptMessage(m: MessageOf<'receipt'>): void {
    this.#lingering.push(m);
    this.#awaitingReceipt.delete(m.hash);
    if (this.#lingering.length >= MAX_BATCH_FILES || this.#awaitingReceipt.size === 0) this.#flushReceipts();
    else this.#lingerTimer ??= setTimeout(() => this.#flushReceipts(), RECEIPT_LINGER_MS);
  }

  /** Hands the lingering receipts to the group commit; each counts once its batch is durable. */
  #flushReceipts(): void {
    if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    const ms = this.#lingering;
    if (ms.length === 0) return;
    this.#lingering = [];
    const recorded = this.#receipts.commit(ms.map(toReceipt)).then(
      () => {
        for (const m of ms) {
          this.#receipted.add(m.hash);
          this.result.receipts++;
          this.#onReceipt?.(m.hash);
          this.#settle(m.hash);
        }
      },
      (err: unknown) =>
        this.#fail(
          incomplete(
            `Recording the studio receipts of ${ms[0]?.hash}${ms.length > 1 ? ` and ${ms.length - 1} more` : ''}`,
            err,
          ),
        ),
    );
    this.#recording = this.#recording.then(() => recorded);
  }

  /** Nack: all the file's bytes leave the window; reported, after a re-read of the laptop copy on a mismatch. */
  #onNack(m: MessageOf<'nack'>): void {
    this.#release(m.hash);
    const reported: SyncNack = { hash: m.hash, code: m.code, message: m.message, retryable: m.retryable };
    if (m.code !== PROTO_CODES.hashMismatch && m.code !== PROTO_CODES.sizeMismatch) {
      this.result.nacks.push(reported);
      this.#settle(m.hash);
      return;
    }
    // The bytes sent did not hash (or add up) to the offer: in flight, or the laptop copy itself?
    this.#checking = this.#checking
      .then(async () => {
        const damaged = await this.#queue.checkStoreCopy(m.hash);
        this.result.nacks.push(damaged === undefined ? reported : nackOf(m.hash, damaged));
        this.#settle(m.hash);
      })
      .catch((err: unknown) => this.#fail(incomplete(`Checking the laptop copy of ${m.hash}`, err)));
  }

  readonly #onClose = (err: CodedError): void => {
    this.#failure ??= err;
    this.#wantWaiter = undefined;
    this.#stop();
  };

  /** The abort ends a wait for the Want, for window room or for the last Receipts at once. */
  readonly #onAbort = (): void => {
    this.#stop();
  };

  // ---- helpers -------------------------------------------------------------

  /** All the bytes sent of `hash` leave the window (a Nack). */
  #release(hash: string): void {
    const s = this.#sent.get(hash) ?? 0;
    const a = this.#acked.get(hash) ?? 0;
    this.#inFlight = Math.max(0, this.#inFlight - Math.max(0, s - a));
    this.#acked.set(hash, s);
    this.#wakeWindow();
  }

  #wakeWindow(): void {
    const w = this.#windowWaiter;
    this.#windowWaiter = undefined;
    w?.();
  }

  /** The hash got its Receipt or Nack (or cannot complete in this pass). */
  #settle(hash: string): void {
    if (!this.#settled.has(hash)) this.#progress?.fileDone();
    this.#settled.add(hash);
    this.#outstanding.delete(hash);
    this.#awaitingReceipt.delete(hash);
    if (this.#awaitingReceipt.size === 0 && this.#lingering.length > 0) this.#flushReceipts();
    if (this.#outstanding.size === 0) this.#drained?.();
  }

  /** Bytes the studio holds already: they will not be sent, so the progress total drops. */
  #notToSend(bytes: number): void {
    if (this.#progress !== undefined && bytes > 0)
      this.#progress.totalBytes = Math.max(0, this.#progress.totalBytes - bytes);
  }

  /** A failure on this side while the session is up: kept (the first one wins) and the link closed. */
  #fail(err: CodedError): void {
    this.#failure ??= err;
    this.#link.close();
  }

  /** Throws the first failure, or the abort. */
  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#signal?.throwIfAborted();
  }
}

/** Runs one sync pass over `link` (see SyncPass). */
export function syncPass(link: SyncLink, queue: SyncQueue, opts: SyncPassOptions = {}): Promise<SyncPassResult> {
  return new SyncPass(link, queue, opts).run();
}
