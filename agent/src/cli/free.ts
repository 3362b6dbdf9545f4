/**
 * `field-agent free [card] [--json]`: free the laptop copies of cards every file of which the
 * studio holds 3-2-1 compliant (state/free-laptop.ts), by the config's `freeLaptop` policy; with
 * `never` (the default) an explicit `free` frees once compliant. Verdicts older than a few
 * minutes are asked again first (the studio must be reachable). While `field-agent run` holds the
 * state DB, the request goes to the running agent (as `eject` does).
 * Exit 0 when every card asked for is freed, 3 when one is not (with the reason).
 */
import { CodedError, EXIT } from '@studio321/protocol';
import { findCard } from '../state/agent-state.js';
import { freeLaptopCopies, type CardFreeResult } from '../state/free-laptop.js';
import { AGENT_CODES } from '../errors.js';
import { connectStudio } from '../link/sync-loop.js';
import { refreshVerdicts } from '../link/verdicts.js';
import { callRunningAgent, directOrRunning } from './running-agent.js';
import { loadContext, parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent free [card-id|label] [--json] [--data-dir DIR] [--config FILE]';

export async function freeCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, {}, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new CodedError(AGENT_CODES.usage, `give at most one card\n${USAGE}`);
  const ref = positionals[0];
  const { paths, config } = await loadContext(values, io.env);
  const results = await directOrRunning(
    paths.dataDir,
    async (state) => {
      const cards = ref === undefined ? undefined : [(await findCard(state, ref)).id];
      const link = await connectStudio({ dataDir: paths.dataDir }).catch(() => undefined);
      try {
        return await freeLaptopCopies(
          state,
          {
            policy: config.freeLaptop,
            ...(link === undefined
              ? {}
              : { refresh: async (hashes) => void (await refreshVerdicts(link, state, { hashes })) }),
            ...(cards === undefined ? {} : { cards }),
            fieldDrives: config.fieldDrives,
          },
          true,
        );
      } finally {
        link?.close();
      }
    },
    async () =>
      (
        (await callRunningAgent(
          paths.dataDir,
          '/api/free',
          ref === undefined ? {} : { card: ref },
          AGENT_CODES.stateLocked,
        )) as { cards: CardFreeResult[] }
      ).cards,
  );
  const shown = results.filter((r) => ref !== undefined || r.files > 0);
  if (values.json) io.stdout.write(`${JSON.stringify({ event: 'free', cards: shown })}\n`);
  else {
    if (shown.length === 0) io.stdout.write('No cards to free.\n');
    for (const r of shown)
      io.stdout.write(
        r.done
          ? `${r.label} (${r.card}): laptop copies freed (${r.freedFiles} of ${r.files} files${r.freed > 0 ? `, ${r.freed} now` : ''}); the studio holds them 3-2-1 compliant.\n`
          : `${r.label} (${r.card}): not freed${r.freed > 0 ? ` (${r.freed} freed now)` : ''}: ${r.reason}\n`,
      );
  }
  return ref !== undefined && shown.some((r) => !r.done) ? EXIT.notSafe : EXIT.ok;
}
