/**
 * The DURABLE_ codes (the durable verified write and the read-back verifier),
 * the functions that turn what went wrong during a durable write into a
 * DurableWriteError with a stable code, a sentence that says what to do and
 * `retryable` decided here, and the one way a subsystem translates such a
 * failure into its own codes (DurableTable, translateDurable).
 */
import { DurableWriteError, CodedError, errorCode, isRetryableSystemError, type CodedErrorOptions } from '../errors.js';

export const DURABLE_CODES = {
  /** The source gave fewer or more bytes than `expected.size`. Not retryable as-is (read it again from the start). */
  sizeMismatch: 'DURABLE_SIZE_MISMATCH',
  /** The bytes read do not have `expected.blake3`. Not retryable as-is (re-read or re-send the source). */
  hashMismatch: 'DURABLE_HASH_MISMATCH',
  /** The bytes read back from the target after fsync differ from those written (disk, cable, RAM). Not retryable. */
  readbackMismatch: 'DURABLE_READBACK_MISMATCH',
  /** The source threw while being read. Retryable iff the cause is (a pulled card is). */
  sourceFailed: 'DURABLE_SOURCE_FAILED',
  /** ENOSPC or EDQUOT on the target. Not retryable until space is freed. */
  noSpace: 'DURABLE_NO_SPACE',
  /** EACCES, EPERM or EROFS on the target. Not retryable. */
  accessDenied: 'DURABLE_ACCESS_DENIED',
  /** The target directory is gone (unmounted or unplugged disk). Retryable. */
  targetMissing: 'DURABLE_TARGET_MISSING',
  /** EIO or another system error on the target. Retryable for EIO, otherwise as the system error. */
  ioError: 'DURABLE_IO_ERROR',
  /** The final name already holds different content (never replaced). Not retryable. */
  nameTaken: 'DURABLE_NAME_TAKEN',
  /** The caller's AbortSignal fired (card removed, shutdown). Retryable. */
  aborted: 'DURABLE_ABORTED',
  /** The target name is not one safe path segment, or the path is too long. Not retryable. */
  badName: 'DURABLE_BAD_NAME',
  /** verifyFile verdict (not thrown): the file is not there. */
  missing: 'DURABLE_MISSING',
} as const;

export type DurableCode = (typeof DURABLE_CODES)[keyof typeof DURABLE_CODES];

const DURABLE_CODE_SET: ReadonlySet<string> = new Set(Object.values(DURABLE_CODES));

export function isDurableCode(code: unknown): code is DurableCode {
  return typeof code === 'string' && DURABLE_CODE_SET.has(code);
}

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
        DURABLE_CODES.noSpace,
        `No space left on the target while writing ${path} (${op}): free space or use another target, then try again.`,
        { cause: err, retryable: false, detail },
      );
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return durableError(
        DURABLE_CODES.accessDenied,
        `The target refused ${op} of ${path} (${code}): check the disk is writable (not read-only, not locked) and the service user may write there.`,
        { cause: err, retryable: false, detail },
      );
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ENODEV':
    case 'ENXIO':
      return durableError(
        DURABLE_CODES.targetMissing,
        `The target directory for ${path} is missing (${code}): check the disk is connected and mounted; the write will be retried.`,
        { cause: err, retryable: true, detail },
      );
    case 'EIO':
      return durableError(
        DURABLE_CODES.ioError,
        `The target disk reported an I/O error during ${op} of ${path}: check its cable and health (SMART); if it keeps failing, replace the disk.`,
        { cause: err, retryable: true, detail },
      );
    case 'ENAMETOOLONG':
      return durableError(
        DURABLE_CODES.badName,
        `The path ${path} is too long for the target file system: use a shorter name or a shallower folder.`,
        { cause: err, retryable: false, detail },
      );
    default:
      return durableError(
        DURABLE_CODES.ioError,
        `Writing to the target failed during ${op} of ${path}${code === undefined ? '' : ` (${code})`}: check the disk; see the cause for details.`,
        { cause: err, retryable: isRetryableSystemError(err), detail },
      );
  }
}

/** The hash implementation itself failed (a hash worker stopped). */
export function hashError(err: unknown): DurableWriteError {
  if (err instanceof DurableWriteError) return err;
  return durableError(
    DURABLE_CODES.ioError,
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
  if (err instanceof DurableWriteError && err.code === DURABLE_CODES.aborted) return err;
  const code = errorCode(err);
  const retryable =
    err instanceof CodedError
      ? err.retryable
      : (code !== undefined && SOURCE_GONE_CODES.has(code)) || isRetryableSystemError(err);
  return durableError(
    DURABLE_CODES.sourceFailed,
    `Reading the source failed${code === undefined ? '' : ` (${code})`}: ${retryable ? 'reconnect the card or source and the copy will be retried' : 'the source cannot be read; check the card or file'}. Nothing was kept from this attempt.`,
    { cause: err, retryable, detail: code === undefined ? {} : { errno: code } },
  );
}

export function abortedError(signal: AbortSignal | undefined): DurableWriteError {
  return durableError(
    DURABLE_CODES.aborted,
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

/**
 * What one subsystem makes of a DURABLE_ failure: its own code, whether trying
 * again may help (`'cause'`: as the failure says), the sentence the user reads
 * and the error's `detail` (none when absent), from the caller's context `X`.
 */
export interface DurableTranslation<C extends string, X> {
  readonly code: C;
  readonly retryable: boolean | 'cause';
  readonly message: (x: X) => string;
  readonly detail?: (x: X) => Record<string, unknown>;
}

/**
 * One subsystem's translation of EVERY DURABLE_ code, so a new DURABLE_ code does
 * not compile until each subsystem has said what it means there. `undefined`: not
 * translated (the durable error goes on as it is, or the caller deals with that
 * code before, e.g. DURABLE_NAME_TAKEN → the next free name).
 */
export type DurableTable<C extends string, X, T extends DurableTranslation<C, X> = DurableTranslation<C, X>> = {
  readonly [K in DurableCode]: T | undefined;
};

/** A failure in a subsystem's words: the table entry used, and the code, message and options of the new error. */
export interface Translated<C extends string, T> {
  entry: T;
  code: C;
  message: string;
  options: CodedErrorOptions;
}

/** `entry` applied to `err` (the new error's cause); `'cause'` is `err.retryable`, false for an uncoded error. */
export function applyTranslation<X, T extends DurableTranslation<string, X>>(
  entry: T,
  err: unknown,
  x: X,
): Translated<T['code'], T> {
  const retryable = entry.retryable === 'cause' ? err instanceof CodedError && err.retryable : entry.retryable;
  const detail = entry.detail?.(x);
  return {
    entry,
    code: entry.code,
    message: entry.message(x),
    options: { cause: err, retryable, ...(detail === undefined ? {} : { detail }) },
  };
}

/** `err` translated by `table` when it is a coded DURABLE_ failure the table translates; undefined otherwise. */
export function translateDurable<X, T extends DurableTranslation<string, X>>(
  err: unknown,
  table: { readonly [K in DurableCode]: T | undefined },
  x: X,
): Translated<T['code'], T> | undefined {
  if (!(err instanceof CodedError) || !isDurableCode(err.code)) return undefined;
  const entry = table[err.code];
  return entry === undefined ? undefined : applyTranslation(entry, err, x);
}
