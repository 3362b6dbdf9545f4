/**
 * The one token-bucket bandwidth limiter: shared by every upload of one cloud
 * target (with a Transform that throttles a read stream through it), and the
 * read-rate limit of the refill and the scrub (paid before each file is read).
 * Clock and sleep are injectable so tests never wait on time.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';

export interface RateLimiterOptions {
  /** Sustained rate; 0 = unlimited. */
  bytesPerSec: number;
  /** Bucket depth (largest burst); default 1/4 second of traffic, at least 64 KiB. */
  burstBytes?: number;
  now?: () => number;
  /** Waits `ms`; rejects with the signal's reason when aborted. Default: a timer. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** What a reader that must be paced needs: wait until `n` bytes may go. */
export interface Throttle {
  /** Resolves when `n` bytes may be read or sent; rejects with the signal's reason when aborted. */
  take(n: number, signal?: AbortSignal): Promise<void>;
}

/** No limit (rate 0, and the tests' default). */
export const UNLIMITED: Throttle = { take: () => Promise.resolve() };

const timerSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  delay(ms, undefined, signal === undefined ? {} : { signal });

export class RateLimiter implements Throttle {
  #bytesPerSec: number;
  #burstBytes: number;
  readonly #fixedBurst: boolean;
  #tokens: number;
  #last: number;
  #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Serialises waiters so a big request cannot be starved by small ones. */
  #tail: Promise<void> = Promise.resolve();

  constructor(opts: RateLimiterOptions) {
    if (!Number.isFinite(opts.bytesPerSec) || opts.bytesPerSec < 0) throw new TypeError('bytesPerSec must be >= 0');
    this.#bytesPerSec = opts.bytesPerSec;
    this.#fixedBurst = opts.burstBytes !== undefined;
    this.#burstBytes = opts.burstBytes ?? defaultBurst(opts.bytesPerSec);
    this.#now = opts.now ?? (() => performance.now());
    this.#sleep = opts.sleep ?? timerSleep;
    this.#tokens = this.#burstBytes;
    this.#last = this.#now();
  }

  get bytesPerSec(): number {
    return this.#bytesPerSec;
  }

  get burstBytes(): number {
    return this.#burstBytes;
  }

  /** A new sustained rate from now on (an upload window's bandwidth); 0 = unlimited. */
  setRate(bytesPerSec: number): void {
    if (!Number.isFinite(bytesPerSec) || bytesPerSec < 0) throw new TypeError('bytesPerSec must be >= 0');
    if (bytesPerSec === this.#bytesPerSec) return;
    this.#refill();
    this.#bytesPerSec = bytesPerSec;
    if (!this.#fixedBurst) this.#burstBytes = defaultBurst(bytesPerSec);
    this.#tokens = Math.min(this.#tokens, this.#burstBytes);
  }

  get unlimited(): boolean {
    return this.bytesPerSec === 0;
  }

  /** Resolves when `n` bytes may be sent; rejects with `signal.reason` on abort. */
  take(n: number, signal?: AbortSignal): Promise<void> {
    if (this.unlimited || n <= 0) return Promise.resolve();
    const run = this.#tail.then(() => this.#takeNow(n, signal));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #takeNow(n: number, signal?: AbortSignal): Promise<void> {
    let need = n;
    while (need > 0) {
      signal?.throwIfAborted();
      if (this.unlimited) return; // setRate(0) while waiting
      this.#refill();
      const grant = Math.min(need, Math.floor(this.#tokens));
      if (grant > 0) {
        this.#tokens -= grant;
        need -= grant;
        continue;
      }
      const wantTokens = Math.min(need, this.burstBytes);
      const waitMs = Math.max(1, Math.ceil(((wantTokens - this.#tokens) / this.bytesPerSec) * 1000));
      await this.#sleep(waitMs, signal);
    }
  }

  #refill(): void {
    const t = this.#now();
    const elapsed = Math.max(0, t - this.#last) / 1000;
    this.#last = t;
    this.#tokens = Math.min(this.#burstBytes, this.#tokens + elapsed * this.#bytesPerSec);
  }
}

/** A limiter at `bytesPerSec`, or none for 0 (config's "unlimited"). */
export function rateLimiter(bytesPerSec: number): Throttle {
  return bytesPerSec > 0 ? new RateLimiter({ bytesPerSec }) : UNLIMITED;
}

function defaultBurst(bytesPerSec: number): number {
  return Math.max(64 * 1024, Math.floor(bytesPerSec / 4));
}

/** A pass-through stream that holds each chunk until the limiter grants its bytes. */
export function throttle(limiter: RateLimiter, signal?: AbortSignal): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      limiter.take(chunk.length, signal).then(
        () => cb(null, chunk),
        (err: unknown) => cb(err as Error),
      );
    },
  });
}
