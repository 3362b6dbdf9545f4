/**
 * What every field-agent command shares: the global options, paths and config.
 */
import {
  CodedError,
  EXIT,
  exitStatusOf,
  parseCommandLine,
  UsageError,
  type CliContext,
  type CliOption,
  type CliValues,
  formatProgressLine,
  type ProgressSnapshot,
} from '@studio321/protocol/base';
import { AGENT_CODES, AgentError } from '../errors.js';
import { resolvePaths, type AgentPaths } from '../paths.js';
import { loadAgentConfig, type AgentConfig } from '../config.js';

export const GLOBAL_OPTIONS = {
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies Record<string, CliOption>;

export interface CommandIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export interface ParsedArgs<O> {
  values: CliValues<O & typeof GLOBAL_OPTIONS>;
  positionals: string[];
}

/** The shared strict parser (protocol/src/cli-args.ts) with the global options added; bad usage throws AGENT_USAGE. */
export function parse<O extends Record<string, CliOption>>(argv: string[], options: O, usage: string): ParsedArgs<O> {
  return parseCommandLine(argv, { ...GLOBAL_OPTIONS, ...options }, { code: AGENT_CODES.usage, usage }) as ParsedArgs<O>;
}

/** The one card a command acts on (an id or a label), or a usage error. */
export function oneCardRef(positionals: readonly string[], usage: string): string {
  const ref = positionals[0];
  if (ref === undefined || positionals.length > 1)
    throw new AgentError(AGENT_CODES.usage, `give one card id or label (see field-agent status)\n${usage}`);
  return ref;
}

/** The context `countValue`/`nonNegativeValue` need to report a bad value of one command. */
export function usageContext(usage: string): CliContext {
  return { code: AGENT_CODES.usage, usage };
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
    if (err instanceof UsageError) io.stderr.write(`${err.usage}\n`);
    return err.code === AGENT_CODES.usage || err.code === AGENT_CODES.renameTemplate ? EXIT.usage : exitStatusOf(err);
  }
  io.stderr.write(
    `field-agent: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return EXIT.error;
}

/** `command` with its errors reported as `field-agent` reports them (reportError): what the bin runs. */
export function reporting(
  command: (argv: string[], io: CommandIo) => Promise<number>,
): (argv: string[], io: CommandIo) => Promise<number> {
  return async (argv, io) => {
    try {
      return await command(argv, io);
    } catch (err) {
      return reportError(err, io, argv.includes('--json'));
    }
  };
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
