/**
 * One budget for the Chunk bytes all link sessions together hold in memory: received from a
 * socket and not yet written to staging (docs/design.md "Link server", receive budget).
 *
 * Each session's window (SPEC §3.5) bounds what ONE agent may have in flight, so twenty agents
 * could make studiod hold twenty windows of chunks at once (320 MiB with the default window)
 * when the disks are slower than the network. The budget caps the sum: a Chunk counts from its
 * arrival (`take`) until the session's frame queue has handled it (`release`); when an arrival
 * takes the sum past `limitBytes`, that session's socket stops being read (`pause`, TCP
 * backpressure to the agent, whose window then fills and waits). Paused sessions are resumed
 * together, in the order they were paused, once the sum is back under half the limit, so no
 * session is starved and the sockets do not flap at the edge. Nothing is dropped or reordered:
 * a paused socket only is not read; what `ws` had already read from it (at most one socket read,
 * which may finish a frame) still arrives and is counted. A small file received whole in memory
 * counts again from its FileEnd until its commit ends (file-receiver.ts `holdSmall`): bytes freed
 * by commits, which need no frame, so the sum always falls back under half the limit.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** What the budget can do to a session's socket. */
export interface BudgetReader {
  pause(): void;
  resume(): void;
}

/** The default limit: a few windows, far below what twenty sessions' windows would hold. */
export const RECEIVE_BUDGET_BYTES = 64 * 1024 * 1024;

export class MemoryBudget {
  readonly limitBytes: number;
  readonly #resumeAt: number;
  #held = 0;
  #maxHeld = 0;
  #pauses = 0;
  /** Paused readers, in the order they were paused (resumed in that order). */
  readonly #paused = new Set<BudgetReader>();

  constructor(limitBytes: number = RECEIVE_BUDGET_BYTES) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes <= 0)
      throw new TypeError('MemoryBudget: limitBytes must be a positive integer');
    this.limitBytes = limitBytes;
    this.#resumeAt = Math.floor(limitBytes / 2);
  }

  /** Chunk bytes held now (received, not yet handled). */
  get held(): number {
    return this.#held;
  }

  /** The most ever held at once (tests, status). */
  get maxHeld(): number {
    return this.#maxHeld;
  }

  /** How many times a reader was paused. */
  get pauses(): number {
    return this.#pauses;
  }

  /** Readers paused now. */
  get pausedCount(): number {
    return this.#paused.size;
  }

  isPaused(reader: BudgetReader): boolean {
    return this.#paused.has(reader);
  }

  /** `bytes` arrived on `reader`'s socket; past the limit, that socket is not read until the sum falls. */
  take(reader: BudgetReader, bytes: number): void {
    this.#held += bytes;
    if (this.#held > this.#maxHeld) this.#maxHeld = this.#held;
    if (this.#held > this.limitBytes && !this.#paused.has(reader)) {
      this.#paused.add(reader);
      this.#pauses++;
      reader.pause();
    }
  }

  /** `bytes` taken earlier were handled (written, dropped, or their session ended). */
  release(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
    if (this.#held > this.#resumeAt || this.#paused.size === 0) return;
    const waiting = [...this.#paused];
    this.#paused.clear();
    for (const r of waiting) r.resume();
  }

  /** The reader's session ended: it is not resumed later. */
  forget(reader: BudgetReader): void {
    this.#paused.delete(reader);
  }
}

/** How long the link must be quiet (no frame arrived, no commit running, no Chunk held) before its memory is given back. */
export const LINK_QUIET_MS = 3_000;
/**
 * Memory is given back only when V8's heap and the Buffers outside it hold this much more than
 * after the last time, or the link received this many bytes since: a full GC of a heap of this
 * size costs tens of ms, so a link that goes quiet every few seconds (one camera tethered) does
 * not pay it each time for nothing.
 */
export const RECLAIM_MIN_BYTES = 16 * 1024 * 1024;
/**
 * How long after a reclaim, the link still quiet, a second full GC runs: V8 shrinks its young
 * generation (two semi-spaces, 32 MiB after a burst) only at a GC that finds little was allocated
 * over the last 5 s (its allocation-throughput window); the reclaim's own GC comes 3 s after a
 * burst and never does.
 */
export const RECLAIM_SETTLE_MS = 6_000;
/**
 * The settling GC also runs after a quiet check that gave nothing back if the link received this
 * much since the last GC: the tail of a burst (a few agents ending late, each under
 * RECLAIM_MIN_BYTES) left 20–40 MiB of garbage in V8's heap; a keep-alive now and then does not.
 */
export const RECLAIM_SETTLE_MIN_BYTES = 1024 * 1024;

export interface IdleReclaimOptions {
  quietMs?: number;
  minBytes?: number;
  /** After a reclaim, the link still quiet this long: one more GC (0: none); default RECLAIM_SETTLE_MS. */
  settleMs?: number;
  /** Bytes received since the last GC that arm the settling GC without a reclaim; default RECLAIM_SETTLE_MIN_BYTES. */
  settleMinBytes?: number;
  /** Work still going on (commits running or waiting, Chunk bytes held): not quiet yet. */
  busy: () => boolean;
  /** Drop what the link keeps for reuse (the Chunk pool's idle buffers) before the GC. */
  release: () => void;
  /** A full GC; undefined where none can be had (the heap then shrinks at V8's own pace). */
  gc?: (() => void) | undefined;
  /**
   * Right after each GC here: glibc's malloc_trim (malloc-trim.ts), which gives back the pages of
   * the holes the burst left in malloc's arenas; undefined where the addon is not to be had.
   */
  trim?: (() => void) | undefined;
  now?: () => number;
}

/** V8's heap and the Buffers outside it, bytes. */
function heldBytes(): number {
  const m = process.memoryUsage();
  return m.heapTotal + m.external;
}

/**
 * Gives the memory of a burst of sessions back once the link is quiet (docs/design.md "Link
 * server", memory). Twenty agents of small files grow V8's heap to a few hundred MiB of frames,
 * promises and per-file commit state, nearly all garbage once they are done; V8 only collects
 * its old generation when more is allocated, so an idle studiod kept that RSS for hours. After
 * `quietMs` without a frame or a session's end, with no commit running or waiting and no Chunk held, the Chunk pool
 * drops its idle buffers and one full GC runs (V8 then returns the emptied pages), if the heap
 * and Buffers grew by `minBytes` since the last time or the link received `minBytes` since;
 * `settleMs` later, if nothing arrived and nothing is busy, a second one, at which V8 also
 * shrinks its young generation (RECLAIM_SETTLE_MS); that one also follows a quiet check that
 * gave nothing back when the link received `settleMinBytes` since the last GC, or when a frame
 * put off the settling GC of the last reclaim. After each GC, glibc's malloc_trim (`trim`).
 */
export class IdleReclaim {
  readonly #o: Required<Omit<IdleReclaimOptions, 'gc' | 'trim'>> & {
    gc: (() => void) | undefined;
    trim: (() => void) | undefined;
  };
  #last = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The settling GC, while it is due. */
  #settleTimer: NodeJS.Timeout | undefined;
  /** heapTotal + external after the last reclaim (or at start). */
  #floor = heldBytes();
  /** Bytes received since the last GC (or start). */
  #received = 0;
  /** A reclaim ran and its settling GC has not yet: a frame or a busy link put it off, not away. */
  #settleOwed = false;
  #reclaims = 0;
  #settles = 0;

  constructor(opts: IdleReclaimOptions) {
    this.#o = {
      quietMs: LINK_QUIET_MS,
      minBytes: RECLAIM_MIN_BYTES,
      settleMs: RECLAIM_SETTLE_MS,
      settleMinBytes: RECLAIM_SETTLE_MIN_BYTES,
      now: Date.now,
      ...opts,
      gc: opts.gc,
      trim: opts.trim,
    };
  }

  /** Times the memory was given back (tests, status). */
  get reclaims(): number {
    return this.#reclaims;
  }

  /** Settling GCs run (tests, status). */
  get settles(): number {
    return this.#settles;
  }

  /** A frame of `bytes` arrived or a session ended: the link is quiet again `quietMs` after the last of these. */
  touch(bytes = 0): void {
    this.#received += bytes;
    this.#last = this.#o.now();
    if (this.#timer === undefined) this.#arm(this.#o.quietMs);
    // Not quiet any more: no settling GC (the next quiet check arms it again).
    clearTimeout(this.#settleTimer);
    this.#settleTimer = undefined;
  }

  /** The server closes: no more reclaims. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#settleTimer);
    this.#settleTimer = undefined;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#check(), ms);
    this.#timer.unref();
  }

  #check(): void {
    this.#timer = undefined;
    const quietFor = this.#o.now() - this.#last;
    if (quietFor < this.#o.quietMs || this.#o.busy()) {
      // Not quiet long enough: wait out the rest; still busy: look again a quiet period later.
      this.#arm(quietFor < this.#o.quietMs ? this.#o.quietMs - quietFor : this.#o.quietMs);
      return;
    }
    this.#o.release();
    // The floor alone is not enough: set by a reclaim in a lull of a burst, while V8's heap was
    // still large, it kept the GC from running once the burst ended (heapTotal does not shrink at
    // once after a GC). Bytes received since then count too: their frames are the garbage.
    const min = this.#o.minBytes;
    if (min > 0 && heldBytes() < this.#floor + min && this.#received < min) {
      // A settling GC put off by the tail of a burst (a late agent's last frames or its session's
      // end) is still due: without it, once idle, the young generation kept 32 MiB and the trim
      // had only the first GC's holes (20 agents: idle after 178–212 MiB, heapTotal 52–58).
      if (this.#received >= this.#o.settleMinBytes || this.#settleOwed) this.#armSettle();
      return;
    }
    this.#o.gc?.();
    this.#o.trim?.();
    this.#settleOwed = true;
    this.#reclaims++;
    this.#received = 0;
    this.#floor = heldBytes();
    this.#armSettle();
  }

  #armSettle(): void {
    if (this.#o.gc === undefined || this.#o.settleMs <= 0) return;
    clearTimeout(this.#settleTimer);
    this.#settleTimer = setTimeout(() => this.#settle(), this.#o.settleMs);
    this.#settleTimer.unref();
  }

  /** `settleMs` after a quiet check with nothing received since (touch clears it): not if work is still going on. */
  #settle(): void {
    this.#settleTimer = undefined;
    if (this.#o.busy()) return;
    this.#o.release();
    this.#o.gc?.();
    this.#o.trim?.();
    this.#settleOwed = false;
    this.#settles++;
    this.#received = 0;
    this.#floor = heldBytes();
  }
}

/**
 * V8's full GC, from a runtime flag (`--expose-gc` set after start-up exposes `gc` in new contexts
 * only; the main context and its globals are untouched), compacting: set for that one GC,
 * `--compact-on-every-full-gc` moves the live objects off every fragmented page, so the few MiB
 * still live after a burst do not keep tens of MiB of old-generation pages (a plain full GC picks
 * only the emptiest pages to evacuate). And for that GC, the dead ArrayBuffers' memory (the
 * small files' Buffers, 60–80 MiB after twenty agents) is freed before `gc()` returns
 * (`--no-concurrent-array-buffer-sweeping`): otherwise a background thread frees it later, on a
 * loaded machine after the malloc_trim that follows the GC had found almost nothing free (7 of
 * 66 MiB in one run). Undefined if this V8 refuses it.
 */
export function fullGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    if (typeof gc !== 'function') return undefined;
    return () => {
      setFlagsFromString('--compact-on-every-full-gc');
      setFlagsFromString('--no-concurrent-array-buffer-sweeping');
      try {
        (gc as () => void)();
      } finally {
        setFlagsFromString('--concurrent-array-buffer-sweeping');
        setFlagsFromString('--no-compact-on-every-full-gc');
      }
    };
  } catch {
    return undefined;
  }
}
