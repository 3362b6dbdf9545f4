/**
 * Freeing the laptop: once every file of a card is 3-2-1 compliant at the studio by the studio's
 * own verdict (link/verdicts.ts), the `freeLaptop` policy (config.ts) deletes the laptop copies.
 *
 * What is never deleted: a field-drive copy (only the asset's `laptop` path is touched, and never
 * one under the field drive); a file whose verdict is not compliant, unknown (not at the studio)
 * or stale (older than `maxVerdictAgeMs`: it is asked again first, and without an answer nothing
 * is freed); a hot folder's files (the folder is live; only cards and folders are freed).
 *
 * Each asset is freed in three steps, so a crash leaves nothing half-done:
 *  1. `beginFree`: one synced batch records the intent; the laptop copy stops counting from here
 *     (its fact moves into `freeing`), so the state never claims a copy that may be gone;
 *  2. unlink the file, fsync its folder;
 *  3. `endFree`: one synced batch records it freed (status and verify no longer expect it).
 * `recoverFreeing` settles what a crash interrupted by looking: the file gone → freed; still
 * there → the copy counts again (freed on the next round). unlink is atomic, so after recovery
 * every file is either still on the laptop (and counted) or recorded freed.
 *
 * Safe to format is not changed by this (safe-to-format.ts): a freed copy no longer counts, and
 * the verdict's cloud copies never count there; the studio receipt's mirror and RAID copies
 * count as before.
 */
import { lstat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorCode, type Logger } from '@studio321/protocol';
import { fsyncDir } from '@studio321/protocol/durable';
import type { FreeLaptopPolicy } from '../config.js';
import { storeAvailable } from '../targets.js';
import type { AgentState } from './agent-state.js';
import type { AssetRecord, CardRecord } from './records.js';

/** A verdict older than this is asked again before a copy is freed on its word. */
export const FREE_VERDICT_MAX_AGE_MS = 10 * 60_000;
const DAY_MS = 24 * 3600_000;

export interface FreeOptions {
  policy: FreeLaptopPolicy;
  /** Asks the studio again for these assets' verdicts and records them; rejects when it cannot. */
  refresh?: (hashes: string[]) => Promise<void>;
  /** Card ids to consider (default: every card). */
  cards?: string[];
  /** The field drives' roots: nothing under them is ever deleted. */
  fieldDrives?: readonly string[];
  maxVerdictAgeMs?: number;
  now?: () => Date;
  log?: Logger;
}

export interface CardFreeResult {
  card: string;
  label: string;
  /** Files of the card (skipped entries not counted). */
  files: number;
  /** Laptop copies deleted by this call. */
  freed: number;
  /** Files whose laptop copy is freed (by this call or earlier). */
  freedFiles: number;
  /** Every file of the card is freed. */
  done: boolean;
  /** Why nothing (more) was freed; '' when done. */
  reason: string;
}

/** `${n} file(s)` */
const files = (n: number): string => `${n} file${n === 1 ? '' : 's'}`;

/** The root of the store a `freeing` record's path lies in. */
function storeRootOf(f: NonNullable<AssetRecord['freeing']>): string | undefined {
  const tail = `/${f.storePath}`;
  return f.path.endsWith(tail) ? f.path.slice(0, -tail.length) : undefined;
}

/** Settles freeings a crash interrupted (see the file comment). An unplugged store's are left for later. */
export async function recoverFreeing(state: AgentState, log?: Logger): Promise<number> {
  let settled = 0;
  for (const a of await state.freeingInterrupted()) {
    const f = a.freeing;
    if (f === undefined) continue;
    const root = storeRootOf(f);
    if (root === undefined || !(await storeAvailable(root))) continue;
    const gone = await lstat(f.path).then(
      () => false,
      (err: unknown) => errorCode(err) === 'ENOENT',
    );
    await state.endFree(a.blake3, gone);
    log?.info({ event: 'free-recovered', blake3: a.blake3, path: f.path, freed: gone }, 'interrupted freeing settled');
    settled++;
  }
  return settled;
}

/** Steps 1–3 for one asset. True: freed. */
async function freeAsset(state: AgentState, asset: AssetRecord, fieldDrives: readonly string[]): Promise<boolean> {
  const path = asset.paths['laptop'];
  if (path === undefined) return false;
  if (fieldDrives.some((d) => path === d || path.startsWith(`${d.replace(/\/$/, '')}/`))) return false;
  const root = path.endsWith(`/${asset.storePath}`) ? path.slice(0, -asset.storePath.length - 1) : undefined;
  if (root === undefined || !(await storeAvailable(root))) return false;
  const target = await state.beginFree(asset.blake3);
  if (target === undefined) return false;
  let deleted: boolean;
  try {
    await unlink(target);
    deleted = true;
  } catch (err) {
    deleted = errorCode(err) === 'ENOENT';
  }
  if (deleted) await fsyncDir(dirname(target)).catch(() => undefined);
  await state.endFree(asset.blake3, deleted);
  return deleted;
}

/** Why the card's copies may not be freed yet ('' when they may), and its assets. */
async function checkCard(
  state: AgentState,
  card: CardRecord,
  o: FreeOptions,
  now: Date,
): Promise<{ reason: string; files: number; assets: AssetRecord[] }> {
  const list = (await state.cardFiles(card, { current: true })).filter((f) => f.state !== 'skipped');
  const out = { reason: '', files: list.length, assets: [] as AssetRecord[] };
  if (card.kind === 'hot-folder') return { ...out, reason: "a hot folder's files are not freed" };
  if (!card.scanComplete || card.lastRun?.state === 'running')
    return { ...out, reason: 'the offload of this card is not complete' };
  if (list.length === 0) return { ...out, reason: 'the card has no files' };
  const notCopied = list.filter((f) => f.state !== 'verified' || f.blake3 === undefined).length;
  if (notCopied > 0) return { ...out, reason: `${files(notCopied)} not copied and verified yet` };
  const load = async (): Promise<AssetRecord[]> => {
    const seen = new Map<string, AssetRecord>();
    for (const f of list) {
      const a = f.blake3 === undefined || seen.has(f.blake3) ? undefined : await state.getAsset(f.blake3);
      if (a !== undefined) seen.set(a.blake3, a);
    }
    return [...seen.values()];
  };
  let assets = await load();
  const maxAge = o.maxVerdictAgeMs ?? FREE_VERDICT_MAX_AGE_MS;
  const stale = (a: AssetRecord): boolean =>
    a.freed === undefined && (a.verdict === undefined || now.getTime() - Date.parse(a.verdict.checkedAt) > maxAge);
  const toAsk = assets.filter(stale).map((a) => a.blake3);
  let askFailed = '';
  if (toAsk.length > 0 && o.refresh !== undefined) {
    try {
      await o.refresh(toAsk);
      assets = await load();
    } catch (err) {
      askFailed = ` (${err instanceof Error ? err.message : String(err)})`;
    }
  }
  out.assets = assets;
  const open = assets.filter((a) => a.freed === undefined);
  const unknown = open.filter((a) => a.verdict !== undefined && !a.verdict.known).length;
  const notCompliant = open.filter((a) => a.verdict?.known === true && !a.verdict.compliant);
  const stillStale = open.filter(stale).length;
  if (stillStale > 0)
    return {
      ...out,
      reason: `the studio's verdict of ${files(stillStale)} is older than ${Math.round(maxAge / 60_000)} min and the studio could not be asked now${askFailed}`,
    };
  if (unknown > 0) return { ...out, reason: `${files(unknown)} not at the studio yet` };
  if (notCompliant.length > 0)
    return {
      ...out,
      reason: `${files(notCompliant.length)} not yet 3-2-1 compliant at the studio (${notCompliant[0]?.verdict?.reasons[0] ?? 'no reason given'})`,
    };
  if (typeof o.policy === 'object') {
    const since = Math.max(...open.map((a) => Date.parse(a.verdict?.compliantSince ?? a.verdict?.checkedAt ?? '')));
    const due = since + o.policy.afterDays * DAY_MS;
    if (open.length > 0 && due > now.getTime())
      return {
        ...out,
        reason: `compliant at the studio since ${new Date(since).toISOString()}; freed ${o.policy.afterDays} days after that, from ${new Date(due).toISOString()}`,
      };
  }
  return out;
}

/** One freeing round at a time per state: a recovery must never settle a live round's intent. */
const rounds = new WeakMap<AgentState, Promise<unknown>>();

/**
 * Frees the laptop copies of the cards the policy allows now (see the file comment); one result
 * per card considered. `never` frees nothing unless `explicit` (`field-agent free`, a person
 * asking): then it frees once compliant. Rounds on one state run one after another.
 */
export function freeLaptopCopies(state: AgentState, o: FreeOptions, explicit = false): Promise<CardFreeResult[]> {
  const run = (rounds.get(state) ?? Promise.resolve()).then(
    () => freeRound(state, o, explicit),
    () => freeRound(state, o, explicit),
  );
  rounds.set(
    state,
    run.catch(() => undefined),
  );
  return run;
}

async function freeRound(state: AgentState, o: FreeOptions, explicit: boolean): Promise<CardFreeResult[]> {
  const now = (o.now ?? (() => new Date()))();
  await recoverFreeing(state, o.log);
  const policy: FreeLaptopPolicy = o.policy === 'never' && explicit ? 'onceCompliant' : o.policy;
  const cards = (await state.listCards()).filter((c) => o.cards === undefined || o.cards.includes(c.id));
  const results: CardFreeResult[] = [];
  for (const card of cards) {
    const r: CardFreeResult = {
      card: card.id,
      label: card.label,
      files: 0,
      freed: 0,
      freedFiles: 0,
      done: false,
      reason: '',
    };
    if (policy === 'never') {
      r.reason = 'freeLaptop is "never" in the config';
      results.push(r);
      continue;
    }
    const check = await checkCard(state, card, { ...o, policy }, now);
    r.files = check.files;
    r.reason = check.reason;
    if (check.reason === '') {
      for (const a of check.assets) {
        if (a.freed !== undefined) continue;
        if (await freeAsset(state, a, o.fieldDrives ?? [])) {
          r.freed++;
          o.log?.info({ event: 'laptop-copy-freed', card: card.id, blake3: a.blake3 }, 'laptop copy freed');
        }
      }
    }
    const after = await Promise.all(check.assets.map((a) => state.getAsset(a.blake3)));
    const freedHashes = new Set(after.filter((a) => a?.freed !== undefined).map((a) => a?.blake3));
    r.freedFiles = (await state.cardFiles(card, { current: true })).filter(
      (f) => f.blake3 !== undefined && freedHashes.has(f.blake3),
    ).length;
    r.done = r.files > 0 && r.freedFiles === r.files;
    if (check.reason === '' && !r.done)
      r.reason = `${files(r.files - r.freedFiles)} could not be freed (laptop store not available, or the file could not be deleted)`;
    if (r.done) r.reason = '';
    results.push(r);
  }
  return results;
}
