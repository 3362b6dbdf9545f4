/**
 * One read of the mirror copy before it is uploaded: proves the source still
 * has the asset's BLAKE3 and size (a rotted mirror copy is never sent), and
 * computes the SHA-256 of the whole file and of each upload part, which go
 * with the upload as S3 integrity checksums and into the object metadata.
 */
import { createHash, type Hash } from 'node:crypto';
import { createHasher, readFileChunks, isRetryableSystemError, errorCode } from '@studio321/protocol';
import { CloudError, CLOUD_CODES } from './errors.js';
import type { PreparedSource } from './cloud-queue.js';

export async function digestSource(
  path: string,
  expected: { blake3: string; size: number },
  partSize: number,
  signal: AbortSignal,
): Promise<PreparedSource> {
  const b3 = createHasher();
  const whole = createHash('sha256');
  const partSha256: string[] = [];
  const partMd5: string[] = [];
  let part: Hash = createHash('sha256');
  let partMd: Hash = createHash('md5');
  let inPart = 0;
  let size = 0;
  try {
    for await (const chunk of readFileChunks(path, { signal, chunkSize: 4 * 1024 * 1024 })) {
      b3.update(chunk);
      whole.update(chunk);
      size += chunk.byteLength;
      let off = 0;
      while (off < chunk.byteLength) {
        const take = Math.min(chunk.byteLength - off, partSize - inPart);
        part.update(chunk.subarray(off, off + take));
        partMd.update(chunk.subarray(off, off + take));
        inPart += take;
        off += take;
        if (inPart === partSize) {
          partSha256.push(part.digest('base64'));
          partMd5.push(partMd.digest('base64'));
          part = createHash('sha256');
          partMd = createHash('md5');
          inPart = 0;
        }
      }
      if (size > expected.size) break;
    }
  } catch (err) {
    b3.dispose();
    if (signal.aborted) throw err;
    throw sourceReadError(err, path, expected.blake3);
  }
  if (inPart > 0 || partSha256.length === 0) {
    partSha256.push(part.digest('base64'));
    partMd5.push(partMd.digest('base64'));
  }
  const blake3 = size > expected.size ? 'not computed: longer than expected' : b3.digest();
  b3.dispose();
  if (size !== expected.size || blake3 !== expected.blake3) {
    throw new CloudError(
      CLOUD_CODES.sourceMismatch,
      `The mirror copy ${path} no longer matches asset ${expected.blake3} (size ${size}, expected ${expected.size}); ` +
        'it was not uploaded. Run `studioctl verify --target mirror` and repair it from the RAID copy, then `studioctl cloud retry`.',
      { retryable: false, detail: { path, expected, actual: { size, blake3 } } },
    );
  }
  return { sha256: whole.digest('hex'), partSize, partSha256, partMd5 };
}

/** S3's checksum of a multipart object built from SHA-256 parts: sha256(concat(part digests)), base64, `-N`. */
export function compositeSha256(partSha256b64: string[]): string {
  const h = createHash('sha256');
  for (const p of partSha256b64) h.update(Buffer.from(p, 'base64'));
  return `${h.digest('base64')}-${partSha256b64.length}`;
}

/**
 * A failed read of the mirror copy an upload reads from (the digest, or the upload's own
 * read) → CLOUD_SOURCE_MISSING (gone: not retryable) or CLOUD_SOURCE_UNREADABLE (retryable as its cause).
 */
export function sourceReadError(err: unknown, path: string, blake3?: string): CloudError {
  const code = errorCode(err);
  if (code === 'ENOENT') {
    return new CloudError(
      CLOUD_CODES.sourceMissing,
      `The mirror copy ${path}${blake3 === undefined ? '' : ` of asset ${blake3}`} is missing; it cannot be uploaded. ` +
        'Run `studioctl verify --target mirror`: it makes the mirror copy again from the RAID copy.',
      { cause: err, retryable: false, detail: blake3 === undefined ? { path } : { path, blake3 } },
    );
  }
  return new CloudError(
    CLOUD_CODES.sourceUnreadable,
    `Cannot read the mirror copy ${path} (${code ?? 'error'}); the upload stays queued.`,
    { cause: err, retryable: isRetryableSystemError(err) || code === 'EIO' || code === 'EMFILE', detail: { path } },
  );
}
