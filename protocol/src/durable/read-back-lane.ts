/**
 * Reads back a temp file WHILE it is still being written, behind the durable
 * mark: only bytes already covered by a completed fdatasync/fsync are read and
 * hashed, in order, on a hash-pool worker. So the source hash (main thread) and
 * the read-back hash (a worker) use two cores, and the read-back costs no extra
 * pass after the last byte. Every byte is still read back after it was made
 * durable, which is what "verified" means here (docs/design.md, Durable write).
 * In the durable write's steps: opened in 3 (openTemp), advanced in 4 (stream)
 * as each fdatasync completes, finished in 7 (readBack).
 */
import { nodeFs, type DurableFileHandle, type DurableFs } from './fs-facade.js';
import { createLocalAsyncHasher, type AsyncHasher, type HashPool } from './hash-pool.js';

/** Read-back chunk: small enough that chunks in flight to a worker stay few MiB. */
const LANE_CHUNK = 1024 * 1024;
/**
 * A temp whose durable bytes fit in this when the lane first reads it (a small file written in
 * one chunk: small-writer.ts, studiod's small commits) is read back through a buffer of this
 * size: the whole file, then end of file, in a few KiB of fresh memory instead of a 1 MiB chunk
 * (the small-file writer runs 16 lanes at once; each 1 MiB buffer it allocated was zeroed whole).
 */
const SMALL_CHUNK = 64 * 1024;
/**
 * Read buffers of lanes that finished, for the next lanes of this thread, by size: a lane reads a
 * 10 KB file into a whole chunk (it cannot know the size before end of file), and studiod's
 * small-file commits read back thousands of files a minute; a fresh buffer each was GC work and RSS.
 */
const freeChunks: Record<number, Uint8Array[]> = { [LANE_CHUNK]: [], [SMALL_CHUNK]: [] };
const FREE_CHUNKS_KEPT = { [LANE_CHUNK]: 8, [SMALL_CHUNK]: 32 } as Record<number, number>;

/** A kept buffer of `size` bytes, or a fresh one. */
function takeChunk(size: number): Uint8Array {
  return freeChunks[size]?.pop() ?? new Uint8Array(size);
}

/** Keeps a buffer for the next lane of this thread (a few of each size). */
function keepChunk(buf: Uint8Array): void {
  const kept = freeChunks[buf.byteLength];
  if (kept !== undefined && kept.length < (FREE_CHUNKS_KEPT[buf.byteLength] ?? 0)) kept.push(buf);
}

export class ReadBackLane {
  readonly #fs: DurableFs;
  readonly #path: string;
  readonly #hasher: AsyncHasher;
  readonly #signal: AbortSignal | undefined;
  #fh: DurableFileHandle | undefined;
  #durableTo = 0;
  #readPos = 0;
  #eof = false;
  #pumping: Promise<void> | undefined;
  #error: unknown;
  #failed = false;
  #spare: Uint8Array | undefined;
  /** The size the writer wrote (finish), to size the first buffer only. */
  #sizeHint = Number.POSITIVE_INFINITY;

  constructor(fs: DurableFs, path: string, hasher: AsyncHasher, signal: AbortSignal | undefined) {
    this.#fs = fs;
    this.#path = path;
    this.#hasher = hasher;
    this.#signal = signal;
  }

  async open(): Promise<void> {
    this.#fh = await this.#fs.open(this.#path, 'r');
  }

  /** Bytes [0, upTo) are durable: read them back. Infinity = up to end of file. */
  advance(upTo: number): void {
    if (upTo > this.#durableTo) this.#durableTo = upTo;
    this.#kick();
  }

  #kick(): void {
    if (this.#pumping !== undefined || this.#failed || this.#eof || this.#readPos >= this.#durableTo) return;
    this.#pumping = this.#pump()
      .catch((err: unknown) => {
        this.#failed = true;
        this.#error = err;
      })
      .finally(() => {
        this.#pumping = undefined;
        this.#kick();
      });
  }

  async #pump(): Promise<void> {
    const fh = this.#fh;
    if (fh === undefined) throw new TypeError('ReadBackLane: open() first');
    while (this.#readPos < this.#durableTo && !this.#eof && !this.#failed) {
      this.#signal?.throwIfAborted();
      // The lane's own buffer once it has one (end of file is looked for with it); the first
      // read takes a small one when what is left to read fits in it: the bytes durable so far,
      // or after the final fsync the size the writer wrote. Only the buffer depends on that size:
      // the lane reads to end of file whatever it is.
      const left = (this.#durableTo === Number.POSITIVE_INFINITY ? this.#sizeHint : this.#durableTo) - this.#readPos;
      const buf = this.#spare ?? takeChunk(left <= SMALL_CHUNK ? SMALL_CHUNK : LANE_CHUNK);
      this.#spare = undefined;
      const want = Math.min(buf.byteLength, this.#durableTo - this.#readPos);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, this.#readPos + got);
        if (bytesRead === 0) {
          this.#eof = true;
          break;
        }
        got += bytesRead;
      }
      if (got === 0) break;
      this.#readPos += got;
      // Hand over a view of exactly `got` bytes; a buffer given back is reused for the next read.
      const whole = got === buf.byteLength;
      const back = await this.#hasher.update(whole ? buf : buf.slice(0, got));
      if (back !== undefined && back.byteLength === buf.byteLength) this.#spare = back;
      else if (!whole) this.#spare = buf;
    }
  }

  /** Reads through the injected fs: no direct reads here. */
  readDirect(): void {}

  /**
   * After the final fsync: reads the rest up to end of file and returns what was read back.
   * `sizeHint`: the size the writer wrote (the buffer is sized by it, not the reading).
   */
  async finish(sizeHint?: number): Promise<{ size: number; blake3: string }> {
    if (sizeHint !== undefined) this.#sizeHint = sizeHint;
    this.advance(Number.POSITIVE_INFINITY);
    while (this.#pumping !== undefined) await this.#pumping;
    if (this.#failed) throw this.#error;
    return { size: this.#readPos, blake3: await this.#hasher.digest() };
  }

  /** Stops reading and releases the handle and hash state; never throws. */
  async close(): Promise<void> {
    this.#failed = true;
    while (this.#pumping !== undefined) await this.#pumping.catch(() => undefined);
    this.#hasher.dispose();
    if (this.#spare !== undefined) keepChunk(this.#spare);
    this.#spare = undefined;
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
  }
}

/** What durableWrite and the studio's staging use to read a file back behind its fsyncs. */
export interface ReadBack {
  open(): Promise<void>;
  /** Bytes [0, upTo) are durable: they may be read back. Infinity = up to end of file. */
  advance(upTo: number): void;
  /**
   * The writer wrote with O_DIRECT (direct-io.ts): read whole blocks back the same way, from the
   * disk into one aligned buffer (the page cache holds none of those bytes). Only a FileLane does.
   */
  readDirect(): void;
  /**
   * After the final fsync: read to end of file; the size and BLAKE3 of what was read back.
   * `sizeHint`: the size written, which may size the read buffer (never what is read).
   */
  finish(sizeHint?: number): Promise<{ size: number; blake3: string }>;
  /** Stops and releases everything; never throws. */
  close(): Promise<void>;
}

/**
 * The read-back for `path`: on the real file system with a hash pool, a FileLane
 * (the worker reads the file itself: nothing per chunk on the calling thread);
 * through an injected fs (fault injection in tests) or without a pool, a
 * ReadBackLane that reads through that fs and hashes on the pool or this thread.
 */
export function createReadBack(
  path: string,
  opts: { fs: DurableFs; pool: HashPool | false; engine: 'wasm' | 'native'; signal: AbortSignal | undefined },
): ReadBack {
  const { fs, pool, engine, signal } = opts;
  const fileLane = fs === nodeFs && pool !== false ? pool.createFileLane(path, engine, signal) : undefined;
  return (
    fileLane ??
    new ReadBackLane(fs, path, pool === false ? createLocalAsyncHasher(engine) : pool.createHasher(engine), signal)
  );
}
