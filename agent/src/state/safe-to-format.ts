/**
 * Safe to format — computed every time, never stored.
 *
 * A card is safe to format only when:
 *  - its last full listing was recorded (a card whose listing never finished is not safe);
 *  - every file in that listing is verified and its asset has at least N verified
 *    copies off the card on distinct devices. Devices: the physical disk(s) of each
 *    agent copy (laptop store, field drive — disk-identity.ts: two folders or two
 *    partitions of one disk are one device, copies sharing any disk of a RAID/LVM set
 *    are one device, a copy whose disk is not known adds none, a copy on the card's
 *    own disk does not count), plus each device of a studio receipt;
 *  - no warning on the card is unresolved (zero-byte file, symlink or special file
 *    skipped, unreadable file or folder, file changed during copy, bad name).
 * Otherwise the verdict is "no" with the reason. When in doubt: not safe.
 */
import type { AssetRecord, CardRecord, FileRecord } from './records.js';
import { AGENT_CODES } from '../errors.js';
import { countDistinctDevices, deviceDisks, LEGACY_DEVICE_PREFIX, sharesDisk } from '../disk-identity.js';
import { hasDamagedCopy } from './agent-state.js';

export interface SafeToFormat {
  safe: boolean;
  /** One sentence for people. */
  reason: string;
  files: number;
  /** Files not yet verified here. */
  notCopied: number;
  /** Verified files whose asset has fewer than N copies on distinct devices. */
  short: number;
  /** Of those, files whose laptop copy was found damaged (store-copy.ts): only ingesting the card again mends them. */
  damaged: number;
  unresolvedWarnings: number;
  /** Up to 10 examples: `<path>: <what is missing>`. */
  examples: string[];
}

type CardPlace = Pick<CardRecord, 'dev' | 'disk'>;

function onCard(device: string, card: CardPlace): boolean {
  return (
    (card.dev !== undefined && device === `${LEGACY_DEVICE_PREFIX}${card.dev}`) ||
    (card.disk !== undefined && sharesDisk(device, card.disk))
  );
}

/** The agent's verified copies of the asset off the card (on a disk of their own or not). */
function agentCopies(asset: AssetRecord, card: CardPlace): AssetRecord['copies'] {
  return asset.copies.filter((c) => c.verified && !onCard(c.device, card));
}

/**
 * How many distinct devices hold verified copies of the asset off the card: the agent's copies
 * grouped by physical disk (unknown disks add none), plus each device of a studio receipt.
 */
export function countCopyDevices(asset: AssetRecord, card: CardPlace): number {
  const studio = new Set((asset.studio?.copies ?? []).map((c) => `studio:${c.device ?? c.target}`));
  return countDistinctDevices(agentCopies(asset, card).map((c) => c.device)) + studio.size;
}

/**
 * What keeps the agent's copies of the asset from being distinct devices, for people: copies on
 * one disk, copies whose disk is not known. Empty when every copy has a disk of its own.
 */
export function deviceNotes(asset: AssetRecord, card: CardPlace): string[] {
  const copies = agentCopies(asset, card);
  const notes: string[] = [];
  const unknown = copies
    .filter((c) => deviceDisks(c.device) === undefined)
    .map((c) => c.target)
    .sort();
  if (unknown.length > 0)
    notes.push(
      `the physical disk of the ${unknown.join(' and ')} cop${unknown.length === 1 ? 'y' : 'ies'} is not known: not counted as a device`,
    );
  const known = copies
    .filter((c) => deviceDisks(c.device) !== undefined)
    .sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  for (let i = 0; i < known.length; i++) {
    for (let j = i + 1; j < known.length; j++) {
      const a = known[i];
      const b = known[j];
      if (a !== undefined && b !== undefined && sharesDisk(a.device, b.device))
        notes.push(`the ${a.target} and ${b.target} copies are on one physical disk`);
    }
  }
  return notes;
}

function describeCopies(asset: AssetRecord, card: CardPlace): string {
  const parts = agentCopies(asset, card).map((c) => c.target);
  if (asset.studio !== undefined) parts.push(...asset.studio.copies.map((c) => `studio ${c.target}`));
  const notes = deviceNotes(asset, card);
  return `${parts.length === 0 ? 'none' : parts.join(' + ')}${notes.length === 0 ? '' : `; ${notes.join('; ')}`}`;
}

export function evaluateSafeToFormat(
  card: CardRecord,
  files: readonly FileRecord[],
  assets: ReadonlyMap<string, AssetRecord>,
  copiesNeeded: number,
): SafeToFormat {
  const v: SafeToFormat = {
    safe: false,
    reason: '',
    files: files.length,
    notCopied: 0,
    short: 0,
    damaged: 0,
    unresolvedWarnings: 0,
    examples: [],
  };
  if (card.kind === 'hot-folder') {
    v.reason = 'a hot folder is not a card: nothing to format';
    return v;
  }
  const example = (s: string): void => {
    if (v.examples.length < 10) v.examples.push(s);
  };
  const warned: string[] = [];
  const diskNotes = new Set<string>();
  for (const f of files) {
    if (f.warning !== undefined && f.warning.resolvedAt === undefined) {
      v.unresolvedWarnings += 1;
      if (warned.length < 3) warned.push(`${f.path} (${f.warning.code})`);
      example(`${f.path}: ${f.warning.code}`);
    }
    if (f.state === 'skipped') continue;
    if (f.state !== 'verified' || f.blake3 === undefined) {
      v.notCopied += 1;
      example(`${f.path}: not copied yet${f.error === undefined ? '' : ` (${f.error.code})`}`);
      continue;
    }
    const asset = assets.get(f.blake3);
    const have = asset === undefined ? 0 : countCopyDevices(asset, card);
    if (have < copiesNeeded) {
      v.short += 1;
      for (const n of asset === undefined ? [] : deviceNotes(asset, card)) diskNotes.add(n);
      const damaged = hasDamagedCopy(asset, 'laptop');
      if (damaged) v.damaged += 1;
      example(
        `${f.path}: ${have} of ${copiesNeeded} copies on distinct devices (${asset === undefined ? 'none' : describeCopies(asset, card)})${damaged ? `, its laptop copy is damaged (${AGENT_CODES.storeCopyDamaged})` : ''}`,
      );
    }
  }
  const reasons: string[] = [];
  if (!card.scanComplete) reasons.push('the card was never fully listed');
  if (card.scanComplete && files.length !== card.scanEntries)
    reasons.push('the recorded files do not match the card listing');
  if (card.lastRun?.state === 'running') reasons.push('an offload of this card is still running or was interrupted');
  if (v.notCopied > 0) reasons.push(`${v.notCopied} file${v.notCopied === 1 ? '' : 's'} not copied and verified yet`);
  const waiting = v.short - v.damaged;
  if (waiting > 0) {
    reasons.push(
      `${waiting} file${waiting === 1 ? ' has' : 's have'} fewer than ${copiesNeeded} verified copies on distinct devices (${diskNotes.size === 0 ? '' : `${[...diskNotes].join('; ')}; `}add a field drive on another disk, or wait for the studio to receive ${waiting === 1 ? 'it' : 'them'})`,
    );
  }
  if (v.damaged > 0) {
    reasons.push(
      `${v.damaged} file${v.damaged === 1 ? '' : 's'} lost ${v.damaged === 1 ? 'its laptop copy' : 'their laptop copies'} to damage (${AGENT_CODES.storeCopyDamaged}): keep the card and ingest it again`,
    );
  }
  if (v.unresolvedWarnings > 0)
    reasons.push(
      `${v.unresolvedWarnings} warning${v.unresolvedWarnings === 1 ? '' : 's'} to review: ${warned.join(', ')}${v.unresolvedWarnings > warned.length ? ` and ${v.unresolvedWarnings - warned.length} more` : ''} (then run field-agent resolve ${card.id})`,
    );
  if (reasons.length === 0 && files.length === 0) reasons.push('no files were found on the card');
  v.safe = reasons.length === 0;
  v.reason = v.safe
    ? `all ${files.length} files have ${copiesNeeded}+ verified copies on distinct devices`
    : reasons.join('; ');
  return v;
}
