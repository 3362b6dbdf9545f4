/**
 * `field-agent verify`: re-read the agent's own copies (laptop store, field
 * drive) and hash them against the ledger — before formatting a card, or after
 * a disk scare. Safe to format counts the copies verified when they were
 * written; a copy that rotted since, or a field drive that was wiped or
 * swapped for another one, would still count. Here every such copy is read
 * again (verifyFile):
 *  - intact: counted as checked, nothing written;
 *  - missing, another size or hash, unreadable bytes: the copy fact becomes
 *    `verified: false` (store-copy.ts), so the card is no longer safe to format
 *    and the next ingest of the card (laptop copy) or the back-fill (field
 *    drive) makes it again;
 *  - on a field drive that is not connected, in a laptop store whose disk is not
 *    there (its marker is missing: targets.ts), or a read that fails for a reason
 *    that says nothing about the copy (EACCES…): left as recorded and listed as
 *    unchecked. A missing file counts as lost only while its disk is there.
 */
import { ProgressTracker } from '@studio321/protocol';
import { DURABLE_CODES, verifyFile } from '@studio321/protocol/durable';
import { findCard, type AgentState } from '../state/agent-state.js';
import { AGENT_CODES, AgentError } from '../errors.js';
import type { SafeToFormat } from '../state/safe-to-format.js';
import type { AssetRecord, CardRecord } from '../state/records.js';
import { summariseCard } from '../state/status.js';
import { laptopStorePresent, markCopyDamaged } from '../state/store-copy.js';
import { probeTargets, resolveTargets, statFieldDrive, type AgentTarget } from '../targets.js';

export interface VerifyCardReport {
  /** The card whose files were checked; absent: every asset of the store. */
  card?: string;
  assets: number;
  copiesChecked: number;
  copiesOk: number;
  /** Copies that no longer verify and stopped counting. */
  lost: Array<{ blake3: string; target: string; path: string; code: string }>;
  /** Copies not checked, left as recorded, with why. */
  unchecked: Array<{ blake3: string; target: string; path: string; code: string }>;
}

async function assetsOf(state: AgentState, card: CardRecord | undefined): Promise<AssetRecord[]> {
  if (card === undefined) return state.listAssets();
  const hashes = new Set<string>();
  for (const f of await state.cardFiles(card, { current: true })) if (f.blake3 !== undefined) hashes.add(f.blake3);
  const out: AssetRecord[] = [];
  for (const h of [...hashes].sort()) {
    const a = await state.getAsset(h);
    if (a !== undefined) out.push(a);
  }
  return out;
}

/** Whether the copy's disk is there now: its laptop store (by its marker) or the field drive (may be unplugged). */
async function present(target: AgentTarget, asset: AssetRecord): Promise<boolean> {
  if (target.name === 'laptop') return laptopStorePresent(asset);
  try {
    await statFieldDrive(target.root);
    return true;
  } catch {
    return false;
  }
}

export async function verifyCardCopies(
  ctx: {
    state: AgentState;
    targets: readonly AgentTarget[];
    signal?: AbortSignal;
    /** After each copy read (bytes, copies, speed, ETA over the copies to read). */
    onProgress?: (p: ProgressTracker) => void;
  },
  card?: CardRecord,
): Promise<VerifyCardReport> {
  const report: VerifyCardReport = {
    ...(card === undefined ? {} : { card: card.id }),
    assets: 0,
    copiesChecked: 0,
    copiesOk: 0,
    lost: [],
    unchecked: [],
  };
  const byName = new Map(ctx.targets.map((t) => [t.name as string, t]));
  const assets = await assetsOf(ctx.state, card);
  const toRead = (a: AssetRecord): number =>
    a.copies.filter((f) => f.verified && a.paths[f.target] !== undefined).length;
  const progress = new ProgressTracker({
    totalBytes: assets.reduce((n, a) => n + a.size * toRead(a), 0),
    totalFiles: assets.reduce((n, a) => n + toRead(a), 0),
  });
  for (const asset of assets) {
    ctx.signal?.throwIfAborted();
    report.assets++;
    for (const fact of asset.copies) {
      const path = asset.paths[fact.target];
      if (!fact.verified || path === undefined) continue;
      try {
        const entry = { blake3: asset.blake3, target: fact.target, path };
        const target = byName.get(fact.target);
        const away = fact.target === 'laptop' ? AGENT_CODES.storeUnavailable : AGENT_CODES.fieldDriveMissing;
        if (target === undefined || !(await present(target, asset))) {
          report.unchecked.push({ ...entry, code: away });
          continue;
        }
        let verdict;
        try {
          verdict = await verifyFile(
            path,
            { size: asset.size, blake3: asset.blake3 },
            ctx.signal === undefined ? {} : { signal: ctx.signal },
          );
        } catch (err) {
          ctx.signal?.throwIfAborted();
          report.unchecked.push({ ...entry, code: (err as { code?: string }).code ?? DURABLE_CODES.ioError });
          continue;
        }
        // A drive pulled during the check: its missing files are not lost.
        if (!verdict.ok && verdict.code === DURABLE_CODES.missing && !(await present(target, asset))) {
          report.unchecked.push({ ...entry, code: away });
          continue;
        }
        report.copiesChecked++;
        if (verdict.ok) {
          report.copiesOk++;
          continue;
        }
        await markCopyDamaged(ctx.state, asset, fact.target); // replaces only that target's fact, in the stored record
        report.lost.push({ ...entry, code: verdict.code ?? DURABLE_CODES.hashMismatch });
      } finally {
        progress.addBytes(asset.size); // read (or found unreadable): done with this copy
        progress.fileDone();
        ctx.onProgress?.(progress);
      }
    }
  }
  return report;
}

/** What `field-agent verify` reports: the check, and for a card its safe-to-format verdict after it. */
export interface VerifyOutcome extends VerifyCardReport {
  safeToFormat?: SafeToFormat;
}

/**
 * `field-agent verify [card]`, by the CLI (state DB opened) or by the running agent (its status
 * page's POST /api/verify): the card named by `ref` (id or label; '' or undefined: every asset).
 */
export async function verifyCopies(
  state: AgentState,
  o: {
    store: string;
    fieldDrives: readonly string[];
    copiesNeeded: number;
    onProgress?: (p: ProgressTracker) => void;
    signal?: AbortSignal;
  },
  ref?: string,
): Promise<VerifyOutcome> {
  const card = ref === undefined || ref === '' ? undefined : await findCard(state, ref);
  let targets: AgentTarget[];
  try {
    ({ targets } = await resolveTargets(o.store, o.fieldDrives, {
      storeHasCopies: () => state.hasCopiesUnder('laptop', o.store),
    }));
  } catch (err) {
    // The store's disk is unplugged: its copies are listed as not checked (AGENT_STORE_UNAVAILABLE).
    if (!(err instanceof AgentError && err.code === AGENT_CODES.storeUnavailable)) throw err;
    targets = [{ name: 'laptop', root: o.store, device: '', legacyDevice: '', media: 'laptop-disk' }];
    targets.push(...(await probeTargets(undefined, o.fieldDrives)));
  }
  await state.refreshLegacyDevices(targets.filter((t) => t.device !== ''));
  const report = await verifyCardCopies(
    {
      state,
      targets,
      ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    },
    card,
  );
  if (card === undefined) return report;
  return { ...report, safeToFormat: (await summariseCard(state, card, o.copiesNeeded)).safeToFormat };
}
