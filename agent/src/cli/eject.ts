/**
 * `field-agent eject <card>`: unmount a card once it is safe to format (eject.ts).
 * While `field-agent run` holds the state DB, the request goes to the running
 * agent through its status page (bearer token from <data dir>/status-url).
 */
import { EXIT } from '@studio321/protocol';
import { AGENT_CODES } from '../errors.js';
import { ejectCard, type EjectResult } from '../offload/eject.js';
import { defaultVolumeSource } from '../card/volume-source.js';
import { callRunningAgent, directOrRunning } from './running-agent.js';
import { loadContext, oneCardRef, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent eject <card-id|label> [--json] [--data-dir DIR] [--config FILE]';

export async function ejectCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const ref = oneCardRef(positionals, USAGE);
  const { paths, config } = await loadContext(values, io.env);
  const result = await directOrRunning(
    paths.dataDir,
    (state) =>
      ejectCard(ref, { state, copiesNeeded: config.policy.copiesBeforeFormat, volumes: defaultVolumeSource() }),
    async () =>
      (await callRunningAgent(paths.dataDir, '/api/eject', { card: ref }, AGENT_CODES.ejectFailed)) as EjectResult,
  );
  io.stdout.write(
    values.json
      ? `${JSON.stringify({ event: 'ejected', ...result })}\n`
      : `${result.label} (${result.card}) ejected from ${result.mountPoint}: you can remove the card.\n`,
  );
  return EXIT.ok;
}
