/** `field-agent status [--json]`: from the state DB, or from the running agent while it holds it. */
import { EXIT } from '@studio321/protocol/base';
import { AGENT_CODES } from '../errors.js';
import type { AgentStatus } from '../state/status.js';
import type { StatusReads } from '../state/status-snapshot.js';
import { callRunningAgent, directOrRunning } from './running-agent.js';
import { loadContext, parse, type CommandIo } from './common.js';
import type { AgentConfig } from '../config.js';

const USAGE = 'usage: field-agent status [--json] [--data-dir DIR] [--config FILE]';

/** What builds and prints the status: loaded only when used (`--json` from a running agent needs neither). */
const summary = (): Promise<typeof import('../state/status.js')> => import('../state/status.js');

/** Status as `config` asks it, from the state or a snapshot of its reads (also kept by `ingest` as it closes the state). */
export function statusBuilder(
  config: Pick<AgentConfig, 'policy' | 'fieldDrives' | 'store'>,
): (reads: StatusReads) => Promise<AgentStatus> {
  return async (reads) =>
    (await summary()).buildStatus(reads, config.policy.copiesBeforeFormat, config.fieldDrives, config.store);
}

export async function statusCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const { paths, config } = await loadContext(values, io.env);
  const build = statusBuilder(config);
  const st = await directOrRunning(
    paths.dataDir,
    build,
    async () =>
      (await callRunningAgent(paths.dataDir, '/api/agent-status', {}, AGENT_CODES.stateLocked)) as AgentStatus,
    {
      // No agent running: the snapshot the last process to close the state kept, while it is valid.
      // Loaded only here: asking a running agent loads no state module (programs.test.ts).
      answer: async () => {
        const { readStatusSnapshot, SnapshotMiss } = await import('../state/status-snapshot.js');
        const reads = await readStatusSnapshot(paths.dataDir);
        try {
          return reads === undefined ? undefined : await build(reads);
        } catch (err) {
          if (err instanceof SnapshotMiss) return undefined;
          throw err;
        }
      },
      status: build,
    },
  );
  io.stdout.write(
    values.json
      ? `${JSON.stringify({ dataDir: paths.dataDir, store: config.store, ...st, fieldDrive: st.fieldDrive ?? null })}\n`
      : `${(await summary()).formatStatus(st)}\n`,
  );
  return EXIT.ok;
}
