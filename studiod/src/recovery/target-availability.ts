/**
 * Is each local target (mirror, RAID) available? A target whose root or
 * marker is gone (commit/target-check.ts: STUDIO_TARGET_MISSING), or that
 * fails with I/O errors (STUDIO_TARGET_IO), is *unavailable*: its copies do
 * not count toward 3-2-1 while it is so (the ledger recounts on every
 * transition), and `studioctl status` says since when and why.
 *
 * Transitions are noticed by a commit (its target check), by `verify`, by
 * `status` and by a periodic check (default every 60 s; interval and clock
 * injectable), and written durably (catalogue sublevel `availability`,
 * `sync: true`) BEFORE the listeners run, so "since" survives a restart and
 * a recount interrupted by a crash is redone at the next open (the ledger's
 * counters carry the unavailable set in their signature).
 */
import { CodedError } from '@studio321/protocol';
import type { Catalogue } from '../catalogue.js';
import { checkTarget } from '../commit/target-check.js';
import { LOCAL_TARGETS, type LocalTargetConfig, type LocalTargetName } from '../config.js';
import { DURABLE_CODES } from '@studio321/protocol/durable';
import { STUDIO_CODES } from '../errors.js';

export interface TargetState {
  target: string;
  available: boolean;
  /** When the target entered this state (ms). */
  since: number;
  /** Why it is unavailable: the error code and its sentence. */
  code?: string;
  reason?: string;
}

export const DEFAULT_AVAILABILITY_INTERVAL_MS = 60_000;

/** Errors that make a target unavailable (a full or read-only disk still holds readable copies). */
const UNAVAILABLE_CODES = new Set<string>([STUDIO_CODES.targetMissing, STUDIO_CODES.targetIo, DURABLE_CODES.ioError]);

export function makesUnavailable(err: unknown): boolean {
  return err instanceof CodedError && UNAVAILABLE_CODES.has(err.code);
}

type Listener = (unavailable: string[]) => Promise<void> | void;

/** The periodic timer, injectable (tests tick it by hand). Returns a stop function. */
export type IntervalScheduler = (tick: () => void, ms: number) => () => void;

const realInterval: IntervalScheduler = (tick, ms) => {
  const h = setInterval(tick, ms);
  h.unref(); // the check never keeps studiod alive on its own
  return () => clearInterval(h);
};

const SYNC = { sync: true } as object;

export class TargetAvailability {
  readonly #catalogue: Catalogue;
  readonly #targets: Record<LocalTargetName, LocalTargetConfig>;
  readonly #now: () => number;
  readonly #intervalMs: number;
  readonly #log: { warn(o: object, m: string): void; info(o: object, m: string): void } | undefined;
  readonly #states = new Map<string, TargetState>();
  readonly #listeners: Listener[] = [];
  #db: ReturnType<Catalogue['sublevel']> | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  readonly #schedule: IntervalScheduler;
  #stopTimer: (() => void) | undefined;
  #checking: Promise<void> | undefined;

  constructor(opts: {
    catalogue: Catalogue;
    targets: Record<LocalTargetName, LocalTargetConfig>;
    now?: () => number;
    intervalMs?: number;
    schedule?: IntervalScheduler;
    log?: { warn(o: object, m: string): void; info(o: object, m: string): void };
  }) {
    this.#schedule = opts.schedule ?? realInterval;
    this.#catalogue = opts.catalogue;
    this.#targets = opts.targets;
    this.#now = opts.now ?? Date.now;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_AVAILABILITY_INTERVAL_MS;
    this.#log = opts.log;
  }

  /** Load the recorded states (a target never recorded is available since now). */
  async open(): Promise<void> {
    this.#db = this.#catalogue.sublevel('availability');
    for (const t of LOCAL_TARGETS) {
      const rec = (await this.#db.get(`target!${t}`)) as TargetState | undefined;
      this.#states.set(t, rec ?? { target: t, available: true, since: this.#now() });
    }
  }

  /** Run `fn` after each transition, with the targets now unavailable. */
  onChange(fn: Listener): void {
    this.#listeners.push(fn);
  }

  unavailable(): string[] {
    return [...this.#states.values()].filter((s) => !s.available).map((s) => s.target);
  }

  isAvailable(target: string): boolean {
    return this.#states.get(target)?.available ?? true;
  }

  states(): TargetState[] {
    return [...this.#states.values()].map((s) => ({ ...s }));
  }

  state(target: string): TargetState | undefined {
    const s = this.#states.get(target);
    return s === undefined ? undefined : { ...s };
  }

  /**
   * What a check of `target` found: `undefined` (fine) or the error. Only
   * errors that make a target unavailable count; others leave it as it is.
   * A change is written durably, then the listeners run (serialised).
   */
  note(target: string, err: unknown): Promise<void> {
    if (!(LOCAL_TARGETS as readonly string[]).includes(target)) return Promise.resolve();
    const p = this.#chain.then(() => this.#note(target, err));
    this.#chain = p.catch(() => undefined);
    return p;
  }

  async #note(target: string, err: unknown): Promise<void> {
    const cur = this.#states.get(target);
    let next: TargetState;
    if (err === undefined) {
      if (cur?.available !== false) return;
      next = { target, available: true, since: this.#now() };
      this.#log?.info({ target, was: cur.code }, `target ${target} is available again`);
    } else if (makesUnavailable(err)) {
      if (cur?.available === false) return;
      const e = err as CodedError;
      next = { target, available: false, since: this.#now(), code: e.code, reason: e.message };
      this.#log?.warn(
        { code: e.code, target },
        `target ${target} is unavailable: its copies do not count until it is back (${e.message})`,
      );
    } else {
      return;
    }
    if (this.#db === undefined) throw new TypeError('TargetAvailability used before open()');
    await this.#db.put(`target!${target}`, next as unknown as Record<string, unknown>, SYNC);
    this.#states.set(target, next);
    const down = this.unavailable();
    for (const l of this.#listeners) await l(down);
  }

  /** Check every local target now (root, marker; see target-check.ts). */
  check(): Promise<void> {
    this.#checking ??= (async () => {
      try {
        const counters = this.#catalogue.counters();
        for (const t of LOCAL_TARGETS) {
          let err: unknown;
          try {
            await checkTarget(t, this.#targets[t], (counters.copies[t]?.count ?? 0) > 0, this.#now);
          } catch (e) {
            err = e;
          }
          await this.note(t, err);
        }
      } finally {
        this.#checking = undefined;
      }
    })();
    return this.#checking;
  }

  /** Start the periodic check (a timer that does not keep the process alive). */
  start(): void {
    if (this.#stopTimer !== undefined || this.#intervalMs <= 0) return;
    this.#stopTimer = this.#schedule(() => {
      this.check().catch((err: unknown) => this.#log?.warn({ err }, 'target availability check failed'));
    }, this.#intervalMs);
  }

  async close(): Promise<void> {
    this.#stopTimer?.();
    this.#stopTimer = undefined;
    await this.#checking?.catch(() => undefined);
    await this.#chain.catch(() => undefined);
  }
}
