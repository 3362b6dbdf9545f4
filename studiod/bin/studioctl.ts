#!/usr/bin/env node
/**
 * studioctl — talks to the running studiod over its control socket.
 *
 *   studioctl [--config FILE | --socket PATH] [--json] pair
 *   studioctl [...] agents [--revoke AGENT_ID]
 *   studioctl [...] status
 *   studioctl [...] assets [--unprotected] [--shoot S] [--card C] [--limit N]
 *   studioctl [...] asset <name|hash>
 *   studioctl [...] verify [--target T] [--sample P%] [--download] [--no-repair] [--progress]
 *   studioctl [...] cloud retry [--target T]
 *   studioctl [...] target adopt <mirror|raid> [--device NAME]
 *   studioctl [...] restore <name|hash>... [--shoot S] [--card C] --to DIR [--from TARGET] [--progress]
 *   studioctl [...] restore --pending
 *   studioctl [...] catalogue snapshot
 *   studioctl --config FILE catalogue rebuild      (studiod stopped)
 */
import { resolve } from 'node:path';
import { CodedError, EXIT, formatProgressLine, type ProgressSnapshot } from '@studio321/protocol';
import { formatAlerts, type AlertRecord } from '../src/ops/index.js';
import { defaultConfigPath, loadStudiodConfig } from '../src/config.js';
import { controlRequest } from '../src/control-socket.js';
import { STUDIO_CODES } from '../src/errors.js';
import { LEDGER_CODES } from '../src/ledger/errors.js';
import { formatAgents, formatPair } from '../src/ledger/studioctl-format.js';
import { formatAsset, formatAssets, formatVerify } from '../src/ledger/format.js';
import { formatStatusReport, type StatusReport } from '../src/ledger/status-report.js';
import { formatPending, formatRestore } from '../src/recovery/restore-format.js';
import type { ArchiveRequestRecord, RestoreReport } from '../src/recovery/index.js';
import { Catalogue } from '../src/catalogue.js';
import { cloudTargetsOf, type StudiodConfig } from '../src/config.js';
import { S3Sink } from '../src/cloud/s3-sink.js';
import {
  RECOVERY_CODES,
  formatRebuild,
  formatSnapshot,
  rebuildCatalogue,
  type SnapshotResult,
} from '../src/recovery/index.js';

const USAGE = `Usage: studioctl [--config FILE | --socket PATH] [--json] <command>
Commands:
  pair                     print a one-time pairing code and the studio fingerprint
  agents [--revoke ID]     list paired agents, or revoke one
  status                   3-2-1 compliance, what is missing per target, agents, free space, errors
  assets [--unprotected] [--shoot S] [--card C] [--limit N]
                           list assets (--unprotected: those not yet 3-2-1 safe, and why)
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
Exit status: 0 ok, 1 error, 2 usage; 3 when verify lost a copy and did not heal it, restore could not restore
every file (not found, no readable copy, or requested from the archive), or catalogue rebuild
found something on the targets it cannot account for.
`;

/** A day: verify of a large catalogue can take hours; studioctl waits for it. */
const LONG_TIMEOUT_MS = 24 * 3600_000;

function takeOption(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  if (json) args.splice(args.indexOf('--json'), 1);
  let socket = takeOption(args, '--socket');
  const configFile = takeOption(args, '--config');
  const out = (human: string, data: unknown): void => {
    process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : human);
  };
  // The rebuild opens the catalogue itself (studiod must be stopped: the LevelDB lock says so).
  if (args[0] === 'catalogue' && args[1] === 'rebuild')
    return rebuild(await loadStudiodConfig(configFile ?? defaultConfigPath()), out);
  if (socket === undefined) socket = (await loadStudiodConfig(configFile ?? defaultConfigPath())).controlSocket;
  const cmd = args.shift();
  switch (cmd) {
    case 'pair': {
      const r = await controlRequest(socket, 'pair');
      out(formatPair(r), r);
      return 0;
    }
    case 'agents': {
      const revoke = takeOption(args, '--revoke') ?? (args[0] === 'revoke' ? args[1] : undefined);
      if (revoke !== undefined) {
        const r = await controlRequest(socket, 'revoke', { agentId: revoke });
        out(`revoked ${revoke}\n`, r);
        return 0;
      }
      const r = await controlRequest(socket, 'agents');
      out(formatAgents(r), r);
      return 0;
    }
    case 'status': {
      const r = (await controlRequest(socket, 'status')) as StatusReport & { lastSnapshot?: SnapshotResult | null };
      out(formatStatusReport(r) + formatSnapshot(r.lastSnapshot ?? null), r);
      return 0;
    }
    case 'catalogue': {
      if (args[0] !== 'snapshot') break;
      const r = (await controlRequest(socket, 'catalogue-snapshot', {}, LONG_TIMEOUT_MS)) as SnapshotResult;
      out(formatSnapshot(r), r);
      return r.destinations.every((d) => d.ok) ? 0 : 3;
    }
    case 'assets': {
      const unprotected = args.includes('--unprotected');
      if (unprotected) args.splice(args.indexOf('--unprotected'), 1);
      const shoot = takeOption(args, '--shoot');
      const card = takeOption(args, '--card');
      const limit = takeOption(args, '--limit');
      const r = await controlRequest(socket, 'assets', {
        unprotected,
        ...(shoot === undefined ? {} : { shoot }),
        ...(card === undefined ? {} : { card }),
        ...(limit === undefined ? {} : { limit: Number(limit) }),
      });
      out(formatAssets(r), r);
      return 0;
    }
    case 'asset': {
      const query = args.join(' ');
      const r = await controlRequest(socket, 'asset', { query });
      out(formatAsset(r), r);
      return 0;
    }
    case 'verify': {
      const target = takeOption(args, '--target');
      const sampleRaw = takeOption(args, '--sample');
      const download = args.includes('--download');
      const noRepair = args.includes('--no-repair');
      const sample = sampleRaw === undefined ? undefined : Number(sampleRaw.replace(/%$/, ''));
      if (sample !== undefined && !Number.isFinite(sample)) {
        process.stderr.write(`studioctl: ${LEDGER_CODES.badArgument}: --sample takes a percentage, e.g. --sample 5%\n`);
        return 2;
      }
      const r = (await controlRequest(
        socket,
        'verify',
        {
          ...(target === undefined ? {} : { target }),
          ...(sample === undefined ? {} : { sample }),
          download,
          repair: !noRepair,
        },
        LONG_TIMEOUT_MS,
        showProgress(args.includes('--progress') || process.stderr.isTTY === true),
      )) as { lost: unknown[]; notHealed?: number };
      if (process.stderr.isTTY === true) process.stderr.write('\n');
      out(formatVerify(r), r);
      return (r.notHealed ?? r.lost.length) > 0 ? 3 : 0;
    }
    case 'cloud': {
      if (args[0] !== 'retry') break;
      const target = takeOption(args, '--target');
      const r = (await controlRequest(socket, 'cloud-retry', target === undefined ? {} : { target })) as {
        retried: number;
      };
      out(`${r.retried} parked upload(s) queued again\n`, r);
      return 0;
    }
    case 'alerts': {
      const r = (await controlRequest(socket, 'alerts')) as { open: AlertRecord[] };
      out(formatAlerts(r.open), r);
      return EXIT.ok;
    }
    case 'restore':
      return restore(socket, args, json);
    case 'target': {
      if (args[0] !== 'adopt') break;
      const device = takeOption(args, '--device');
      const target = args[1];
      if (target === undefined || args.length > 2) {
        process.stderr.write(`studioctl target adopt: name one target (mirror or raid)\n${USAGE}`);
        return 2;
      }
      const r = (await controlRequest(socket, 'target-adopt', {
        target,
        ...(device === undefined ? {} : { device }),
      })) as { target: string; device: string; previous: string };
      out(
        `${r.target}: the disk at its root is now ${r.device} (replacing ${r.previous}). studiod marks the copies of ${r.previous} lost and refills ${r.device}; \`studioctl status\` shows the progress.\n`,
        r,
      );
      return 0;
    }
    default:
      break;
  }
  process.stderr.write(USAGE);
  return 2;
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

async function restore(socket: string, args: string[], json: boolean): Promise<number> {
  const usage = (why: string): number => {
    process.stderr.write(`studioctl restore: ${why}\n${USAGE}`);
    return 2;
  };
  if (args.includes('--pending')) {
    if (args.length !== 1) return usage('--pending takes no other argument');
    const r = (await controlRequest(socket, 'restore-pending')) as { pending: ArchiveRequestRecord[] };
    process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : formatPending(r.pending));
    return 0;
  }
  const opts: Record<string, string> = {};
  const queries: string[] = [];
  let progress = process.stderr.isTTY === true;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--progress') progress = true;
    else if (a === '--to' || a === '--from' || a === '--shoot' || a === '--card') {
      const v = args[++i];
      if (v === undefined || v === '') return usage(`${a} needs a value`);
      opts[a.slice(2)] = v;
    } else if (a.startsWith('--')) return usage(`unknown option ${a}`);
    else queries.push(a);
  }
  if (opts['to'] === undefined) return usage('--to DIR is required (where the files go)');
  if (queries.length === 0 && opts['shoot'] === undefined && opts['card'] === undefined)
    return usage('name what to restore: a file name, shoot/card/path or hash, or --shoot S / --card C');
  const onProgress = showProgress(progress);
  let r: RestoreReport;
  try {
    r = (await controlRequest(
      socket,
      'restore',
      { queries, ...opts, to: resolve(opts['to']) },
      LONG_TIMEOUT_MS,
      onProgress,
    )) as RestoreReport;
  } catch (err) {
    if (err instanceof CodedError && err.code === RECOVERY_CODES.badArgument) {
      process.stderr.write(`studioctl: ${err.code}: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    if (onProgress !== undefined && process.stderr.isTTY === true) process.stderr.write('\n');
  }
  process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : formatRestore(r));
  return r.complete ? 0 : 3;
}

async function rebuild(config: StudiodConfig, out: (human: string, data: unknown) => void): Promise<number> {
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
      return 3;
    }
    return 0;
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
    process.exit(1);
  },
);
