/**
 * Re-reads a file through the fs seam and hashes it, in large chunks, checking
 * for abort between chunks. Used by the durable write's step 8 (linkFinal: a
 * final name already taken by a file of the same size is hashed to decide
 * reuse) and by verifyFile. The temps of step 7 (readBack) are read back by a
 * lane instead (read-back-lane.ts), behind the fsyncs.
 */
import { readSync } from 'node:fs';
import { createHasher, HASH_READ_CHUNK, type HashEngine } from '../hash.js';
import { nodeFs, type DurableFs } from './fs-facade.js';

/**
 * Files up to this size are read back through one buffer of this size, taken from a
 * few kept for reuse: a 10 KB copy costs no 2 × 4 MiB of fresh memory (studiod's
 * verify reads every copy back; the archive is mostly small files).
 */
export const SMALL_READ_BACK = 64 * 1024;
const KEPT_SMALL_BUFFERS = 32;
const smallBuffers: Buffer[] = [];

/** Buffers kept for reuse right now (tests: the same few serve every small read-back). */
export function keptReadBackBuffers(): number {
  return smallBuffers.length;
}

export async function readBackHash(
  path: string,
  opts: {
    fs?: DurableFs;
    signal?: AbortSignal;
    chunkSize?: number;
    engine?: HashEngine;
    /** The size the file should have: a small one is read back through one reused small buffer. */
    sizeHint?: number;
  } = {},
): Promise<{ blake3: string; size: number }> {
  const fs = opts.fs ?? nodeFs;
  const hint = opts.sizeHint;
  if (hint !== undefined && hint < SMALL_READ_BACK) return readBackSmall(path, fs, opts);
  const chunkSize = opts.chunkSize ?? HASH_READ_CHUNK;
  const fh = await fs.open(path, 'r');
  const h = createHasher(opts.engine);
  try {
    // Two buffers: hash one while the next read fills the other.
    const bufs = [Buffer.allocUnsafeSlow(chunkSize), Buffer.allocUnsafeSlow(chunkSize)] as const;
    let pos = 0;
    let i = 0;
    let pending = fh.read(bufs[0], 0, chunkSize, 0);
    for (;;) {
      const { bytesRead } = await pending;
      opts.signal?.throwIfAborted();
      if (bytesRead === 0) break;
      const cur = bufs[i]!;
      pos += bytesRead;
      i ^= 1;
      pending = fh.read(bufs[i]!, 0, chunkSize, pos);
      h.update(bytesRead === chunkSize ? cur : cur.subarray(0, bytesRead));
    }
    return { blake3: h.digest(), size: pos };
  } finally {
    h.dispose();
    await fh.close();
  }
}

/** readBackHash of a file expected to be small: one reused buffer, read to the end (a larger file too). */
async function readBackSmall(
  path: string,
  fs: DurableFs,
  opts: { signal?: AbortSignal; engine?: HashEngine },
): Promise<{ blake3: string; size: number }> {
  const buf = smallBuffers.pop() ?? Buffer.allocUnsafeSlow(SMALL_READ_BACK);
  let reuse = false;
  const fh = await fs.open(path, 'r').catch((err: unknown) => {
    smallBuffers.push(buf);
    throw err;
  });
  const h = createHasher(opts.engine);
  try {
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      opts.signal?.throwIfAborted();
      if (bytesRead === 0) break;
      pos += bytesRead;
      h.update(buf.subarray(0, bytesRead));
    }
    // Only once no read is in flight into it may the buffer serve another read-back.
    reuse = true;
    return { blake3: h.digest(), size: pos };
  } finally {
    h.dispose();
    await fh.close();
    if (reuse && smallBuffers.length < KEPT_SMALL_BUFFERS) smallBuffers.push(buf);
  }
}

/**
 * readBackHash of a file already open for reading (`fd`), by synchronous reads from offset 0 to end of
 * file through one reused small buffer: the durable write of bytes in memory (durableWriteBytes), on a
 * thread whose file-system calls are synchronous, reads each temp back through its own descriptor.
 */
export function readBackFdSync(fd: number, engine?: HashEngine): { blake3: string; size: number } {
  const buf = smallBuffers.pop() ?? Buffer.allocUnsafeSlow(SMALL_READ_BACK);
  const h = createHasher(engine);
  try {
    let pos = 0;
    for (;;) {
      const bytesRead = readSync(fd, buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      h.update(buf.subarray(0, bytesRead));
    }
    return { blake3: h.digest(), size: pos };
  } finally {
    h.dispose();
    if (smallBuffers.length < KEPT_SMALL_BUFFERS) smallBuffers.push(buf);
  }
}
