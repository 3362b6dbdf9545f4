/**
 * Structured JSON-lines logging for studiod and the field agent.
 *
 * One line per record on a stream (stderr by default, so command output on
 * stdout stays clean); journald keeps each line as one entry. A record is
 *
 *   {"time":"2026-11-26T10:00:00.000Z","level":"error","name":"studiod",
 *    "msg":"commit failed","code":"DURABLE_HASH_MISMATCH","retryable":false,...}
 *
 * An `err` field in the event is expanded to its `code`, `retryable`, `detail`
 * and a `err: {name, message, cause}` summary, so every logged error carries its
 * stable code. Errors (and warnings that carry a code) also go into the
 * logger's `lastErrors` ring, which `studioctl status` and the agent's status
 * page show.
 */
import { EventEmitter } from 'node:events';
import { CodedError, errorCode } from './errors.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** One remembered error, as the status page and `studioctl status` show it. */
export interface RecentError {
  code: string;
  message: string;
  /** ISO 8601 time it was logged. */
  at: string;
}

/** A bounded list of the most recent errors; emits 'push' (with the entry) and then 'change' after each push. */
export class ErrorRing extends EventEmitter {
  readonly capacity: number;
  #items: RecentError[] = [];

  constructor(capacity = 50) {
    super();
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new TypeError('ErrorRing capacity must be a positive integer');
    this.capacity = capacity;
  }

  push(entry: RecentError): void {
    this.#items.push(entry);
    if (this.#items.length > this.capacity) this.#items.splice(0, this.#items.length - this.capacity);
    this.emit('push', entry);
    this.emit('change');
  }

  /** Newest last. A copy: callers may keep it. */
  list(): RecentError[] {
    return this.#items.map((e) => ({ ...e }));
  }

  clear(): void {
    this.#items = [];
    this.emit('change');
  }
}

export interface LoggerOptions {
  name: string;
  level?: LogLevel;
  /** Where lines go; default process.stderr. */
  stream?: { write(line: string): unknown };
  /** Shared ring; default a new one of 50 entries. */
  lastErrors?: ErrorRing;
  /** Clock for the `time` field (tests inject one). */
  now?: () => Date;
  /** Fields added to every record (child loggers add more). */
  bindings?: Record<string, unknown>;
}

export interface Logger {
  readonly name: string;
  readonly level: LogLevel;
  readonly lastErrors: ErrorRing;
  debug(event: object, msg: string): void;
  info(event: object, msg: string): void;
  warn(event: object, msg: string): void;
  error(event: object, msg: string): void;
  /** A logger that adds `bindings` to every record and shares stream and ring. */
  child(bindings: Record<string, unknown>): Logger;
}

/** Whether `s` names a log level (for config validation). */
export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

function describeCause(cause: unknown, depth: number): unknown {
  if (cause === undefined || depth > 3) return undefined;
  if (cause instanceof Error) {
    const code = cause instanceof CodedError ? cause.code : errorCode(cause);
    return {
      name: cause.name,
      message: cause.message,
      ...(code === undefined ? {} : { code }),
      ...(cause.cause === undefined ? {} : { cause: describeCause(cause.cause, depth + 1) }),
    };
  }
  return String(cause);
}

/** Flatten an error into log fields: code, retryable, detail, err summary. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof CodedError) {
    return {
      code: err.code,
      retryable: err.retryable,
      ...(err.detail === undefined ? {} : { detail: err.detail }),
      err: describeCause(err, 0),
    };
  }
  const code = errorCode(err);
  return { ...(code === undefined ? {} : { code }), err: describeCause(err, 0) };
}

function safeStringify(record: Record<string, unknown>): string {
  try {
    // Without a replacer first: V8's fast path (a replacer function is called for every key).
    return JSON.stringify(record);
  } catch {
    // A BigInt (or a cycle: the fallback below).
  }
  try {
    return JSON.stringify(record, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    // Circular or otherwise unserialisable event: keep the message, drop the fields.
    return JSON.stringify({
      time: record['time'],
      level: record['level'],
      name: record['name'],
      msg: record['msg'],
      logError: 'event not serialisable',
    });
  }
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? 'info';
  if (!isLogLevel(level)) throw new TypeError(`unknown log level ${String(level)}`);
  const stream = options.stream ?? process.stderr;
  const ring = options.lastErrors ?? new ErrorRing();
  const now = options.now ?? (() => new Date());
  const bindings = options.bindings ?? {};

  const write = (lvl: Exclude<LogLevel, 'silent'>, event: object, msg: string): void => {
    const time = now().toISOString();
    const { err, ...rest } = event as { err?: unknown } & Record<string, unknown>;
    const record: Record<string, unknown> = {
      time,
      level: lvl,
      name: options.name,
      msg,
      ...bindings,
      ...rest,
      ...(err === undefined ? {} : errorFields(err)),
    };
    const code = record['code'];
    if (lvl === 'error' || (lvl === 'warn' && typeof code === 'string')) {
      ring.push({
        code: typeof code === 'string' ? code : 'UNKNOWN',
        message: err instanceof Error ? err.message : msg,
        at: time,
      });
    }
    if (RANK[lvl] < RANK[level]) return;
    stream.write(`${safeStringify(record)}\n`);
  };

  return {
    name: options.name,
    level,
    lastErrors: ring,
    debug: (event, msg) => write('debug', event, msg),
    info: (event, msg) => write('info', event, msg),
    warn: (event, msg) => write('warn', event, msg),
    error: (event, msg) => write('error', event, msg),
    child: (more) =>
      createLogger({ ...options, level, stream, lastErrors: ring, now, bindings: { ...bindings, ...more } }),
  };
}

/**
 * Log the process warnings whose text starts with `prefix` as one record of `log` instead of
 * Node's plain-text lines on stderr, so a JSON log stays one object a line. Only those: every
 * other warning (a deprecation of our own code, a leaked listener) is printed as Node does.
 * Used for the AWS SDK's "NodeVersionSupportWarning" (it warns about the Node version once, on
 * the first S3 client).
 */
export function routeWarningsToLog(log: Logger, prefix: string): void {
  const emit = process.emitWarning.bind(process) as (warning: string | Error, ...rest: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]): void => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (text.startsWith(prefix)) log.warn({ warning: text.replace(/\s*\n\s*/g, ' ').trim() }, prefix);
    else emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
