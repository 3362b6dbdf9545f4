#!/usr/bin/env node
/**
 * studiod — the studio daemon. Usage: studiod --config FILE [--new-identity]
 * (default FILE: $STUDIOD_CONFIG or /etc/studiod/studiod.json). `--new-identity`:
 * when the TLS key/cert did not survive, make a new identity even though agents
 * are paired (each must pair again); a valid identity is never replaced.
 */
import { CodedError, configureShutdown, createLogger, onShutdown } from '@studio321/protocol';
import { defaultConfigPath, loadStudiodConfig } from '../src/config.js';
import { STUDIO_CODES } from '../src/errors.js';
import { Studio } from '../src/studio.js';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write('Usage: studiod --config FILE [--new-identity]\n');
    return;
  }
  const config = await loadStudiodConfig(argValue('--config') ?? defaultConfigPath());
  const level = config.log.level === 'fatal' ? 'error' : config.log.level === 'trace' ? 'debug' : config.log.level;
  const log = createLogger({ name: 'studiod', level: level as 'debug' | 'info' | 'warn' | 'error' | 'silent' });
  configureShutdown({ log });
  const studio = new Studio({ config, log, newIdentity: process.argv.includes('--new-identity') });
  onShutdown('studiod', () => studio.close());
  await studio.open();
}

main().catch((err: unknown) => {
  const code = err instanceof CodedError ? err.code : STUDIO_CODES.startFailed;
  process.stderr.write(`studiod: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
