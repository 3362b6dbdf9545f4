/**
 * `field-agent run`: watch for cards and hot folders until SIGTERM/SIGINT.
 *
 * The studio sync loop joins through AgentRunner's `startSync` option (one call;
 * see agent-runner.ts): pass it here once agent/src/sync*.ts exists.
 */
import { configureShutdown, createLogger, onShutdown, requestShutdown } from '@studio321/protocol';
import { AgentRunner, type AgentRunnerOptions } from '../agent-runner.js';
import { AgentUi } from '../agent-ui.js';
import { AGENT_ALREADY_RUNNING, ALREADY_RUNNING_EXIT_CODE, InstanceLock, InstanceLockError } from '../instance-lock.js';
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
  configureShutdown({ log });
  // One agent per data dir: taken first, released last (issue 6).
  const lock = new InstanceLock(paths.dataDir);
  try {
    await lock.open();
  } catch (err) {
    if (err instanceof InstanceLockError && err.code === AGENT_ALREADY_RUNNING) {
      io.stderr.write(`field-agent: ${err.code}: ${err.message}\n`);
      return ALREADY_RUNNING_EXIT_CODE;
    }
    throw err;
  }
  onShutdown('instance-lock', () => lock.close());
  const noVolumes = config.watchVolumes ? {} : { volumeSource: { list: () => Promise.resolve([]) } };
  const runner = new AgentRunner({ paths, config, log, ...noVolumes, ...extra });
  await runner.open();
  onShutdown('agent', () => runner.close());
  // Status page + tray (issue 6); never required for the offload.
  const ui = new AgentUi({ runner, copiesNeeded: config.policy.copiesBeforeFormat, dataDir: paths.dataDir, log, statusPort: config.statusPort, tray: config.tray, env: io.env, quit: () => requestShutdown('tray quit') });
  await ui.open();
  onShutdown('ui', () => ui.close());
  log.info({ event: 'started', dataDir: paths.dataDir, store: config.store }, 'field-agent running');
  // Runs until a signal: onShutdown closes the runner and exits the process.
  await new Promise<never>(() => undefined);
  return 0;
}
