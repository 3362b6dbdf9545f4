/**
 * `field-agent verify [<card-id|label>] [--json]`: read the agent's copies again
 * (verify-card.ts). Exit 0: every copy checked is intact; 3: copies were lost
 * and stopped counting (the card is no longer safe to format); 1: an error.
 */
import { AgentState } from '../agent-state.js';
import { AGENT_CODES, AgentError } from '../errors.js';
import { findCard } from '../eject.js';
import { summariseCard } from '../status.js';
import type { CardRecord } from '../state-records.js';
import { resolveTargets } from '../targets.js';
import { verifyCardCopies } from '../verify-card.js';
import { loadContext, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent verify [<card-id|label>] [--json] [--data-dir DIR] [--config FILE]';

/** Exit status when copies were found lost (as `studioctl verify`). */
export const EXIT_COPIES_LOST = 3;

export async function verifyCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 1) throw new AgentError(AGENT_CODES.usage, `give at most one card id or label (see field-agent status)\n${USAGE}`);
  const { paths, config } = await loadContext(values, io.env);
  const state = await AgentState.open(paths.dataDir);
  try {
    const card: CardRecord | undefined = positionals[0] === undefined ? undefined : await findCard(state, positionals[0]);
    const { targets } = await resolveTargets(config.store, config.fieldDrive);
    const report = await verifyCardCopies({ state, targets }, card);
    const verdict = card === undefined ? undefined : (await summariseCard(state, card, config.policy.copiesBeforeFormat)).safeToFormat;
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ event: 'verify', ...report, ...(verdict === undefined ? {} : { safeToFormat: verdict }) })}\n`);
    } else {
      const what = card === undefined ? 'every asset' : `${card.label} (${card.id})`;
      io.stdout.write(`Verified ${what}: ${report.assets} asset(s), ${report.copiesChecked} copies read again, ${report.copiesOk} intact, ${report.lost.length} lost, ${report.unchecked.length} not checked.\n`);
      for (const l of report.lost) io.stdout.write(`  LOST ${l.target} ${l.path}: ${l.code}; it no longer counts as a copy\n`);
      for (const u of report.unchecked) io.stdout.write(`  not checked ${u.target} ${u.path}: ${u.code}\n`);
      if (verdict !== undefined) io.stdout.write(`Safe to format: ${verdict.safe ? 'YES' : 'NO'} — ${verdict.reason}\n`);
    }
    if (report.lost.length > 0) {
      io.stderr.write(`field-agent: ${AGENT_CODES.copiesLost}: ${report.lost.length} copies no longer match their BLAKE3 and stopped counting. Keep the card(s); ingest them again (laptop copies) and reconnect the field drive (its copies are made again from the laptop).\n`);
      return EXIT_COPIES_LOST;
    }
    return 0;
  } finally {
    await state.close();
  }
}
