#!/usr/bin/env node
/**
 * studioctl — talks to the running studiod over its control socket.
 *
 *   studioctl [--config FILE | --socket PATH] [--json] pair
 *   studioctl [...] agents [--revoke AGENT_ID]
 *   studioctl [...] status
 *   studioctl [...] assets [--unprotected] [--shoot S] [--card C] [--limit N]
 *   studioctl [...] asset <name|hash>
 *   studioctl [...] verify [--target T] [--sample P%] [--download]
 *   studioctl [...] cloud retry [--target T]
 *   studioctl [...] catalogue snapshot
 *   studioctl --config FILE catalogue rebuild      (studiod stopped)
 */
import { CodedError } from '@studio321/protocol';
import { defaultConfigPath, loadStudiodConfig } from '../src/config.js';
import { controlRequest } from '../src/control-socket.js';
import { formatAgents, formatPair } from '../src/ledger/studioctl-format.js';
import { formatAsset, formatAssets, formatVerify } from '../src/ledger/format.js';
import { formatStatusReport, type StatusReport } from '../src/ledger/status-report.js';
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
  verify [--target T] [--sample P%] [--download]
                           re-read copies; a copy that is gone or rotted stops counting
  cloud retry [--target T] retry cloud uploads parked on a permanent error
  catalogue snapshot       export the catalogue now to the RAID and every cloud target
  catalogue rebuild        (studiod stopped) recreate a lost catalogue from the newest
                           snapshot and what the targets hold; reports what it cannot account for
Exit status: 0 ok, 1 error, 2 usage; verify exits 3 when a copy was lost, catalogue rebuild
when something on the targets is not accounted for.
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
      const sample = sampleRaw === undefined ? undefined : Number(sampleRaw.replace(/%$/, ''));
      if (sample !== undefined && !Number.isFinite(sample)) {
        process.stderr.write(`studioctl: LEDGER_BAD_ARGUMENT: --sample takes a percentage, e.g. --sample 5%\n`);
        return 2;
      }
      const r = (await controlRequest(
        socket,
        'verify',
        {
          ...(target === undefined ? {} : { target }),
          ...(sample === undefined ? {} : { sample }),
          download,
        },
        LONG_TIMEOUT_MS,
      )) as { lost: unknown[] };
      out(formatVerify(r), r);
      return r.lost.length > 0 ? 3 : 0;
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
    default:
      break;
  }
  process.stderr.write(USAGE);
  return 2;
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
    const code = err instanceof CodedError ? err.code : 'STUDIO_CONTROL_REQUEST';
    process.stderr.write(`studioctl: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
