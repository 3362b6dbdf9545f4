/**
 * Receiving files on one link session (protocol/SPEC.md §3.4–3.7): Offer → Want
 * (+ Receipt for what the studio has), Chunk → staged file → Ack, FileEnd →
 * commit → Receipt | Nack.
 *
 * The session hands it the frames it accepted, in arrival order and one at a
 * time; the receiver answers through a FileLink (send a frame, fail the
 * session, the logger), never the socket, so it can be driven in-process.
 * Commits run on their own chain so the next file's chunks keep flowing while
 * the previous file is committed. A file whose bytes cannot be staged (mirror
 * full) is Nacked mid-transfer; the session goes on. Memory is bounded by the window (enforced at
 * arrival by `admit`: PROTO_WINDOW_EXCEEDED) plus one frame.
 *
 * Lifecycle: `receiving` → `draining` (`linkLost`: the socket is gone; chunks
 * already received are still staged, nothing is streamed into a commit any
 * more) → `closed` (`close`: streamed commits stopped, staged files released
 * for a resume, commits settled).
 */
import {
  CodedError,
  createXxh3,
  MAX_CHUNK_BYTES,
  ProtocolError,
  PROTO_CODES,
  nameKey,
  validateSegment,
  validateRelativePath,
  type FileName,
  type Logger,
  type Message,
  type MessageOf,
  type OfferFile,
  type ReceiptMessage,
} from '@studio321/protocol';
import type { Catalogue } from '../catalogue.js';
import type { Committer } from '../commit/commit.js';
import { StagedFile, type Staging } from '../commit/staging.js';
import type { StagedRead, TakeReadBuffer } from '../commit/staged-read.js';
import { holdChunk } from './chunk-receive.js';
import type { SlabPiece } from './small-slabs.js';
import { SMALL_COMMIT_BYTES } from '../commit/small-commit.js';
import { alignedBuffer, DURABLE_CODES } from '@studio321/protocol/durable';

/** What the receiver may do to its session. */
export interface FileLink {
  /** Send one frame to the agent (dropped once the link is gone). */
  send(msg: Message): void;
  /** End the session with an Error frame: for faults found off the frame queue (a background fsync). */
  fail(err: CodedError): void;
  readonly log: Logger;
}

export interface FileReceiverOptions {
  /** The session's id: staged files are held in its name (a second session gets STUDIO_BUSY). */
  sessionId: string;
  catalogue: Catalogue;
  staging: Staging;
  /**
   * The Committer, or a session's fair view of it (fair-scheduler.ts). With `commitSmall`, a new
   * file of at most SMALL_COMMIT_BYTES is kept in memory and committed whole (small-commit.ts).
   */
  committer: Pick<Committer, 'commit' | 'receiptFor'> & Partial<Pick<Committer, 'commitSmall'>>;
  /** The window announced in the studio's Hello. */
  windowBytes: number;
  now: () => number;
  /**
   * Counts a complete small file's bytes, held in memory until its commit ends, against the
   * link's receive budget (session.ts; memory-budget.ts); returns their release. Counted from
   * FileEnd, never before: every byte counted then is freed by a commit that needs no more frames,
   * so a session paused at the budget never holds bytes the budget waits for.
   */
  holdSmall?: (bytes: number) => () => void;
  /**
   * Where a small file's bytes are kept until its commit ends (the link's slabs, small-slabs.ts);
   * `free` is called once, after the commit settled. Default: a Buffer of its own.
   */
  smallBytes?: (size: number) => SlabPiece;
  /**
   * The buffers a streamed commit reads its staged file back into (StagedRead; the link's chunk
   * pool, chunk-receive.ts). Default: a page-aligned buffer of its own each.
   */
  readBuffer?: TakeReadBuffer;
  /** Files past FileEnd whose commit has not ended, at most; default MAX_COMMITTING. */
  maxCommitting?: number;
}

const ownBuffer = (size: number): SlabPiece => ({ bytes: Buffer.allocUnsafe(size), free: () => undefined });
const ownReadBuffer: TakeReadBuffer = () => ({ data: alignedBuffer(MAX_CHUNK_BYTES), release: () => undefined });

interface Wanted {
  file: OfferFile;
  /** The authenticated agent that offered it (recorded with its names and copies). */
  agentId: string;
  staged: StagedFile;
  /** Highest offset acknowledged to the agent. */
  acked: number;
  /** A background fsync + Ack in flight (writing continues meanwhile). */
  syncing?: Promise<void> | undefined;
  /** Streamed commit started with the file's first chunk (offset 0). */
  live?: LiveCommit | undefined;
  /**
   * A small new file received into memory instead of staging (nothing of it is durable before
   * its commit, so nothing is acknowledged before its Receipt; a cut sends it again from 0).
   */
  mem?: { bytes: Uint8Array; written: number; free: () => void; release?: () => void } | undefined;
  /** Its commit, started at FileEnd (never rejects). */
  small?: Promise<{ receipt: ReceiptMessage } | { err: unknown }> | undefined;
}

/**
 * A commit that starts with the file's first chunk: its RAID durableWrite reads the staged file
 * back behind its fsyncs (StagedRead, which is also the staged copy's read-back), so after FileEnd
 * only the last bytes, the RAID copy's read-back, the links and the catalogue batch remain. It
 * never settles before FileEnd ends `chunks`; a cut or a bad FileEnd fails `chunks`, which makes
 * durableWrite remove its temps. The bytes are XXH3-hashed as they arrive (`received`, 0.04 CPU-s
 * a GiB): when the staged copy does not read back as the offer, that tells the bytes received
 * (it reads back as them) from the mirror disk (it does not; commit.ts).
 */
interface LiveCommit {
  chunks: StagedRead;
  received: ReturnType<typeof createXxh3>;
  /** `received`'s digest, from FileEnd on. */
  receivedXxh3?: string | undefined;
  /** Never rejects. */
  result: Promise<{ receipt: ReceiptMessage } | { err: unknown }>;
}

/**
 * Files past FileEnd not yet committed, at most (their fsyncs overlap and their commits reach the
 * catalogue's group commit together; beyond, the session's next frames wait).
 */
const MAX_COMMITTING = 64;

/** Receipts of offered files the catalogue knows, looked up at once while an Offer is answered. */
const OFFER_LOOKUPS = 16;

/**
 * Chunk bytes of one file queued for its staging write and not yet written; beyond, the session's
 * next frames wait (less than a quarter window, so an fsync-and-Ack is never held up by a long queue).
 */
const MAX_STAGING_QUEUE_BYTES = 8 * 1024 * 1024;

/**
 * A staged file is fsynced and its bytes Acked whenever this part of the window is unacknowledged
 * (2: half of it). Each fdatasync flushes the disk's cache; at a quarter window a 2 GiB file cost 128
 * of them. Alternating 2 GiB syncs (README "Session 19", 7 pairs): studiod's CPU a GiB lower in 6 and
 * the agent's in 5 (fewer stalls of the stream, fewer Acks), transfer and end to end alike. A cut
 * transfer resumes at most half a window back instead of a quarter.
 */
export const ACK_EVERY_WINDOW_PART = 2;

export type FileReceiverState = 'receiving' | 'draining' | 'closed';

function cleanNames(names: FileName[]): FileName[] {
  return names.map((n) => ({
    shoot: validateSegment(n.shoot),
    card: validateSegment(n.card),
    path: validateRelativePath(n.path),
    mtime: n.mtime,
    ...(n.capture === undefined ? {} : { capture: n.capture }),
  }));
}

export class FileReceiver {
  readonly #link: FileLink;
  readonly #o: FileReceiverOptions;
  #state: FileReceiverState = 'receiving';
  #wanted = new Map<string, Wanted>();
  /** The file whose chunks are arriving (between its first Chunk and its FileEnd). */
  #current: string | undefined;
  /** Files Nacked mid-transfer (staging full or failing): their remaining Chunks and FileEnd are dropped. */
  #refused = new Set<string>();
  #commitChain: Promise<void> = Promise.resolve();
  /** Files past FileEnd whose commit has not ended; the frame queue waits while MAX_COMMITTING do. */
  #committing = 0;
  #roomToCommit: (() => void) | undefined;
  /** Chunk bytes received and not yet acknowledged (window accounting). */
  #inFlight = 0;
  /** Bytes of small files held in memory (received, not yet committed or dropped). */
  #memBytes = 0;
  #bytesReceived = 0;
  #filesCommitted = 0;
  #closing: Promise<void> | undefined;

  constructor(link: FileLink, opts: FileReceiverOptions) {
    this.#link = link;
    this.#o = opts;
  }

  get state(): FileReceiverState {
    return this.#state;
  }

  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  get filesCommitted(): number {
    return this.#filesCommitted;
  }

  /**
   * Window accounting when a Chunk arrives, before it is queued: bounds what the
   * session buffers. Throws PROTO_WINDOW_EXCEEDED (the session ends).
   */
  admit(msg: MessageOf<'chunk'>): void {
    this.#inFlight += msg.data.byteLength;
    if (this.#inFlight > this.#o.windowBytes)
      throw new ProtocolError(
        PROTO_CODES.windowExceeded,
        `More than ${this.#o.windowBytes} unacknowledged bytes in flight. Update field-agent.`,
      );
  }

  /** The socket is gone: chunks already received are still staged (durable, not sent again); nothing else. */
  linkLost(): void {
    if (this.#state === 'receiving') this.#state = 'draining';
  }

  #nack(hash: string, err: CodedError, resumeOffset: number): void {
    this.#link.send({
      t: 'nack',
      hash,
      code: err.code,
      message: err.message.slice(0, 1000),
      retryable: err.retryable,
      resumeOffset,
    });
  }

  #expect(state: FileReceiverState, what: string): void {
    if (this.#state !== state) throw new TypeError(`FileReceiver.${what}() in state ${this.#state}`);
  }

  async offer(msg: MessageOf<'offer'>, agentId: string): Promise<void> {
    this.#expect('receiving', 'offer');
    const seen = new Set<string>();
    const files: OfferFile[] = [];
    for (const f of msg.files) {
      if (seen.has(f.hash) || this.#wanted.has(f.hash))
        throw new ProtocolError(PROTO_CODES.unexpectedMessage, `Hash ${f.hash} offered twice while outstanding.`);
      seen.add(f.hash);
      try {
        files.push({ ...f, names: cleanNames(f.names) });
      } catch (err) {
        if (err instanceof ProtocolError) {
          this.#link.log.warn({ err, hash: f.hash }, 'refused name');
          this.#nack(f.hash, err, 0);
          continue;
        }
        throw err;
      }
    }
    // One catalogue read for the batch: most offered files are new, and need no receipt lookup; the
    // known ones' receipts are looked up OFFER_LOOKUPS at a time. Then the new ones are held in
    // staging together (one listing of the staging folder). The Want keeps the Offer's order.
    const outcome: Array<'have' | StagedFile | CodedError | undefined> = new Array(files.length);
    const known = await this.#o.catalogue.assetsKnown(files.map((f) => f.hash));
    const knownAt = files.flatMap((_, i) => (known[i] === true ? [i] : []));
    let next = 0;
    const lookUp = async (): Promise<void> => {
      while (next < knownAt.length) {
        const i = knownAt[next++] as number;
        try {
          if ((await this.#o.committer.receiptFor((files[i] as OfferFile).hash)) !== undefined) outcome[i] = 'have';
        } catch (err) {
          if (!(err instanceof CodedError)) throw err;
          outcome[i] = err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(OFFER_LOOKUPS, knownAt.length) }, lookUp));
    const toStage = files.flatMap((_, i) => (outcome[i] === undefined ? [i] : []));
    const staged = await this.#o.staging.acquireAll(
      toStage.map((i) => files[i] as OfferFile),
      this.#o.sessionId,
    );
    toStage.forEach((i, k) => {
      outcome[i] = staged[k];
    });
    const wants: Array<{ hash: string; offset: number }> = [];
    const have: string[] = [];
    files.forEach((file, i) => {
      const o = outcome[i];
      if (o === 'have') have.push(file.hash);
      else if (o instanceof StagedFile) {
        this.#wanted.set(file.hash, { file, agentId, staged: o, acked: o.durable });
        wants.push({ hash: file.hash, offset: o.durable });
      } else if (o !== undefined) this.#nack(file.hash, o, 0);
    });
    this.#link.send({ t: 'want', batchId: msg.batchId, wants, have });
    for (const h of have) {
      const f = msg.files.find((x) => x.hash === h);
      if (f === undefined) continue;
      const names = cleanNames(f.names);
      const now = this.#o.now();
      // Dedup by hash: the names and claims are this session's agent's own, never another's.
      await this.#o.catalogue.addAgentNames(
        h,
        agentId,
        names.map((n) => ({
          key: nameKey(`${n.shoot}/${n.card}/${n.path}`),
          value: { hash: h, ...n, agentId, seenAt: now },
        })),
        f.copies,
      );
      const receipt = await this.#o.committer.receiptFor(h);
      if (receipt !== undefined) this.#link.send(receipt);
    }
  }

  /** fsync the bytes written so far (after the writes queued before this call) and Ack them; none when a write failed. */
  async #ack(w: Wanted): Promise<void> {
    await w.staged.settled();
    if (w.staged.failed !== undefined) return; // the file is Nacked (#writeFailed, #handOff)
    const durable = await w.staged.sync();
    if (durable > w.acked) {
      this.#inFlight = Math.max(0, this.#inFlight - (durable - w.acked));
      w.acked = durable;
      this.#link.send({ t: 'ack', hash: w.file.hash, offset: durable });
    }
  }

  /** The wanted file a Chunk or FileEnd names; files arrive one at a time, each ended by its FileEnd. */
  #wantedFor(hash: string, frame: 'Chunk' | 'FileEnd'): Wanted {
    const w = this.#wanted.get(hash);
    if (w === undefined)
      throw new ProtocolError(
        PROTO_CODES.unexpectedMessage,
        `${frame} for ${hash}, which is not wanted in this session.`,
      );
    if (this.#current !== undefined && this.#current !== hash)
      throw new ProtocolError(
        PROTO_CODES.unexpectedMessage,
        `${frame} for ${hash} before FileEnd of ${this.#current}.`,
      );
    return w;
  }

  async chunk(msg: MessageOf<'chunk'>): Promise<void> {
    if (this.#state === 'closed') throw new TypeError('FileReceiver.chunk() in state closed');
    if (this.#refused.has(msg.hash)) {
      // Sent before the agent saw the Nack, which released the file's bytes from its window.
      this.#inFlight = Math.max(0, this.#inFlight - msg.data.byteLength);
      return;
    }
    const w = this.#wantedFor(msg.hash, 'Chunk');
    const expected = w.mem?.written ?? w.staged.end;
    if (msg.offset !== expected)
      throw new ProtocolError(
        PROTO_CODES.unexpectedMessage,
        `Chunk of ${msg.hash} at offset ${msg.offset}; expected ${expected} (a wrong or duplicated chunk).`,
        { detail: { expected, got: msg.offset } },
      );
    if (msg.offset + msg.data.byteLength > w.file.size)
      throw new ProtocolError(
        PROTO_CODES.unexpectedMessage,
        `Chunk of ${msg.hash} goes beyond the offered size ${w.file.size}.`,
      );
    this.#current = msg.hash;
    if (msg.offset === 0 && w.mem === undefined && w.live === undefined && this.#takesWhole(w)) {
      const piece = (this.#o.smallBytes ?? ownBuffer)(w.file.size);
      w.mem = { bytes: piece.bytes, written: 0, free: piece.free };
      this.#memBytes += w.file.size;
    }
    if (w.mem !== undefined) {
      // A small file: kept in memory (the chunk's buffer may be pooled and reused) until FileEnd.
      w.mem.bytes.set(msg.data, msg.offset);
      w.mem.written += msg.data.byteLength;
      this.#bytesReceived += msg.data.byteLength;
      return;
    }
    if (msg.offset === 0 && w.live === undefined && this.#state === 'receiving') w.live = this.#startLive(w);
    w.live?.received.update(msg.data); // before the pooled buffer may be reused
    // The staging write is queued, not awaited: the next frames are handled while the disk writes
    // this one (its pooled buffer is held until then). A failed write Nacks the file (#writeFailed).
    const held = holdChunk(msg.data);
    w.staged.append(msg.offset, msg.data).then(held, (err: unknown) => {
      held();
      this.#writeFailed(w, err);
    });
    this.#bytesReceived += msg.data.byteLength;
    await w.staged.room(MAX_STAGING_QUEUE_BYTES);
    if (this.#wanted.get(msg.hash) !== w) return; // refused meanwhile: its write failed
    const end = w.staged.end;
    const fsyncNow =
      end === w.file.size || (w.syncing === undefined && end - w.acked >= this.#o.windowBytes / ACK_EVERY_WINDOW_PART);
    if (fsyncNow) {
      // fsync in the background while the next frames are handled: the Ack (sent after the fsync)
      // covers only bytes written before it started. The last chunk's fsync follows any still in
      // flight; FileEnd (#handOff) waits for it, the frame queue does not, so the fsyncs of
      // consecutive small files overlap.
      const mine: Promise<void> = (w.syncing ?? Promise.resolve())
        .then(() => this.#ack(w))
        .then(
          () => {
            if (w.syncing === mine) w.syncing = undefined;
          },
          (err: unknown) => {
            if (w.syncing === mine) w.syncing = undefined;
            this.#link.fail(
              err instanceof CodedError
                ? err
                : new ProtocolError(PROTO_CODES.unexpectedMessage, 'Staging fsync failed.', { cause: err }),
            );
          },
        );
      w.syncing = mine;
    }
  }

  /** A queued staging write failed: the file is Nacked while it is still arriving (FileEnd's hand-off sees it later). */
  #writeFailed(w: Wanted, err: unknown): void {
    if (!(err instanceof CodedError)) {
      this.#link.fail(new ProtocolError(PROTO_CODES.unexpectedMessage, 'Staging write failed.', { cause: err }));
      return;
    }
    if (this.#wanted.get(w.file.hash) !== w) return; // past FileEnd (#handOff Nacks it) or refused already
    // Staging full (or failing): this file is Nacked, the session and the other files go on (SPEC §3.6).
    this.#refuse(w, err).catch((e: unknown) => {
      this.#link.fail(
        e instanceof CodedError
          ? e
          : new ProtocolError(PROTO_CODES.unexpectedMessage, 'Refusing a file failed.', { cause: e }),
      );
    });
  }

  /**
   * Nack a file whose bytes cannot be staged: its durable bytes stay for a resume, its window bytes
   * (all received and not acknowledged, the failed write's among them) are released, its later
   * Chunks and FileEnd dropped.
   */
  async #refuse(w: Wanted, err: CodedError): Promise<void> {
    const { hash } = w.file;
    this.#wanted.delete(hash);
    this.#refused.add(hash);
    if (this.#current === hash) this.#current = undefined;
    this.#link.log.warn({ err, hash }, 'file refused mid-transfer');
    await this.#nackStaged(w, err);
  }

  /** A file that will not be committed: its streamed commit stopped, its partial kept for a resume, its window bytes released, Nacked. */
  async #nackStaged(w: Wanted, err: CodedError): Promise<void> {
    await this.#dropLive(w, 'staging failed');
    await this.#settleSync(w);
    await w.staged.close().catch(() => undefined);
    this.#inFlight = Math.max(0, this.#inFlight - Math.max(0, w.staged.end - w.acked));
    this.#nack(w.file.hash, err, w.staged.durable);
  }

  /**
   * A new small file is committed whole from memory when the committer can: nothing of it staged
   * before (a resume goes on in staging), and the small files held stay under a quarter of the
   * window, so the Acks this path sends only with the Receipt never hold half of it (SPEC §3.5).
   */
  #takesWhole(w: Wanted): boolean {
    return (
      this.#o.committer.commitSmall !== undefined &&
      this.#state === 'receiving' &&
      w.file.size <= SMALL_COMMIT_BYTES &&
      w.staged.end === 0 &&
      this.#memBytes + w.file.size <= this.#o.windowBytes / 4
    );
  }

  /** Drops a small file's bytes from memory (its commit ended, or it never will). */
  #dropMem(w: Wanted): void {
    if (w.mem === undefined) return;
    this.#memBytes -= w.file.size;
    w.mem.release?.();
    // Its bytes may be handed out again only once nothing reads them: its commit settled.
    if (w.small === undefined) w.mem.free();
    else void w.small.then(w.mem.free);
    w.mem = undefined;
  }

  #startSmall(w: Wanted, bytes: Uint8Array): Promise<{ receipt: ReceiptMessage } | { err: unknown }> {
    const c = this.#o.committer;
    if (c.commitSmall === undefined) return Promise.resolve({ err: new TypeError('no small commits here') });
    return c
      .commitSmall({
        hash: w.file.hash,
        size: w.file.size,
        bytes,
        names: w.file.names,
        agentCopies: w.file.copies,
        agentId: w.agentId,
        ...(w.file.xxh3 === undefined ? {} : { xxh3: w.file.xxh3 }),
      })
      .then(
        (receipt) => ({ receipt }),
        (err: unknown) => ({ err }),
      );
  }

  #startLive(w: Wanted): LiveCommit {
    const { hash, size } = w.file;
    const chunks = w.staged.readBehind(this.#o.readBuffer ?? ownReadBuffer);
    this.#link.log.debug({ hash, size }, 'streamed commit started');
    // One object: the commit reads `receivedXxh3` from it once #handOff has set it.
    const live = { chunks, received: createXxh3() } as LiveCommit;
    live.result = this.#o.committer
      .commit({
        hash,
        size,
        staged: w.staged,
        names: w.file.names,
        agentCopies: w.file.copies,
        agentId: w.agentId,
        ...(w.file.xxh3 === undefined ? {} : { xxh3: w.file.xxh3 }),
        source: chunks,
        receivedXxh3: () => live.receivedXxh3,
      })
      .then(
        (receipt) => ({ receipt }),
        (err: unknown) => {
          chunks.abandon(); // it may have failed before reading all
          return { err };
        },
      );
    return live;
  }

  /** The streamed commit will not complete (cut, bad FileEnd): its temps are removed before this resolves. */
  async #dropLive(w: Wanted, why: string): Promise<void> {
    const live = w.live;
    if (live === undefined) return;
    w.live = undefined;
    live.chunks.fail(
      new ProtocolError(PROTO_CODES.unexpectedMessage, `Streamed commit of ${w.file.hash} stopped: ${why}.`, {
        retryable: true,
      }),
    );
    await live.result;
  }

  async #settleSync(w: Wanted): Promise<void> {
    if (w.syncing !== undefined) await w.syncing;
  }

  async fileEnd(msg: MessageOf<'file-end'>): Promise<void> {
    this.#expect('receiving', 'fileEnd');
    if (this.#refused.delete(msg.hash)) return; // already Nacked
    const w = this.#wantedFor(msg.hash, 'FileEnd');
    this.#current = undefined;
    this.#wanted.delete(msg.hash);
    const received = w.mem?.written ?? w.staged.end;
    if (msg.size !== w.file.size || received !== w.file.size) {
      const err = new ProtocolError(
        PROTO_CODES.sizeMismatch,
        `FileEnd of ${msg.hash} says ${msg.size} bytes; offered ${w.file.size}, received ${received}. The file is offered again.`,
        { retryable: true },
      );
      if (w.mem !== undefined) {
        // Nothing of it is durable: all it holds goes, and it is sent again from 0.
        this.#dropMem(w);
        await w.staged.close();
        this.#inFlight = Math.max(0, this.#inFlight - received);
        this.#nack(msg.hash, err, 0);
        return;
      }
      await this.#settleSync(w);
      await this.#dropLive(w, 'size mismatch at FileEnd');
      await w.staged.close();
      this.#inFlight = Math.max(0, this.#inFlight - (w.staged.end - w.acked));
      this.#nack(msg.hash, err, w.staged.durable);
      return;
    }
    // The frame queue goes on with the next file while this one's last bytes are fsynced:
    // small files' fsyncs overlap, and their commits reach the catalogue's group commit together.
    if (w.mem !== undefined) {
      w.mem.release = this.#o.holdSmall?.(w.file.size);
      w.small = this.#startSmall(w, w.mem.bytes); // its group forms now
    }
    const handedOff = w.mem !== undefined ? Promise.resolve(true) : this.#handOff(w);
    this.#committing++;
    this.#commitChain = this.#commitChain.then(async () => {
      try {
        if (await handedOff) await this.#commit(w);
      } finally {
        this.#committing--;
        this.#roomToCommit?.();
      }
    });
    // Memory stays bounded: at most MAX_COMMITTING files past FileEnd wait for their commit (each
    // holds its staged file, its streamed commit and its buffers); the next frames wait meanwhile.
    while (this.#committing >= (this.#o.maxCommitting ?? MAX_COMMITTING)) {
      await new Promise<void>((resolve) => {
        this.#roomToCommit = resolve;
      });
      this.#roomToCommit = undefined;
    }
  }

  /**
   * FileEnd of a complete file: once its queued writes ended, fsync its last bytes and Ack them,
   * then let the streamed commit finish (it reads nothing past a durable byte). False when a write
   * failed (the file is Nacked with its code, the session goes on) or the fsync failed (the session
   * ends, as when a background fsync fails); the file stays staged for a resume.
   */
  async #handOff(w: Wanted): Promise<boolean> {
    try {
      await this.#settleSync(w);
      await this.#ack(w);
      const failed = w.staged.failed;
      if (failed !== undefined) {
        this.#link.log.warn({ err: failed, hash: w.file.hash }, 'file refused at FileEnd');
        await this.#nackStaged(w, failed);
        return false;
      }
    } catch (err) {
      await this.#dropLive(w, 'staging fsync failed');
      await w.staged.close().catch(() => undefined);
      this.#link.fail(
        err instanceof CodedError
          ? err
          : new ProtocolError(PROTO_CODES.unexpectedMessage, 'Staging fsync failed.', { cause: err }),
      );
      return false;
    }
    const live = w.live;
    if (live !== undefined) {
      live.receivedXxh3 = live.received.digest();
      live.chunks.end(); // every byte is staged and fsynced: the streamed commit may finish
    }
    return true;
  }

  async #commit(w: Wanted): Promise<void> {
    const { hash, size } = w.file;
    try {
      this.#link.log.info({ hash, size, streamed: w.live !== undefined }, 'committing');
      let receipt: ReceiptMessage;
      if (w.small !== undefined) {
        const r = await w.small;
        this.#dropMem(w);
        // Its bytes leave the window now, once: with its Ack and Receipt, or with its Nack.
        this.#inFlight = Math.max(0, this.#inFlight - size);
        if ('err' in r) throw r.err;
        receipt = r.receipt;
        // Both copies are fsync'd and verified: its only Ack comes with its Receipt.
        this.#link.send({ t: 'ack', hash, offset: size });
      } else if (w.live !== undefined) {
        const r = await w.live.result;
        if ('err' in r) throw r.err;
        receipt = r.receipt;
      } else {
        receipt = await this.#o.committer.commit({
          hash,
          size,
          staged: w.staged,
          names: w.file.names,
          agentCopies: w.file.copies,
          agentId: w.agentId,
          ...(w.file.xxh3 === undefined ? {} : { xxh3: w.file.xxh3 }),
        });
      }
      if (w.small !== undefined)
        await w.staged.close(); // nothing staged: only its hold is released
      else await w.staged.discard();
      this.#filesCommitted++;
      this.#link.log.info({ hash, size, path: receipt.copies[0]?.path }, 'committed');
      this.#link.send(receipt);
    } catch (err) {
      const coded =
        err instanceof CodedError
          ? err
          : new ProtocolError(PROTO_CODES.unexpectedMessage, 'Commit failed.', { cause: err, retryable: true });
      if (coded.code === DURABLE_CODES.hashMismatch || coded.code === DURABLE_CODES.sizeMismatch) {
        await w.staged.discard().catch(() => undefined);
        const mismatch = new ProtocolError(
          PROTO_CODES.hashMismatch,
          `The bytes received for ${hash} do not hash to it. Staging was discarded; the agent re-reads its verified copy and sends it again.`,
          { cause: err, retryable: true },
        );
        this.#link.log.warn({ err: mismatch, hash }, 'hash mismatch at commit');
        this.#nack(hash, mismatch, 0);
        return;
      }
      if (coded.code === DURABLE_CODES.readbackMismatch) {
        // A target disk returned other bytes than were written: never trust that staged file again.
        await w.staged.discard().catch(() => undefined);
        this.#link.log.error({ err: coded, hash }, 'read-back mismatch at commit: a target disk is corrupting data');
        this.#nack(hash, new CodedError(coded.code, coded.message, { cause: err, retryable: true }), 0);
        return;
      }
      await w.staged.close().catch(() => undefined);
      this.#link.log.error({ err: coded, hash }, 'commit failed');
      this.#nack(hash, coded, w.staged.durable);
    }
  }

  /**
   * The session ended (call after its frame queue drained): streamed commits
   * stop and remove their temps, staged files are fsynced and released (their
   * bytes stay for a resume), and the commits already started settle.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#state = 'draining';
    for (const w of this.#wanted.values()) {
      this.#dropMem(w);
      await this.#dropLive(w, 'the link closed');
      await this.#settleSync(w);
      await w.staged.close().catch(() => undefined);
    }
    this.#wanted.clear();
    this.#current = undefined;
    await this.#commitChain.catch(() => undefined);
    this.#state = 'closed';
  }
}
