/**
 * `field-agent eject <card>`: unmount a card once it is safe to format (eject.ts).
 * While `field-agent run` holds the state DB, the request goes to the running
 * agent through its status page (bearer token from <data dir>/status-url).
 */
import { CodedError } from '@studio321/protocol';
import { AgentState } from '../state/agent-state.js';
import { AGENT_CODES, AgentError } from '../errors.js';
import { ejectCard, type EjectResult } from '../offload/eject.js';
import { defaultVolumeSource } from '../card/volume-source.js';
import { callRunningAgent } from './running-agent.js';
import { loadContext, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent eject <card-id|label> [--json] [--data-dir DIR] [--config FILE]';

export async function ejectCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const ref = positionals[0];
  if (ref === undefined || positionals.length > 1)
    throw new AgentError(AGENT_CODES.usage, `give one card id or label (see field-agent status)\n${USAGE}`);
  const { paths, config } = await loadContext(values, io.env);
  let result: EjectResult;
  let state: AgentState | undefined;
  try {
    state = await AgentState.open(paths.dataDir);
  } catch (err) {
    if (!(err instanceof CodedError && err.code === AGENT_CODES.stateLocked)) throw err;
  }
  if (state) {
    try {
      result = await ejectCard(ref, {
        state,
        copiesNeeded: config.policy.copiesBeforeFormat,
        volumes: defaultVolumeSource(),
      });
    } finally {
      await state.close();
    }
  } else {
    result = (await callRunningAgent(
      paths.dataDir,
      '/api/eject',
      { card: ref },
      AGENT_CODES.ejectFailed,
    )) as EjectResult;
  }
  io.stdout.write(
    values.json
      ? `${JSON.stringify({ event: 'ejected', ...result })}\n`
      : `${result.label} (${result.card}) ejected from ${result.mountPoint}: you can remove the card.\n`,
  );
  return 0;
}
