/**
 * Re-reads a file through the fs seam and hashes it, in large chunks, checking
 * for abort between chunks. Used by the durable write's step 8 (linkFinal: a
 * final name already taken by a file of the same size is hashed to decide
 * reuse) and by verifyFile. The temps of step 7 (readBack) are read back by a
 * lane instead (read-back-lane.ts), behind the fsyncs.
 */
import { createHasher, HASH_READ_CHUNK, type HashEngine } from '../hash.js';
import { nodeFs, type DurableFs } from './fs-facade.js';

export async function readBackHash(
  path: string,
  opts: { fs?: DurableFs; signal?: AbortSignal; chunkSize?: number; engine?: HashEngine } = {},
): Promise<{ blake3: string; size: number }> {
  const fs = opts.fs ?? nodeFs;
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
