/**
 * Commits in flight, shared fairly between link sessions (docs/design.md "Link server", fair
 * commits).
 *
 * A session starts a streamed commit with each file's first Chunk, so an agent sending small
 * files has hundreds of commits in flight at once. Without a bound, twenty agents meant
 * thousands of commits advancing together on two cores and one disk: each finished only when
 * nearly all had, and every agent's first Receipt came after most of the work (25 s instead of
 * about 1 s for an agent alone). The scheduler gives out `limit` commit slots:
 *
 *  - a session with no commit in flight gets one at once (an agent's first file is never queued
 *    behind other agents' later ones, and a session waiting for its own commit can always go on);
 *  - the other slots go round-robin over the sessions that wait, one slot per session per turn,
 *    in the order they first asked (not first come, first served per file);
 *  - a session's own commits start in the order it asked for them.
 *
 * A commit waiting for its slot holds only what its session already received (the window bounds
 * it, and the receive budget bounds all sessions together), never a second copy.
 */
import type { Committer, SmallCommitStages } from '../commit/commit.js';

/**
 * Commit slots for all sessions together: enough to keep the disks and the hash worker busy and
 * to let commits that finish together share one catalogue batch, far below the thousands twenty
 * agents' small files would start.
 */
export const COMMIT_SLOTS = 64;

interface Lane {
  readonly session: string;
  inFlight: number;
  readonly waiting: Array<() => void>;
}

export class FairScheduler {
  readonly limit: number;
  /** Sessions with commits waiting or in flight, in the order they first asked (the round-robin ring). */
  readonly #lanes = new Map<string, Lane>();
  #inFlight = 0;
  /** Where the next round-robin turn starts (a session id). */
  #nextTurn: string | undefined;
  /** Every grant, for tests and status: which session got a slot, in order (the last 10,000). */
  readonly grants: string[] = [];

  constructor(limit: number = COMMIT_SLOTS) {
    if (!Number.isSafeInteger(limit) || limit <= 0)
      throw new TypeError('FairScheduler: limit must be a positive integer');
    this.limit = limit;
  }

  /** Commits running now, all sessions. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Commits waiting for a slot, all sessions. */
  get waiting(): number {
    let n = 0;
    for (const l of this.#lanes.values()) n += l.waiting.length;
    return n;
  }

  /** Runs `work` in one of `session`'s turns; the slot is given back when it settles. */
  async run<T>(session: string, work: () => Promise<T>): Promise<T> {
    await this.#acquire(session);
    try {
      return await work();
    } finally {
      this.#release(session);
    }
  }

  #acquire(session: string): Promise<void> {
    let lane = this.#lanes.get(session);
    if (lane === undefined) {
      lane = { session, inFlight: 0, waiting: [] };
      this.#lanes.set(session, lane);
    }
    const l = lane;
    const granted = new Promise<void>((resolve) => l.waiting.push(resolve));
    this.#pump();
    return granted;
  }

  #release(session: string): void {
    const lane = this.#lanes.get(session);
    if (lane === undefined) throw new TypeError('FairScheduler: release without a slot');
    lane.inFlight--;
    this.#inFlight--;
    if (lane.inFlight === 0 && lane.waiting.length === 0) {
      if (this.#nextTurn === session) this.#nextTurn = this.#after(session);
      this.#lanes.delete(session);
    }
    this.#pump();
  }

  #grant(lane: Lane): void {
    const resolve = lane.waiting.shift();
    if (resolve === undefined) return;
    lane.inFlight++;
    this.#inFlight++;
    this.grants.push(lane.session);
    if (this.grants.length > 10_000) this.grants.splice(0, 5_000);
    resolve();
  }

  /** The session after `session` in the ring (wrapping), or undefined when it is the only one. */
  #after(session: string): string | undefined {
    const ids = [...this.#lanes.keys()];
    if (ids.length <= 1) return undefined;
    const i = ids.indexOf(session);
    return ids[(i + 1) % ids.length];
  }

  #pump(): void {
    // A session with nothing in flight is never kept waiting.
    for (const lane of this.#lanes.values()) if (lane.inFlight === 0 && lane.waiting.length > 0) this.#grant(lane);
    // Then the free slots, one per waiting session per turn, starting where the last turn ended.
    while (this.#inFlight < this.limit) {
      const ring = [...this.#lanes.values()];
      const start = Math.max(
        0,
        ring.findIndex((l) => l.session === this.#nextTurn),
      );
      let granted: Lane | undefined;
      for (let k = 0; k < ring.length; k++) {
        const lane = ring[(start + k) % ring.length] as Lane;
        if (lane.waiting.length === 0) continue;
        granted = lane;
        break;
      }
      if (granted === undefined) return;
      this.#grant(granted);
      this.#nextTurn = this.#after(granted.session);
    }
  }
}

/** What a FileReceiver asks of the committer. */
export type CommitPort = Pick<Committer, 'commit' | 'receiptFor'> & Partial<Pick<Committer, 'commitSmall'>>;

/**
 * `committer` as one session sees it: each of its commits runs in one of its turns, and its first
 * commit, if a small one, is marked `first` (written ahead of the other sessions' queued small
 * files, small-commit.ts), so an agent that connects while others send hundreds gets its first
 * Receipt about as soon as it would alone.
 */
export function fairCommitter(
  committer: CommitPort,
  scheduler: FairScheduler,
  session: string,
  onFirstStages?: (ms: FirstCommitStagesMs) => void,
): CommitPort {
  let started = false;
  return {
    commit: (input) => {
      started = true;
      return scheduler.run(session, () => committer.commit(input));
    },
    receiptFor: (hash) => committer.receiptFor(hash),
    ...(committer.commitSmall === undefined
      ? {}
      : {
          commitSmall: (input) => {
            const first = !started;
            started = true;
            if (!first) return scheduler.run(session, () => committer.commitSmall!(input));
            const asked = performance.now();
            let slot = asked;
            const stages: SmallCommitStages = {};
            return scheduler
              .run(session, () => {
                slot = performance.now();
                return committer.commitSmall!({ ...input, first, stages });
              })
              .finally(() => onFirstStages?.(stagesMs(asked, slot, stages)));
          },
        }),
  };
}

/** A session's first small commit, ms spent in each step (each from the end of the one before; absent: not reached). */
export type FirstCommitStagesMs = Partial<Record<'slot' | keyof SmallCommitStages, number>>;

function stagesMs(asked: number, slot: number, stages: SmallCommitStages): FirstCommitStagesMs {
  const out: FirstCommitStagesMs = { slot: Math.round(slot - asked) };
  let before = slot;
  for (const k of ['targets', 'intent', 'write', 'record'] as const) {
    const at = stages[k];
    if (at === undefined) break;
    out[k] = Math.round(at - before);
    before = at;
  }
  return out;
}
