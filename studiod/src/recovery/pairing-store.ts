/**
 * The pairing store: every agent record (paired and revoked) in one small JSON
 * file next to the catalogue, `<stateDir>/pairings.json`, so that losing the
 * catalogue directory does not unpair every laptop (docs/design.md §Catalogue
 * recovery). Written atomically on every pairing and revocation (the catalogue's
 * agents listener, before PairAccepted is sent); `lastSeenAt` travels with those
 * writes only (it is informational, and a write per connection is not worth it).
 *
 * At start, `reconcilePairings`: a catalogue without agents gets them back from
 * the store; otherwise the catalogue is the truth and the store is rewritten
 * when it differs (a crash between the catalogue batch and the file write).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '@studio321/protocol';
import type { AgentRecord, Catalogue } from '../catalogue.js';
import { writeFileAtomic } from '@studio321/protocol/durable';
import { RECOVERY_CODES, RecoveryError } from './errors.js';

export const PAIRINGS_FORMAT = 'studio321-pairings';
export const PAIRINGS_VERSION = 1;

export interface PairingsFile {
  format: typeof PAIRINGS_FORMAT;
  version: number;
  writtenAt: number;
  agents: AgentRecord[];
}

/** `<stateDir>/pairings.json`. */
export function pairingsPath(stateDir: string): string {
  return join(stateDir, 'pairings.json');
}

function isAgentRecord(a: unknown): a is AgentRecord {
  if (a === null || typeof a !== 'object') return false;
  const r = a as Record<string, unknown>;
  return (
    typeof r['agentId'] === 'string' &&
    typeof r['name'] === 'string' &&
    typeof r['publicKey'] === 'string' &&
    typeof r['pairedAt'] === 'number'
  );
}

/** The agents of the store; `[]` when there is none yet. Throws RECOVERY_PAIRINGS_IO when it is unreadable or not ours. */
export async function readPairings(path: string): Promise<AgentRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return [];
    throw new RecoveryError(
      RECOVERY_CODES.pairingsIo,
      `The pairing store ${path} cannot be read. Check its permissions.`,
      {
        cause: err,
        detail: { path },
      },
    );
  }
  let parsed: PairingsFile;
  try {
    parsed = JSON.parse(text) as PairingsFile;
  } catch (err) {
    throw new RecoveryError(
      RECOVERY_CODES.pairingsIo,
      `The pairing store ${path} is not valid JSON. Restore it from a backup or move it aside (agents then pair again).`,
      { cause: err, detail: { path } },
    );
  }
  if (parsed?.format !== PAIRINGS_FORMAT || typeof parsed.version !== 'number' || !Array.isArray(parsed.agents)) {
    throw new RecoveryError(RECOVERY_CODES.pairingsIo, `${path} is not a studio321 pairing store.`, {
      detail: { path },
    });
  }
  if (parsed.version > PAIRINGS_VERSION) {
    throw new RecoveryError(
      RECOVERY_CODES.pairingsIo,
      `The pairing store ${path} has version ${parsed.version}, newer than this studiod reads (${PAIRINGS_VERSION}). Upgrade studiod.`,
      { detail: { path } },
    );
  }
  return parsed.agents.filter(isAgentRecord);
}

export async function writePairings(path: string, agents: AgentRecord[], now: number): Promise<void> {
  const body: PairingsFile = { format: PAIRINGS_FORMAT, version: PAIRINGS_VERSION, writtenAt: now, agents };
  try {
    await writeFileAtomic(path, `${JSON.stringify(body, null, 1)}\n`);
  } catch (err) {
    throw new RecoveryError(
      RECOVERY_CODES.pairingsIo,
      `The pairing store ${path} cannot be written (${errorCode(err) ?? 'error'}). Check the state directory's disk and permissions.`,
      { cause: err, retryable: true, detail: { path } },
    );
  }
}

const canon = (agents: AgentRecord[]): string =>
  JSON.stringify(
    [...agents].sort((a, b) => (a.agentId < b.agentId ? -1 : 1)).map((a) => ({ ...a, lastSeenAt: undefined })),
  );

/**
 * Start-time reconciliation (see the file comment). Returns how many agents were
 * restored into the catalogue from the store.
 */
export async function reconcilePairings(
  catalogue: Catalogue,
  path: string,
  now: number,
): Promise<{ restored: number }> {
  const inCatalogue = await catalogue.listAgents();
  if (inCatalogue.length === 0) {
    const stored = await readPairings(path);
    if (stored.length === 0) return { restored: 0 };
    await catalogue.importRecords(
      stored.map((a) => ({ t: 'agent' as const, k: a.agentId, v: a as unknown as Record<string, unknown> })),
      { sync: true },
    );
    return { restored: stored.length };
  }
  let stored: AgentRecord[] = [];
  try {
    stored = await readPairings(path);
  } catch {
    stored = []; // an unreadable store is replaced by the catalogue's truth
  }
  if (canon(stored) !== canon(inCatalogue)) await writePairings(path, inCatalogue, now);
  return { restored: 0 };
}
