/**
 * Start-up recovery: remove the temp files (*.s321tmp) a killed offload left.
 *
 * `sweepInterrupted` sweeps only the store folders of cards whose last offload
 * never ended (cheap enough for every `ingest`); `sweepAll` sweeps whole
 * targets (at `run` start). Temps are never final names, so removing them
 * deletes nothing that was recorded.
 */
import { join } from 'node:path';
import { sweepStaleTemps } from '@studio321/protocol/durable';
import { errorCode } from '@studio321/protocol';
import type { AgentState } from '../state/agent-state.js';
import type { AgentTarget } from '../targets.js';

async function sweep(dir: string): Promise<number> {
  try {
    return await sweepStaleTemps(dir, { recursive: true });
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return 0;
    throw err;
  }
}

export async function sweepInterrupted(state: AgentState, targets: readonly AgentTarget[]): Promise<number> {
  let n = 0;
  for (const card of await state.interruptedCards()) {
    for (const t of targets) n += await sweep(join(t.root, card.shoot, card.id));
  }
  return n;
}

export async function sweepAll(targets: readonly AgentTarget[]): Promise<number> {
  let n = 0;
  for (const t of targets) n += await sweep(t.root);
  return n;
}
