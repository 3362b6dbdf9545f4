/**
 * When will a target be full at the rate it is filling? Each evaluation adds a sample (time, free
 * bytes); the rate is the fall in free space from the oldest sample of the window to now, and the
 * prediction is free / rate. Samples are kept at most one per `window / 64`, so memory stays bounded;
 * they live in memory only: after a restart the prediction waits for `minSpanMs` of new samples.
 */

const DAY_MS = 86_400_000;

export class FreeSpaceTrend {
  readonly #windowMs: number;
  readonly #minSpanMs: number;
  readonly #samples = new Map<string, Array<{ at: number; free: number }>>();

  constructor(opts: { windowMs?: number; minSpanMs?: number } = {}) {
    this.#windowMs = opts.windowMs ?? 7 * DAY_MS;
    this.#minSpanMs = opts.minSpanMs ?? 3_600_000;
  }

  add(target: string, at: number, free: number): void {
    const list = this.#samples.get(target) ?? [];
    const last = list[list.length - 1];
    if (last === undefined || at - last.at >= this.#windowMs / 64) list.push({ at, free });
    while (list.length > 1 && at - (list[0]?.at ?? at) > this.#windowMs) list.shift();
    this.#samples.set(target, list);
  }

  /** Days until the target is full at the current rate; null when it is not filling or too little is known. */
  daysLeft(target: string, now: number, free: number): { days: number; bytesPerDay: number } | null {
    const first = this.#samples.get(target)?.[0];
    if (first === undefined || now - first.at < this.#minSpanMs) return null;
    const bytesPerDay = ((first.free - free) / (now - first.at)) * DAY_MS;
    if (bytesPerDay <= 0) return null;
    return { days: free / bytesPerDay, bytesPerDay };
  }
}
