/**
 * The ASC MHL generation of an offload (protocol/src/durable/mhl.ts): after a card's run, each target
 * (laptop store, field drive) gets a `transfer` generation in the card's folder
 * (`<store>/<shoot>/<card>/ascmhl/`) listing the files this run wrote there with their XXH3-64
 * (hashed in the copy's own pass), size and last modification. A run that wrote nothing there
 * adds no generation. A card that carries its own `ascmhl/` folder (a folder already under MHL)
 * gets none: its history is copied as it is, and ours would replace its chain file.
 *
 * The copies are verified and recorded before this runs: a generation that cannot be written
 * is logged (`mhl-failed`) and leaves the offload's verdicts as they are. The laptop store's
 * generation is queued for the studio (`mhl:` records, sent by link/mhl-send.ts).
 */
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join, posix } from 'node:path';
import type { Logger } from '@studio321/protocol';
import { appendMhlGeneration, MHL_FOLDER, mhlToolVersion, type MhlFile } from '@studio321/protocol/durable';
import type { AgentState } from '../state/agent-state.js';
import type { CardRecord } from '../state/records.js';
import type { AgentTarget } from '../targets.js';
import type { FileOutcome } from './offloader.js';

export async function writeOffloadGenerations(
  ctx: { targets: readonly AgentTarget[]; log?: Logger; state?: Pick<AgentState, 'queueMhlGeneration'> },
  card: CardRecord,
  outcomes: readonly FileOutcome[],
  cardPaths: readonly string[],
): Promise<string[]> {
  if (cardPaths.some((p) => p === MHL_FOLDER || p.startsWith(`${MHL_FOLDER}/`))) return [];
  const prefix = `${posix.join(card.shoot, card.id)}/`;
  const written: string[] = [];
  for (const t of ctx.targets) {
    const root = join(t.root, card.shoot, card.id);
    try {
      const files: MhlFile[] = [];
      for (const o of outcomes) {
        if (o.result !== 'copied' || o.xxh3 === undefined || o.storePath?.startsWith(prefix) !== true) continue;
        if (o.targets?.includes(t.name) !== true) continue;
        const st = await stat(join(t.root, ...o.storePath.split('/')));
        files.push({
          path: o.storePath.slice(prefix.length),
          size: st.size,
          mtimeMs: st.mtimeMs,
          xxh3: o.xxh3,
          action: 'original',
          hashDate: o.verifiedAt ?? new Date().toISOString(),
        });
      }
      if (files.length === 0) continue;
      const g = await appendMhlGeneration({
        root,
        process: 'transfer',
        tool: { name: 'field-agent', version: mhlToolVersion() },
        hostname: hostname(),
        comment: `card ${card.label} (${card.id}) of shoot ${card.shoot}, copied from ${card.source}`,
        files,
      });
      written.push(g.path);
      // The laptop store's generation goes to the studio (link/mhl-send.ts); the field drive's is the same list.
      if (t === ctx.targets[0])
        await ctx.state?.queueMhlGeneration({ shoot: card.shoot, card: card.id, name: basename(g.path), path: g.path });
    } catch (err) {
      ctx.log?.warn(
        { event: 'mhl-failed', card: card.id, target: t.name, err },
        `The ASC MHL generation of card ${card.id} could not be written on ${t.name}; its copies are verified and recorded all the same.`,
      );
    }
  }
  return written;
}
