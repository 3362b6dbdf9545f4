/** `field-agent status [--json]` */
import { AgentState } from '../state/agent-state.js';
import { buildStatus, formatStatus } from '../state/status.js';
import { loadContext, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent status [--json] [--data-dir DIR] [--config FILE]';

export async function statusCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { paths, config } = await loadContext(values, io.env);
  const state = await AgentState.open(paths.dataDir);
  try {
    const st = await buildStatus(state, config.policy.copiesBeforeFormat, config.fieldDrive);
    io.stdout.write(
      values.json
        ? `${JSON.stringify({ dataDir: paths.dataDir, store: config.store, ...st, fieldDrive: st.fieldDrive ?? null })}\n`
        : `${formatStatus(st)}\n`,
    );
    return 0;
  } finally {
    await state.close();
  }
}
