/**
 * Safe to format — judged every time it is asked, never stored: from the card's status summary
 * (summary.ts: its files counted by state and by the signature of their copies), against the
 * policy and the card's place as they are now.
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
import type { CopyFact } from '@studio321/protocol';
import type { AssetRecord, CardRecord, FileRecord } from './records.js';
import { addCounters, fileContribution, type CopySignature } from './summary.js';
import { AGENT_CODES } from '../errors.js';
import { countDistinctDevices, deviceDisks, LEGACY_DEVICE_PREFIX, sharesDisk } from '../disk-identity.js';

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
  /**
   * Up to EXAMPLES examples, `<path>: <what is missing>`: unresolved warnings first, then files
   * not copied yet, then files short of copies (each in path order).
   */
  examples: string[];
}

/** How many examples a verdict lists. */
export const EXAMPLES = 10;

/** An asset's copies as safe to format weighs them (an AssetRecord, or a copy signature's view). */
export interface CopiesView {
  copies: ReadonlyArray<Pick<CopyFact, 'target' | 'device' | 'verified'>>;
  studio?: { copies: ReadonlyArray<{ target: string; device?: string }> };
}

/** A copy signature (summary.ts) as the copies it stands for. */
export function signatureView(sig: CopySignature): CopiesView {
  return {
    copies: sig.a.map(([target, device]) => ({ target, device, verified: true })),
    studio: { copies: sig.s.map((d) => ({ target: d, device: d })) },
  };
}

/** What safe to format is judged from: the card's current listing as its summary counts it. */
export interface SafeTally {
  /** Entries of the listing recorded (files and skipped entries). */
  entries: number;
  notCopied: number;
  unresolvedWarnings: number;
  /** The first three unresolved warnings, `<path> (<code>)`. */
  warned: string[];
  /** Verified files by the signature of their asset's copies; `damaged`: of those, laptop copy damaged. */
  signatures: Array<{ sig: CopySignature; files: number; damaged: number }>;
  /** Up to EXAMPLES examples (status.ts gathers them from the summary's index). */
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
function agentCopies(asset: CopiesView, card: CardPlace): CopiesView['copies'] {
  return asset.copies.filter((c) => c.verified && !onCard(c.device, card));
}

/**
 * How many distinct devices hold verified copies of the asset off the card: the agent's copies
 * grouped by physical disk (unknown disks add none), plus each device of a studio receipt.
 */
export function countCopyDevices(asset: CopiesView, card: CardPlace): number {
  const studio = new Set((asset.studio?.copies ?? []).map((c) => `studio:${c.device ?? c.target}`));
  return countDistinctDevices(agentCopies(asset, card).map((c) => c.device)) + studio.size;
}

/**
 * What keeps the agent's copies of the asset from being distinct devices, for people: copies on
 * one disk, copies whose disk is not known. Empty when every copy has a disk of its own.
 */
export function deviceNotes(asset: CopiesView, card: CardPlace): string[] {
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

/** The example of a verified file short of copies (`have` of `copiesNeeded`). */
export function shortExample(
  path: string,
  asset: AssetRecord | undefined,
  have: number,
  copiesNeeded: number,
  card: CardPlace,
): string {
  const damaged = hasDamagedCopy(asset, 'laptop');
  return `${path}: ${have} of ${copiesNeeded} copies on distinct devices (${asset === undefined ? 'none' : describeCopies(asset, card)})${damaged ? `, its laptop copy is damaged (${AGENT_CODES.storeCopyDamaged})` : ''}`;
}

export function evaluateSafeToFormat(card: CardRecord, tally: SafeTally, copiesNeeded: number): SafeToFormat {
  const v: SafeToFormat = {
    safe: false,
    reason: '',
    files: tally.entries,
    notCopied: tally.notCopied,
    short: 0,
    damaged: 0,
    unresolvedWarnings: tally.unresolvedWarnings,
    examples: tally.examples.slice(0, EXAMPLES),
  };
  if (card.kind === 'hot-folder') {
    v.reason = 'a hot folder is not a card: nothing to format';
    v.examples = [];
    return v;
  }
  const warned = tally.warned;
  const diskNotes = new Set<string>();
  for (const { sig, files, damaged } of tally.signatures) {
    const view = signatureView(sig);
    if (countCopyDevices(view, card) >= copiesNeeded) continue;
    v.short += files;
    v.damaged += damaged;
    for (const n of deviceNotes(view, card)) diskNotes.add(n);
  }
  const reasons: string[] = [];
  if (!card.scanComplete) reasons.push('the card was never fully listed');
  if (card.scanComplete && tally.entries !== card.scanEntries)
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
  if (reasons.length === 0 && tally.entries === 0) reasons.push('no files were found on the card');
  v.safe = reasons.length === 0;
  v.reason = v.safe
    ? `all ${tally.entries} files have ${copiesNeeded}+ verified copies on distinct devices`
    : reasons.join('; ');
  return v;
}

/**
 * The tally of these files of the card (its current listing) with their assets, as the card's
 * status summary counts them (summary.ts), with its examples: for a verdict on files at hand.
 */
export function tallyOfFiles(
  card: CardRecord,
  files: readonly FileRecord[],
  assets: ReadonlyMap<string, AssetRecord>,
  copiesNeeded: number,
): SafeTally {
  const c: Record<string, number> = {};
  const sigs: Record<string, CopySignature> = {};
  const listed: Array<{ path: string; ix: Map<string, unknown> }> = [];
  for (const f of files) {
    const part = fileContribution(
      card,
      { ...f, scan: card.scan },
      f.blake3 === undefined ? undefined : assets.get(f.blake3),
    );
    addCounters(c, part.c);
    Object.assign(sigs, part.sigs);
    listed.push({ path: f.path, ix: part.ix });
  }
  const sorted = listed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const warned: string[] = [];
  const examples: string[] = [];
  for (const { path, ix } of sorted) {
    const w = ix.get(`w/${path}`) as { code: string } | undefined;
    if (w !== undefined && warned.length < 3) warned.push(`${path} (${w.code})`);
    if (w !== undefined) examples.push(`${path}: ${w.code}`);
  }
  for (const { path, ix } of sorted) {
    const n = ix.get(`n/${path}`) as { code?: string } | undefined;
    if (n !== undefined) examples.push(`${path}: not copied yet${n.code === undefined ? '' : ` (${n.code})`}`);
  }
  for (const { path, ix } of sorted)
    for (const [k, b] of ix) {
      if (!k.startsWith('d/')) continue;
      const sig = sigs[k.slice(2, k.indexOf('/', 2))];
      const asset = assets.get(b as string);
      const have = sig === undefined ? 0 : countCopyDevices(signatureView(sig), card);
      if (have < copiesNeeded) examples.push(shortExample(path, asset, have, copiesNeeded, card));
    }
  return {
    entries: c.entries ?? 0,
    notCopied: c.notCopied ?? 0,
    unresolvedWarnings: c.warnings ?? 0,
    warned,
    signatures: Object.entries(sigs).map(([id, sig]) => ({
      sig,
      files: c[`sig:${id}`] ?? 0,
      damaged: c[`dmg:${id}`] ?? 0,
    })),
    examples: examples.slice(0, EXAMPLES),
  };
}

/** Whether the asset's copy on `target` was found damaged: recorded, but no longer verified (store-copy.ts). */
export function hasDamagedCopy(asset: { copies: readonly CopyFact[] } | undefined, target: string): boolean {
  return asset?.copies.some((c) => c.target === target && !c.verified) === true;
}
