/**
 * Turns what went wrong during a durable write into a DurableWriteError with a
 * stable code, a sentence that says what to do, and `retryable` decided here.
 */
import { DurableWriteError, CodedError, errorCode, isRetryableSystemError } from '../errors.js';

export const DURABLE_CODES = [
  'DURABLE_SIZE_MISMATCH',
  'DURABLE_HASH_MISMATCH',
  'DURABLE_READBACK_MISMATCH',
  'DURABLE_SOURCE_FAILED',
  'DURABLE_NO_SPACE',
  'DURABLE_ACCESS_DENIED',
  'DURABLE_TARGET_MISSING',
  'DURABLE_IO_ERROR',
  'DURABLE_NAME_TAKEN',
  'DURABLE_ABORTED',
  'DURABLE_BAD_NAME',
  'DURABLE_MISSING',
] as const;
export type DurableCode = (typeof DURABLE_CODES)[number];

/** System error codes a pulled card / unplugged reader gives: the source may come back. */
const SOURCE_GONE_CODES = new Set(['EIO', 'ENOENT', 'ENODEV', 'ENXIO', 'ESTALE', 'ENOTCONN']);

export function durableError(
  code: DurableCode,
  message: string,
  opts: { cause?: unknown; retryable: boolean; detail?: Record<string, unknown> },
): DurableWriteError {
  return new DurableWriteError(code, message, {
    retryable: opts.retryable,
    detail: { ...(opts.detail ?? {}) },
    ...(opts.cause === undefined ? {} : { cause: opts.cause }),
  });
}

/** An error on a destination (temp, link, fsync, mkdir) → its coded error. */
export function targetError(err: unknown, op: string, path: string): DurableWriteError {
  if (err instanceof DurableWriteError) return err;
  const code = errorCode(err);
  const detail = { op, path, ...(code === undefined ? {} : { errno: code }) };
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return durableError(
        'DURABLE_NO_SPACE',
        `No space left on the target while writing ${path} (${op}): free space or use another target, then try again.`,
        { cause: err, retryable: false, detail },
      );
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return durableError(
        'DURABLE_ACCESS_DENIED',
        `The target refused ${op} of ${path} (${code}): check the disk is writable (not read-only, not locked) and the service user may write there.`,
        { cause: err, retryable: false, detail },
      );
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ENODEV':
    case 'ENXIO':
      return durableError(
        'DURABLE_TARGET_MISSING',
        `The target directory for ${path} is missing (${code}): check the disk is connected and mounted; the write will be retried.`,
        { cause: err, retryable: true, detail },
      );
    case 'EIO':
      return durableError(
        'DURABLE_IO_ERROR',
        `The target disk reported an I/O error during ${op} of ${path}: check its cable and health (SMART); if it keeps failing, replace the disk.`,
        { cause: err, retryable: true, detail },
      );
    case 'ENAMETOOLONG':
      return durableError(
        'DURABLE_BAD_NAME',
        `The path ${path} is too long for the target file system: use a shorter name or a shallower folder.`,
        { cause: err, retryable: false, detail },
      );
    default:
      return durableError(
        'DURABLE_IO_ERROR',
        `Writing to the target failed during ${op} of ${path}${code === undefined ? '' : ` (${code})`}: check the disk; see the cause for details.`,
        { cause: err, retryable: isRetryableSystemError(err), detail },
      );
  }
}

/** The hash implementation itself failed (a hash worker stopped). */
export function hashError(err: unknown): DurableWriteError {
  if (err instanceof DurableWriteError) return err;
  return durableError(
    'DURABLE_IO_ERROR',
    'Hashing failed (a hash worker stopped): the write will be retried; if it keeps failing, set S321_HASH_ENGINE=wasm.',
    {
      cause: err,
      retryable: true,
      detail: { op: 'hash' },
    },
  );
}

/** The source threw (card pulled, network stream cut…). */
export function sourceError(err: unknown): DurableWriteError {
  if (err instanceof DurableWriteError && err.code === 'DURABLE_ABORTED') return err;
  const code = errorCode(err);
  const retryable =
    err instanceof CodedError
      ? err.retryable
      : (code !== undefined && SOURCE_GONE_CODES.has(code)) || isRetryableSystemError(err);
  return durableError(
    'DURABLE_SOURCE_FAILED',
    `Reading the source failed${code === undefined ? '' : ` (${code})`}: ${retryable ? 'reconnect the card or source and the copy will be retried' : 'the source cannot be read; check the card or file'}. Nothing was kept from this attempt.`,
    { cause: err, retryable, detail: code === undefined ? {} : { errno: code } },
  );
}

export function abortedError(signal: AbortSignal | undefined): DurableWriteError {
  return durableError(
    'DURABLE_ABORTED',
    'The write was aborted (card removed or shutting down); nothing was kept from it and it can be started again.',
    {
      cause: signal?.reason,
      retryable: true,
    },
  );
}

/** A function, not a property read, so TypeScript does not narrow it across awaits. */
export function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
