/**
 * `field-agent forget <card> [--force]`: leave a card seen long ago out of the
 * status list (forget-card.ts); refused (AGENT_FORGET_NOT_SAFE) while its files
 * are not all safely copied, unless --force. No file is deleted. While
 * `field-agent run` holds the state DB, the running agent does it (as eject).
 */
import { CodedError, EXIT } from '@studio321/protocol';
import { AgentState } from '../state/agent-state.js';
import { AGENT_CODES, AgentError } from '../errors.js';
import { forgetCard, type ForgetResult } from '../offload/forget-card.js';
import { callRunningAgent } from './running-agent.js';
import { loadContext, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent forget <card-id|label> [--force] [--json] [--data-dir DIR] [--config FILE]';

export async function forgetCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, { force: { type: 'boolean', default: false } }, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const ref = positionals[0];
  if (ref === undefined || positionals.length > 1)
    throw new AgentError(AGENT_CODES.usage, `give one card id or label (see field-agent status)\n${USAGE}`);
  const force = values.force === true;
  const { paths, config } = await loadContext(values, io.env);
  let state: AgentState | undefined;
  try {
    state = await AgentState.open(paths.dataDir);
  } catch (err) {
    if (!(err instanceof CodedError && err.code === AGENT_CODES.stateLocked)) throw err;
  }
  let result: ForgetResult;
  if (state !== undefined) {
    try {
      result = await forgetCard(ref, { state, copiesNeeded: config.policy.copiesBeforeFormat, force });
    } finally {
      await state.close();
    }
  } else {
    result = (await callRunningAgent(
      paths.dataDir,
      '/api/forget',
      { card: ref, ...(force ? { force: '1' } : {}) },
      AGENT_CODES.stateLocked,
    )) as ForgetResult;
  }
  io.stdout.write(
    values.json
      ? `${JSON.stringify({ event: 'forgotten', ...result })}\n`
      : `${result.label} (${result.card}) forgotten: no longer listed${result.forced ? ', although not every file is safely copied' : ''}. No file was deleted; it is listed again when it is seen again.\n`,
  );
  return EXIT.ok;
}
