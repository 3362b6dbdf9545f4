#!/usr/bin/env node
/**
 * studioctl — talks to the running studiod over its control socket.
 *
 *   studioctl [--config FILE | --socket PATH] [--json] pair
 *   studioctl [...] agents [--revoke AGENT_ID]
 *   studioctl [...] status
 *   studioctl [...] shoots
 *   studioctl [...] assets [--unprotected] [--shoot S] [--card C] [--limit N]
 *   studioctl [...] asset <name|hash>
 *   studioctl [...] verify [--target T] [--sample P%] [--download] [--no-repair] [--progress]
 *   studioctl [...] cloud retry [--target T]
 *   studioctl [...] target adopt <mirror|raid> [--device NAME]
 *   studioctl [...] restore <name|hash>... [--shoot S] [--card C] --to DIR [--from TARGET] [--progress]
 *   studioctl [...] restore --pending
 *   studioctl [...] catalogue snapshot
 *   studioctl --config FILE catalogue rebuild      (studiod stopped)
 *   studioctl mhl verify <folder>                  (no studiod needed)
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CodedError,
  countValue,
  didYouMean,
  EXIT,
  EXIT_STATUS_HELP,
  exitStatusOf,
  formatProgressLine,
  packageVersion,
  parseCommandLine,
  percentValue,
  UsageError,
  type CliContext,
  type CliOption,
  type CliValues,
  type ProgressSnapshot,
} from '@studio321/protocol';
import { formatMhlVerify, verifyMhlFolder } from '@studio321/protocol/durable';
import { formatAlerts, type AlertRecord } from '../src/ops/alert.js';
import { defaultConfigPath, loadStudiodConfig } from '../src/config.js';
import { controlRequest } from '../src/control-socket.js';
import { STUDIO_CODES } from '../src/errors.js';
import { formatAgents, formatPair, formatShoots } from '../src/ledger/studioctl-format.js';
import { formatAsset, formatAssets, formatVerify } from '../src/ledger/format.js';
import { formatStatusReport, type StatusReport } from '../src/ledger/status-report.js';
import { formatPending, formatRestore } from '../src/recovery/restore-format.js';
import type { ArchiveRequestRecord, RestoreReport } from '../src/recovery/index.js';
import type { StudiodConfig } from '../src/config.js';
import { RECOVERY_CODES } from '../src/recovery/errors.js';
import { formatRebuild, formatSnapshot } from '../src/recovery/format.js';
import type { SnapshotResult } from '../src/recovery/snapshot.js';

const USAGE = `usage: studioctl [--config FILE | --socket PATH] [--json] <command> [options]
Commands:
  pair                     print a one-time pairing code and the studio fingerprint
  agents [--revoke ID]     list paired agents (state, paired, last seen), or revoke one
  status                   3-2-1 compliance, what is missing per target, agents, free space, errors
  shoots                   per shoot: assets, how many are 3-2-1 compliant, what is missing per target
  assets [--unprotected] [--shoot S] [--card C] [--limit N]
                           list assets (--unprotected: those not yet 3-2-1 safe, and why; exit 3
                           when there are any). An unknown shoot or card is an error naming it.
  asset <name|hash>        where every copy of an asset is and how it was verified
  verify [--target T] [--sample P%] [--download] [--no-repair] [--progress]
                           re-read copies; a copy that is gone or rotted stops counting and
                           is made again from another verified copy (--no-repair: only report)
  cloud retry [--target T] retry cloud uploads parked on a permanent error
  alerts                   the open alerts (an alert stays open until its condition clears)
  target adopt <mirror|raid> [--device NAME]
                           take the new, empty disk mounted at the target's root as the
                           target's disk; studiod marks the old copies lost and refills it
                           (progress in status)
  restore <name|hash>... [--shoot S] [--card C] --to DIR [--from TARGET] [--progress]
                           copy assets (with their RAW+JPEG+sidecar group) from the cheapest
                           verified copy into DIR; never overwrites (a different file there: ~2)
  restore --pending        archive restores requested and not yet written
  catalogue snapshot       export the catalogue now to the RAID and every cloud target
  catalogue rebuild        (studiod stopped) recreate a lost catalogue from the newest
                           snapshot and what the targets hold; reports what it cannot account for
  mhl verify <folder>      re-hash a folder (a card folder of a store or a studio target) against
                           its ASC MHL history: missing, altered and new files (no studiod needed)
Options: --config FILE (default $STUDIOD_CONFIG or /etc/studiod/studiod.json; only its controlSocket
  is read), --socket PATH (instead of --config), --json (the raw reply), --help, --version.

${EXIT_STATUS_HELP}
  For studioctl, 3 means: assets --unprotected found some, verify lost a copy it did not heal,
  restore could not restore every file, catalogue snapshot missed a destination, catalogue rebuild
  found something it cannot account for, mhl verify found a file missing, altered or new, or a
  history that does not hold.`;

/** A day: verify of a large catalogue can take hours; studioctl waits for it. */
const LONG_TIMEOUT_MS = 24 * 3600_000;

const CLI: CliContext = { code: STUDIO_CODES.usage, usage: USAGE };

const GLOBAL = {
  config: { type: 'string' },
  socket: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

/** Each command's own options (besides GLOBAL) and how many words it takes after its name. */
const COMMANDS = {
  pair: { options: {}, words: [0, 0] },
  agents: { options: { revoke: { type: 'string' } }, words: [0, 2] },
  status: { options: {}, words: [0, 0] },
  shoots: { options: {}, words: [0, 0] },
  assets: {
    options: {
      unprotected: { type: 'boolean' },
      shoot: { type: 'string' },
      card: { type: 'string' },
      limit: { type: 'string' },
    },
    words: [0, 0],
  },
  asset: { options: {}, words: [1, Number.POSITIVE_INFINITY] },
  verify: {
    options: {
      target: { type: 'string' },
      sample: { type: 'string' },
      download: { type: 'boolean' },
      'no-repair': { type: 'boolean' },
      progress: { type: 'boolean' },
    },
    words: [0, 0],
  },
  cloud: { options: { target: { type: 'string' } }, words: [1, 1] },
  alerts: { options: {}, words: [0, 0] },
  target: { options: { device: { type: 'string' } }, words: [2, 2] },
  restore: {
    options: {
      to: { type: 'string' },
      from: { type: 'string' },
      shoot: { type: 'string' },
      card: { type: 'string' },
      progress: { type: 'boolean' },
      pending: { type: 'boolean' },
    },
    words: [0, Number.POSITIVE_INFINITY],
  },
  catalogue: { options: {}, words: [1, 1] },
  mhl: { options: {}, words: [2, 2] },
} as const satisfies Record<string, { options: Record<string, CliOption>; words: readonly [number, number] }>;

type CommandName = keyof typeof COMMANDS;
type AnyValues = CliValues<typeof GLOBAL> & Record<string, string | boolean | undefined>;

/** Every option any command takes: the first pass finds the command word without knowing it yet. */
const ALL_OPTIONS: Record<string, CliOption> = Object.assign(
  {},
  GLOBAL,
  ...Object.values(COMMANDS).map((c) => c.options),
);

/** Parse the whole command line strictly: the command, its words, and only the options it takes. */
function parseCommand(argv: string[]): { name: CommandName | undefined; words: string[]; values: AnyValues } {
  // A lenient first look for the command word, so even an option error shows that command's usage.
  const guess = parseArgs({ args: argv, options: ALL_OPTIONS, strict: false, allowPositionals: true }).positionals[0];
  const ctx = guess !== undefined && guess in COMMANDS ? cliOf(guess as CommandName) : CLI;
  const first = parseCommandLine(argv, ALL_OPTIONS, ctx);
  const [word, ...words] = first.positionals;
  if (word === undefined) return { name: undefined, words, values: first.values as AnyValues };
  if (!(word in COMMANDS))
    throw new UsageError(CLI.code, `unknown command "${word}"${didYouMean(word, Object.keys(COMMANDS))}`, USAGE);
  const name = word as CommandName;
  const spec = COMMANDS[name];
  const { values } = parseCommandLine(argv, { ...GLOBAL, ...spec.options }, cliOf(name));
  const [min, max] = spec.words;
  if (values.help !== true && (words.length < min || words.length > max))
    throw new UsageError(STUDIO_CODES.usage, `${name}: ${wordsProblem(name, words)}`, commandUsage(name));
  return { name, words, values: values as AnyValues };
}

function wordsProblem(name: CommandName, words: string[]): string {
  if (words.length > 0 && COMMANDS[name].words[1] < words.length) return `unexpected argument "${words.at(-1)}"`;
  return 'missing argument';
}

/** The usage lines of one command (from USAGE). */
function cliOf(name: CommandName): CliContext {
  return { code: STUDIO_CODES.usage, usage: commandUsage(name) };
}

function commandUsage(name: CommandName): string {
  const lines = USAGE.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`  ${name} `) || l === `  ${name}`);
  const out = [`usage: studioctl [--config FILE | --socket PATH] [--json] ${(lines[i] ?? name).trim()}`];
  for (let j = i + 1; j > 0 && j < lines.length && lines[j]!.startsWith('    '); j++) out.push(lines[j]!);
  return `${out.join('\n')}\n(studioctl --help: every command and the exit statuses)`;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'help') argv[0] = '--help';
  const { name, words, values } = parseCommand(argv);
  if (values.help === true) {
    process.stdout.write(`${name === undefined ? USAGE : commandUsage(name)}\n`);
    return EXIT.ok;
  }
  if (values.version === true) {
    process.stdout.write(`studioctl ${packageVersion(new URL('../../package.json', import.meta.url))}\n`);
    return EXIT.ok;
  }
  if (name === undefined) {
    process.stderr.write(`studioctl: ${STUDIO_CODES.usage}: name a command\n${USAGE}\n`);
    return EXIT.usage;
  }
  const json = values.json === true;
  const out = (human: string, data: unknown): void => {
    process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : human);
  };
  const str = (k: string): string | undefined => values[k] as string | undefined;
  // Values are checked before anything is asked of studiod: a usage error does nothing.
  const ctx = cliOf(name);
  const usageError = (message: string): UsageError => new UsageError(ctx.code, message, ctx.usage);
  const limit = str('limit') === undefined ? undefined : countValue('--limit', str('limit')!, ctx);
  const sample = str('sample') === undefined ? undefined : percentValue('--sample', str('sample')!, ctx);
  for (const k of ['shoot', 'card', 'to', 'from', 'target', 'device', 'revoke'])
    if (str(k) === '') throw usageError(`--${k} needs a value`);
  if (name === 'catalogue' && words[0] !== 'snapshot' && words[0] !== 'rebuild')
    throw usageError(`catalogue: unknown subcommand "${words[0]}" (snapshot or rebuild)`);
  if (name === 'cloud' && words[0] !== 'retry') throw usageError(`cloud: unknown subcommand "${words[0]}" (retry)`);
  if (name === 'target' && words[0] !== 'adopt') throw usageError(`target: unknown subcommand "${words[0]}" (adopt)`);
  if (name === 'mhl' && words[0] !== 'verify') throw usageError(`mhl: unknown subcommand "${words[0]}" (verify)`);
  if (name === 'agents' && words.length > 0 && (words[0] !== 'revoke' || words.length !== 2))
    throw usageError('agents: use `agents --revoke ID` (or `agents revoke ID`)');
  if (name === 'restore') checkRestoreArgs(words, values);
  if (name === 'mhl') {
    const r = await verifyMhlFolder(resolve(words[1] as string));
    out(formatMhlVerify(r), r);
    return r.ok ? EXIT.ok : EXIT.notSafe;
  }
  const configFile = str('config');
  // The rebuild opens the catalogue itself (studiod must be stopped: the LevelDB lock says so).
  if (name === 'catalogue' && words[0] === 'rebuild')
    return rebuild(await loadStudiodConfig(configFile ?? defaultConfigPath()), out);
  const socket = str('socket') ?? (await loadStudiodConfig(configFile ?? defaultConfigPath())).controlSocket;
  switch (name) {
    case 'pair': {
      const r = await controlRequest(socket, 'pair');
      out(formatPair(r), r);
      return EXIT.ok;
    }
    case 'agents': {
      const revoke = str('revoke') ?? words[1];
      if (revoke !== undefined) {
        const r = await controlRequest(socket, 'revoke', { agentId: revoke });
        out(`revoked ${revoke}\n`, r);
        return EXIT.ok;
      }
      const r = await controlRequest(socket, 'agents');
      out(formatAgents(r), r);
      return EXIT.ok;
    }
    case 'status': {
      const r = (await controlRequest(socket, 'status')) as StatusReport & { lastSnapshot?: SnapshotResult | null };
      out(formatStatusReport(r) + formatSnapshot(r.lastSnapshot ?? null), r);
      return EXIT.ok;
    }
    case 'shoots': {
      const r = await controlRequest(socket, 'shoots', {}, LONG_TIMEOUT_MS);
      out(formatShoots(r), r);
      return EXIT.ok;
    }
    case 'catalogue': {
      const r = (await controlRequest(socket, 'catalogue-snapshot', {}, LONG_TIMEOUT_MS)) as SnapshotResult;
      out(formatSnapshot(r), r);
      return r.destinations.every((d) => d.ok) ? EXIT.ok : EXIT.notSafe;
    }
    case 'assets': {
      const unprotected = values['unprotected'] === true;
      const shoot = str('shoot');
      const card = str('card');
      const r = (await controlRequest(
        socket,
        'assets',
        {
          unprotected,
          ...(shoot === undefined ? {} : { shoot }),
          ...(card === undefined ? {} : { card }),
          ...(limit === undefined ? {} : { limit }),
        },
        LONG_TIMEOUT_MS,
      )) as { total: number };
      out(formatAssets(r), r);
      return unprotected && r.total > 0 ? EXIT.notSafe : EXIT.ok;
    }
    case 'asset': {
      const r = await controlRequest(socket, 'asset', { query: words.join(' ') });
      out(formatAsset(r), r);
      return EXIT.ok;
    }
    case 'verify': {
      const target = str('target');
      const r = (await controlRequest(
        socket,
        'verify',
        {
          ...(target === undefined ? {} : { target }),
          ...(sample === undefined ? {} : { sample }),
          download: values['download'] === true,
          repair: values['no-repair'] !== true,
        },
        LONG_TIMEOUT_MS,
        showProgress(values['progress'] === true || process.stderr.isTTY === true),
      )) as { lost: unknown[]; notHealed?: number };
      if (process.stderr.isTTY === true) process.stderr.write('\n');
      out(formatVerify(r), r);
      return (r.notHealed ?? r.lost.length) > 0 ? EXIT.notSafe : EXIT.ok;
    }
    case 'cloud': {
      const target = str('target');
      const r = (await controlRequest(socket, 'cloud-retry', target === undefined ? {} : { target })) as {
        retried: number;
      };
      out(`${r.retried} parked upload(s) queued again\n`, r);
      return EXIT.ok;
    }
    case 'alerts': {
      const r = (await controlRequest(socket, 'alerts')) as { open: AlertRecord[] };
      out(formatAlerts(r.open), r);
      return EXIT.ok;
    }
    case 'restore':
      return restore(socket, words, values, json);
    case 'target': {
      const device = str('device');
      const r = (await controlRequest(socket, 'target-adopt', {
        target: words[1],
        ...(device === undefined ? {} : { device }),
      })) as { target: string; device: string; previous: string };
      out(
        `${r.target}: the disk at its root is now ${r.device} (replacing ${r.previous}). studiod marks the copies of ${r.previous} lost and refills ${r.device}; \`studioctl status\` shows the progress.\n`,
        r,
      );
      return EXIT.ok;
    }
  }
}

/** Progress lines on stderr (one line, redrawn, on a terminal). */
function showProgress(on: boolean): ((p: unknown) => void) | undefined {
  return on
    ? (p: unknown): void => {
        const line = formatProgressLine(p as ProgressSnapshot);
        process.stderr.write(process.stderr.isTTY === true ? `\r${line}\x1b[K` : `${line}\n`);
      }
    : undefined;
}

function restoreOptions(values: AnyValues): Record<string, string> {
  const opts: Record<string, string> = {};
  for (const k of ['to', 'from', 'shoot', 'card'] as const) if (typeof values[k] === 'string') opts[k] = values[k];
  return opts;
}

/** restore's usage errors, found before the config is read or studiod is asked. */
function checkRestoreArgs(queries: string[], values: AnyValues): void {
  const usage = (why: string): UsageError =>
    new UsageError(STUDIO_CODES.usage, `restore: ${why}`, commandUsage('restore'));
  const opts = restoreOptions(values);
  if (values['pending'] === true) {
    if (queries.length > 0 || Object.keys(opts).length > 0 || values['progress'] === true)
      throw usage('--pending takes no other argument');
    return;
  }
  if (opts['to'] === undefined) throw usage('--to DIR is required (where the files go)');
  if (queries.length === 0 && opts['shoot'] === undefined && opts['card'] === undefined)
    throw usage('name what to restore: a file name, shoot/card/path or hash, or --shoot S / --card C');
}

async function restore(socket: string, queries: string[], values: AnyValues, json: boolean): Promise<number> {
  const opts = restoreOptions(values);
  if (values['pending'] === true) {
    const r = (await controlRequest(socket, 'restore-pending')) as { pending: ArchiveRequestRecord[] };
    process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : formatPending(r.pending));
    return EXIT.ok;
  }
  const onProgress = showProgress(values['progress'] === true || process.stderr.isTTY === true);
  let r: RestoreReport;
  try {
    r = (await controlRequest(
      socket,
      'restore',
      { queries, ...opts, to: resolve(opts['to']!) }, // checked by checkRestoreArgs
      LONG_TIMEOUT_MS,
      onProgress,
    )) as RestoreReport;
  } catch (err) {
    if (err instanceof CodedError && err.code === RECOVERY_CODES.badArgument)
      throw new UsageError(STUDIO_CODES.usage, `${err.code}: ${err.message}`, commandUsage('restore'), { cause: err });
    throw err;
  } finally {
    if (onProgress !== undefined && process.stderr.isTTY === true) process.stderr.write('\n');
  }
  process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : formatRestore(r));
  return r.complete ? EXIT.ok : EXIT.notSafe;
}

async function rebuild(config: StudiodConfig, out: (human: string, data: unknown) => void): Promise<number> {
  // Only the rebuild needs the catalogue and the S3 client: every other command stays light to start.
  const [{ Catalogue }, { cloudTargetsOf }, { S3Sink }, { rebuildCatalogue }] = await Promise.all([
    import('../src/catalogue.js'),
    import('../src/config.js'),
    import('../src/cloud/s3-sink.js'),
    import('../src/recovery/rebuild.js'),
  ]);
  const catalogue = new Catalogue(config.catalogue);
  await catalogue.open();
  const sinks = cloudTargetsOf(config).map((t) => new S3Sink(t));
  try {
    for (const s of sinks) await s.open();
    const r = await rebuildCatalogue(catalogue, {
      config,
      sinks,
      onProgress: (e) => process.stderr.write(`rebuild: ${e.message}\n`),
    });
    out(formatRebuild(r), r);
    if (r.unaccounted.count > 0) {
      process.stderr.write(
        `studioctl: ${RECOVERY_CODES.unaccounted}: ${r.unaccounted.count} file(s) or object(s) are not accounted for (listed above). The catalogue is usable; look at each before relying on it.\n`,
      );
      return EXIT.notSafe;
    }
    return EXIT.ok;
  } finally {
    for (const s of sinks) await s.close().catch(() => undefined);
    await catalogue.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const code = err instanceof CodedError ? err.code : STUDIO_CODES.controlRequest;
    process.stderr.write(`studioctl: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
    if (err instanceof UsageError) process.stderr.write(`${err.usage}\n`);
    process.exit(exitStatusOf(err));
  },
);
