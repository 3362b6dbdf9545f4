/**
 * The status summary: what `field-agent status` counts, kept up to date in the very batches that
 * change it (agent-state.ts adds the summary's ops to every batch that writes a card, file or
 * asset record), so status reads a few keys per card instead of every file and asset.
 *
 * Each current file of a card contributes counters and index entries that depend on that file,
 * its card's listing and its asset only (fileContribution); each asset contributes the agent-wide
 * counters (assetContribution). A batch's summary ops are "minus the old contribution, plus the
 * new one" of every file and asset it touches, so the stored summary always equals the sum a
 * fresh scan would give (AgentState.verifySummary checks that; a state without a summary of this
 * version is rebuilt once by a scan at open).
 *
 * Nothing here depends on the policy or the card's place: the copies of each verified file are
 * counted by their signature (the devices of its verified copies), and status judges each
 * signature against `copiesBeforeFormat` and the card's disk when it is asked.
 *
 * Keys (agent-state.ts):
 *   meta:summary              → GlobalSums   (its version; the agent-wide counters)
 *   sum:<cardId>              → CardSums     (the card's counters for its current listing)
 *   ix:<cardId>/<epoch>/<rel> → index entry  (files listed by name: see fileContribution)
 */
import type { AssetRecord, CardRecord, FileRecord } from './records.js';

/** Bumped when what is counted changes: a summary of another version is rebuilt at open. */
export const SUMMARY_VERSION = 1;

export type Counters = Record<string, number>;

/**
 * The copies of a verified file's asset as safe to format weighs them: its verified agent
 * copies (`[target, device]`, sorted) and the devices of its studio receipt (sorted).
 */
export interface CopySignature {
  a: Array<[string, string]>;
  s: string[];
}

/** `sum:<cardId>`: the counters of the card's current listing (`epoch`: epochOf the card). */
export interface CardSums {
  epoch: string;
  c: Counters;
  /** The copy signatures counted in `c` (`sig:<id>`), by id. */
  sigs: Record<string, CopySignature>;
}

/** `meta:summary`. */
export interface GlobalSums {
  version: number;
  c: Counters;
}

/** One file's or asset's part of the sums. `ix`: index entries by their key under `ix:<card>/<epoch>/`. */
export interface Contribution {
  c: Counters;
  sigs: Record<string, CopySignature>;
  ix: Map<string, unknown>;
}

export const EMPTY: Contribution = Object.freeze({ c: {}, sigs: {}, ix: new Map() }) as Contribution;

/**
 * Which listing of the card its sums and index entries belong to: a new listing (recordScan)
 * starts new sums, and the index entries of older ones are left to be swept (never read).
 */
export function epochOf(card: Pick<CardRecord, 'kind' | 'scan'>): string {
  return card.kind === 'hot-folder' ? 'hot' : String(card.scan).padStart(10, '0');
}

/** Whether the file is in the card's current listing (hot folders: every file). */
export function isCurrent(card: Pick<CardRecord, 'kind' | 'scan'>, file: Pick<FileRecord, 'scan'>): boolean {
  return card.kind === 'hot-folder' || file.scan === card.scan;
}

export function copySignature(asset: AssetRecord | undefined): CopySignature {
  if (asset === undefined) return { a: [], s: [] };
  const a = asset.copies
    .filter((c) => c.verified)
    .map((c): [string, string] => [c.target, c.device])
    .sort((x, y) => (x.join('\0') < y.join('\0') ? -1 : x.join('\0') > y.join('\0') ? 1 : 0));
  const s = [...new Set((asset.studio?.copies ?? []).map((c) => c.device ?? c.target))].sort();
  return { a, s };
}

/** Signature ids already computed (a card's files share a handful of signatures); bounded. */
const ids = new Map<string, string>();

export function signatureId(sig: CopySignature): string {
  const json = JSON.stringify(sig);
  let id = ids.get(json);
  if (id === undefined) {
    // node:crypto is loaded at the first id, not with this module: status reads the ids stored
    // and never computes one, so it need not load it.
    id = process.getBuiltinModule('node:crypto').createHash('sha256').update(json).digest('hex').slice(0, 16);
    if (ids.size >= 1000) ids.clear();
    ids.set(json, id);
  }
  return id;
}

/** The row of a studio verdict copy in CardSummary.studioCopies (counter `sc:<row>`). */
export function studioCopyRow(c: {
  target: string;
  media: string;
  location: string;
  offsite: boolean;
  storageClass?: string;
}): string {
  return JSON.stringify([c.target, c.media, c.location, c.offsite, c.storageClass ?? null]);
}

/**
 * What a file of `card` adds to the card's sums (EMPTY when it is not in the current listing).
 * Counters: entries, skipped, files, bytes, failed, notCopied, verified, verifiedBytes, queued,
 * atStudio, verdicts, offsite, compliant, freed, warnings (unresolved), `sc:<row>` (studio verdict copies),
 * `sig:<id>` / `dmg:<id>` (verified files by copy signature / of those, laptop copy damaged).
 * Index entries: `w/<path>` unresolved warning, `e/<path>` failed, `n/<path>` not copied yet,
 * `d/<sig id>/<path>` verified (its hash), `v/<checkedAt>/<path>` studio verdict, `f/<at>/<path>` freed.
 */
export function fileContribution(
  card: CardRecord | undefined,
  file: FileRecord | undefined,
  asset: AssetRecord | undefined,
): Contribution {
  if (card === undefined || file === undefined || !isCurrent(card, file)) return EMPTY;
  const c: Counters = { entries: 1 };
  const ix = new Map<string, unknown>();
  const sigs: Record<string, CopySignature> = {};
  const p = file.path;
  if (file.warning !== undefined && file.warning.resolvedAt === undefined) {
    c.warnings = 1;
    ix.set(`w/${p}`, { code: file.warning.code, message: file.warning.message });
  }
  if (file.state === 'skipped') {
    c.skipped = 1;
    return { c, sigs, ix };
  }
  c.files = 1;
  c.bytes = file.size;
  if (file.state === 'failed' && file.error !== undefined) {
    c.failed = 1;
    ix.set(`e/${p}`, { code: file.error.code, message: file.error.message, at: file.error.at });
  }
  if (file.state !== 'verified' || file.blake3 === undefined) {
    c.notCopied = 1;
    ix.set(`n/${p}`, file.error === undefined ? {} : { code: file.error.code });
    return { c, sigs, ix };
  }
  c.verified = 1;
  c.verifiedBytes = file.size;
  const a = asset?.blake3 === file.blake3 ? asset : undefined;
  if (a?.studio !== undefined) {
    c.atStudio = 1;
    // Offsite as far as the agent knows. A studio receipt covers the studio's LOCAL targets (mirror,
    // RAID), which are never offsite; cloud copies are made later and reach the agent with the
    // studio's verdict (link/verdicts.ts). Never guessed from a location name.
    if (a.verdict?.copies.some((x) => x.offsite) === true) c.offsite = 1;
    const v = a.verdict;
    if (v !== undefined) {
      c.verdicts = 1;
      if (v.compliant) c.compliant = 1;
      ix.set(`v/${v.checkedAt}/${p}`, 1);
      for (const x of v.copies) {
        const k = `sc:${studioCopyRow(x)}`;
        c[k] = (c[k] ?? 0) + 1;
      }
    }
  } else {
    c.queued = 1;
  }
  if (a?.freed !== undefined) {
    c.freed = 1;
    ix.set(`f/${a.freed.at}/${p}`, 1);
  }
  const sig = copySignature(a);
  const id = signatureId(sig);
  sigs[id] = sig;
  c[`sig:${id}`] = 1;
  if (a?.copies.some((x) => x.target === 'laptop' && !x.verified) === true) c[`dmg:${id}`] = 1;
  ix.set(`d/${id}/${p}`, file.blake3);
  return { c, sigs, ix };
}

/**
 * What an asset adds to the agent-wide sums: queueFiles/queueBytes (waiting for the studio),
 * open/openBytes (not committed at the studio: the back-fill's candidates), `fd:<target>` /
 * `fdb:<target>` (of those, with a verified copy on the target).
 */
export function assetContribution(asset: AssetRecord | undefined): Counters {
  const c: Counters = {};
  if (asset === undefined) return c;
  if (asset.queueSeq !== undefined) {
    c.queueFiles = 1;
    c.queueBytes = asset.size;
  }
  if (asset.studio === undefined) {
    c.open = 1;
    c.openBytes = asset.size;
    for (const t of new Set(asset.copies.filter((x) => x.verified).map((x) => x.target))) {
      c[`fd:${t}`] = 1;
      c[`fdb:${t}`] = asset.size;
    }
  }
  return c;
}

/** `into` += sign × `c`; counters that reach 0 are dropped (so equal sums are equal objects). */
export function addCounters(into: Counters, c: Counters, sign: 1 | -1 = 1): void {
  for (const [k, n] of Object.entries(c)) {
    const v = (into[k] ?? 0) + sign * n;
    if (v === 0) delete into[k];
    else into[k] = v;
  }
}

/** Drop the signatures no counter refers to any more. */
export function pruneSignatures(s: CardSums): void {
  for (const id of Object.keys(s.sigs)) if (s.c[`sig:${id}`] === undefined) delete s.sigs[id];
}

/** Canonical JSON (sorted keys) for comparing sums. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : x,
  );
}
