/**
 * What every field-agent command shares: the global options, paths and config.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CodedError, formatProgressLine, type ProgressSnapshot } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from '../errors.js';
import { resolvePaths, type AgentPaths } from '../paths.js';
import { loadAgentConfig, type AgentConfig } from '../config.js';

export const GLOBAL_OPTIONS = {
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export interface CommandIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/** One option as parseArgs takes it (no `multiple`: every option appears at most once). */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  default?: string | boolean;
}

type OptionValue<S> = S extends { type: 'boolean' } ? boolean : string;
export type ParsedValues<O> = { [K in keyof O]?: OptionValue<O[K]> };

export interface ParsedArgs<O> {
  values: ParsedValues<O & typeof GLOBAL_OPTIONS>;
  positionals: string[];
}

/** parseArgs with the global options added; bad usage throws AGENT_USAGE. Values are typed by the option specs. */
export function parse<O extends Record<string, OptionSpec>>(argv: string[], options: O, usage: string): ParsedArgs<O> {
  try {
    const r = parseArgs({
      args: argv,
      options: { ...GLOBAL_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: r.values as ParsedValues<O & typeof GLOBAL_OPTIONS>, positionals: r.positionals };
  } catch (err) {
    throw new AgentError(AGENT_CODES.usage, `${(err as Error).message}\n${usage}`, { cause: err });
  }
}

export async function loadContext(
  values: { 'data-dir'?: string | undefined; config?: string | undefined },
  env: NodeJS.ProcessEnv,
): Promise<{ paths: AgentPaths; config: AgentConfig }> {
  const paths = resolvePaths({ dataDir: values['data-dir'], config: values.config }, env);
  const config = await loadAgentConfig(paths);
  return { paths, config };
}

/** Print a coded error the way every command does; returns the exit code. */
export function reportError(err: unknown, io: CommandIo, json: boolean): number {
  if (err instanceof CodedError) {
    if (json) io.stdout.write(`${JSON.stringify({ event: 'error', ...err.toJSON() })}\n`);
    io.stderr.write(`field-agent: ${err.code}: ${err.message}\n`);
    return err.code === AGENT_CODES.usage ? 2 : 1;
  }
  io.stderr.write(
    `field-agent: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return 1;
}

/**
 * Progress lines on stderr (bytes and human sizes, files, speed, ETA: formatProgressLine), so
 * stdout keeps only the result (`--json`: JSON lines). A terminal gets one line redrawn five times
 * a second; a pipe or a log one line a second. `done()` prints the last state once.
 */
export function progressPrinter(io: CommandIo): { show(p: ProgressSnapshot): void; done(): void } {
  const tty = io.stderr.isTTY === true;
  let last: ProgressSnapshot | undefined;
  let shownAt = 0;
  const print = (p: ProgressSnapshot): void => {
    shownAt = Date.now();
    const line = formatProgressLine(p);
    io.stderr.write(tty ? `\r${line}\u001b[K` : `${line}\n`);
  };
  return {
    show: (p) => {
      last = p;
      if (Date.now() - shownAt >= (tty ? 200 : 1000)) print(p);
    },
    done: () => {
      if (last === undefined) return;
      print(last);
      if (tty) io.stderr.write('\n');
      last = undefined;
    },
  };
}
