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
 *    written and hashed (the memory held is bounded: two chunks).
 */
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { AGENT_CODES, AgentError } from './errors.js';

export const SOURCE_CHUNK = 4 * 1024 * 1024;

export interface SourceExpectation {
  size: number;
  mtimeMs: number;
}

export type SourceOpener = (path: string, expect: SourceExpectation, opts: { signal?: AbortSignal }) => AsyncIterable<Uint8Array>;

interface Ident {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

function changed(path: string, what: string): AgentError {
  return new AgentError(AGENT_CODES.sourceChanged, `${path} changed while it was being copied (${what}): the copy was discarded and will be made again once the file is stable.`, { retryable: true, detail: { path } });
}

/** Starts a read; a failure is kept for whoever awaits it (never an unhandled rejection while suspended at a yield). */
function startRead(fh: FileHandle, pos: number, size: number): Promise<Uint8Array> {
  const p = readChunk(fh, pos, size);
  p.catch(() => undefined);
  return p;
}

async function readChunk(fh: FileHandle, pos: number, size: number): Promise<Uint8Array> {
  const buf = Buffer.allocUnsafeSlow(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await fh.read(buf, got, size - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === size ? buf : buf.subarray(0, got);
}

export async function* readCardFile(path: string, expect: SourceExpectation, opts: { signal?: AbortSignal; chunkSize?: number } = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const chunkSize = opts.chunkSize ?? SOURCE_CHUNK;
  opts.signal?.throwIfAborted();
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  let next: Promise<Uint8Array> | undefined;
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) throw changed(path, 'it is no longer a regular file');
    const before: Ident = { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino };
    if (Number(st.size) !== expect.size || Math.trunc(Number(st.mtimeNs / 1_000_000n)) !== expect.mtimeMs) {
      throw changed(path, 'its size or time differ from the listing');
    }
    const size = expect.size;
    let pos = 0;
    next = size > 0 ? startRead(fh, 0, Math.min(chunkSize, size)) : undefined;
    while (next !== undefined) {
      const chunk = await next;
      pos += chunk.byteLength;
      opts.signal?.throwIfAborted();
      // Start the next read before handing this chunk over (one chunk of read-ahead).
      next = chunk.byteLength > 0 && pos < size ? startRead(fh, pos, Math.min(chunkSize, size - pos)) : undefined;
      if (chunk.byteLength > 0) yield chunk;
      if (chunk.byteLength === 0) break;
    }
    // Nothing more than the listed size may be there, and nothing may have changed.
    const tail = await readChunk(fh, pos, 1);
    const after = await fh.stat({ bigint: true });
    const onPath = await stat(path, { bigint: true });
    if (pos !== size || tail.byteLength !== 0) throw changed(path, `read ${pos + tail.byteLength}+ bytes, listed ${size}`);
    if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs) throw changed(path, 'its size or times changed');
    if (onPath.ino !== before.ino || onPath.size !== before.size || onPath.mtimeNs !== before.mtimeNs) throw changed(path, 'it was replaced');
  } finally {
    // A consumer that stops early (a target failed) must not leave a read in flight on a closed handle.
    await next?.catch(() => undefined);
    await fh.close();
  }
}
