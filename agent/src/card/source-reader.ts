/**
 * Reads one file off a card, once, for durableWrite — and proves it did not
 * change while it was read.
 *
 *  - opened with O_NOFOLLOW: a symlink swapped in after the listing is refused (ELOOP);
 *  - must be a regular file whose size and mtime still match the listing;
 *  - after the last chunk, the open file's and the path's size, mtime and ctime
 *    (nanoseconds) are compared with the values at open and the byte count with
 *    the size: any difference throws AGENT_SOURCE_CHANGED, so durableWrite discards
 *    its temps and nothing is recorded with a hash of bytes that never existed together;
 *  - reads one chunk ahead so the card is read while the previous chunk is
 *    written and hashed.
 *
 * Memory: chunks are read into a ring of pooled buffers per file (not a fresh
 * buffer per chunk: that cost a page fault per 4 KiB, ~550,000 per 2 GB card,
 * and left tens of MB of garbage chunks for the GC). So a yielded chunk stays
 * valid only until the consumer asks for the NEXT chunk (or for what follows
 * the last one), and every buffer goes back to the pool when the file ends.
 * durableWrite (asks for chunk k+1 only after chunk k is written and hashed) and
 * hashStream (done with a chunk before asking for the next) fit; a consumer that
 * keeps chunks longer must copy them.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type BigIntStats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { AGENT_CODES, AgentError } from '../errors.js';

/**
 * 4 MiB: fewer reads, writes and hash calls per card than 1 MiB chunks (README,
 * Performance). Every buffer is pooled (see Memory above), so the chunk size
 * does not turn into garbage.
 */
export const SOURCE_CHUNK = 4 * 1024 * 1024;

/** Files smaller than this are read whole into a buffer of their own size, in one read (no ring, no read-ahead). */
export const SMALL_FILE = 256 * 1024;

/**
 * A file's mtime as the listing records it and every later identity check compares it:
 * whole milliseconds cut from the exact nanoseconds. Never from `Stats.mtimeMs`: that double
 * rounds up to the next millisecond for about one file in 4,000 (e.g. …999.9999 ms), so a
 * listing made from it never matches the exact value again and the file fails with
 * AGENT_SOURCE_CHANGED on every try.
 */
export function mtimeMsOf(st: Pick<BigIntStats, 'mtimeNs'>): number {
  return Number(st.mtimeNs / 1_000_000n);
}

export interface SourceExpectation {
  size: number;
  mtimeMs: number;
}

export type SourceOpener = (
  path: string,
  expect: SourceExpectation,
  opts: { signal?: AbortSignal },
) => AsyncIterable<Uint8Array>;

export interface Ident {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

function changed(path: string, what: string): AgentError {
  return new AgentError(
    AGENT_CODES.sourceChanged,
    `${path} changed while it was being copied (${what}): the copy was discarded and will be made again once the file is stable.`,
    { retryable: true, detail: { path } },
  );
}

/**
 * Buffers a file's chunks cycle through: the chunk the consumer holds and the
 * one being read ahead (see the header: valid until the consumer asks for the next).
 */
const RING = 2;

/**
 * Full-size ring buffers handed back by files read to the end, for the next file
 * (fresh buffers cost a page fault per 4 KiB). At most POOL_MAX are kept (the files reading at once × RING, and spares).
 */
const POOL_MAX = 8;
const pool: Buffer[] = [];

function takeBuffer(size: number): Buffer {
  if (size === SOURCE_CHUNK) {
    const b = pool.pop();
    if (b !== undefined) return b;
  }
  return Buffer.allocUnsafeSlow(size);
}

/** Starts a read; a failure is kept for whoever awaits it (never an unhandled rejection while suspended at a yield). */
function startRead(fh: FileHandle, pos: number, size: number, into: Buffer): Promise<Uint8Array> {
  const p = readChunk(fh, pos, size, into);
  p.catch(() => undefined);
  return p;
}

async function readChunk(fh: FileHandle, pos: number, size: number, into?: Buffer): Promise<Uint8Array> {
  const buf = into === undefined ? Buffer.allocUnsafeSlow(size) : into.subarray(0, size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await fh.read(buf, got, size - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === size ? buf : buf.subarray(0, got);
}

/**
 * At open: the handle's stat says a regular file of the listed size and mtime (the listing's
 * precision, mtimeMsOf). Returns what the read must still find after it (unchangedAfter).
 */
export function openedAsListed(path: string, st: BigIntStats, expect: SourceExpectation): Ident {
  if (!st.isFile()) throw changed(path, 'it is no longer a regular file');
  if (Number(st.size) !== expect.size || mtimeMsOf(st) !== expect.mtimeMs) {
    throw changed(path, 'its size or time differ from the listing');
  }
  return { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino };
}

/**
 * After the read: the path still names the inode that was opened (not replaced), and its size,
 * mtime and ctime are those at open (not written in place: a write moves ctime even when it
 * puts mtime back). Same inode, so this stat (`now`, of the path) is also the open handle's.
 */
export function unchangedAfter(path: string, before: Ident, now: BigIntStats): void {
  if (now.ino !== before.ino) throw changed(path, 'it was replaced');
  if (now.size !== before.size || now.mtimeNs !== before.mtimeNs || now.ctimeNs !== before.ctimeNs)
    throw changed(path, 'its size or times changed');
}

async function unchangedOnPath(path: string, before: Ident): Promise<void> {
  unchangedAfter(path, before, await stat(path, { bigint: true }));
}

/**
 * A small file (under SMALL_FILE) read whole with synchronous calls, for a thread whose only
 * work is reading (small-read-worker.ts): the same checks as readCardFile's (O_NOFOLLOW, the
 * listing at open, the path's inode, size and times after), five system calls and no thread-pool
 * round trip. Returns a buffer of its own (never pooled).
 */
export function readSmallCardFileSync(path: string, expect: SourceExpectation): Uint8Array {
  if (expect.size >= SMALL_FILE) throw new TypeError(`readSmallCardFileSync: ${path} is not small`);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const before = openedAsListed(path, fstatSync(fd, { bigint: true }), expect);
    const buf = Buffer.allocUnsafeSlow(expect.size);
    let got = 0;
    while (got < expect.size) {
      const n = readSync(fd, buf, got, expect.size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got !== expect.size) throw changed(path, `read ${got} bytes, listed ${expect.size}`);
    unchangedAfter(path, before, statSync(path, { bigint: true }));
    return buf;
  } finally {
    closeSync(fd);
  }
}

export async function* readCardFile(
  path: string,
  expect: SourceExpectation,
  opts: { signal?: AbortSignal; chunkSize?: number } = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const chunkSize = opts.chunkSize ?? SOURCE_CHUNK;
  opts.signal?.throwIfAborted();
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  let next: Promise<Uint8Array> | undefined;
  try {
    const before = openedAsListed(path, await fh.stat({ bigint: true }), expect);
    const size = expect.size;
    const ring: Buffer[] = [];
    let turn = 0;
    const nextBuffer = (): Buffer => {
      const i = turn++ % RING;
      ring[i] ??= takeBuffer(chunkSize);
      return ring[i];
    };
    let pos = 0;
    if (size < SMALL_FILE) {
      // A small file is read whole into a buffer of its size (one read), with no read of a tail:
      // the stat of the path after it proves the inode still has the listed size and the times it
      // had at open, so there was nothing more and nothing changed (the same inode's stat is the
      // open handle's, so no fstat after the read either).
      const got = size > 0 ? await readChunk(fh, 0, size) : Buffer.alloc(0);
      opts.signal?.throwIfAborted();
      if (got.byteLength !== size) throw changed(path, `read ${got.byteLength} bytes, listed ${size}`);
      await unchangedOnPath(path, before);
      if (size > 0) yield got;
      return;
    }
    next = startRead(fh, 0, Math.min(chunkSize, size), nextBuffer());
    while (next !== undefined) {
      const chunk: Uint8Array = await next;
      pos += chunk.byteLength;
      opts.signal?.throwIfAborted();
      // Start the next read before handing this chunk over (one chunk of read-ahead):
      // it fills the buffer of the previous chunk, which the consumer finished with
      // before asking for this one.
      next =
        chunk.byteLength > 0 && pos < size
          ? startRead(fh, pos, Math.min(chunkSize, size - pos), nextBuffer())
          : undefined;
      if (chunk.byteLength > 0) yield chunk;
      if (chunk.byteLength === 0) break;
    }
    // Nothing more than the listed size may be there, and nothing may have changed.
    const tail = await readChunk(fh, pos, 1);
    if (pos !== size || tail.byteLength !== 0)
      throw changed(path, `read ${pos + tail.byteLength}+ bytes, listed ${size}`);
    await unchangedOnPath(path, before);
    // Read to the end, and the consumer asked for what follows the last chunk, so it is
    // done with every chunk: all ring buffers are free. (After an error or an early
    // return they are left to the GC: a write of the last chunk may still be running.)
    for (const b of ring) if (b.byteLength === SOURCE_CHUNK && pool.length < POOL_MAX) pool.push(b);
  } finally {
    // A consumer that stops early (a target failed) must not leave a read in flight on a closed handle.
    await next?.catch(() => undefined);
    await fh.close();
  }
}
