/**
 * `field-agent verify [<card-id|label>] [--json]`: read the agent's copies again
 * (verify-card.ts). Exit 0: every copy checked is intact; 3: copies were lost
 * and stopped counting (the card is no longer safe to format); 1: an error.
 * While `field-agent run` holds the state DB, the running agent does the check.
 * Progress (copies read, sizes, speed, ETA) goes to stderr.
 */
import { EXIT, type ProgressSnapshot } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from '../errors.js';
import { verifyCopies, type VerifyOutcome } from '../offload/verify-card.js';
import { loadContext, parse, progressPrinter, type CommandIo } from './common.js';
import { callRunningAgent, directOrRunning } from './running-agent.js';

const USAGE = 'usage: field-agent verify [<card-id|label>] [--json] [--data-dir DIR] [--config FILE]';

/** Exit status when copies were found lost (as `studioctl verify`). */
export const EXIT_COPIES_LOST = EXIT.notSafe;

export async function verifyCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 1)
    throw new AgentError(AGENT_CODES.usage, `give at most one card id or label (see field-agent status)\n${USAGE}`);
  const { paths, config } = await loadContext(values, io.env);
  const ref = positionals[0];
  const progress = progressPrinter(io);
  let outcome: VerifyOutcome;
  try {
    outcome = await directOrRunning(
      paths.dataDir,
      (state) =>
        verifyCopies(
          state,
          {
            store: config.store,
            fieldDrives: config.fieldDrives,
            copiesNeeded: config.policy.copiesBeforeFormat,
            onProgress: (p) => progress.show(p.snapshot()),
          },
          ref,
        ),
      // `field-agent run` holds the state DB: it does the check itself, and streams its progress.
      async () =>
        (await callRunningAgent(paths.dataDir, '/api/verify', { card: ref ?? '' }, AGENT_CODES.stateLocked, {
          onEvent: (e) => {
            if (e['event'] === 'progress') progress.show(e['progress'] as ProgressSnapshot);
          },
        })) as VerifyOutcome,
    );
  } finally {
    progress.done();
  }
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ event: 'verify', ...outcome })}\n`);
  } else {
    const what = outcome.card === undefined ? 'every asset' : `card ${outcome.card}`;
    io.stdout.write(
      `Verified ${what}: ${outcome.assets} asset(s), ${outcome.copiesChecked} copies read again, ${outcome.copiesOk} intact, ${outcome.lost.length} lost, ${outcome.unchecked.length} not checked.\n`,
    );
    for (const l of outcome.lost)
      io.stdout.write(`  LOST ${l.target} ${l.path}: ${l.code}; it no longer counts as a copy\n`);
    for (const u of outcome.unchecked) io.stdout.write(`  not checked ${u.target} ${u.path}: ${u.code}\n`);
    if (outcome.safeToFormat !== undefined)
      io.stdout.write(`Safe to format: ${outcome.safeToFormat.safe ? 'YES' : 'NO'} — ${outcome.safeToFormat.reason}\n`);
  }
  if (outcome.lost.length > 0) {
    io.stderr.write(
      `field-agent: ${AGENT_CODES.copiesLost}: ${outcome.lost.length} copies no longer match their BLAKE3 and stopped counting. Keep the card(s); ingest them again (laptop copies are made anew) and connect the field drive (its copies are made again from the laptop).\n`,
    );
    return EXIT_COPIES_LOST;
  }
  return EXIT.ok;
}
