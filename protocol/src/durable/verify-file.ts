/**
 * The read-back verifier: re-reads a committed file and hashes it (scrub, studioctl
 * verify, checks before a card is declared safe), the same comparison as the
 * durable write's step 7 (readBack: size, then BLAKE3) on a file long after step 9. A verdict on the file is
 * returned; a problem that says nothing about the file (aborted, access denied)
 * is thrown as a DurableWriteError. Callers check that the target root exists
 * (a mounted disk) before trusting a DURABLE_MISSING verdict.
 */
import { stat } from 'node:fs/promises';
import { errorCode } from '../errors.js';
import { abortedError, DURABLE_CODES, isAborted, targetError, type DurableCode } from './errors.js';
import type { HashEngine } from '../hash.js';
import { readBackHash } from './read-back.js';

export interface VerifyResult {
  ok: boolean;
  size: number;
  /** '' when the bytes were not hashed (missing, or the size already differs). */
  blake3: string;
  verifiedAt: string;
  /** Why ok is false: DURABLE_MISSING, DURABLE_SIZE_MISMATCH, DURABLE_HASH_MISMATCH, DURABLE_IO_ERROR (unreadable bytes). */
  code?: DurableCode;
}

export async function verifyFile(
  path: string,
  expected: { size: number; blake3: string },
  opts: { signal?: AbortSignal; hashEngine?: HashEngine } = {},
): Promise<VerifyResult> {
  const signal = opts.signal;
  if (isAborted(signal)) throw abortedError(signal);
  const now = (): string => new Date().toISOString();
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) return { ok: false, size: 0, blake3: '', verifiedAt: now(), code: DURABLE_CODES.missing };
    size = st.size;
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      // A verdict: the copy is not there. The CALLER checks first that the target root is
      // mounted, so an unplugged disk is not read as "every copy lost".
      return { ok: false, size: 0, blake3: '', verifiedAt: now(), code: DURABLE_CODES.missing };
    }
    throw targetError(err, 'verify', path);
  }
  if (size !== expected.size)
    return { ok: false, size, blake3: '', verifiedAt: now(), code: DURABLE_CODES.sizeMismatch };
  let got: { size: number; blake3: string };
  try {
    got = await readBackHash(path, {
      sizeHint: size,
      ...(signal === undefined ? {} : { signal }),
      ...(opts.hashEngine === undefined ? {} : { engine: opts.hashEngine }),
    });
  } catch (err) {
    if (isAborted(signal)) throw abortedError(signal);
    if (errorCode(err) === 'EIO')
      return { ok: false, size, blake3: '', verifiedAt: now(), code: DURABLE_CODES.ioError };
    throw targetError(err, 'verify', path);
  }
  if (got.size !== expected.size)
    return { ok: false, size: got.size, blake3: got.blake3, verifiedAt: now(), code: DURABLE_CODES.sizeMismatch };
  if (got.blake3 !== expected.blake3)
    return { ok: false, size: got.size, blake3: got.blake3, verifiedAt: now(), code: DURABLE_CODES.hashMismatch };
  return { ok: true, size: got.size, blake3: got.blake3, verifiedAt: now() };
}
