/**
 * A read-rate limit for the refill and the scrub: a token bucket in bytes/s,
 * paid before a file is read (file-granular: a file larger than one second's
 * budget is read at once, and the wait after it keeps the average). Clock and
 * sleep are injectable so tests never wait on time.
 */

export interface RateLimiter {
  /** Resolves when `bytes` may be read; rejects with the signal's reason when aborted. */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
}

/** No limit (rate 0, and the tests' default). */
export const UNLIMITED: RateLimiter = { take: () => Promise.resolve() };

function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(h);
      reject(signal?.reason);
    };
    const h = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class TokenBucket implements RateLimiter {
  readonly #rate: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Bytes that may be read now; negative: owed (a large file went first). */
  #tokens: number;
  #at: number;

  constructor(opts: {
    bytesPerSecond: number;
    now?: () => number;
    sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  }) {
    this.#rate = opts.bytesPerSecond;
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? realSleep;
    this.#at = this.#now();
    // One second's budget to start with, never more (no burst after a long idle).
    this.#tokens = this.#rate;
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const t = this.#now();
    this.#tokens = Math.min(this.#rate, this.#tokens + (Math.max(0, t - this.#at) / 1000) * this.#rate);
    this.#at = Math.max(this.#at, t);
    if (this.#tokens < 0) {
      const waitMs = Math.ceil((-this.#tokens / this.#rate) * 1000);
      await this.#sleep(waitMs, signal);
      // The debt is paid by the wait: the budget is 0 at the end of it.
      this.#tokens = 0;
      this.#at += waitMs;
    }
    this.#tokens -= bytes;
  }
}

export function rateLimiter(bytesPerSecond: number): RateLimiter {
  return bytesPerSecond > 0 ? new TokenBucket({ bytesPerSecond }) : UNLIMITED;
}
