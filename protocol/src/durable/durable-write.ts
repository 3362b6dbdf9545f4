/**
 * The one durable verified-write primitive. Every writer of archive files
 * (laptop store, field drive, studio mirror, studio RAID) calls this.
 *
 * Order, for every target, all fed from ONE read of the source (docs/design.md "Durable write"):
 *   1. open(dir/.<name>.<random>.s321tmp, 'wx')
 *   2. stream chunks: write to every temp concurrently while hashing (BLAKE3)
 *   3. compare length and BLAKE3 with `expected` (when given)
 *   4. fsync(temp); close
 *   5. read back every temp, hash, compare with the reference
 *   6. link(temp, final) — never replaces; EEXIST with identical content → reused, else DURABLE_NAME_TAKEN
 *   7. unlink(temp); fsync(dir)
 * On any failure every temp is removed and a DurableWriteError says what happened.
 */
import { join } from 'node:path';
import { isBlake3Hex, resolveHashEngine, type HashEngine } from '../hash.js';
import { DurableWriteError, errorCode } from '../errors.js';
import { abortedError, hashError, isAborted, durableError, sourceError, targetError } from './durable-errors.js';
import { nodeFs, type DurableFileHandle, type DurableFs } from './fs-facade.js';
import { ensureDir, fsyncDir } from './fsync-dir.js';
import { readBackHash } from './read-back.js';
import { createReadBack, type ReadBack } from './read-back-lane.js';
import { createLocalAsyncHasher, sharedHashPool, type HashPool } from './hash-pool.js';
import { checkTargetName, tempNameFor } from './target-name.js';

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
   * DURABLE_HASH_MISMATCH: the caller tells the two apart (studiod/src/commit.ts).
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
  /** Mode of new files (default 0o644). */
  mode?: number;
  /**
   * Read back while writing: every `syncEvery` bytes (default 8 MiB) the temp is
   * fdatasync'ed and the bytes it covers are read back and hashed on a worker.
   */
  syncEvery?: number;
  /** Where read-backs are hashed: a HashPool (default: the shared pool) or false for this thread. */
  hashPool?: HashPool | false;
  /** BLAKE3 implementation (protocol/src/hash.ts); default 'auto': the native engine when it loads, else blake3-wasm. */
  hashEngine?: HashEngine;
}

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
  copies: DurableCopy[];
}

interface Slot {
  target: DurableTarget;
  tempPath: string;
  finalPath: string;
  fh: DurableFileHandle | undefined;
  tempExists: boolean;
  position: number;
  copy: DurableCopy | undefined;
  lane: ReadBack | undefined;
  /** A running fdatasync that will let the lane read up to where it started. */
  syncing: Promise<void> | undefined;
  syncedTo: number;
  syncError: unknown;
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
  if (opts.syncEvery !== undefined && (!Number.isSafeInteger(opts.syncEvery) || opts.syncEvery <= 0)) {
    throw new TypeError('durableWrite: syncEvery must be a positive integer');
  }
  const e = opts.expected;
  if (e !== undefined) {
    if (!Number.isSafeInteger(e.size) || e.size < 0)
      throw new TypeError('durableWrite: expected.size must be a non-negative integer');
    if (!isBlake3Hex(e.blake3))
      throw new TypeError('durableWrite: expected.blake3 must be 64 lower-case hex characters');
  }
}

async function writeAll(slot: Slot, chunk: Uint8Array): Promise<void> {
  const fh = slot.fh;
  if (fh === undefined) throw new TypeError('durableWrite: internal error, temp not open');
  let off = 0;
  while (off < chunk.byteLength) {
    let n: number;
    try {
      ({ bytesWritten: n } = await fh.write(chunk, off, chunk.byteLength - off, slot.position));
    } catch (err) {
      throw targetError(err, 'write', slot.tempPath);
    }
    if (n <= 0)
      throw targetError(Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' }), 'write', slot.tempPath);
    off += n;
    slot.position += n;
  }
}

/**
 * When `syncEvery` more bytes were written since the last one, starts an
 * fdatasync (not awaited: writing goes on); when it completes, the lane may
 * read back up to where it started. A failure is kept and thrown by the loop.
 */
function startDatasync(s: Slot, syncEvery: number): void {
  if (s.syncError !== undefined) throw targetError(s.syncError, 'fsync', s.tempPath);
  const fh = s.fh;
  const lane = s.lane;
  if (fh === undefined || s.syncing !== undefined || s.position - s.syncedTo < syncEvery) return;
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

/** link(temp, final), never replacing. Returns true when an identical final was already there. */
async function commitSlot(
  fs: DurableFs,
  slot: LinkPaths,
  ref: { size: number; blake3: string },
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

async function sameContent(
  fs: DurableFs,
  slot: LinkPaths,
  ref: { size: number; blake3: string },
  signal: AbortSignal | undefined,
  cause: unknown,
  engine: 'wasm' | 'native',
): Promise<boolean> {
  let existing: { size: number; blake3: string };
  try {
    const st = await fs.stat(slot.finalPath);
    if (!st.isFile() || st.size !== ref.size) existing = { size: st.size, blake3: '' };
    else existing = await readBackHash(slot.finalPath, { fs, engine, ...(signal === undefined ? {} : { signal }) });
  } catch (err) {
    if (isAborted(signal)) throw abortedError(signal);
    throw targetError(err, 'read existing', slot.finalPath);
  }
  if (existing.size === ref.size && existing.blake3 === ref.blake3) return true;
  throw durableError(
    'DURABLE_NAME_TAKEN',
    `${slot.finalPath} already exists with different content; it was left untouched. Store this file under a distinct name.`,
    {
      cause,
      retryable: false,
      detail: { path: slot.finalPath, existingSize: existing.size, size: ref.size, blake3: ref.blake3 },
    },
  );
}

export async function durableWrite(
  source: AsyncIterable<Uint8Array>,
  opts: DurableWriteOptions,
): Promise<DurableWriteResult> {
  checkOptions(opts);
  const fs = opts.fs ?? nodeFs;
  const signal = opts.signal;
  const readBack = opts.readBack ?? true;
  const mode = opts.mode ?? 0o644;
  if (isAborted(signal)) throw abortedError(signal);

  const slots: Slot[] = opts.targets.map((t) => ({
    target: t,
    tempPath: join(t.dir, tempNameFor(t.name)),
    finalPath: join(t.dir, t.name),
    fh: undefined,
    tempExists: false,
    position: 0,
    copy: undefined,
    lane: undefined,
    syncing: undefined,
    syncedTo: 0,
    syncError: undefined,
  }));
  const syncEvery = opts.syncEvery ?? DEFAULT_SYNC_EVERY;
  const pool = opts.hashPool ?? sharedHashPool();
  const engine = resolveHashEngine(opts.hashEngine);
  const hasher = opts.hashSource === false ? undefined : createLocalAsyncHasher(engine);
  let iterator: AsyncIterator<Uint8Array> | undefined;
  let sourceDone = false;

  try {
    // 1. temps
    await settleAll(
      slots.map(async (s) => {
        if (opts.createDirs ?? true) {
          try {
            await ensureDir(s.target.dir, fs);
          } catch (err) {
            throw targetError(err, 'mkdir', s.target.dir);
          }
        }
        try {
          s.fh = await fs.open(s.tempPath, 'wx', mode);
          s.tempExists = true;
          if (readBack) {
            s.lane = createReadBack(s.tempPath, { fs, pool, engine, signal });
            await s.lane.open();
          }
        } catch (err) {
          throw targetError(err, 'create', s.tempPath);
        }
      }),
    );

    // 2. one read of the source, written to every temp while hashed. The next chunk
    //    is asked for only once the current one is written and hashed, so a source
    //    may reuse a chunk's buffer as soon as it is asked for the next one (and at
    //    its end); a source that reads ahead (agent/src/source-reader.ts) keeps the
    //    card busy meanwhile.
    iterator = source[Symbol.asyncIterator]();
    const it = iterator;
    const pull = (): Promise<IteratorResult<Uint8Array>> => {
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
    let total = 0;
    let next = pull();
    for (;;) {
      const r = await raceAbort(next, signal);
      if (r.done === true) {
        sourceDone = true;
        break;
      }
      const chunk = r.value;
      if (!(chunk instanceof Uint8Array))
        throw sourceError(new TypeError('the source yielded something that is not a Uint8Array'));
      total += chunk.byteLength;
      if (opts.expected !== undefined && total > opts.expected.size) {
        throw durableError(
          'DURABLE_SIZE_MISMATCH',
          `The source is longer than expected (more than ${opts.expected.size} bytes): the source changed or its size was recorded wrongly; nothing was kept.`,
          {
            retryable: false,
            detail: { expectedSize: opts.expected.size, atLeast: total },
          },
        );
      }
      const writes = settleAll(slots.map((s) => writeAll(s, chunk)));
      const hashed = (hasher?.update(chunk) ?? Promise.resolve(undefined)).catch((err: unknown) => {
        throw hashError(err);
      });
      await raceAbort(settleAll<unknown>([writes, hashed]), signal);
      for (const s of slots) startDatasync(s, syncEvery);
      opts.onProgress?.(total);
      next = pull();
    }

    // 3. compare with what was expected
    let blake3: string;
    try {
      // Without a source hash, what was written must read back as the expected hash.
      blake3 = hasher === undefined ? (opts.expected?.blake3 ?? '') : await hasher.digest();
    } catch (err) {
      throw hashError(err);
    }
    if (opts.expected !== undefined) {
      if (total !== opts.expected.size) {
        throw durableError(
          'DURABLE_SIZE_MISMATCH',
          `The source ended after ${total} bytes, ${opts.expected.size} were expected: the transfer was cut or the source changed; nothing was kept.`,
          {
            retryable: false,
            detail: { expectedSize: opts.expected.size, size: total },
          },
        );
      }
      if (blake3 !== opts.expected.blake3) {
        throw durableError(
          'DURABLE_HASH_MISMATCH',
          'The bytes read do not have the expected BLAKE3: the source is corrupt or changed in flight; nothing was kept. Re-read the source.',
          {
            retryable: false,
            detail: { expected: opts.expected.blake3, actual: blake3, size: total },
          },
        );
      }
    }
    const ref = { size: total, blake3 };

    // 4. fsync + close
    await settleAll(
      slots.map(async (s) => {
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
        }
      }),
    );
    if (isAborted(signal)) throw abortedError(signal);

    // 5. read back
    let method: VerificationMethod = 'write-blake3';
    if (readBack) {
      method = 'readback-blake3';
      await raceAbort(
        settleAll(
          slots.map(async (s) => {
            let got: { size: number; blake3: string };
            try {
              if (s.lane === undefined) throw new TypeError('durableWrite: internal error, no read-back lane');
              got = await s.lane.finish();
            } catch (err) {
              if (isAborted(signal)) throw abortedError(signal);
              throw targetError(err, 'read back', s.tempPath);
            }
            if (got.size !== ref.size || got.blake3 !== ref.blake3) {
              throw durableError(
                'DURABLE_READBACK_MISMATCH',
                `The bytes read back from ${s.tempPath} differ from what was written: the target disk (or its cable/RAM) is corrupting data; check it before trusting it. Nothing was kept.`,
                {
                  retryable: false,
                  detail: { path: s.finalPath, expected: ref, actual: got },
                },
              );
            }
          }),
        ),
        signal,
      );
    }
    const verifiedAt = new Date().toISOString();
    if (isAborted(signal)) throw abortedError(signal);

    // 6 + 7. link to the final name, remove the temp, fsync the directory
    await settleAll(
      slots.map(async (s) => {
        const reused = await commitSlot(fs, s, ref, signal, engine);
        s.copy = {
          path: s.finalPath,
          name: s.target.name,
          size: ref.size,
          blake3: ref.blake3,
          method,
          verifiedAt,
          reused,
        };
        if (s.tempExists) {
          try {
            await fs.unlink(s.tempPath);
            s.tempExists = false;
          } catch (err) {
            throw targetError(err, 'unlink temp', s.tempPath);
          }
        }
      }),
    );
    const dirs = [...new Set(slots.map((s) => s.target.dir))];
    await settleAll(
      dirs.map(async (d) => {
        try {
          await fsyncDir(d, fs);
        } catch (err) {
          throw targetError(err, 'fsync dir', d);
        }
      }),
    );

    return { size: ref.size, blake3: ref.blake3, copies: slots.map((s) => s.copy!) };
  } catch (caught) {
    let err: unknown = caught;
    if (
      isAborted(signal) &&
      !(err instanceof DurableWriteError && err.code !== 'DURABLE_ABORTED' && err.code !== 'DURABLE_SOURCE_FAILED')
    ) {
      err = abortedError(signal);
    }
    // A TypeError is a programmer's mistake (e.g. thrown by onProgress): it stays what it is.
    if (!(err instanceof DurableWriteError) && !(err instanceof TypeError))
      err = targetError(err, 'write', slots[0]!.tempPath);
    const committed = slots.filter((s) => s.copy !== undefined).map((s) => s.finalPath);
    if (committed.length > 0 && err instanceof DurableWriteError && err.detail !== undefined) {
      // Those final files are complete and verified: not partial, but the caller must know.
      err.detail.committed = committed;
    }
    throw err;
  } finally {
    hasher?.dispose();
    if (!sourceDone && iterator?.return !== undefined) {
      // Let the source release its file handle; do not wait on a stuck source.
      iterator.return().catch(() => undefined);
    }
    await Promise.allSettled(
      slots.map(async (s) => {
        await s.syncing;
        await s.lane?.close();
        s.lane = undefined;
        const fh = s.fh;
        s.fh = undefined;
        if (fh !== undefined) await fh.close().catch(() => undefined);
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

/**
 * Steps 6 and 7 of durableWrite for a file verified elsewhere: the studio's
 * staged file, written in the mirror target's file system, fsynced and read
 * back against the offered BLAKE3 by its caller (studiod/src/staging.ts), gets
 * its final name by link(2): never replacing (an identical final is reused,
 * other content → DURABLE_NAME_TAKEN), then the directory is fsynced. The
 * staged file itself is left where it is (a second name of the same inode)
 * unless the file system has no hard links, where it is renamed into place.
 */
export async function placeVerified(
  path: string,
  target: DurableTarget,
  ref: { size: number; blake3: string },
  opts: { fs?: DurableFs; signal?: AbortSignal; hashEngine?: HashEngine } = {},
): Promise<{ path: string; reused: boolean }> {
  checkTargetName(target.name);
  const fs = opts.fs ?? nodeFs;
  if (isAborted(opts.signal)) throw abortedError(opts.signal);
  try {
    await ensureDir(target.dir, fs);
  } catch (err) {
    throw targetError(err, 'mkdir', target.dir);
  }
  const finalPath = join(target.dir, target.name);
  const reused = await commitSlot(
    fs,
    { tempPath: path, finalPath, tempExists: true },
    ref,
    opts.signal,
    resolveHashEngine(opts.hashEngine),
  );
  try {
    await fsyncDir(target.dir, fs);
  } catch (err) {
    throw targetError(err, 'fsync dir', target.dir);
  }
  return { path: finalPath, reused };
}
