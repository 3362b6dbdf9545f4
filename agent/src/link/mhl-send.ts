/**
 * The agent's ASC MHL generations to the studio (protocol/SPEC.md §3.11): each generation the
 * offload wrote in the laptop store (offload/mhl-generation.ts) waits in the state's outbox until
 * the studio answers MhlStored; one MhlGeneration at a time, before and after every sync pass,
 * and only to a studio whose Hello lists `mhl` (an older one keeps nothing, and the outbox waits).
 * A generation larger than a frame allows, or gone from the store, is logged and leaves the outbox:
 * the studio then writes its own generation without the card's.
 */
import { readFile } from 'node:fs/promises';
import { MAX_MHL_GENERATION_BYTES, StudioFeature, type Logger } from '@studio321/protocol';
import type { MhlOutboxEntry } from '../state/agent-state.js';
import type { SyncQueue } from '../state/store-copy.js';
import { LINK_CODES, LinkError } from './errors.js';
import { request, type SyncLink } from './sync-link.js';

let requestSeq = 0;

/** Sends every generation of the outbox; returns how many the studio keeps now. */
export async function sendMhlGenerations(
  link: SyncLink & { readonly features: readonly string[] },
  queue: SyncQueue,
  log?: Logger,
): Promise<number> {
  if (queue.mhlOutbox === undefined || !link.features.includes(StudioFeature.Mhl)) return 0;
  let sent = 0;
  for (const e of await queue.mhlOutbox()) {
    const data = await readFile(e.path).catch((err: unknown) => {
      log?.warn(
        { event: 'mhl-not-sent', generation: e.path, err },
        `The ASC MHL generation ${e.path} cannot be read; it is not sent to the studio.`,
      );
      return undefined;
    });
    if (data === undefined || data.byteLength === 0 || data.byteLength > MAX_MHL_GENERATION_BYTES) {
      if (data !== undefined)
        log?.warn(
          { event: 'mhl-not-sent', generation: e.path, bytes: data.byteLength },
          `The ASC MHL generation ${e.path} is larger than one message allows (${MAX_MHL_GENERATION_BYTES} bytes); it is not sent to the studio.`,
        );
      await queue.mhlGenerationSent?.(e);
      continue;
    }
    await sendOne(link, e, data);
    await queue.mhlGenerationSent?.(e);
    sent++;
  }
  return sent;
}

async function sendOne(link: SyncLink, e: MhlOutboxEntry, data: Buffer): Promise<void> {
  const requestId = `m${process.pid}-${++requestSeq}`;
  const msg = { t: 'mhl-generation' as const, requestId, shoot: e.shoot, card: e.card, name: e.name, data };
  await request(link, msg, (m) => (m.t === 'mhl-stored' && m.requestId === requestId ? true : undefined)).catch(
    (err: unknown) => {
      throw new LinkError(LINK_CODES.connectionLost, `The link closed before the studio kept ${e.name}.`, {
        cause: err,
        retryable: true,
      });
    },
  );
}
