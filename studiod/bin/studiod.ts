#!/usr/bin/env node
/**
 * studiod — the studio daemon. Usage: studiod --config FILE
 * (default FILE: $STUDIOD_CONFIG or /etc/studiod/studiod.json).
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
    process.stdout.write('Usage: studiod --config FILE\n');
    return;
  }
  const config = await loadStudiodConfig(argValue('--config') ?? defaultConfigPath());
  const level = config.log.level === 'fatal' ? 'error' : config.log.level === 'trace' ? 'debug' : config.log.level;
  const log = createLogger({ name: 'studiod', level: level as 'debug' | 'info' | 'warn' | 'error' | 'silent' });
  configureShutdown({ log });
  const studio = new Studio({ config, log });
  onShutdown('studiod', () => studio.close());
  await studio.open();
}

main().catch((err: unknown) => {
  const code = err instanceof CodedError ? err.code : STUDIO_CODES.startFailed;
  process.stderr.write(`studiod: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
