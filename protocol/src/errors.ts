/**
 * Error classes with stable codes, and the code tables of the protocol package.
 *
 * Every error a user can see carries:
 *  - `code`: a stable machine-readable string (listed in docs/errors.md),
 *  - a message that says what happened AND what to do,
 *  - `retryable`: whether trying again later may succeed (ECONNRESET, 503, a
 *    target that is temporarily unmounted) or not (hash mismatch, auth refused,
 *    a malformed frame). Queues and forwarders branch on this, never on text.
 *  - `cause`: the underlying error, when there is one.
 *
 * Codes are API. Each prefix has ONE table, in one file, of one shape
 * (`X_CODES = { camelCase: 'X_SCREAMING' }`, `XCode`, an error class taking an
 * `XCode`); code strings appear nowhere else (test/docs/error-codes.test.ts):
 *   PROTO_, CONFIG_ here; DURABLE_ protocol/src/durable/errors.ts;
 *   AGENT_ agent/src/errors.ts; LINK_ agent/src/link/errors.ts;
 *   STUDIO_ studiod/src/errors.ts; LEDGER_ studiod/src/ledger/errors.ts;
 *   CLOUD_ studiod/src/cloud/errors.ts.
 * CONFIG_ lives here rather than in config.ts: both programs' loaders throw it,
 * and config.ts stays the schema and its validator.
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

/**
 * Stable PROTO_ error codes: the `code` of ProtocolError, of Error frames and of
 * Nack frames (protocol/SPEC.md §7, docs/errors.md §PROTO_).
 */
export const PROTO_CODES = {
  /** Frame larger than MAX_FRAME_BYTES (or a ws message over maxPayload). Not retryable. */
  frameTooLarge: 'PROTO_FRAME_TOO_LARGE',
  /** Not one well-formed msgpack map within the structural limits. Not retryable. */
  malformed: 'PROTO_MALFORMED',
  /** `t` is not a v1 message type. Not retryable. */
  unknownType: 'PROTO_UNKNOWN_TYPE',
  /** A field is missing, of the wrong type, or out of range; detail.field names it. Not retryable. */
  invalidField: 'PROTO_INVALID_FIELD',
  /** Hello without magic "S321". Not retryable. */
  badMagic: 'PROTO_BAD_MAGIC',
  /** Hello with a protocol version this side does not speak. Not retryable. */
  versionUnsupported: 'PROTO_VERSION_UNSUPPORTED',
  /** A shoot/card/path name refused by validateRelativePath / validateSegment. Not retryable. */
  badName: 'PROTO_BAD_NAME',
  /** A non-auth frame before the session was authenticated. Not retryable. */
  notAuthenticated: 'PROTO_NOT_AUTHENTICATED',
  /** Unknown or revoked agent, bad signature, or a second proof in one session. Not retryable. */
  authRefused: 'PROTO_AUTH_REFUSED',
  /** Pairing code unknown, expired or already used. Not retryable. */
  pairingRefused: 'PROTO_PAIRING_REFUSED',
  /** Too many refused pairing attempts (from this address, or from all): pairing is locked until the time the message gives. Retryable then. */
  pairingLocked: 'PROTO_PAIRING_LOCKED',
  /** A well-formed frame that is not allowed now (wrong order, wrong offset, hash not wanted…). Not retryable. */
  unexpectedMessage: 'PROTO_UNEXPECTED_MESSAGE',
  /** The agent had more than `window` unacknowledged Chunk bytes in flight. Not retryable. */
  windowExceeded: 'PROTO_WINDOW_EXCEEDED',
  /** Nack: the staged bytes do not hash to the offered hash; staging discarded. Retryable. */
  hashMismatch: 'PROTO_HASH_MISMATCH',
  /** Nack: FileEnd size differs from the offered size or from the bytes received. Retryable. */
  sizeMismatch: 'PROTO_SIZE_MISMATCH',
  /** Nothing received for DEAD_LINK_MS, or no authentication within AUTH_TIMEOUT_MS. Retryable. */
  timeout: 'PROTO_TIMEOUT',
  /** Agent side: the studio's TLS certificate is not the one pinned at pairing. Not retryable. */
  fingerprintMismatch: 'PROTO_FINGERPRINT_MISMATCH',
  /** The studio is shutting down; reconnect later. Retryable. */
  shuttingDown: 'PROTO_SHUTTING_DOWN',
} as const;

export type ProtoCode = (typeof PROTO_CODES)[keyof typeof PROTO_CODES];

/** A peer sent something the protocol does not allow. Never retryable as-is. */
export class ProtocolError extends CodedError {
  constructor(code: ProtoCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }

  /**
   * An Error frame the peer sent: its code is the peer's, possibly one this
   * version does not know (a newer peer), so it is not checked against the table.
   */
  static fromPeer(code: string, message: string, options: CodedErrorOptions = {}): ProtocolError {
    return new ProtocolError(code as ProtoCode, message, options);
  }
}

/**
 * The durable verified-write primitive failed; nothing partial was left behind.
 * Its codes (DURABLE_CODES) and the functions that make it are in
 * protocol/src/durable/errors.ts; the class stays here while
 * protocol/src/durable/durable-write.ts imports it from this file.
 */
export class DurableWriteError extends CodedError {}

/** Stable CONFIG_ error codes of the configuration loaders (protocol/src/config.ts, both programs). */
export const CONFIG_CODES = {
  /** The config file named does not exist. Not retryable. */
  missing: 'CONFIG_MISSING',
  /** The config file exists but cannot be read (permissions). Not retryable. */
  unreadable: 'CONFIG_UNREADABLE',
  /** The config file is not valid JSON. Not retryable. */
  syntax: 'CONFIG_SYNTAX',
  /** A field is wrong (unknown, wrong type, out of range); detail.file and detail.field name it. Not retryable. */
  invalid: 'CONFIG_INVALID',
} as const;

export type ConfigCode = (typeof CONFIG_CODES)[keyof typeof CONFIG_CODES];

/** Configuration is invalid; the message names the file and the field. */
export class ConfigError extends CodedError {
  declare readonly code: ConfigCode;

  constructor(code: ConfigCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }
}

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
