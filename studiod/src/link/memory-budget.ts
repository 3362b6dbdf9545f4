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
 * which may finish a frame) still arrives and is counted.
 */

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
