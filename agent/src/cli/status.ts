/** `field-agent status [--json]`: from the state DB, or from the running agent while it holds it. */
import { EXIT } from '@studio321/protocol/base';
import { AGENT_CODES } from '../errors.js';
import type { AgentStatus } from '../state/status.js';
import { callRunningAgent, directOrRunning } from './running-agent.js';
import { loadContext, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent status [--json] [--data-dir DIR] [--config FILE]';

/** What builds and prints the status: loaded only when used (`--json` from a running agent needs neither). */
const summary = (): Promise<typeof import('../state/status.js')> => import('../state/status.js');

export async function statusCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const { paths, config } = await loadContext(values, io.env);
  const st = await directOrRunning(
    paths.dataDir,
    async (state) =>
      (await summary()).buildStatus(state, config.policy.copiesBeforeFormat, config.fieldDrives, config.store),
    async () =>
      (await callRunningAgent(paths.dataDir, '/api/agent-status', {}, AGENT_CODES.stateLocked)) as AgentStatus,
  );
  io.stdout.write(
    values.json
      ? `${JSON.stringify({ dataDir: paths.dataDir, store: config.store, ...st, fieldDrive: st.fieldDrive ?? null })}\n`
      : `${(await summary()).formatStatus(st)}\n`,
  );
  return EXIT.ok;
}
