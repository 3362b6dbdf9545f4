/**
 * Adopting a new disk for a local target whose disk died (docs/design.md
 * §Recovery, "Adopt and refill"). `studioctl target adopt <mirror|raid>`:
 *
 *   1. the root must be a new, empty disk: nothing but dot-folders (and an
 *      empty `lost+found`) — RECOVERY_ADOPT_NOT_EMPTY — and not the valid marker
 *      of the current device (adopting is for a replaced disk) — RECOVERY_ADOPT_CURRENT_DISK
 *   2. the adoption is recorded durably (sublevel `adopt`, `sync: true`) with a
 *      new device identity (`raid-1` → `raid-2`, or `--device`), which from now
 *      on is the target's device in memory (config.targets[t].device: copies
 *      name the device they are on, the marker says it); studioctl returns here
 *   3. the old disk's copies of the target are marked lost (removed, in the
 *      catalogue's batches with the ledger counters), in bounded steps; the
 *      target is unavailable meanwhile (no marker, copies recorded), so the
 *      verdict already did not count them
 *   4. the new marker is written (the durable write, via target-check.ts); the
 *      target is available again, and commits go on to both targets
 *   5. the refill: every asset in key order that has no copy on the new device
 *      is made again by remake-copy.ts (the other local target first, then a
 *      hot cloud copy; the durable write, verified), under the refill read-rate
 *      limit, 4 at a time; after each batch the cursor and the counts are
 *      written in one synchronous put, so a kill resumes after the last batch
 *      counted, and an asset written but not counted is found verified in
 *      place and recorded (never counted before it verified); then the card
 *      folders' ASC MHL histories are copied from the other local target (mhl-copy.ts)
 *   6. done: the record stays (status shows the last adoption); files that
 *      could not be made again are counted and listed, and verify heals them
 *
 * Steps 3–6 run in studiod (resumed at start), one target at a time.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ProgressTracker, type Logger, type ProgressSnapshot, errorCode } from '@studio321/protocol';
import type { AssetRecord, Catalogue } from '../catalogue.js';
import { TARGET_MARKER, checkTarget, type TargetMarker } from '../commit/target-check.js';
import { LOCAL_TARGETS, type LocalTargetConfig, type LocalTargetName } from '../config.js';
import { RECOVERY_CODES, RecoveryError } from './errors.js';
import { copyMhlHistories } from './mhl-copy.js';
import type { Throttle } from '../cloud/rate-limiter.js';
import type { RemakeRequest, RemakeResult } from './remake-copy.js';

export type AdoptionPhase = 'marking' | 'refilling' | 'done';

export interface AdoptionRecord {
  target: LocalTargetName;
  /** The new disk's identity (in its marker and in every copy made on it). */
  device: string;
  /** The dead disk's identity. */
  previous: string;
  phase: AdoptionPhase;
  requestedAt: number;
  /** Copies of the old disk marked lost (step 3). */
  markedLost: number;
  /** What the refill has to make: assets in the catalogue when it started. */
  totalFiles: number;
  totalBytes: number;
  /** Made again and verified (or found already there on the new device). */
  filesDone: number;
  bytesDone: number;
  /** Could not be made again (no verified source): verify heals them later. */
  failed: number;
  failures: Array<{ hash: string; code: string; message: string }>;
  /** The last asset (hash) the refill has passed. */
  cursor: string;
  /** The refill stopped because the target went away again: it goes on when studiod starts or adopt is run. */
  paused?: { code: string; message: string; at: number };
  finishedAt?: number;
}

export interface AdoptionStatus extends AdoptionRecord {
  /** While the refill runs: bytes/s and seconds left. */
  rate?: ProgressSnapshot;
}

export interface AdoptDeps {
  catalogue: Catalogue;
  /** The live target configs: the adopted device is written into them. */
  targets: Record<LocalTargetName, LocalTargetConfig>;
  remake: (req: RemakeRequest, signal?: AbortSignal) => Promise<RemakeResult>;
  /** Told the target's state after the marker is written (recovery/target-availability.ts). */
  noteTarget: (target: LocalTargetName, err: unknown) => Promise<void>;
  limiter: Throttle;
  log: Logger;
  now?: () => number;
  /** Copies marked lost per synchronous progress write (step 3). */
  markBatch?: number;
  /** Assets made again at once in the refill (default 4): their writes and fsyncs overlap. */
  concurrency?: number;
}

/** Events for tests and the system test's kill points (no sleeps: wait for them). */
export type AdoptEvent =
  | { t: 'marked'; target: LocalTargetName; markedLost: number }
  | { t: 'refilled'; target: LocalTargetName; hash: string; filesDone: number; healed: boolean }
  | { t: 'done'; target: LocalTargetName; record: AdoptionRecord };

const SYNC = { sync: true } as object;
const FAILURES_MAX = 20;
/** Entries a new disk may hold: dot-folders (.Trash-1000, .Spotlight-V100) and an empty lost+found. */
const ALLOWED_EMPTY = new Set(['lost+found']);

/** `raid-1` → `raid-2`; `raid` → `raid-2`; skipping identities already used. */
export function nextDevice(current: string, used: ReadonlySet<string>): string {
  const m = /^(.*?)-(\d+)$/.exec(current);
  const base = m?.[1] ?? current;
  let n = m === null ? 2 : Number(m[2]) + 1;
  while (used.has(`${base}-${n}`)) n++;
  return `${base}-${n}`;
}

export class Adopter {
  readonly #d: AdoptDeps;
  readonly #now: () => number;
  #db: ReturnType<Catalogue['sublevel']> | undefined;
  readonly #records = new Map<string, AdoptionRecord>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #trackers = new Map<string, ProgressTracker>();
  readonly #listeners: Array<(e: AdoptEvent) => void> = [];
  readonly #abort = new AbortController();

  constructor(deps: AdoptDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** Load the adoptions and make each adopted device the target's device. */
  async open(): Promise<void> {
    this.#db = this.#d.catalogue.sublevel('adopt');
    for (const t of LOCAL_TARGETS) {
      const dev = (await this.#db.get(`device!${t}`)) as { device: string } | undefined;
      if (dev !== undefined) this.#d.targets[t].device = dev.device;
      const rec = (await this.#db.get(`adoption!${t}`)) as AdoptionRecord | undefined;
      if (rec !== undefined) this.#records.set(t, rec);
    }
  }

  on(fn: (e: AdoptEvent) => void): () => void {
    this.#listeners.push(fn);
    return () => {
      const i = this.#listeners.indexOf(fn);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** Go on with every adoption not done (studiod start). */
  resume(): void {
    for (const rec of this.#records.values()) if (rec.phase !== 'done') this.#start(rec.target);
  }

  /** Every adoption (the last one per target), with the live rate while it runs. */
  statuses(): AdoptionStatus[] {
    return [...this.#records.values()].map((r) => {
      const tr = this.#trackers.get(r.target);
      return tr === undefined || r.phase === 'done' ? { ...r } : { ...r, rate: tr.snapshot() };
    });
  }

  /** The running refill of `target` (tests, the benchmark). */
  whenIdle(target: LocalTargetName): Promise<void> {
    return this.#running.get(target) ?? Promise.resolve();
  }

  /** Step 1–2; starts 3–6 in the background and returns the record at once. */
  async adopt(target: string, opts: { device?: string } = {}): Promise<AdoptionRecord> {
    if (!(LOCAL_TARGETS as readonly string[]).includes(target))
      throw new RecoveryError(
        RECOVERY_CODES.badArgument,
        `"${target}" is not a local target: adopt takes ${LOCAL_TARGETS.join(' or ')}.`,
      );
    const t = target as LocalTargetName;
    const cfg = this.#d.targets[t];
    const cur = this.#records.get(t);
    const marker = await this.#checkEmptyRoot(t, cfg, cur);
    if (cur !== undefined && cur.phase !== 'done' && (marker === undefined || marker.device === cur.device)) {
      // Already adopted and still refilling (or paused): go on, nothing new to record.
      this.#start(t);
      return { ...cur };
    }
    const used = new Set<string>([cfg.device, ...(await this.#usedDevices(t))]);
    const device = opts.device ?? nextDevice(cfg.device, used);
    if (used.has(device))
      throw new RecoveryError(
        RECOVERY_CODES.badArgument,
        `Device "${device}" was already used for ${t}: give the new disk a new name (--device).`,
      );
    const rec: AdoptionRecord = {
      target: t,
      device,
      previous: cfg.device,
      phase: 'marking',
      requestedAt: this.#now(),
      markedLost: 0,
      totalFiles: 0,
      totalBytes: 0,
      filesDone: 0,
      bytesDone: 0,
      failed: 0,
      failures: [],
      cursor: '',
    };
    await this.#db$().batch(
      [
        { type: 'put', key: `adoption!${t}`, value: rec as unknown as Record<string, unknown> },
        {
          type: 'put',
          key: `device!${t}`,
          value: { device, since: rec.requestedAt, history: [...used] } as unknown as Record<string, unknown>,
        },
      ],
      SYNC,
    );
    this.#records.set(t, rec);
    cfg.device = device;
    this.#d.log.warn(
      { target: t, device, previous: rec.previous },
      `target ${t}: new disk adopted as ${device}; the copies of ${rec.previous} are marked lost and the disk is refilled`,
    );
    this.#start(t);
    return { ...rec };
  }

  /**
   * One asset of the refill: true when its copy on the new device is there and verified (made now, or
   * found), else the code and sentence of why not.
   */
  async #refillOne(
    t: LocalTargetName,
    rec: AdoptionRecord,
    asset: AssetRecord,
    signal: AbortSignal,
  ): Promise<true | { code: string; message: string }> {
    const copies = await this.#d.catalogue.copiesOf(asset.hash);
    if (copies.some((c) => c.kind === 'studio' && c.target === t && c.device === rec.device)) return true;
    await this.#d.limiter.take(asset.size, signal);
    const r = await this.#d.remake(
      { hash: asset.hash, target: t, reason: RECOVERY_CODES.copyNotRecorded, foundBy: 'refill' },
      signal,
    );
    return r.healed ? true : { code: r.code ?? RECOVERY_CODES.healFailed, message: r.message ?? '' };
  }

  async close(): Promise<void> {
    this.#abort.abort(new Error('studiod is stopping'));
    await Promise.all([...this.#running.values()].map((p) => p.catch(() => undefined)));
  }

  #db$(): ReturnType<Catalogue['sublevel']> {
    if (this.#db === undefined) throw new TypeError('Adopter used before open()');
    return this.#db;
  }

  async #usedDevices(t: LocalTargetName): Promise<string[]> {
    const dev = (await this.#db$().get(`device!${t}`)) as { history?: string[] } | undefined;
    return dev?.history ?? [];
  }

  /** Step 1: the root holds nothing but dot-folders (and maybe our new marker). Returns the marker found. */
  async #checkEmptyRoot(
    t: LocalTargetName,
    cfg: LocalTargetConfig,
    cur: AdoptionRecord | undefined,
  ): Promise<TargetMarker | undefined> {
    let entries;
    try {
      if (!(await stat(cfg.root)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      entries = await readdir(cfg.root, { withFileTypes: true });
    } catch (err) {
      throw new RecoveryError(
        RECOVERY_CODES.targetUnavailable,
        `Nothing to adopt at ${cfg.root} (${errorCode(err) ?? 'unreadable'}): mount the new disk there first.`,
        { cause: err, retryable: true, detail: { target: t, root: cfg.root } },
      );
    }
    let marker: TargetMarker | undefined;
    const others: string[] = [];
    for (const e of entries) {
      if (e.name === TARGET_MARKER) {
        marker = JSON.parse(await readFile(join(cfg.root, e.name), 'utf8').catch(() => '{}')) as TargetMarker;
        continue;
      }
      if (e.name.startsWith('.') && e.isDirectory()) continue;
      if (ALLOWED_EMPTY.has(e.name) && e.isDirectory() && (await readdir(join(cfg.root, e.name))).length === 0)
        continue;
      others.push(e.name);
    }
    const adopting = cur !== undefined && cur.phase !== 'done' ? cur.device : undefined;
    if (marker?.target === t && marker.device === cfg.device && marker.device !== adopting)
      throw new RecoveryError(
        RECOVERY_CODES.adoptCurrentDisk,
        `${cfg.root} still holds the marker of ${t}'s current disk (${cfg.device}): adopting is for a replaced disk. If files are missing, run \`studioctl verify --target ${t}\`.`,
        { detail: { target: t, device: cfg.device } },
      );
    // The new disk's own files, during the refill, are not "other content".
    if (others.length > 0 && (adopting === undefined || marker?.device !== adopting))
      throw new RecoveryError(
        RECOVERY_CODES.adoptNotEmpty,
        `${cfg.root} is not an empty disk (it holds ${others.slice(0, 5).join(', ')}${others.length > 5 ? ', …' : ''}): adopt only a new, empty disk mounted at the target's root. Nothing was changed.`,
        { detail: { target: t, root: cfg.root, entries: others.slice(0, 20) } },
      );
    return marker;
  }

  #start(t: LocalTargetName): void {
    if (this.#running.has(t) || this.#abort.signal.aborted) return;
    const p = this.#run(t)
      .catch((err: unknown) => {
        if (this.#abort.signal.aborted) return;
        this.#d.log.error({ err, target: t }, `the refill of ${t} stopped; it goes on when studiod starts again`);
      })
      .finally(() => this.#running.delete(t));
    this.#running.set(t, p);
  }

  #emit(e: AdoptEvent): void {
    for (const l of [...this.#listeners]) l(e);
  }

  async #save(rec: AdoptionRecord): Promise<void> {
    await this.#db$().put(`adoption!${rec.target}`, rec as unknown as Record<string, unknown>, SYNC);
  }

  async #run(t: LocalTargetName): Promise<void> {
    const signal = this.#abort.signal;
    const rec = this.#records.get(t);
    if (rec === undefined || rec.phase === 'done') return;
    const cat = this.#d.catalogue;
    const cfg = this.#d.targets[t];
    if (rec.phase === 'marking') {
      // Step 3: the old disk's copies stop counting. Bounded steps; a kill redoes only what is left.
      const batch = this.#d.markBatch ?? 256;
      let n = 0;
      for await (const c of cat.copies()) {
        signal.throwIfAborted();
        if (c.kind !== 'studio' || c.target !== t || c.device === rec.device) continue;
        if (await cat.removeCopy(c)) {
          rec.markedLost++;
          if (++n % batch === 0) {
            await this.#save(rec);
            this.#emit({ t: 'marked', target: t, markedLost: rec.markedLost });
          }
        }
      }
      // Step 4: the new marker (no copies on the target any more: checkTarget writes it durably).
      await checkTarget(t, cfg, false, this.#now);
      const counters = cat.counters();
      rec.phase = 'refilling';
      rec.totalFiles = counters.assets;
      rec.totalBytes = counters.bytes;
      await this.#save(rec);
      this.#emit({ t: 'marked', target: t, markedLost: rec.markedLost });
      this.#d.log.info(
        { target: t, markedLost: rec.markedLost },
        `target ${t}: ${rec.markedLost} old copies marked lost`,
      );
      await this.#d.noteTarget(t, undefined);
    }
    // Step 5: the refill.
    if (rec.paused !== undefined) {
      // Paused because the disk went away: only go on when it is back (the marker is ours).
      await checkTarget(t, cfg, true, this.#now);
      delete rec.paused;
      await this.#save(rec);
    }
    const tracker = new ProgressTracker({
      totalBytes: Math.max(0, rec.totalBytes - rec.bytesDone),
      totalFiles: Math.max(0, rec.totalFiles - rec.filesDone),
      now: this.#now,
    });
    this.#trackers.set(t, tracker);
    try {
      // A batch of assets is made again at once (their fsyncs overlap); the cursor moves after the batch.
      const width = Math.max(1, this.#d.concurrency ?? 4);
      let batch: AssetRecord[] = [];
      const flush = async (): Promise<boolean> => {
        const results = await Promise.all(batch.map((a) => this.#refillOne(t, rec, a, signal)));
        signal.throwIfAborted();
        const gone = results.find(
          (r): r is { code: string; message: string } => r !== true && r.code === RECOVERY_CODES.targetUnavailable,
        );
        if (gone !== undefined) {
          rec.paused = { code: gone.code, message: gone.message, at: this.#now() };
          await this.#save(rec);
          this.#d.log.error({ code: gone.code, target: t }, `the refill of ${t} paused: ${gone.message}`);
          await this.#d.noteTarget(t, new RecoveryError(RECOVERY_CODES.targetUnavailable, gone.message));
          return false;
        }
        for (const [i, asset] of batch.entries()) {
          const r = results[i];
          const healed = r === true;
          if (healed) {
            rec.filesDone++;
            rec.bytesDone += asset.size;
            tracker.addBytes(asset.size);
          } else if (r !== undefined) {
            rec.failed++;
            if (rec.failures.length < FAILURES_MAX) rec.failures.push({ hash: asset.hash, ...r });
          }
          tracker.fileDone();
        }
        // Assets committed since the refill started are counted too (they reach both targets by the commit).
        rec.totalFiles = Math.max(rec.totalFiles, rec.filesDone + rec.failed);
        rec.totalBytes = Math.max(rec.totalBytes, rec.bytesDone);
        rec.cursor = (batch[batch.length - 1] as AssetRecord).hash;
        await this.#save(rec);
        for (const [i, asset] of batch.entries()) {
          const healed = results[i] === true;
          this.#d.log.debug(
            { target: t, hash: asset.hash, filesDone: rec.filesDone, totalFiles: rec.totalFiles, healed },
            'refill progress',
          );
          this.#emit({ t: 'refilled', target: t, hash: asset.hash, filesDone: rec.filesDone, healed });
        }
        batch = [];
        return true;
      };
      for await (const asset of cat.assets({ gt: rec.cursor })) {
        signal.throwIfAborted();
        batch.push(asset);
        if (batch.length >= width && !(await flush())) return;
      }
      if (batch.length > 0 && !(await flush())) return;
      // Step 5b: the folders' ASC MHL histories, from the other local target (mhl-copy.ts).
      const other = LOCAL_TARGETS.find((x) => x !== t) as LocalTargetName;
      const histories = await copyMhlHistories(this.#d.targets[other].root, cfg.root, this.#d.log).catch(
        (err: unknown) => {
          this.#d.log.warn({ err, target: t }, `the ASC MHL histories of ${t} could not all be copied from ${other}`);
          return 0;
        },
      );
      if (histories > 0)
        this.#d.log.info(
          { target: t, generations: histories },
          `${histories} ASC MHL generations copied from ${other}`,
        );
      // Step 6.
      rec.phase = 'done';
      rec.finishedAt = this.#now();
      await this.#save(rec);
      this.#d.log.info(
        { target: t, filesDone: rec.filesDone, failed: rec.failed },
        `target ${t}: refill of ${rec.device} done (${rec.filesDone} files, ${rec.failed} could not be made again)`,
      );
      this.#emit({ t: 'done', target: t, record: { ...rec } });
    } finally {
      this.#trackers.delete(t);
    }
  }
}
