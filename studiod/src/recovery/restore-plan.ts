/**
 * What a restore copies: the assets a request selects (steps 1–2 of a restore,
 * docs/design.md "Recovery"), each file's sidecar group, and the order in which
 * its copies are tried.
 */
import { posix } from 'node:path';
import { nameKey } from '@studio321/protocol';
import type { AssetRecord, Catalogue, CopyRecord, NameRecord } from '../catalogue.js';
import { isArchiveClass, type CloudTargetConfig } from '../cloud/cloud-target.js';
import { distinctName, layoutFor } from '../commit/commit.js';
import { LOCAL_TARGETS } from '../config.js';
import { RECOVERY_CODES } from './errors.js';

export interface RestoreSelection {
  /** Names or hashes, each resolved like `studioctl asset`. */
  queries: string[];
  shoot?: string;
  card?: string;
}

/** One file to bring back: an asset under its target-relative path. */
export interface PlannedFile {
  hash: string;
  size: number;
  /** The target-relative path it is stored under (mirror and RAID), e.g. `2026-11-26/wedding/CARD1-…/DCIM/100CANON/IMG_0001.CR3`. */
  path: string;
}

export interface NotFound {
  query: string;
  code: string;
  message: string;
}

/** How far `storedPathOf` probes `~N` names when no local copy record says where an asset is. */
const MAX_PROBE = 1000;

function matchesShootCard(names: NameRecord[], shoot: string | undefined, card: string | undefined): boolean {
  const s = shoot === undefined ? undefined : nameKey(shoot);
  const c = card === undefined ? undefined : nameKey(card);
  return names.some(
    (n) =>
      (s === undefined || nameKey(n.shoot) === s) &&
      (c === undefined || nameKey(n.card) === c || nameKey(n.card).startsWith(`${c}-`)),
  );
}

/**
 * Step 1: the assets a selection names. A query that matches nothing (or nothing in
 * the given shoot/card) is returned in `notFound`, never silently dropped.
 */
export async function selectAssets(
  catalogue: Catalogue,
  findAssets: (query: string) => Promise<AssetRecord[]>,
  sel: RestoreSelection,
): Promise<{ assets: AssetRecord[]; notFound: NotFound[] }> {
  const assets = new Map<string, AssetRecord>();
  const notFound: NotFound[] = [];
  const scope = [
    ...(sel.shoot === undefined ? [] : [`shoot ${sel.shoot}`]),
    ...(sel.card === undefined ? [] : [`card ${sel.card}`]),
  ].join(', ');
  if (sel.queries.length === 0) {
    for await (const { asset, names } of catalogue.assetsWithRecords({ names: true })) {
      if (matchesShootCard(names ?? [], sel.shoot, sel.card)) assets.set(asset.hash, asset);
    }
    if (assets.size === 0)
      notFound.push({
        query: scope,
        code: RECOVERY_CODES.notFound,
        message: `No asset in ${scope}. Check the names with \`studioctl assets --shoot S\`.`,
      });
    return { assets: [...assets.values()], notFound };
  }
  for (const q of sel.queries) {
    let found = await findAssets(q);
    if (sel.shoot !== undefined || sel.card !== undefined) {
      const kept: AssetRecord[] = [];
      for (const a of found) if (matchesShootCard(await catalogue.namesOf(a.hash), sel.shoot, sel.card)) kept.push(a);
      found = kept;
    }
    if (found.length === 0) {
      notFound.push({
        query: q,
        code: RECOVERY_CODES.notFound,
        message: `No asset matches "${q}"${scope === '' ? '' : ` in ${scope}`}. Give the file name (IMG_0001.CR3), shoot/card/path, or the full BLAKE3 hash.`,
      });
      continue;
    }
    for (const a of found) assets.set(a.hash, a);
  }
  return { assets: [...assets.values()], notFound };
}

/**
 * The target-relative path an asset is stored under: its mirror or RAID copy
 * record says it; when both records are gone (lost copies), its name's layout,
 * probing the `~N` names the commit may have chosen, in the `stored!` index.
 */
export async function storedPathOf(catalogue: Catalogue, hash: string, copies: CopyRecord[]): Promise<string> {
  for (const t of LOCAL_TARGETS) {
    const c = copies.find((x) => x.kind === 'studio' && x.target === t);
    if (c !== undefined) return c.path;
  }
  const names = await catalogue.namesOf(hash);
  for (const n of names) {
    const { dir, base } = layoutFor(n);
    for (let i = 1; i <= MAX_PROBE; i++) {
      const rel = posix.join(dir, distinctName(base, i));
      const stored = await catalogue.storedPath(nameKey(rel));
      if (stored === undefined) break;
      if (stored.hash === hash) return stored.path;
    }
  }
  const first = names[0];
  if (first === undefined) return posix.join('unnamed', hash);
  const { dir, base } = layoutFor(first);
  return posix.join(dir, base);
}

/** `IMG_0001.CR3` → `IMG_0001`; `IMG_0001~2.CR3` → `IMG_0001`; `C0001.MP4.xmp` → `C0001`. */
export function stemOf(base: string): string {
  const dot = base.indexOf('.', 1);
  const stem = dot > 0 ? base.slice(0, dot) : base;
  return stem.replace(/~\d+$/, '');
}

/** The key every member of a stored file's sidecar group shares: nameKey of `<dir>/<stem>` (the ledger counts groups by it). */
export function groupKeyOf(rel: string): string {
  return nameKey(posix.join(posix.dirname(rel), stemOf(posix.basename(rel))));
}

/**
 * Step 2: the sidecar group of a stored file: every file stored in the same folder
 * with the same stem (`IMG_0001.CR3`, `.JPG`, `.XMP`, `.THM`, and `IMG_0001~2.*`).
 * Two range reads of the `stored!` index (keys are nameKeys, so the match is
 * case-insensitive): `<dir>/<stem>.` up to `<dir>/<stem>/` ('.' + 1), and
 * `<dir>/<stem>~` up to `<dir>/<stem>\x7f` ('~' + 1); plus the bare stem.
 */
export async function groupOf(catalogue: Catalogue, rel: string): Promise<Array<{ hash: string; path: string }>> {
  const prefix = groupKeyOf(rel);
  const out = new Map<string, { hash: string; path: string }>();
  const bare = await catalogue.storedPath(prefix);
  if (bare !== undefined) out.set(prefix, { hash: bare.hash, path: bare.path });
  for (const [gte, lt] of [
    [`${prefix}.`, `${prefix}/`],
    [`${prefix}~`, `${prefix}\x7f`],
  ] as const) {
    for (const { key, value } of await catalogue.storedPathsBetween(gte, lt)) {
      if (gte.endsWith('~') && !/^~\d+(\.|$)/.test(key.slice(prefix.length))) continue;
      out.set(key, { hash: value.hash, path: value.path });
    }
  }
  return [...out.values()];
}

/** A copy to read from, in the order tried. */
export type SourceRef =
  | { kind: 'local'; target: (typeof LOCAL_TARGETS)[number]; path: string }
  | { kind: 'cloud'; target: string; key: string; archive: boolean; config: CloudTargetConfig };

/**
 * Step 3: the sources of one asset, cheapest first: mirror, RAID, cloud targets
 * of a hot class, then of an archive class (config order within each); only
 * targets with a verified copy record. `from` keeps that target only.
 */
export function sourcesFor(
  copies: CopyRecord[],
  cloudTargets: readonly CloudTargetConfig[],
  from?: string,
): SourceRef[] {
  const out: SourceRef[] = [];
  for (const t of LOCAL_TARGETS) {
    const c = copies.find((x) => x.kind === 'studio' && x.target === t);
    if (c !== undefined) out.push({ kind: 'local', target: t, path: c.path });
  }
  const cloud = (archive: boolean): void => {
    for (const cfg of cloudTargets) {
      if (isArchiveClass(cfg.storageClass) !== archive) continue;
      const c = copies.find((x) => x.kind === 'cloud' && x.target === cfg.name);
      if (c !== undefined) out.push({ kind: 'cloud', target: cfg.name, key: c.path, archive, config: cfg });
    }
  };
  cloud(false);
  cloud(true);
  return from === undefined ? out : out.filter((s) => s.target === from);
}
