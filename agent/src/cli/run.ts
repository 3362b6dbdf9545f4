/**
 * `field-agent run`: watch for cards and hot folders until SIGTERM/SIGINT.
 *
 * The studio sync loop joins through AgentRunner's `startSync` option (one call;
 * see runner.ts; cli/main.ts passes sync-loop's startSyncForRun). Its state
 * feeds the status page and tray; the tray and page can pause and resume it.
 */
import { configureShutdown, createLogger, onShutdown, requestShutdown } from '@studio321/protocol';
import { AgentRunner, type AgentRunnerOptions } from '../runner.js';
import { AgentUi } from '../ui/agent-ui.js';
import { AGENT_CODES } from '../errors.js';
import { ALREADY_RUNNING_EXIT_CODE, InstanceLock, InstanceLockError } from '../instance-lock.js';
import { loadContext, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent run [--data-dir DIR] [--config FILE]';

/** The sync loop's state as the status page and tray show it. */
function linkStateOf(state: string): 'connected' | 'connecting' | 'offline' | 'paused' {
  if (state === 'syncing' || state === 'idle') return 'connected';
  if (state === 'connecting' || state === 'paused') return state;
  return 'offline';
}

export async function runCommand(
  argv: string[],
  io: CommandIo,
  extra: Pick<AgentRunnerOptions, 'startSync' | 'volumeSource'> = {},
): Promise<number> {
  const { values } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { paths, config } = await loadContext(values, io.env);
  const log = createLogger({ name: 'field-agent', stream: io.stderr });
  configureShutdown({ log });
  // One agent per data dir: taken first, released last.
  const lock = new InstanceLock(paths.dataDir);
  try {
    await lock.open();
  } catch (err) {
    if (err instanceof InstanceLockError && err.code === AGENT_CODES.alreadyRunning) {
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
  // Status page + tray; never required for the offload.
  const sync = runner.sync;
  const syncActions =
    sync?.pauseSync && sync.resumeSync
      ? { pauseSync: () => sync.pauseSync?.(), resumeSync: () => sync.resumeSync?.() }
      : undefined;
  const ui = new AgentUi({
    runner,
    copiesNeeded: config.policy.copiesBeforeFormat,
    dataDir: paths.dataDir,
    log,
    statusPort: config.statusPort,
    tray: config.tray,
    env: io.env,
    quit: () => requestShutdown('tray quit'),
    ...(syncActions ? { sync: syncActions } : {}),
    ...(sync?.syncNow ? { syncNow: sync.syncNow.bind(sync) } : {}),
  });
  await ui.open();
  onShutdown('ui', () => ui.close());
  // The link state and receipts reach the page and tray: the sync loop's state is in
  // memory, read once a second (cheap), and the page is told only when it changes.
  if (sync?.status) {
    const studio = config.studioUrl;
    let lastReceipts = -1;
    const follow = setInterval(() => {
      const s = sync.status?.();
      if (s === undefined) return;
      ui.provider.setLink(linkStateOf(s.state), studio, s.offlineSince);
      if (s.receipts !== lastReceipts) {
        lastReceipts = s.receipts;
        ui.provider.changed();
      }
    }, 1000);
    follow.unref();
    onShutdown('sync-follow', () => clearInterval(follow));
  } else {
    ui.provider.setLink('offline');
  }
  log.info({ event: 'started', dataDir: paths.dataDir, store: config.store }, 'field-agent running');
  // Runs until a signal: onShutdown closes the runner and exits the process.
  await new Promise<never>(() => undefined);
  return 0;
}
