/**
 * The one command-line parser of field-agent, studiod and studioctl: node:util `parseArgs` in
 * strict mode (an unknown option, a missing value or a value given to a switch is an error), with
 * messages that name the option and the value and suggest the close known option, plus the value
 * checks every program shares (a count, a percentage). Every mistake is a UsageError, which the
 * programs turn into EXIT.usage — nothing is done on a usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CodedError } from './errors.js';
import { EXIT, type ExitStatus } from './exit-codes.js';
import { didYouMean } from './suggest.js';

/**
 * A command line the program cannot take. `code` is the program's own usage code (AGENT_USAGE,
 * STUDIO_USAGE), so the error tables stay one per prefix; `usage` is the text printed after it.
 */
export class UsageError extends CodedError {
  readonly usage: string;

  constructor(code: string, message: string, usage: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.usage = usage;
  }
}

/** The exit status for an error thrown by a command: usage errors 2, everything else 1. */
export function exitStatusOf(err: unknown): ExitStatus {
  return err instanceof UsageError ? EXIT.usage : EXIT.error;
}

/** One option as parseArgs takes it (no `multiple`: every option appears at most once). */
export interface CliOption {
  type: 'string' | 'boolean';
  short?: string;
  default?: string | boolean;
}

type OptionValue<S> = S extends { type: 'boolean' } ? boolean : string;
export type CliValues<O> = { [K in keyof O]?: OptionValue<O[K]> };

export interface CliContext {
  /** The program's usage error code (AGENT_USAGE, STUDIO_USAGE). */
  code: string;
  /** Printed after the message: the command's usage line(s). */
  usage: string;
}

/**
 * Parse `argv` strictly against `options`. Positionals are allowed (the command checks how many);
 * `--` ends the options. Throws UsageError naming the option.
 */
export function parseCommandLine<O extends Record<string, CliOption>>(
  argv: readonly string[],
  options: O,
  ctx: CliContext,
): { values: CliValues<O>; positionals: string[] } {
  try {
    const r = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    return { values: r.values as CliValues<O>, positionals: r.positionals };
  } catch (err) {
    const code = (err as { code?: string }).code;
    const name = /'(-{1,2}[^' <]+)/.exec((err as Error).message)?.[1] ?? '?';
    const known = Object.keys(options).map((k) => `--${k}`);
    let why: string;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') why = `unknown option ${name}${didYouMean(name, known)}`;
    else if (/does not take an argument/.test((err as Error).message)) why = `option ${name} takes no value`;
    else if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') why = `option ${name} needs a value`;
    else throw err;
    throw new UsageError(ctx.code, why, ctx.usage, { cause: err });
  }
}

/** A whole number >= 1 given to `flag` (e.g. --limit 20). */
export function countValue(flag: string, raw: string, ctx: CliContext): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(ctx.code, `${flag} takes a whole number of at least 1, got "${raw}"`, ctx.usage);
  return n;
}

/** A whole number >= 0 given to `flag` (e.g. --backoff-ms 0). */
export function nonNegativeValue(flag: string, raw: string, ctx: CliContext): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw new UsageError(ctx.code, `${flag} takes a whole number of at least 0, got "${raw}"`, ctx.usage);
  return n;
}

/** A percentage above 0 and at most 100, with or without "%" (e.g. --sample 5%, --sample 0.5). */
export function percentValue(flag: string, raw: string, ctx: CliContext): number {
  const m = /^(\d+(?:\.\d+)?|\.\d+)%?$/.exec(raw);
  const p = m === null ? Number.NaN : Number(m[1]);
  if (!(p > 0 && p <= 100))
    throw new UsageError(
      ctx.code,
      `${flag} takes a percentage above 0 and at most 100 (e.g. 5%), got "${raw}"`,
      ctx.usage,
    );
  return p;
}

/** `version` of the package.json at `url` (a program's own: new URL('../../package.json', import.meta.url)). */
export function packageVersion(url: URL): string {
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

/** The exit-status table every program's --help ends with (the scheme of exit-codes.ts). */
export const EXIT_STATUS_HELP = `Exit status (the same for field-agent, studiod and studioctl):
  ${EXIT.ok}  done, and everything asked about is fine
  ${EXIT.error}  an error: the command could not do its work (the message says why and what to do)
  ${EXIT.usage}  usage: an unknown command or option, a missing or bad value; nothing was done
  ${EXIT.notSafe}  done, but something is not safe: unprotected assets found, copies lost, a restore
     incomplete, files not accounted for, another instance already running`;
