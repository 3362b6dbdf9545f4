/** `field-agent resolve <card-id>`: the photographer reviewed the card's warnings. */
import { AGENT_CODES, AgentError } from '../errors.js';
import { AgentState } from '../state/agent-state.js';
import { loadContext, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent resolve <card-id> [--data-dir DIR] [--config FILE]';

export async function resolveCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const id = positionals[0];
  if (id === undefined || positionals.length > 1)
    throw new AgentError(AGENT_CODES.usage, `give one card id (see field-agent status)\n${USAGE}`);
  const { paths } = await loadContext(values, io.env);
  const state = await AgentState.open(paths.dataDir);
  try {
    const n = await state.resolveWarnings(id);
    io.stdout.write(
      values.json ? `${JSON.stringify({ card: id, resolved: n })}\n` : `${n} warning(s) of ${id} marked as reviewed\n`,
    );
    return 0;
  } finally {
    await state.close();
  }
}
