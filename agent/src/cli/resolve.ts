/**
 * `field-agent resolve <card-id|label>`: the photographer reviewed the card's warnings.
 * While `field-agent run` holds the state DB, the running agent records it.
 */
import { EXIT } from '@studio321/protocol';
import { AGENT_CODES } from '../errors.js';
import { resolveCardWarnings, type ResolveResult } from '../state/agent-state.js';
import { callRunningAgent, directOrRunning } from './running-agent.js';
import { loadContext, oneCardRef, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent resolve <card-id|label> [--json] [--data-dir DIR] [--config FILE]';

export async function resolveCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const ref = oneCardRef(positionals, USAGE);
  const { paths } = await loadContext(values, io.env);
  const r = await directOrRunning(
    paths.dataDir,
    (state) => resolveCardWarnings(state, ref),
    async () =>
      (await callRunningAgent(paths.dataDir, '/api/resolve', { card: ref }, AGENT_CODES.stateLocked)) as ResolveResult,
  );
  io.stdout.write(
    values.json
      ? `${JSON.stringify({ card: r.card, label: r.label, resolved: r.resolved })}\n`
      : `${r.resolved} warning(s) of ${r.label} (${r.card}) marked as reviewed\n`,
  );
  return EXIT.ok;
}
