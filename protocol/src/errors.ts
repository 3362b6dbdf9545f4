/**
 * Error classes with stable codes.
 *
 * Every error a user can see carries:
 *  - `code`: a stable machine-readable string (listed in docs/errors.md),
 *  - a message that says what happened AND what to do,
 *  - `retryable`: whether trying again later may succeed (ECONNRESET, 503, a
 *    target that is temporarily unmounted) or not (hash mismatch, auth refused,
 *    a malformed frame). Queues and forwarders branch on this, never on text.
 *  - `cause`: the underlying error, when there is one.
 *
 * Subsystems use their own prefix: PROTO_ (wire), DURABLE_ (verified write),
 * AGENT_, STUDIO_, CLOUD_, CONFIG_.
 */

export interface CodedErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  /** Extra structured detail (path, offset, expected/actual hash…) for logs and --json. */
  detail?: Record<string, unknown>;
}

export class CodedError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: CodedErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.detail = options.detail;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
    };
  }
}

/** A peer sent something the protocol does not allow. Never retryable as-is. */
export class ProtocolError extends CodedError {}

/** The durable verified-write primitive failed; nothing partial was left behind. */
export class DurableWriteError extends CodedError {}

/** Configuration is invalid; the message names the file and the field. */
export class ConfigError extends CodedError {}

/** Node's system error shape (ENOSPC, EACCES…), narrowed without `any`. */
export interface SystemError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

export function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

export function errorCode(err: unknown): string | undefined {
  return isSystemError(err) ? err.code : undefined;
}

/**
 * System error codes that mean "try again later": the resource may come back
 * (network, a remounted disk, a busy file). ENOSPC is NOT here: a full disk needs
 * a human, and callers report it as permanent until free space is seen again.
 */
const RETRYABLE_SYSTEM_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'EAGAIN',
  'EBUSY',
  'ENOTCONN',
]);

export function isRetryableSystemError(err: unknown): boolean {
  if (err instanceof CodedError) return err.retryable;
  const code = errorCode(err);
  return code !== undefined && RETRYABLE_SYSTEM_CODES.has(code);
}

/**
 * True when `code` is on the error or anywhere down its `cause` chain (libraries
 * wrap: abstract-level reports a held lock as LEVEL_DATABASE_NOT_OPEN whose cause
 * is LEVEL_LOCKED). Bounded depth: a cyclic chain cannot loop.
 */
export function hasCodeInChain(err: unknown, code: string, maxDepth = 8): boolean {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < maxDepth; depth++) {
    if (errorCode(e) === code) return true;
    e = e.cause;
  }
  return false;
}
