/**
 * The one durable verified-write primitive. Every writer of archive files
 * (laptop store, field drive, studio mirror, studio RAID) calls this.
 *
 * The steps, numbered and named as in docs/design.md "Durable write"; every
 * target is fed from ONE read of the source:
 *   1. check      the options and every target name; nothing exists yet when they are refused
 *   2. makeDir    mkdir -p the target directory (createDirs), fsyncing the parent of each new one
 *   3. openTemp   open(dir/.<name>.<random>.s321tmp, 'wx') in the destination directory, and its read-back lane
 *   4. stream     each chunk written to every temp while hashed (BLAKE3); every `syncEvery` bytes (or
 *                 more, growing with the file up to `syncEveryMax`) an fdatasync, behind which the lane
 *                 reads the temp back
 *   5. compare    length and BLAKE3 with `expected` (when given); the result is the reference
 *   6. fsyncTemp  fsync(temp); close
 *   7. readBack   the lane reads the rest; what was read back must equal the reference
 *   8. linkFinal  link(temp, final), never replacing: EEXIST with identical content → reused, other
 *                 content → DURABLE_NAME_TAKEN; without hard links, rename onto a free name; unlink(temp)
 *   9. fsyncDir   fsync every target directory
 * On any failure cleanUp closes every handle and removes every temp, and a
 * DurableWriteError says what happened.
 *
 * Steps 2–9 are the methods of one object (DurableWrite) whose fields are the
 * write's state: the targets with their temps, handles and lanes (Slot), the
 * source hasher and iterator, the byte count. Every step reads and changes that
 * state, and cleanUp must see exactly what the steps left open; as free
 * functions each step would take most of it as parameters. run() shows the
 * order and where the targets wait for each other.
 *
 * durableWriteBytes (at the end) is the same write for ONE target from bytes
 * already in memory, as plain synchronous calls but for the fsync (studiod's
 * small-commit worker): the same checks, errors, link and clean-up.
 */
import { closeSync, fsync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createXxh3, isBlake3Hex, resolveHashEngine, type HashEngine } from '../hash.js';
import { DurableWriteError, errorCode } from '../errors.js';
import { DURABLE_CODES, abortedError, hashError, isAborted, durableError, sourceError, targetError } from './errors.js';
import { nodeFs, type DurableFileHandle, type DurableFs } from './fs-facade.js';
import { syncFs } from './sync-fs.js';
import { ensureDir, fsyncDir } from './fsync-dir.js';
import { readBackFdSync, readBackHash } from './read-back.js';
import { createReadBack, type ReadBack } from './read-back-lane.js';
import { createLocalAsyncHasher, sharedHashPool, type AsyncHasher, type HashPool } from './hash-pool.js';
import { checkTargetName, tempNameFor } from './target-name.js';
import { DirectWriter, writeParts } from './direct-io.js';

export interface DurableTarget {
  dir: string;
  /** One path segment: no '/', not '.'/'..', no NUL, not empty. */
  name: string;
}

export interface DurableWriteOptions {
  targets: DurableTarget[];
  /** When known in advance (studio); else the hash of what was read is the reference (agent). */
  expected?: { size: number; blake3: string };
  /** Default true: after fsync re-read each temp and hash; must match. */
  readBack?: boolean;
  /**
   * Default true. False (only with `expected` and `readBack`): the source is not
   * hashed while written; each temp's read-back must equal `expected` instead.
   * Every copy is still verified against the known hash, and the one hash pass
   * saved is on the calling thread (the studio's, which also decrypts the link).
   * A source with other bytes then fails as DURABLE_READBACK_MISMATCH, not
   * DURABLE_HASH_MISMATCH: the caller tells the two apart (studiod/src/commit/commit.ts).
   */
  hashSource?: boolean;
  /** Abort (card pulled, shutdown) → DURABLE_ABORTED, temps removed. */
  signal?: AbortSignal;
  /** Called after each chunk is written to every target, with the bytes written so far. */
  onProgress?: (bytes: number) => void;
  /** Fault-injection seam; defaults to node:fs/promises. */
  fs?: DurableFs;
  /** mkdir -p the target dirs (fsyncing parents of new dirs). Default true. */
  createDirs?: boolean;
  /**
   * Default true: step 9 fsyncs every target directory. False: the caller does, before it
   * counts any copy (a group commit: one directory fsync for many files that finished
   * together, group-commit.ts); until then a power cut may lose the names.
   */
  fsyncDir?: boolean;
  /** Mode of new files (default 0o644). */
  mode?: number;
  /**
   * Read back while writing: every `syncEvery` bytes (default 8 MiB) the temp is
   * fdatasync'ed and the bytes it covers are read back and hashed on a worker.
   */
  syncEvery?: number;
  /**
   * Default `syncEvery` (a fixed interval). Larger: the interval grows with the file, half of what is
   * already synced, from `syncEvery` up to this. Each fdatasync is a flush of the disk's write cache;
   * a studio's O_DIRECT writes are on the disk already, so the fdatasyncs only let the read-back
   * follow: a large file then costs a few dozen flushes instead of hundreds, and a file of a few tens
   * of MiB still has its read-back close behind (at most a third of it is left to read at the end).
   */
  syncEveryMax?: number;
  /** Where read-backs are hashed: a HashPool (default: the shared pool) or false for this thread. */
  hashPool?: HashPool | false;
  /** BLAKE3 implementation (protocol/src/hash.ts); default 'auto': the native engine when it loads, else blake3-wasm. */
  hashEngine?: HashEngine;
  /** Also XXH3-64 the source in the same pass (the ASC MHL hash, protocol/src/durable/mhl.ts); needs `hashSource`. */
  xxh3?: boolean;
  /**
   * Default false. True: chunks in buffers from `alignedBuffer` at aligned offsets are written
   * with O_DIRECT (no copy into the page cache), and the read-back reads the disk with O_DIRECT
   * (direct-io.ts); other chunks and file systems without O_DIRECT use the ordinary descriptor.
   * Needs the fs facade's `openDirect` (nodeFs has it).
   */
  directIo?: boolean;
}

/**
 * What durableWrite reads: chunks in order, each a Uint8Array or a run of them (an array of chunks
 * that follow each other in the file: written to each temp with one pwritev where they may all go
 * direct, direct-io.ts `writeParts`). The source may reuse every buffer it yielded once it is asked
 * for the next item (and at its end).
 */
export type DurableSource = AsyncIterable<Uint8Array | readonly Uint8Array[]>;

export const DEFAULT_SYNC_EVERY = 8 * 1024 * 1024;

export type VerificationMethod = 'readback-blake3' | 'write-blake3';

export interface DurableCopy {
  path: string;
  name: string;
  size: number;
  blake3: string;
  method: VerificationMethod;
  verifiedAt: string;
  /** True when the final name already held identical content and was kept as is. */
  reused: boolean;
}

export interface DurableWriteResult {
  size: number;
  blake3: string;
  /** With `xxh3: true`: the source's XXH3-64, verified through the BLAKE3 read-back of every copy. */
  xxh3?: string;
  copies: DurableCopy[];
}

/** One target of a write: its temp, the handles open on it, and how far it is written and synced. */
interface Slot {
  target: DurableTarget;
  tempPath: string;
  finalPath: string;
  fh: DurableFileHandle | undefined;
  /** The temp's O_DIRECT descriptor (`directIo`), opened by its first aligned chunk. */
  direct: DirectWriter<DurableFileHandle>;
  tempExists: boolean;
  position: number;
  /** Set by step 8 once the final name holds the verified bytes. */
  copy: DurableCopy | undefined;
  lane: ReadBack | undefined;
  /** A running fdatasync that will let the lane read up to where it started. */
  syncing: Promise<void> | undefined;
  syncedTo: number;
  syncError: unknown;
}

/** The size and BLAKE3 every copy must have: `expected`, or what was read from the source. */
interface Reference {
  size: number;
  blake3: string;
}

/**
 * Step 4 or 5: the source is longer than `expectedSize` (`longer`: at least `total` bytes, found while
 * streaming) or ended after `total` bytes.
 */
function sizeError(expectedSize: number, total: number, longer: boolean): DurableWriteError {
  return durableError(
    DURABLE_CODES.sizeMismatch,
    longer
      ? `The source is longer than expected (more than ${expectedSize} bytes): the source changed or its size was recorded wrongly; nothing was kept.`
      : `The source ended after ${total} bytes, ${expectedSize} were expected: the transfer was cut or the source changed; nothing was kept.`,
    {
      retryable: false,
      detail: longer ? { expectedSize, atLeast: total } : { expectedSize, size: total },
    },
  );
}

/** Step 7: what was read back from a temp is not the reference. */
function readBackError(paths: LinkPaths, ref: Reference, got: Reference): DurableWriteError {
  return durableError(
    DURABLE_CODES.readbackMismatch,
    `The bytes read back from ${paths.tempPath} differ from what was written: the target disk (or its cable/RAM) is corrupting data; check it before trusting it. Nothing was kept.`,
    {
      retryable: false,
      detail: { path: paths.finalPath, expected: ref, actual: got },
    },
  );
}

/** Awaits every promise (so nothing is still running when cleanup starts), then throws the first failure. */
async function settleAll<T>(promises: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const out: T[] = [];
  for (const r of results) {
    if (r.status === 'rejected') throw r.reason;
    out.push(r.value);
  }
  return out;
}

/** Step 1 (check): TypeError for a misuse, DURABLE_BAD_NAME for a name that is not one safe path segment. */
function checkOptions(opts: DurableWriteOptions): void {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('durableWrite: options are required');
  if (!Array.isArray(opts.targets) || opts.targets.length === 0)
    throw new TypeError('durableWrite: at least one target is required');
  const seen = new Set<string>();
  for (const t of opts.targets) {
    if (typeof t?.dir !== 'string' || t.dir.length === 0)
      throw new TypeError('durableWrite: target.dir must be a non-empty string');
    checkTargetName(t.name);
    const key = join(t.dir, t.name);
    if (seen.has(key)) throw new TypeError(`durableWrite: target ${key} is listed twice`);
    seen.add(key);
  }
  if (opts.hashSource === false && (opts.expected === undefined || opts.readBack === false)) {
    throw new TypeError('durableWrite: hashSource: false needs `expected` and the read-back');
  }
  if (opts.xxh3 === true && opts.hashSource === false) {
    throw new TypeError('durableWrite: xxh3 hashes the source: not with hashSource: false');
  }
  if (opts.syncEvery !== undefined && (!Number.isSafeInteger(opts.syncEvery) || opts.syncEvery <= 0)) {
    throw new TypeError('durableWrite: syncEvery must be a positive integer');
  }
  if (
    opts.syncEveryMax !== undefined &&
    (!Number.isSafeInteger(opts.syncEveryMax) || opts.syncEveryMax < (opts.syncEvery ?? DEFAULT_SYNC_EVERY))
  ) {
    throw new TypeError('durableWrite: syncEveryMax must be an integer no smaller than syncEvery');
  }
  const e = opts.expected;
  if (e !== undefined) {
    if (!Number.isSafeInteger(e.size) || e.size < 0)
      throw new TypeError('durableWrite: expected.size must be a non-negative integer');
    if (!isBlake3Hex(e.blake3))
      throw new TypeError('durableWrite: expected.blake3 must be 64 lower-case hex characters');
  }
}

/**
 * Step 2 (makeDir) for one directory, failing as a target error; also used by placeVerified, and
 * by writers that make a folder once for many files (studiod's small-commit worker) and then
 * call durableWrite with `createDirs: false`.
 */
export async function makeDir(dir: string, fs: DurableFs): Promise<void> {
  try {
    await ensureDir(dir, fs);
  } catch (err) {
    throw targetError(err, 'mkdir', dir);
  }
}

/** Step 4 (stream): one chunk (or a run of them) to one temp, positional, short writes completed (O_DIRECT when aligned). */
async function writeAll(slot: Slot, parts: readonly Uint8Array[]): Promise<void> {
  if (slot.fh === undefined) throw new TypeError('durableWrite: internal error, temp not open');
  try {
    await writeParts(slot.direct, slot.fh, parts, slot.position, (n) => {
      slot.position += n;
    });
  } catch (err) {
    throw targetError(err, 'write', slot.tempPath);
  }
}

/** Step 4 (stream): the source's hash of one chunk or a run of them, in order. */
async function hashParts(hasher: AsyncHasher, parts: readonly Uint8Array[]): Promise<void> {
  for (const p of parts) await hasher.update(p);
}

/** Step 4: the bytes written past the last fdatasync that start the next: `every`, growing to `max` as half of what is synced. */
export function syncInterval(syncedTo: number, every: number, max: number): number {
  return Math.min(max, Math.max(every, Math.floor(syncedTo / 2)));
}

/**
 * Step 4 (stream), after each chunk: when `syncInterval` more bytes were written
 * since the last one, starts an fdatasync (not awaited: writing goes on); when
 * it completes, the lane may read back up to where it started. A failure is
 * kept and thrown by the loop.
 */
function startDatasync(s: Slot, syncEvery: number, syncEveryMax: number): void {
  if (s.syncError !== undefined) throw targetError(s.syncError, 'fsync', s.tempPath);
  const fh = s.fh;
  const lane = s.lane;
  if (
    fh === undefined ||
    s.syncing !== undefined ||
    s.position - s.syncedTo < syncInterval(s.syncedTo, syncEvery, syncEveryMax)
  )
    return;
  const upTo = s.position;
  s.syncedTo = upTo;
  s.syncing = fh.datasync().then(
    () => {
      s.syncing = undefined;
      lane?.advance(upTo);
    },
    (err: unknown) => {
      s.syncing = undefined;
      s.syncError = err;
    },
  );
}

/** Waits for `p`, or rejects with DURABLE_ABORTED as soon as the signal fires. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.reject(abortedError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** A verified temp and the final name it is to get; `tempExists` turns false when it was renamed into place. */
interface LinkPaths {
  tempPath: string;
  finalPath: string;
  tempExists: boolean;
}

/**
 * Step 8 (linkFinal) for one file, without the unlink of the temp: link(temp,
 * final), never replacing. Returns true when an identical final was already there.
 */
async function linkFinal(
  fs: DurableFs,
  slot: LinkPaths,
  ref: Reference,
  signal: AbortSignal | undefined,
  engine: 'wasm' | 'native',
): Promise<boolean> {
  const { tempPath, finalPath } = slot;
  try {
    await fs.link(tempPath, finalPath);
    return false;
  } catch (err) {
    const code = errorCode(err);
    if (code === 'EEXIST') return sameContent(fs, slot, ref, signal, err, engine);
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS' || code === 'EMLINK') {
      // No hard links here (exFAT/FAT field drive): rename only onto a free name.
      // A concurrent writer of the same final name in this directory could race
      // this check; writers own their directories, so none does.
      try {
        await fs.stat(finalPath);
        return sameContent(fs, slot, ref, signal, err, engine);
      } catch (statErr) {
        if (errorCode(statErr) !== 'ENOENT') throw targetError(statErr, 'stat', finalPath);
      }
      try {
        await fs.rename(tempPath, finalPath);
      } catch (renameErr) {
        throw targetError(renameErr, 'rename', finalPath);
      }
      slot.tempExists = false;
      return false;
    }
    throw targetError(err, 'link', finalPath);
  }
}

/** Step 8 whole: linkFinal, then the temp's name removed (unless a rename took it). True: an identical final was reused. */
async function linkFinalDropTemp(
  fs: DurableFs,
  slot: LinkPaths,
  ref: Reference,
  signal: AbortSignal | undefined,
  engine: 'wasm' | 'native',
): Promise<boolean> {
  const reused = await linkFinal(fs, slot, ref, signal, engine);
  if (slot.tempExists) {
    try {
      await fs.unlink(slot.tempPath);
      slot.tempExists = false;
    } catch (err) {
      throw targetError(err, 'unlink temp', slot.tempPath);
    }
  }
  return reused;
}

/** Step 8, the final name is taken: true when it holds the reference's bytes, else DURABLE_NAME_TAKEN. */
async function sameContent(
  fs: DurableFs,
  slot: LinkPaths,
  ref: Reference,
  signal: AbortSignal | undefined,
  cause: unknown,
  engine: 'wasm' | 'native',
): Promise<boolean> {
  let existing: Reference;
  try {
    const st = await fs.stat(slot.finalPath);
    if (!st.isFile() || st.size !== ref.size) existing = { size: st.size, blake3: '' };
    else
      existing = await readBackHash(slot.finalPath, {
        fs,
        engine,
        sizeHint: st.size,
        ...(signal === undefined ? {} : { signal }),
      });
  } catch (err) {
    if (isAborted(signal)) throw abortedError(signal);
    throw targetError(err, 'read existing', slot.finalPath);
  }
  if (existing.size === ref.size && existing.blake3 === ref.blake3) return true;
  throw durableError(
    DURABLE_CODES.nameTaken,
    `${slot.finalPath} already exists with different content; it was left untouched. Store this file under a distinct name.`,
    {
      cause,
      retryable: false,
      detail: { path: slot.finalPath, existingSize: existing.size, size: ref.size, blake3: ref.blake3 },
    },
  );
}

/** Step 9 (fsyncDir) for one directory, failing as a target error; also used by placeVerified and group commits. */
export async function fsyncTargetDir(dir: string, fs: DurableFs = nodeFs): Promise<void> {
  try {
    await fsyncDir(dir, fs);
  } catch (err) {
    throw targetError(err, 'fsync dir', dir);
  }
}

/** One call of durableWrite after step 1: its state as fields, steps 2–9 as methods (see the header). */
class DurableWrite {
  readonly #opts: DurableWriteOptions;
  readonly #fs: DurableFs;
  readonly #signal: AbortSignal | undefined;
  readonly #withReadBack: boolean;
  readonly #mode: number;
  readonly #slots: Slot[];
  readonly #syncEvery: number;
  readonly #syncEveryMax: number;
  readonly #pool: HashPool | false;
  readonly #engine: 'wasm' | 'native';
  /** The source's hash (step 4); none with `hashSource: false`. */
  readonly #hasher: AsyncHasher | undefined;
  /** The source's XXH3-64 (step 4) with `xxh3: true`. */
  readonly #xxh3: ReturnType<typeof createXxh3> | undefined;
  #iterator: AsyncIterator<Uint8Array | readonly Uint8Array[]> | undefined;
  #sourceDone = false;
  /** Bytes read from the source and written to every temp so far. */
  #total = 0;

  /** No I/O here: run() does it all. */
  constructor(opts: DurableWriteOptions) {
    this.#opts = opts;
    this.#fs = opts.fs ?? nodeFs;
    this.#signal = opts.signal;
    this.#withReadBack = opts.readBack ?? true;
    this.#mode = opts.mode ?? 0o644;
    const openDirect = opts.directIo === true ? this.#fs.openDirect?.bind(this.#fs) : undefined;
    this.#slots = opts.targets.map((t) => {
      const tempPath = join(t.dir, tempNameFor(t.name));
      const slot: Slot = {
        target: t,
        tempPath,
        finalPath: join(t.dir, t.name),
        fh: undefined,
        // Read back the same way once the temp is written direct (the page cache holds none of it).
        direct: new DirectWriter(openDirect && (() => openDirect(tempPath)), () => slot.lane?.readDirect()),
        tempExists: false,
        position: 0,
        copy: undefined,
        lane: undefined,
        syncing: undefined,
        syncedTo: 0,
        syncError: undefined,
      };
      return slot;
    });
    this.#syncEvery = opts.syncEvery ?? DEFAULT_SYNC_EVERY;
    this.#syncEveryMax = opts.syncEveryMax ?? this.#syncEvery;
    this.#pool = opts.hashPool ?? sharedHashPool();
    this.#engine = resolveHashEngine(opts.hashEngine);
    this.#hasher = opts.hashSource === false ? undefined : createLocalAsyncHasher(this.#engine);
    this.#xxh3 = opts.xxh3 === true ? createXxh3() : undefined;
  }

  /**
   * Steps 2–9 in order. A step that works per target runs for every target at
   * once, and the next step starts when all targets are done with it (2 and 3
   * follow each other per target).
   */
  async run(source: DurableSource): Promise<DurableWriteResult> {
    const signal = this.#signal;
    try {
      // 2. makeDir, then 3. openTemp, per target
      await this.#eachTarget(async (s) => {
        await this.#makeDir(s);
        await this.#openTemp(s);
      });
      // 4. stream
      await this.#stream(source);
      // 5. compare
      const ref = await this.#compare();
      // 6. fsyncTemp
      await this.#eachTarget((s) => this.#fsyncTemp(s));
      if (isAborted(signal)) throw abortedError(signal);
      // 7. readBack
      const method: VerificationMethod = this.#withReadBack ? 'readback-blake3' : 'write-blake3';
      if (this.#withReadBack)
        await raceAbort(
          this.#eachTarget((s) => this.#readBack(s, ref)),
          signal,
        );
      const verifiedAt = new Date().toISOString();
      if (isAborted(signal)) throw abortedError(signal);
      // 8. linkFinal
      await this.#eachTarget((s) => this.#linkFinal(s, ref, method, verifiedAt));
      // 9. fsyncDir (or the caller's group commit)
      if (this.#opts.fsyncDir !== false) await this.#fsyncDir();
      const copies = this.#slots.map((s) => s.copy!);
      const xxh3 = this.#xxh3?.digest();
      return { size: ref.size, blake3: ref.blake3, ...(xxh3 === undefined ? {} : { xxh3 }), copies };
    } catch (caught) {
      throw this.#failure(caught);
    } finally {
      await this.#cleanUp();
    }
  }

  /** Runs a step for every target at once and waits for all of them (settleAll). */
  async #eachTarget(step: (s: Slot) => Promise<void>): Promise<void> {
    await settleAll(this.#slots.map(step));
  }

  // 2. makeDir
  async #makeDir(s: Slot): Promise<void> {
    if (this.#opts.createDirs ?? true) await makeDir(s.target.dir, this.#fs);
  }

  // 3. openTemp
  async #openTemp(s: Slot): Promise<void> {
    try {
      s.fh = await this.#fs.open(s.tempPath, 'wx', this.#mode);
      s.tempExists = true;
      if (this.#withReadBack) {
        s.lane = createReadBack(s.tempPath, {
          fs: this.#fs,
          pool: this.#pool,
          engine: this.#engine,
          signal: this.#signal,
        });
        await s.lane.open();
      }
    } catch (err) {
      throw targetError(err, 'create', s.tempPath);
    }
  }

  // 4. stream: one read of the source, written to every temp while hashed. The
  //    next chunk (or run of chunks) is asked for only once the current one is
  //    written and hashed, so a source may reuse a chunk's buffer as soon as it is
  //    asked for the next one (and at its end); a source that reads ahead
  //    (agent/src/card/source-reader.ts) keeps the card busy meanwhile.
  async #stream(source: DurableSource): Promise<void> {
    const opts = this.#opts;
    const signal = this.#signal;
    const slots = this.#slots;
    const hasher = this.#hasher;
    this.#iterator = source[Symbol.asyncIterator]();
    const it = this.#iterator;
    const pull = (): Promise<IteratorResult<Uint8Array | readonly Uint8Array[]>> => {
      const p = (async () => {
        try {
          return await it.next();
        } catch (err) {
          throw sourceError(err);
        }
      })();
      p.catch(() => undefined); // may be abandoned when a write fails first
      return p;
    };
    let next = pull();
    for (;;) {
      const r = await raceAbort(next, signal);
      if (r.done === true) {
        this.#sourceDone = true;
        break;
      }
      // A chunk, or a run of chunks that follow each other (written with one call where they may).
      const parts = r.value instanceof Uint8Array ? [r.value] : r.value;
      if (!Array.isArray(parts) || !parts.every((p) => p instanceof Uint8Array))
        throw sourceError(new TypeError('the source yielded something that is not a Uint8Array'));
      let bytes = 0;
      for (const p of parts) bytes += p.byteLength;
      this.#total += bytes;
      const total = this.#total;
      if (opts.expected !== undefined && total > opts.expected.size) throw sizeError(opts.expected.size, total, true);
      const writes = settleAll(slots.map((s) => writeAll(s, parts)));
      // synchronous and native: before the source may reuse the chunks
      if (this.#xxh3 !== undefined) for (const p of parts) this.#xxh3.update(p);
      const hashed = (hasher === undefined ? Promise.resolve(undefined) : hashParts(hasher, parts)).catch(
        (err: unknown) => {
          throw hashError(err);
        },
      );
      await raceAbort(settleAll<unknown>([writes, hashed]), signal);
      for (const s of slots) startDatasync(s, this.#syncEvery, this.#syncEveryMax);
      opts.onProgress?.(total);
      next = pull();
    }
  }

  // 5. compare: with `expected` when given; the result is the reference for steps 7 and 8.
  async #compare(): Promise<Reference> {
    const expected = this.#opts.expected;
    const total = this.#total;
    let blake3: string;
    try {
      // Without a source hash, what was written must read back as the expected hash.
      blake3 = this.#hasher === undefined ? (expected?.blake3 ?? '') : await this.#hasher.digest();
    } catch (err) {
      throw hashError(err);
    }
    if (expected !== undefined) {
      if (total !== expected.size) throw sizeError(expected.size, total, false);
      if (blake3 !== expected.blake3) {
        throw durableError(
          DURABLE_CODES.hashMismatch,
          'The bytes read do not have the expected BLAKE3: the source is corrupt or changed in flight; nothing was kept. Re-read the source.',
          {
            retryable: false,
            detail: { expected: expected.blake3, actual: blake3, size: total },
          },
        );
      }
    }
    return { size: total, blake3 };
  }

  // 6. fsyncTemp: after the last datasync of step 4; the write handle is closed either way.
  async #fsyncTemp(s: Slot): Promise<void> {
    const fh = s.fh;
    if (fh === undefined) return;
    try {
      await s.syncing;
      if (s.syncError !== undefined) throw s.syncError;
      await fh.sync();
    } catch (err) {
      throw targetError(err, 'fsync', s.tempPath);
    } finally {
      s.fh = undefined;
      await fh.close().catch(() => undefined);
      await s.direct.close();
    }
  }

  // 7. readBack: the lane reads the rest of the temp, every byte after an fsync/fdatasync covered it.
  async #readBack(s: Slot, ref: Reference): Promise<void> {
    const signal = this.#signal;
    let got: Reference;
    try {
      if (s.lane === undefined) throw new TypeError('durableWrite: internal error, no read-back lane');
      got = await s.lane.finish(ref.size);
    } catch (err) {
      if (isAborted(signal)) throw abortedError(signal);
      throw targetError(err, 'read back', s.tempPath);
    }
    if (got.size !== ref.size || got.blake3 !== ref.blake3) throw readBackError(s, ref, got);
  }

  // 8. linkFinal: the final name, then the temp's name removed.
  async #linkFinal(s: Slot, ref: Reference, method: VerificationMethod, verifiedAt: string): Promise<void> {
    const reused = await linkFinalDropTemp(this.#fs, s, ref, this.#signal, this.#engine);
    s.copy = { path: s.finalPath, name: s.target.name, size: ref.size, blake3: ref.blake3, method, verifiedAt, reused };
  }

  // 9. fsyncDir: each target directory once.
  async #fsyncDir(): Promise<void> {
    const dirs = [...new Set(this.#slots.map((s) => s.target.dir))];
    await settleAll(dirs.map((d) => fsyncTargetDir(d, this.#fs)));
  }

  /** What run() throws for `caught`: DURABLE_ABORTED when aborted, and the final files already committed. */
  #failure(caught: unknown): unknown {
    const signal = this.#signal;
    let err: unknown = caught;
    if (
      isAborted(signal) &&
      !(
        err instanceof DurableWriteError &&
        err.code !== DURABLE_CODES.aborted &&
        err.code !== DURABLE_CODES.sourceFailed
      )
    ) {
      err = abortedError(signal);
    }
    // A TypeError is a programmer's mistake (e.g. thrown by onProgress): it stays what it is.
    if (!(err instanceof DurableWriteError) && !(err instanceof TypeError))
      err = targetError(err, 'write', this.#slots[0]!.tempPath);
    const committed = this.#slots.filter((s) => s.copy !== undefined).map((s) => s.finalPath);
    if (committed.length > 0 && err instanceof DurableWriteError && err.detail !== undefined) {
      // Those final files are complete and verified: not partial, but the caller must know.
      err.detail.committed = committed;
    }
    return err;
  }

  /** After success or failure: every handle, lane and hasher released, every temp removed. */
  async #cleanUp(): Promise<void> {
    const fs = this.#fs;
    this.#hasher?.dispose();
    const iterator = this.#iterator;
    if (!this.#sourceDone && iterator?.return !== undefined) {
      // Let the source release its file handle; do not wait on a stuck source.
      iterator.return().catch(() => undefined);
    }
    await Promise.allSettled(
      this.#slots.map(async (s) => {
        await s.syncing;
        await s.lane?.close();
        s.lane = undefined;
        const fh = s.fh;
        s.fh = undefined;
        if (fh !== undefined) await fh.close().catch(() => undefined);
        await s.direct.close();
        if (s.tempExists) {
          await fs.unlink(s.tempPath).catch((e: unknown) => {
            if (errorCode(e) !== 'ENOENT') throw e;
          });
          s.tempExists = false;
        }
      }),
    );
  }
}

export async function durableWrite(source: DurableSource, opts: DurableWriteOptions): Promise<DurableWriteResult> {
  // 1. check
  checkOptions(opts);
  if (isAborted(opts.signal)) throw abortedError(opts.signal);
  return new DurableWrite(opts).run(source);
}

/**
 * Steps 1, 2, 8 and 9 of durableWrite for a file verified elsewhere: the
 * studio's staged file, written in the mirror target's file system, fsynced and
 * read back against the offered BLAKE3 by its caller
 * (studiod/src/commit/staging.ts), gets its final name by link(2): never
 * replacing (an identical final is reused, other content → DURABLE_NAME_TAKEN),
 * then the directory is fsynced. The staged file itself is left where it is (a
 * second name of the same inode) unless the file system has no hard links,
 * where it is renamed into place.
 */
export async function placeVerified(
  path: string,
  target: DurableTarget,
  ref: { size: number; blake3: string },
  opts: {
    fs?: DurableFs;
    signal?: AbortSignal;
    hashEngine?: HashEngine;
    /** As in durableWrite: false leaves step 9 to the caller's group commit (group-commit.ts). */
    fsyncDir?: boolean;
  } = {},
): Promise<{ path: string; reused: boolean }> {
  // 1. check
  checkTargetName(target.name);
  const fs = opts.fs ?? nodeFs;
  if (isAborted(opts.signal)) throw abortedError(opts.signal);
  // 2. makeDir
  await makeDir(target.dir, fs);
  // 8. linkFinal (the staged name stays)
  const finalPath = join(target.dir, target.name);
  const reused = await linkFinal(
    fs,
    { tempPath: path, finalPath, tempExists: true },
    ref,
    opts.signal,
    resolveHashEngine(opts.hashEngine),
  );
  // 9. fsyncDir (or the caller's group commit)
  if (opts.fsyncDir !== false) await fsyncTargetDir(target.dir, fs);
  return { path: finalPath, reused };
}

const fsyncAsync = promisify(fsync);

/**
 * durableWrite of ONE target from bytes already whole in memory, against a known reference, on a
 * thread whose file-system calls are synchronous (studiod's small-commit worker): the same steps,
 * checks and errors, written as plain calls with one wait, the temp's fsync, which goes through
 * libuv's pool so that the fsyncs of the files a worker writes side by side still overlap.
 *   1. check      the target name and the reference
 *   3. openTemp   the temp opened 'wx+' (created, never an existing file), read back through it
 *   5. compare    their length, first (nothing is created for bytes of another size)
 *   4. stream     the bytes written whole (short writes completed)
 *   6. fsyncTemp  fsync(temp)
 *   7. readBack   read from offset 0 to end of file through the temp's descriptor (after its fsync),
 *                 BLAKE3 against the reference (the bytes are not hashed before: hashSource: false)
 *   8. linkFinal  link(temp, final), never replacing (an identical final is reused); unlink(temp)
 * Steps 2 and 9 are the caller's (a folder made once, each folder fsynced once, for a group). On any
 * failure the temp is closed and removed, and the DurableWriteError is durableWrite's.
 */
export async function durableWriteBytes(
  bytes: Uint8Array,
  target: DurableTarget,
  expected: { size: number; blake3: string },
  opts: { mode?: number; hashEngine?: HashEngine } = {},
): Promise<DurableCopy> {
  // 1. check
  checkOptions({ targets: [target], expected, hashSource: false });
  const engine = resolveHashEngine(opts.hashEngine);
  const slot: LinkPaths = {
    tempPath: join(target.dir, tempNameFor(target.name)),
    finalPath: join(target.dir, target.name),
    tempExists: false,
  };
  // 5. compare, before anything is written: the bytes are whole, so their length is known (the
  // BLAKE3 is the read-back's)
  if (bytes.byteLength !== expected.size)
    throw sizeError(expected.size, bytes.byteLength, bytes.byteLength > expected.size);
  let fd: number | undefined;
  try {
    // 3. openTemp
    try {
      fd = openSync(slot.tempPath, 'wx+', opts.mode ?? 0o644);
    } catch (err) {
      throw targetError(err, 'create', slot.tempPath);
    }
    slot.tempExists = true;
    // 4. stream
    try {
      for (let at = 0; at < bytes.byteLength; ) {
        const n = writeSync(fd, bytes, at, bytes.byteLength - at, at);
        // as writeParts (direct-io.ts): a write that wrote nothing would never end
        if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
        at += n;
      }
    } catch (err) {
      throw targetError(err, 'write', slot.tempPath);
    }
    // 6. fsyncTemp
    try {
      await fsyncAsync(fd);
    } catch (err) {
      throw targetError(err, 'fsync', slot.tempPath);
    }
    // 7. readBack
    let got: Reference;
    try {
      got = readBackFdSync(fd, engine);
    } catch (err) {
      throw targetError(err, 'read back', slot.tempPath);
    }
    if (got.size !== expected.size || got.blake3 !== expected.blake3) throw readBackError(slot, expected, got);
    const verifiedAt = new Date().toISOString();
    // 8. linkFinal
    const reused = await linkFinalDropTemp(syncFs, slot, expected, undefined, engine);
    return {
      path: slot.finalPath,
      name: target.name,
      size: expected.size,
      blake3: expected.blake3,
      method: 'readback-blake3',
      verifiedAt,
      reused,
    };
  } finally {
    try {
      if (fd !== undefined) closeSync(fd);
    } catch {
      // As step 6's close in durableWrite: the bytes were fsynced and read back, or the write failed.
    }
    if (slot.tempExists) {
      try {
        unlinkSync(slot.tempPath);
      } catch {
        // Left for the sweep of stale temps at the next start (sweep-stale-temps.ts).
      }
    }
  }
}
