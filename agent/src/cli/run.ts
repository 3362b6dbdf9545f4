/**
 * `field-agent run`: watch for cards and hot folders until SIGTERM/SIGINT.
 *
 * The studio sync loop joins through AgentRunner's `startSync` option (one call;
 * see agent-runner.ts): pass it here once agent/src/sync*.ts exists.
 */
import { createLogger, onShutdown } from '@studio321/protocol';
import { AgentRunner, type AgentRunnerOptions } from '../agent-runner.js';
import { loadContext, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent run [--data-dir DIR] [--config FILE]';

export async function runCommand(argv: string[], io: CommandIo, extra: Pick<AgentRunnerOptions, 'startSync' | 'volumeSource'> = {}): Promise<number> {
  const { values } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { paths, config } = await loadContext(values, io.env);
  const log = createLogger({ name: 'field-agent', stream: io.stderr });
  const runner = new AgentRunner({ paths, config, log, ...extra });
  await runner.open();
  onShutdown('agent', () => runner.close());
  log.info({ event: 'started', dataDir: paths.dataDir, store: config.store }, 'field-agent running');
  // Runs until a signal: onShutdown closes the runner and exits the process.
  await new Promise<never>(() => undefined);
  return 0;
}
