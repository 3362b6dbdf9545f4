#!/usr/bin/env node
/**
 * studioctl — talks to the running studiod over its control socket.
 *
 *   studioctl [--config FILE | --socket PATH] [--json] pair
 *   studioctl [...] agents [--revoke AGENT_ID]
 *   studioctl [...] status
 */
import { CodedError } from '@studio321/protocol';
import { defaultConfigPath, loadStudiodConfig } from '../src/config.js';
import { controlRequest } from '../src/control-socket.js';
import { formatAgents, formatPair, formatStatus } from '../src/studioctl-format.js';

const USAGE = `Usage: studioctl [--config FILE | --socket PATH] [--json] <command>
Commands:
  pair                     print a one-time pairing code and the studio fingerprint
  agents [--revoke ID]     list paired agents, or revoke one
  status                   what the studio holds and is doing
`;

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
    process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : human);
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
      const r = await controlRequest(socket, 'status');
      out(formatStatus(r), r);
      return 0;
    }
    default:
      process.stderr.write(USAGE);
      return 2;
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  const code = err instanceof CodedError ? err.code : 'STUDIO_CONTROL_REQUEST';
  process.stderr.write(`studioctl: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
