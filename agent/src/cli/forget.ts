/**
 * `field-agent forget <card> [--force]`: leave a card seen long ago out of the
 * status list (forget-card.ts); refused (AGENT_FORGET_NOT_SAFE) while its files
 * are not all safely copied, unless --force. No file is deleted. While
 * `field-agent run` holds the state DB, the running agent does it (as eject).
 */
import { EXIT } from '@studio321/protocol';
import { AGENT_CODES } from '../errors.js';
import { forgetCard, type ForgetResult } from '../offload/forget-card.js';
import { callRunningAgent, directOrRunning } from './running-agent.js';
import { loadContext, oneCardRef, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent forget <card-id|label> [--force] [--json] [--data-dir DIR] [--config FILE]';

export async function forgetCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, { force: { type: 'boolean', default: false } }, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const ref = oneCardRef(positionals, USAGE);
  const force = values.force === true;
  const { paths, config } = await loadContext(values, io.env);
  const result = await directOrRunning(
    paths.dataDir,
    (state) => forgetCard(ref, { state, copiesNeeded: config.policy.copiesBeforeFormat, force }),
    async () =>
      (await callRunningAgent(
        paths.dataDir,
        '/api/forget',
        { card: ref, ...(force ? { force: '1' } : {}) },
        AGENT_CODES.stateLocked,
      )) as ForgetResult,
  );
  io.stdout.write(
    values.json
      ? `${JSON.stringify({ event: 'forgotten', ...result })}\n`
      : `${result.label} (${result.card}) forgotten: no longer listed${result.forced ? ', although not every file is safely copied' : ''}. No file was deleted; it is listed again when it is seen again.\n`,
  );
  return EXIT.ok;
}
