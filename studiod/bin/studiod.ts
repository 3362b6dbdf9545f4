#!/usr/bin/env node
/**
 * studiod — the studio daemon. Usage: studiod [--config FILE] [--new-identity]
 * (default FILE: $STUDIOD_CONFIG or /etc/studiod/studiod.json). `--new-identity`:
 * when the TLS key/cert did not survive, make a new identity even though agents
 * are paired (each must pair again); a valid identity is never replaced.
 */
import {
  CodedError,
  configureShutdown,
  createLogger,
  EXIT_STATUS_HELP,
  exitStatusOf,
  onShutdown,
  packageVersion,
  parseCommandLine,
  routeWarningsToLog,
  UsageError,
} from '@studio321/protocol';
import { defaultConfigPath, loadStudiodConfig } from '../src/config.js';
import { STUDIO_CODES } from '../src/errors.js';

const USAGE = `usage: studiod [--config FILE] [--new-identity]
  Runs the studio daemon until SIGTERM/SIGINT: the agents' link (TLS WebSocket), the commits to
  the mirror and RAID, the cloud forwarding, the scrub, and the control socket studioctl talks to.
  --config FILE   the studiod config (default: $STUDIOD_CONFIG or /etc/studiod/studiod.json);
                  every option: docs/configuration.md
  --new-identity  when the TLS key/cert did not survive a crash, make a new identity even though
                  agents are paired (each must pair again); a valid identity is never replaced
  --help, -h      this text;  --version  the version
  The log goes to stderr, one JSON object a line.

${EXIT_STATUS_HELP}`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'help') argv[0] = '--help';
  const { values, positionals } = parseCommandLine(
    argv,
    {
      config: { type: 'string' },
      'new-identity': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
    { code: STUDIO_CODES.usage, usage: USAGE },
  );
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.version === true) {
    process.stdout.write(`studiod ${packageVersion(new URL('../../package.json', import.meta.url))}\n`);
    return;
  }
  if (positionals.length > 0)
    throw new UsageError(STUDIO_CODES.usage, `unexpected argument "${positionals[0]}"`, USAGE);
  const config = await loadStudiodConfig(values.config ?? defaultConfigPath());
  const level = config.log.level === 'fatal' ? 'error' : config.log.level === 'trace' ? 'debug' : config.log.level;
  const log = createLogger({ name: 'studiod', level: level as 'debug' | 'info' | 'warn' | 'error' | 'silent' });
  routeWarningsToLog(log, 'NodeVersionSupportWarning');
  configureShutdown({ log });
  // Loaded here, not at the top: --help and --version answer without loading the S3 client, LevelDB & co.
  const { Studio } = await import('../src/studio.js');
  const studio = new Studio({ config, log, newIdentity: values['new-identity'] === true });
  onShutdown('studiod', () => studio.close());
  await studio.open();
}

main().catch((err: unknown) => {
  const code = err instanceof CodedError ? err.code : STUDIO_CODES.startFailed;
  process.stderr.write(`studiod: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof UsageError) process.stderr.write(`${err.usage}\n`);
  process.exit(exitStatusOf(err));
});
