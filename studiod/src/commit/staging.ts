/**
 * Staging: one partial file per hash that an agent fills chunk by chunk, kept
 * INSIDE the mirror target's file system (`<mirror root>/.s321-staging/<hash>.part`),
 * so that once it is complete and verified it becomes the mirror copy by a
 * link(2), not by writing every byte a second time (docs/design.md, Studio).
 *
 * The resume offset is the file's durable size: bytes are written at the
 * current end, fsynced, and only then acknowledged (Ack), so a cut transfer (or
 * a SIGKILLed studiod) resumes from the last durable chunk.
 *
 * Verification: a read-back lane follows the fsyncs (each Ack's bytes are read
 * back from the file and hashed by a hash-pool worker while the transfer goes
 * on), so at FileEnd only the last bytes remain to be read; `verify()` returns
 * the size and BLAKE3 of what the file holds.
 *
 * One session at a time holds a hash (`acquire`); a second session offering the
 * same hash meanwhile gets STUDIO_BUSY (retryable).
 *
 * An Offer only holds each hash and looks its partial up (`acquire`); a new
 * partial is created by the file's first write, so the files of a batch waiting
 * for their turn cost no descriptor and no file.
 *
 * Bounds (docs/configuration.md, `staging`): one session may hold at most `perSession` files
 * (created or not; beyond, acquire refuses with STUDIO_STAGING_LIMIT, retryable: the file is
 * offered again later). A created file keeps two descriptors (its writer and its read-back lane;
 * four once a pooled 1 MiB chunk was written with O_DIRECT and read back the same way,
 * direct-io.ts), so all sessions together may have at most `total` partials open: an existing
 * partial is opened at the Offer (refused there beyond it), a new one by its first write (that
 * write fails with STUDIO_STAGING_LIMIT, and the file is Nacked mid-transfer). A hash held and
 * not created (a small file received in memory, or one waiting for its turn in its batch) costs
 * no descriptor and no file, so it does not count against `total`: twenty sessions offering 256
 * files each (5,120 holds) all get their batch, not the first eight of them. A released partial
 * with no byte is removed (Offers without data leave nothing), and `sweepExpired` removes
 * partials nobody has written for `expireMs`.
 */
import { constants } from 'node:fs';
import { mkdir, open, readdir, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode, isBlake3Hex } from '@studio321/protocol';
import {
  createReadBack,
  DirectWriter,
  directOk,
  fsyncDir,
  openDirect,
  GroupCommit,
  nodeFs,
  resolveHashEngine,
  sharedHashPool,
  writeParts,
  type ReadBack,
} from '@studio321/protocol/durable';
import { DEFAULT_STAGING_LIMITS } from '../config.js';
import { STUDIO_CODES, StudioError } from '../errors.js';
import { StagedRead, type TakeReadBuffer } from './staged-read.js';

const PART_SUFFIX = '.part';
const RW_CREATE = constants.O_RDWR | constants.O_CREAT;
/** The holder name `sweepExpired` uses while it removes a partial (never a session id). */
const SWEEPER = 'staging-expiry';

/** The staging directory's name inside the mirror target's root. */
export const STAGING_DIR = '.s321-staging';

function stagingError(err: unknown, what: string, path: string): StudioError {
  const code = errorCode(err);
  if (code === 'ENOSPC') {
    return new StudioError(
      STUDIO_CODES.targetFull,
      `The mirror target is full (staging ${path}). Free space on it; transfers resume by themselves.`,
      { cause: err, retryable: true, detail: { path } },
    );
  }
  return new StudioError(
    STUDIO_CODES.stagingIo,
    `Staging failed to ${what} ${path} (${code ?? 'error'}). Check the mirror disk; transfers resume by themselves.`,
    { cause: err, retryable: true, detail: { path } },
  );
}

/**
 * Staging writes queued and not yet written, by all the partials of one Staging: a frame's turn in
 * its session's queue ends once its write is queued, so the receive budget (memory-budget.ts) no
 * longer counts those bytes; this bounds them for all sessions together.
 */
export const STAGING_QUEUE_BYTES = 16 * 1024 * 1024;

/**
 * Chunks queued behind a write in flight join one run of at most this many bytes, written with one
 * pwritev when they may all go direct (writeParts, direct-io.ts): one thread-pool round trip and one
 * completion for the run instead of one a chunk. The streamed commit's RAID write takes the staged
 * file's read-back in runs of the same size (StagedRead).
 */
export const WRITE_RUN_BYTES = 4 * 1024 * 1024;

/** Chunks queued to be written together, from `offset` on; `started` once its write began (no more join it). */
interface WriteRun {
  offset: number;
  parts: Uint8Array[];
  bytes: number;
  /** Every part may go direct at its offset (only such runs take more than one chunk). */
  direct: boolean;
  started: boolean;
  done: Promise<void>;
}

class QueuedWrites {
  bytes = 0;
  readonly waiters: Array<() => void> = [];

  add(n: number): void {
    this.bytes += n;
    if (n < 0) for (const r of this.waiters.splice(0)) r();
  }
}

/**
 * An open partial: its writer, its read-back lane (none when `readBehind` reads it back), and its
 * place in `staging.maxFiles` (given back once, at close).
 */
interface OpenPartial {
  fh: FileHandle;
  lane: ReadBack | undefined;
  free: () => void;
}

export class StagedFile {
  readonly hash: string;
  readonly size: number;
  readonly path: string;
  #fh: FileHandle | undefined;
  /** The O_DIRECT writer, opened by the first aligned chunk (small files never have one); read back the same way. */
  readonly #direct = new DirectWriter<FileHandle>(
    () => openDirect(this.path, true),
    () => this.#lane?.readDirect(),
  );
  #lane: ReadBack | undefined;
  /** The read-back that feeds a streamed commit's RAID copy (`readBehind`); the lane is not used then. */
  #behind: StagedRead | undefined;
  /** Gives back the partial's place among the open partials (`staging.maxFiles`). */
  #free: (() => void) | undefined;
  /** A new partial not created yet: created by the first write (its Offer did only a lookup). */
  #create: ((withLane: boolean) => Promise<OpenPartial>) | undefined;
  #creating: Promise<void> | undefined;
  #closed = false;
  /** close() or discard() began: no more appends; their queued writes still run (#closed is set after them). */
  #closing = false;
  #written: number;
  #durable: number;
  /** Bytes handed to `append`: written, or queued behind the writes in flight. */
  #end: number;
  /** The last queued write (never rejects): the writes run one after another, in offset order. */
  #tail: Promise<void> = Promise.resolve();
  /** The last run queued, while it has not started: the next contiguous direct chunk may join it. */
  #run: WriteRun | undefined;
  /** Bytes queued and not yet written. */
  #queued = 0;
  /** The coded error of the first write that failed: every write queued after it fails with it, unwritten. */
  #failed: StudioError | undefined;
  /** The queued writes of every partial of the same Staging. */
  readonly #all: QueuedWrites;
  #release: () => void;
  /** A new partial: its name becomes durable (the staging folder's fsync) before its first byte counts. */
  #nameSync: (() => Promise<void>) | undefined;

  constructor(
    hash: string,
    size: number,
    path: string,
    partial: OpenPartial | ((withLane: boolean) => Promise<OpenPartial>),
    offset: number,
    release: () => void,
    nameSync?: () => Promise<void>,
    all: QueuedWrites = new QueuedWrites(),
  ) {
    this.hash = hash;
    this.size = size;
    this.path = path;
    if (typeof partial === 'function') this.#create = partial;
    else this.#opened(partial);
    this.#written = offset;
    this.#durable = offset;
    this.#end = offset;
    this.#release = release;
    this.#nameSync = nameSync;
    this.#all = all;
  }

  #opened({ fh, lane, free }: OpenPartial): void {
    this.#fh = fh;
    this.#free = free;
    this.#lane = lane;
    lane?.advance(this.#durable);
  }

  /**
   * The file read back behind its fsyncs as it arrives (StagedRead): the source of a streamed
   * commit's RAID copy, and this file's read-back (`verify` then returns what it read; a partial
   * created after this has no read-back lane, an open one's is closed unread). Once, before
   * anything was read back.
   */
  readBehind(take: TakeReadBuffer): StagedRead {
    if (this.#behind !== undefined) throw new TypeError('StagedFile.readBehind() twice');
    if (this.#closed || this.#closing) throw new TypeError('StagedFile.readBehind() after close');
    this.#behind = new StagedRead(
      this.path,
      this.size,
      this.#durable,
      take,
      (err) => stagingError(err, 'read back', this.path),
      WRITE_RUN_BYTES,
    );
    const lane = this.#lane;
    this.#lane = undefined;
    void lane?.close();
    return this.#behind;
  }

  /** Create a new partial now (once); a no-op for one already open. */
  async #ensureOpen(): Promise<void> {
    const create = this.#create;
    if (create === undefined) return;
    this.#creating ??= create(this.#behind === undefined).then((p) => {
      this.#create = undefined;
      if (this.#closed)
        return Promise.resolve(p.lane?.close())
          .then(() => p.fh.close())
          .then(() => unlink(this.path))
          .catch(() => undefined)
          .finally(p.free);
      this.#opened(p);
    });
    await this.#creating;
  }

  /** Bytes written (maybe not yet fsynced); writes still queued are not counted. */
  get written(): number {
    return this.#written;
  }

  /** Bytes written or queued (`append`): the next chunk MUST start here. */
  get end(): number {
    return this.#end;
  }

  /** Bytes queued by `append` and not yet written. */
  get queued(): number {
    return this.#queued;
  }

  /** The coded error of a queued write that failed (STUDIO_STAGING_IO, STUDIO_TARGET_FULL), if one did. */
  get failed(): StudioError | undefined {
    return this.#failed;
  }

  /** Bytes fsynced: what an Ack may claim and a resume starts from. */
  get durable(): number {
    return this.#durable;
  }

  get complete(): boolean {
    return this.#written === this.size;
  }

  /**
   * Append `data` at `offset` (== end; the caller checked) and wait until it is written.
   * A pooled chunk (chunk-receive.ts) at an aligned offset is written with O_DIRECT: from its
   * buffer to the disk, no page-cache copy.
   */
  async write(offset: number, data: Uint8Array): Promise<void> {
    await this.append(offset, data);
  }

  /**
   * Queue `data` at `offset` (== end) behind the writes already queued and return at once; the
   * promise settles when it is written, or rejects with the coded error of the first failed write
   * (every write queued after a failure fails with it, unwritten). The writes run one at a time in
   * offset order, never side by side: the file then always holds a gapless prefix, and its size
   * stays the resume point after a kill (two writes in flight could leave a later range written
   * and an earlier one not). `data` must not change until the promise settles.
   */
  append(offset: number, data: Uint8Array): Promise<void> {
    if (this.#closed || this.#closing) throw new TypeError('StagedFile.append() after close');
    if (offset !== this.#end) throw new TypeError(`StagedFile.append() at ${offset}, expected ${this.#end}`);
    const n = data.byteLength;
    this.#end += n;
    this.#queued += n;
    this.#all.add(n);
    // Behind a write in flight, a chunk that may go direct joins the run queued before it (same
    // promise: the run is written, or fails, as one).
    const run = this.#run;
    if (run !== undefined && !run.started && run.direct && run.bytes + n <= WRITE_RUN_BYTES && directOk(data, offset)) {
      run.parts.push(data);
      run.bytes += n;
      return run.done;
    }
    const next: WriteRun = {
      offset,
      parts: [data],
      bytes: n,
      direct: directOk(data, offset),
      started: false,
      done: Promise.resolve(),
    };
    next.done = this.#tail.then(() => {
      next.started = true;
      if (this.#run === next) this.#run = undefined;
      return this.#writeAt(next.offset, next.parts);
    });
    this.#tail = next.done.then(
      () => this.#dequeued(next.bytes),
      () => this.#dequeued(next.bytes),
    );
    this.#run = next;
    return next.done;
  }

  #dequeued(bytes: number): void {
    this.#queued -= bytes;
    this.#all.add(-bytes);
  }

  /**
   * Resolves once at most `maxBytes` of this file and STAGING_QUEUE_BYTES of all partials are queued
   * and not yet written (after a failed write the rest fail fast, unwritten).
   */
  async room(maxBytes: number): Promise<void> {
    while (this.#queued > maxBytes || (this.#queued > 0 && this.#all.bytes > STAGING_QUEUE_BYTES))
      await new Promise<void>((r) => this.#all.waiters.push(r));
  }

  /** Resolves (never rejects) once the writes queued so far have ended; `failed` then tells whether one failed. */
  settled(): Promise<void> {
    return this.#tail;
  }

  async #writeAt(offset: number, parts: readonly Uint8Array[]): Promise<void> {
    if (this.#failed !== undefined) throw this.#failed;
    try {
      await this.#ensureOpen();
      if (this.#fh === undefined) throw new TypeError('StagedFile.write() after close');
      // Counted write by write: when one of a run fails, the bytes before it still count (and resume).
      await writeParts(this.#direct, this.#fh, parts, offset, (n) => {
        this.#written += n;
      });
    } catch (err) {
      if (err instanceof TypeError) throw err;
      this.#failed = err instanceof StudioError ? err : stagingError(err, 'write', this.path);
      throw this.#failed;
    }
  }

  /** fsync; afterwards `durable === written`, and the read-back may go up to there. Returns the durable offset. */
  async sync(): Promise<number> {
    if (this.#fh === undefined) return this.#durable;
    if (this.#durable === this.#written) return this.#durable;
    const target = this.#written;
    try {
      await this.#fh.datasync();
      if (this.#nameSync !== undefined) {
        await this.#nameSync();
        this.#nameSync = undefined;
      }
    } catch (err) {
      throw stagingError(err, 'fsync', this.path);
    }
    this.#durable = Math.max(this.#durable, target);
    this.#lane?.advance(this.#durable);
    this.#behind?.advance(this.#durable);
    return this.#durable;
  }

  /**
   * After the last byte: fsync, then finish reading the file back. Resolves with
   * what the file holds (the caller compares it with the offered hash); a read
   * error rejects with STUDIO_STAGING_IO. Once only.
   */
  async verify(): Promise<{ size: number; blake3: string }> {
    await this.#tail;
    if (this.#failed !== undefined) throw this.#failed;
    if (!this.#closed) await this.#ensureOpen();
    const behind = this.#behind;
    if (behind !== undefined) {
      await this.sync();
      try {
        return await behind.finish();
      } finally {
        await behind.close();
      }
    }
    const lane = this.#lane;
    if (lane === undefined) throw new TypeError('StagedFile.verify() twice or after close');
    await this.sync();
    this.#lane = undefined;
    try {
      return await lane.finish();
    } catch (err) {
      throw stagingError(err, 'read back', this.path);
    } finally {
      await lane.close();
    }
  }

  async #closeHandles(): Promise<void> {
    const lane = this.#lane;
    this.#lane = undefined;
    await lane?.close();
    await this.#behind?.close();
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
    await this.#direct.close(); // no more direct writes
    this.#free?.();
    this.#free = undefined;
  }

  /**
   * Sync what was written and release the hash: the partial stays for a resume, unless it holds
   * no byte (an Offer never followed by data leaves no empty file behind).
   */
  async close(): Promise<void> {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    await this.#tail; // the queued writes end first (a new partial is created by the first of them)
    this.#closed = true;
    await this.#creating?.catch(() => undefined);
    if (this.#fh === undefined) {
      this.#create = undefined; // never created: nothing on disk to keep
      this.#release();
      return;
    }
    try {
      await this.sync();
    } finally {
      await this.#closeHandles();
      if (this.#durable === 0) await unlink(this.path).catch(() => undefined);
      this.#release();
    }
  }

  /** Remove the partial (hash mismatch, or committed: the mirror copy is another name of it) and release the hash. */
  async discard(): Promise<void> {
    this.#closing = true;
    await this.#tail;
    this.#closed = true;
    await this.#creating?.catch(() => undefined);
    this.#create = undefined;
    await this.#closeHandles();
    try {
      await unlink(this.path);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw stagingError(err, 'remove', this.path);
    } finally {
      this.#written = 0;
      this.#durable = 0;
      this.#release();
    }
  }
}

/** How many staged files may be held. */
export interface StagingLimits {
  /** By one session (created or not). */
  perSession: number;
  /** Partials open (created or opened, each keeps two descriptors) for all sessions together. */
  total: number;
}

/** A file of an Offer to hold (Staging.acquireAll). */
export interface StagingRequest {
  hash: string;
  size: number;
}

export class Staging {
  readonly dir: string;
  readonly limits: StagingLimits;
  readonly #checkRoot: () => Promise<void>;
  /** hash → the session holding it. */
  #held = new Map<string, string>();
  /** session → how many hashes it holds. */
  #perSession = new Map<string, number>();
  /** Partials open now (created by a first write, or opened at an Offer): what `limits.total` bounds. */
  #openFiles = 0;
  #made = false;
  readonly #queuedWrites = new QueuedWrites();
  /**
   * The staging folder's fsync, shared by the partials created together: a group commit with
   * nothing to record (a call joins the next fsync that starts after it).
   */
  readonly #dirSync = new GroupCommit<null>(async () => undefined);

  /**
   * `mirrorRoot`: the mirror target's root. `checkRoot` throws (STUDIO_TARGET_MISSING…)
   * unless that root is the configured, mounted disk: nothing is staged on an
   * empty mount point.
   */
  constructor(mirrorRoot: string, checkRoot: () => Promise<void>, limits: StagingLimits = DEFAULT_STAGING_LIMITS) {
    this.dir = join(mirrorRoot, STAGING_DIR);
    this.#checkRoot = checkRoot;
    this.limits = limits;
  }

  /** Staged files held now: by all sessions, or by `sessionId`. */
  heldCount(sessionId?: string): number {
    return sessionId === undefined ? this.#held.size : (this.#perSession.get(sessionId) ?? 0);
  }

  /** Partials open now (created or opened, not yet closed), for all sessions: at most `limits.total`. */
  get openCount(): number {
    return this.#openFiles;
  }

  #hold(hash: string, sessionId: string): void {
    this.#held.set(hash, sessionId);
    this.#perSession.set(sessionId, (this.#perSession.get(sessionId) ?? 0) + 1);
  }

  #unhold(hash: string, sessionId: string): void {
    if (this.#held.get(hash) !== sessionId) return;
    this.#held.delete(hash);
    const n = (this.#perSession.get(sessionId) ?? 1) - 1;
    if (n > 0) this.#perSession.set(sessionId, n);
    else this.#perSession.delete(sessionId);
  }

  /** STUDIO_STAGING_LIMIT when `sessionId` may not hold one more staged file. */
  #limitError(hash: string, sessionId: string): StudioError | undefined {
    const mine = this.heldCount(sessionId);
    if (mine < this.limits.perSession) return undefined;
    return new StudioError(
      STUDIO_CODES.stagingLimit,
      `This session already holds ${this.limits.perSession} staged files, the limit (staging.maxFilesPerSession). File ${hash} is offered again once some of them are done.`,
      { retryable: true, detail: { hash, held: mine, limit: this.limits.perSession } },
    );
  }

  /**
   * A place among the open partials (`limits.total`) for the partial of `hash`: the function that
   * gives it back (once). STUDIO_STAGING_LIMIT when all are taken.
   */
  #takeOpen(hash: string): () => void {
    if (this.#openFiles >= this.limits.total)
      throw new StudioError(
        STUDIO_CODES.stagingLimit,
        `All sessions together already have ${this.limits.total} staged files open, the limit (staging.maxFiles). File ${hash} is offered again once some of them are done.`,
        { retryable: true, detail: { hash, open: this.#openFiles, limit: this.limits.total } },
      );
    this.#openFiles++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#openFiles--;
    };
  }

  /** Creates the staging directory (mode 700) on the checked mirror disk. */
  async #ready(): Promise<void> {
    // Offers and first writes that come together share the marker's stat (checkTarget).
    await this.#checkRoot();
    if (this.#made) return;
    try {
      await mkdir(this.dir, { mode: 0o700 });
      await fsyncDir(join(this.dir, '..'));
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw stagingError(err, 'create', this.dir);
    }
    this.#made = true;
  }

  pathOf(hash: string): string {
    if (!isBlake3Hex(hash)) throw new TypeError('Staging.pathOf(): not a BLAKE3 hex hash');
    return join(this.dir, hash + PART_SUFFIX);
  }

  /** Who holds `hash` now (session id), if anyone. */
  holder(hash: string): string | undefined {
    return this.#held.get(hash);
  }

  /** Bytes of `hash` held in staging (0 when none). Does not lock. */
  async offsetOf(hash: string): Promise<number> {
    try {
      return (await stat(this.pathOf(hash))).size;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return 0;
      throw stagingError(err, 'stat', this.pathOf(hash));
    }
  }

  /**
   * Hold `hash` for `sessionId` and look its partial up (acquireAll, for one file); its current
   * size is the resume offset. Throws STUDIO_BUSY, STUDIO_STAGING_LIMIT or another coded error.
   */
  async acquire(hash: string, size: number, sessionId: string): Promise<StagedFile> {
    const [r] = await this.acquireAll([{ hash, size }], sessionId);
    if (r instanceof StagedFile) return r;
    throw r;
  }

  /**
   * Hold each file's hash for `sessionId` and look its partial up: the staged file (its current
   * size is the resume offset) or the coded error that refused it, in the order of `files`.
   * One listing of the staging folder for all of them, made after they are held (a partial can
   * then only be created by this session), instead of a lookup each. When there is none (the usual
   * case) that is all: the partial is created by the file's first write (StagedFile), so an Offer
   * of many files costs one listing, not a create, two opens and a read-back lane each that most
   * files of the batch would hold idle until their turn. An existing partial is opened and fsynced
   * first, so that what is reported is durable. A partial larger than `size` is impossible for the
   * offered content and is discarded; so is one that already has a second name (studiod was killed
   * after linking it into place and before removing it): it must never be written again. A new
   * partial's name is made durable by the staging folder's fsync before its first Ack
   * (StagedFile.sync), shared by the partials created meanwhile. Refusals: STUDIO_BUSY (another
   * session holds the hash), STUDIO_STAGING_LIMIT (this session holds `perSession`, or an existing
   * partial finds `total` open); a failing mirror refuses every file with its error.
   */
  async acquireAll(files: readonly StagingRequest[], sessionId: string): Promise<Array<StagedFile | StudioError>> {
    const out: Array<StagedFile | StudioError | undefined> = new Array(files.length);
    const held: number[] = [];
    for (const { hash } of files)
      if (this.#held.get(hash) === sessionId)
        throw new TypeError(`Staging.acquireAll(): ${hash} already held by this session`);
    files.forEach(({ hash }, i) => {
      const other = this.#held.get(hash);
      const refused =
        other !== undefined
          ? new StudioError(
              STUDIO_CODES.busy,
              `File ${hash} is being received from another session. It will be offered again.`,
              { retryable: true, detail: { hash } },
            )
          : this.#limitError(hash, sessionId);
      if (refused !== undefined) out[i] = refused;
      else {
        this.#hold(hash, sessionId);
        held.push(i);
      }
    });
    let present: Set<string>;
    try {
      await this.#ready();
      present = new Set((await this.#names()).map((n) => n.hash));
    } catch (err) {
      const coded = err instanceof StudioError ? err : stagingError(err, 'list', this.dir);
      for (const i of held) {
        this.#unhold((files[i] as StagingRequest).hash, sessionId);
        out[i] = coded;
      }
      return out as Array<StagedFile | StudioError>;
    }
    for (const i of held) {
      const { hash, size } = files[i] as StagingRequest;
      const path = this.pathOf(hash);
      const release = (): void => this.#unhold(hash, sessionId);
      if (size > 0 && !present.has(hash)) {
        out[i] = this.#lazy(hash, size, path, release);
        continue;
      }
      try {
        out[i] = await this.#existing(hash, size, path, release);
      } catch (err) {
        release();
        out[i] = err instanceof StudioError ? err : stagingError(err, 'open', path);
      }
    }
    return out as Array<StagedFile | StudioError>;
  }

  /** A staged file whose partial is created by its first write. */
  #lazy(hash: string, size: number, path: string, release: () => void): StagedFile {
    return new StagedFile(
      hash,
      size,
      path,
      (withLane) => this.#open(hash, size, true, withLane),
      0,
      release,
      this.#nameSync,
      this.#queuedWrites,
    );
  }

  /** The staged file of a partial the listing found (or of an empty file): opened now, or replaced by a lazy one. */
  async #existing(hash: string, size: number, path: string, release: () => void): Promise<StagedFile> {
    const st = await stat(path).catch((err: unknown) => {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw stagingError(err, 'stat', path);
    });
    if (size > 0 && (st === undefined || st.size > size || st.nlink > 1)) {
      if (st !== undefined) await rm(path, { force: true });
      return this.#lazy(hash, size, path, release);
    }
    const p = await this.#open(hash, size, false);
    const nameSync = p.size === 0 ? this.#nameSync : undefined;
    return new StagedFile(hash, size, path, p, p.size, release, nameSync, this.#queuedWrites);
  }

  /**
   * Open the partial of `hash` with its read-back lane (`withLane`), in one of the `limits.total` places for
   * open partials (STUDIO_STAGING_LIMIT when none is free). `fresh`: it must not exist (created by
   * its first write after the listing found none); otherwise created when absent and fsynced when
   * not empty, and replaced when it cannot be this content's (see acquireAll).
   */
  async #open(hash: string, size: number, fresh: boolean, withLane = true): Promise<OpenPartial & { size: number }> {
    const path = this.pathOf(hash);
    let lane: ReadBack | undefined;
    let fh: FileHandle | undefined;
    const free = this.#takeOpen(hash); // STUDIO_STAGING_LIMIT beyond `limits.total`
    try {
      if (fresh) await this.#ready();
      // Read-write, never appending: chunks are written at explicit offsets.
      fh = await open(path, fresh ? RW_CREATE | constants.O_EXCL : RW_CREATE, 0o600).catch((err: unknown) => {
        throw stagingError(err, 'open', path);
      });
      let st = await fh.stat();
      if (!fresh && (st.size > size || st.nlink > 1)) {
        await fh.close();
        fh = undefined;
        await rm(path, { force: true });
        fh = await open(path, RW_CREATE, 0o600);
        st = await fh.stat();
      }
      if (st.size > 0) await fh.datasync();
      if (withLane) {
        lane = createReadBack(path, {
          fs: nodeFs,
          pool: sharedHashPool(),
          engine: resolveHashEngine(),
          signal: undefined,
        });
        await lane.open();
      }
      return { fh, lane, free, size: st.size };
    } catch (err) {
      await lane?.close();
      await fh?.close().catch(() => undefined);
      free();
      if (err instanceof StudioError) throw err;
      throw stagingError(err, 'open', path);
    }
  }

  readonly #nameSync = (): Promise<void> =>
    // The system error itself (ENOSPC → STUDIO_TARGET_FULL in stagingError), not its DURABLE_ wrapper.
    this.#dirSync.commit(null, [this.dir]).catch((err: unknown) => {
      throw err instanceof Error && err.cause !== undefined ? err.cause : err;
    });

  /**
   * Remove partials of hashes that are already committed (a crash between the
   * catalogue batch and the discard). Skipped while the mirror is not mounted.
   */
  async sweepCommitted(isCommitted: (hash: string) => Promise<boolean>): Promise<number> {
    let removed = 0;
    for (const { hash } of await this.list()) {
      if (this.#held.has(hash) || !(await isCommitted(hash))) continue;
      await rm(this.pathOf(hash), { force: true });
      removed++;
    }
    return removed;
  }

  /**
   * Remove partials nobody holds and nobody has written for `maxAgeMs` (an agent that never
   * came back, or an insider filling the mirror). Returns how many. Skipped while the mirror
   * is not mounted (nothing listed).
   */
  async sweepExpired(maxAgeMs: number, now: number): Promise<number> {
    let removed = 0;
    for (const { hash } of await this.list()) {
      if (this.#held.has(hash)) continue;
      // Held by the sweep while it looks and removes: an Offer meanwhile gets STUDIO_BUSY, never a removed file.
      this.#hold(hash, SWEEPER);
      try {
        const path = this.pathOf(hash);
        const st = await stat(path).catch(() => undefined);
        if (st === undefined || now - st.mtimeMs < maxAgeMs) continue;
        await rm(path, { force: true });
        removed++;
      } finally {
        this.#unhold(hash, SWEEPER);
      }
    }
    if (removed > 0) await fsyncDir(this.dir).catch(() => undefined);
    return removed;
  }

  /** Partial files present (for status); none while the mirror is not mounted. */
  async list(): Promise<Array<{ hash: string; bytes: number }>> {
    const out: Array<{ hash: string; bytes: number }> = [];
    for (const { hash } of await this.#names()) out.push({ hash, bytes: await this.offsetOf(hash) });
    return out;
  }

  /** The hashes of the partial files present, from one listing (none when the folder is not there). */
  async #names(): Promise<Array<{ hash: string }>> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return [];
      throw stagingError(err, 'list', this.dir);
    }
    const out: Array<{ hash: string }> = [];
    for (const n of names) {
      if (!n.endsWith(PART_SUFFIX)) continue;
      const hash = n.slice(0, -PART_SUFFIX.length);
      if (isBlake3Hex(hash)) out.push({ hash });
    }
    return out;
  }
}
