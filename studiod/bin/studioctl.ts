#!/usr/bin/env node
/**
 * studioctl — talks to the running studiod over its control socket.
 *
 *   studioctl [--config FILE | --socket PATH] [--json] pair
 *   studioctl [...] agents [--revoke AGENT_ID]
 *   studioctl [...] status
 *   studioctl [...] assets [--unprotected] [--shoot S] [--card C] [--limit N]
 *   studioctl [...] asset <name|hash>
 *   studioctl [...] verify [--target T] [--sample P%] [--download] [--no-repair]
 *   studioctl [...] cloud retry [--target T]
 */
import { CodedError } from '@studio321/protocol';
import { defaultConfigPath, loadStudiodConfig } from '../src/config.js';
import { controlRequest } from '../src/control-socket.js';
import { formatAgents, formatPair } from '../src/ledger/studioctl-format.js';
import { formatAsset, formatAssets, formatVerify } from '../src/ledger/format.js';
import { formatStatusReport, type StatusReport } from '../src/ledger/status-report.js';

const USAGE = `Usage: studioctl [--config FILE | --socket PATH] [--json] <command>
Commands:
  pair                     print a one-time pairing code and the studio fingerprint
  agents [--revoke ID]     list paired agents, or revoke one
  status                   3-2-1 compliance, what is missing per target, agents, free space, errors
  assets [--unprotected] [--shoot S] [--card C] [--limit N]
                           list assets (--unprotected: those not yet 3-2-1 safe, and why)
  asset <name|hash>        where every copy of an asset is and how it was verified
  verify [--target T] [--sample P%] [--download] [--no-repair]
                           re-read copies; a copy that is gone or rotted stops counting and
                           is made again from another verified copy (--no-repair: only report)
  cloud retry [--target T] retry cloud uploads parked on a permanent error
Exit status: 0 ok, 1 error, 2 usage; verify exits 3 when a copy is lost and was not healed.
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
  if (socket === undefined) socket = (await loadStudiodConfig(configFile ?? defaultConfigPath())).controlSocket;
  const cmd = args.shift();
  const out = (human: string, data: unknown): void => {
    process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : human);
  };
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
      const r = (await controlRequest(socket, 'status')) as StatusReport;
      out(formatStatusReport(r), r);
      return 0;
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
          repair: !noRepair,
        },
        LONG_TIMEOUT_MS,
      )) as { lost: unknown[]; notHealed?: number };
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
    default:
      break;
  }
  process.stderr.write(USAGE);
  return 2;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const code = err instanceof CodedError ? err.code : 'STUDIO_CONTROL_REQUEST';
    process.stderr.write(`studioctl: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
