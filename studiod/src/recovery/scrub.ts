/**
 * The scheduled scrub (docs/design.md §Recovery, "Scrub"): studiod re-reads
 * every local copy within `scrub.periodDays`, under `scrub.bytesPerSecond`,
 * and checks every cloud copy (a HEAD; a full GET of `cloudDownloadPercent`
 * of the hot-class copies). What it finds is healed by the same path as
 * `studioctl verify` (ledger/verify-copies.ts → remake-copy.ts, the
 * quarantine): the scrub only chooses which assets, when and how fast.
 *
 *   1. a pass of a target starts when it has never been scrubbed, or when the
 *      last pass started `periodDays` ago
 *   2. a step: the next `chunk` assets after the target's cursor, in key
 *      order; the read budget paid first (the assets' sizes; cloud HEADs are
 *      free, a full GET is paid); then the verify of those assets on that target
 *   3. the cursor and the pass's counts (ok / healed / lost) are written in
 *      one synchronous put after the step: a kill redoes at most one step, and
 *      a redone step counts once
 *   4. at the end of the keys, the pass is recorded as the target's last full
 *      scrub (`status`: when, and what was found) and the cursor removed
 *   5. a target that cannot be checked (unmounted, cloud unreachable) keeps
 *      its cursor; the scrub tries it again at the next round
 *
 * Targets take turns a step at a time; a local target being refilled after an
 * adoption, or a running `studioctl verify`, holds the scrub back.
 */
import type { Logger } from '@studio321/protocol';
import type { AssetRecord, Catalogue } from '../catalogue.js';
import { LOCAL_TARGETS } from '../config.js';
import type { Throttle } from '../cloud/rate-limiter.js';
import { isHotStorageClass } from './remake-copy.js';

export interface ScrubCounts {
  target: string;
  startedAt: number;
  /** Assets passed, copies found ok, made again (healed), lost (not healed, or a cloud copy queued again). */
  assets: number;
  ok: number;
  healed: number;
  lost: number;
  bytes: number;
}

export interface ScrubCursor extends ScrubCounts {
  /** The last asset (hash) this pass has checked. */
  cursor: string;
  /** Why the last step could not check the target (it is tried again). */
  blocked?: { code: string; message: string; at: number };
}

export interface ScrubLast extends ScrubCounts {
  finishedAt: number;
}

export interface ScrubTargetStatus {
  target: string;
  last: ScrubLast | null;
  current: ScrubCursor | null;
}

/** What the scrub asks of ledger/verify-copies.ts (the ledger passes verifyCopies with studiod's deps). */
export interface ScrubVerifyOptions {
  target: string;
  assets: AsyncIterable<AssetRecord>;
  download?: boolean;
}

export interface ScrubVerifyReport {
  copiesOk: number;
  healed: number;
  notHealed: number;
  unchecked: Array<{ target: string; code: string; message: string }>;
}

export interface ScrubDeps {
  catalogue: Catalogue;
  cloudTargets: ReadonlyArray<{ name: string; storageClass: string }>;
  /** ledger/verify-copies.ts with studiod's deps (the same heal as `studioctl verify`). */
  verify: (opts: ScrubVerifyOptions) => Promise<ScrubVerifyReport>;
  limiter: Throttle;
  periodDays: number;
  cloudDownloadPercent: number;
  log: Logger;
  now?: () => number;
  random?: () => number;
  /** True while the scrub of `target` must wait (a refill, a running verify). */
  holdBack?: (target: string) => boolean;
  /** Assets per step (default 64). */
  chunk?: number;
  /** Sleep until the next due pass (injectable; tests drive step() instead). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const SYNC = { sync: true } as object;
const DAY_MS = 86_400_000;
/** Look again at least this often when nothing is due (a config or clock change). */
const MAX_IDLE_MS = 3_600_000;

function sleepFor(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const h = setTimeout(resolve, ms);
    h.unref();
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(h);
        resolve();
      },
      { once: true },
    );
  });
}

async function* listOf<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

export class Scrubber {
  readonly #d: ScrubDeps;
  readonly #now: () => number;
  readonly #random: () => number;
  #db: ReturnType<Catalogue['sublevel']> | undefined;
  readonly #cursors = new Map<string, ScrubCursor>();
  readonly #last = new Map<string, ScrubLast>();
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #turn = 0;

  constructor(deps: ScrubDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
    this.#random = deps.random ?? Math.random;
  }

  get targets(): string[] {
    return [...LOCAL_TARGETS, ...this.#d.cloudTargets.map((c) => c.name)];
  }

  async open(): Promise<void> {
    this.#db = this.#d.catalogue.sublevel('scrub');
    for (const t of this.targets) {
      const c = (await this.#db.get(`cursor!${t}`)) as ScrubCursor | undefined;
      if (c !== undefined) this.#cursors.set(t, c);
      const l = (await this.#db.get(`last!${t}`)) as ScrubLast | undefined;
      if (l !== undefined) this.#last.set(t, l);
    }
  }

  statuses(): ScrubTargetStatus[] {
    return this.targets.map((t) => ({
      target: t,
      last: this.#last.has(t) ? { ...(this.#last.get(t) as ScrubLast) } : null,
      current: this.#cursors.has(t) ? { ...(this.#cursors.get(t) as ScrubCursor) } : null,
    }));
  }

  /** Is a pass of `target` under way or due now? */
  due(target: string): boolean {
    if (this.#cursors.has(target)) return true;
    if (this.#d.periodDays <= 0) return false;
    const last = this.#last.get(target);
    return last === undefined || this.#now() - last.startedAt >= this.#d.periodDays * DAY_MS;
  }

  /** One step of the next target (in turn) that is due; false when none is. */
  async step(): Promise<boolean> {
    const ts = this.targets;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[(this.#turn + i) % ts.length] as string;
      if (!this.due(t) || this.#d.holdBack?.(t) === true) continue;
      this.#turn = (this.#turn + i + 1) % ts.length;
      await this.stepTarget(t);
      return true;
    }
    return false;
  }

  /** Steps 2–5 for one target. */
  async stepTarget(target: string): Promise<void> {
    const db = this.#db$();
    const cur: ScrubCursor = this.#cursors.get(target) ?? {
      target,
      startedAt: this.#now(),
      cursor: '',
      assets: 0,
      ok: 0,
      healed: 0,
      lost: 0,
      bytes: 0,
    };
    const chunk: AssetRecord[] = [];
    for await (const a of this.#d.catalogue.assets({ gt: cur.cursor, limit: this.#d.chunk ?? 64 })) chunk.push(a);
    if (chunk.length === 0) {
      const { cursor: _c, blocked: _b, ...counts } = cur;
      const last: ScrubLast = { ...counts, finishedAt: this.#now() };
      await db.batch(
        [
          { type: 'put', key: `last!${target}`, value: last as unknown as Record<string, unknown> },
          { type: 'del', key: `cursor!${target}` },
        ],
        SYNC,
      );
      this.#last.set(target, last);
      this.#cursors.delete(target);
      this.#d.log.info(
        { target, assets: last.assets, ok: last.ok, healed: last.healed, lost: last.lost },
        `scrub of ${target} done: ${last.ok} ok, ${last.healed} healed, ${last.lost} lost`,
      );
      return;
    }
    const cloud = this.#d.cloudTargets.find((c) => c.name === target);
    const reports: ScrubVerifyReport[] = [];
    let bytes = 0;
    if (cloud === undefined) {
      bytes = chunk.reduce((n, a) => n + a.size, 0);
      await this.#d.limiter.take(bytes, this.#abort.signal);
      reports.push(await this.#d.verify({ target, assets: listOf(chunk) }));
    } else {
      const hot = isHotStorageClass(cloud.storageClass);
      const full = chunk.filter(() => hot && this.#random() * 100 < this.#d.cloudDownloadPercent);
      const head = chunk.filter((a) => !full.includes(a));
      if (full.length > 0) {
        bytes = full.reduce((n, a) => n + a.size, 0);
        await this.#d.limiter.take(bytes, this.#abort.signal);
        reports.push(await this.#d.verify({ target, assets: listOf(full), download: true }));
      }
      if (head.length > 0) reports.push(await this.#d.verify({ target, assets: listOf(head) }));
    }
    const blocked = reports.flatMap((r) => r.unchecked).find((u) => u.target === target);
    if (blocked !== undefined) {
      // Step 5: nothing counted, the cursor stays; the next round tries again.
      cur.blocked = { code: blocked.code, message: blocked.message, at: this.#now() };
      this.#cursors.set(target, cur);
      await db.put(`cursor!${target}`, cur as unknown as Record<string, unknown>, SYNC);
      return;
    }
    delete cur.blocked;
    for (const r of reports) {
      cur.ok += r.copiesOk;
      cur.healed += r.healed;
      cur.lost += r.notHealed;
    }
    cur.assets += chunk.length;
    cur.bytes += bytes;
    cur.cursor = (chunk[chunk.length - 1] as AssetRecord).hash;
    await db.put(`cursor!${target}`, cur as unknown as Record<string, unknown>, SYNC);
    this.#cursors.set(target, cur);
    this.#d.log.debug(
      { target, assets: cur.assets, ok: cur.ok, healed: cur.healed, lost: cur.lost, cursor: cur.cursor },
      'scrub step saved',
    );
  }

  /** The schedule: steps while something is due, then sleeps until the next pass is. */
  start(): void {
    if (this.#loop !== undefined || this.#d.periodDays <= 0) return;
    const signal = this.#abort.signal;
    const sleep = this.#d.sleep ?? sleepFor;
    this.#loop = (async () => {
      while (!signal.aborted) {
        let worked = false;
        try {
          worked = await this.step();
        } catch (err) {
          if (signal.aborted) return;
          this.#d.log.warn({ err }, 'scrub step failed; trying again later');
          await sleep(60_000, signal);
          continue;
        }
        if (!worked) await sleep(this.#idleMs(), signal);
      }
    })();
  }

  #idleMs(): number {
    const period = this.#d.periodDays * DAY_MS;
    let next = MAX_IDLE_MS;
    for (const t of this.targets) {
      const last = this.#last.get(t);
      if (last !== undefined) next = Math.min(next, Math.max(1000, last.startedAt + period - this.#now()));
    }
    // Held back (a refill, a verify): look again soon.
    return this.targets.some((t) => this.due(t)) ? 5_000 : next;
  }

  async close(): Promise<void> {
    this.#abort.abort(new Error('studiod is stopping'));
    await this.#loop?.catch(() => undefined);
  }

  #db$(): ReturnType<Catalogue['sublevel']> {
    if (this.#db === undefined) throw new TypeError('Scrubber used before open()');
    return this.#db;
  }
}
