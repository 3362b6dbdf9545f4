/**
 * Where alert notices go, and the retry around every channel but the log.
 *
 * A channel sends one notice or throws; a `StudioError` with `retryable: false` (a 4xx from the
 * webhook, a refused recipient) is not tried again. `DeliveryQueue` sends a channel's notices one
 * at a time in order (an alert's "resolved" never overtakes it), each retried with the system's
 * backoff (protocol/src/backoff.ts) up to `maxAttempts`; when they run out the notice is logged
 * with STUDIO_ALERT_DELIVERY and dropped (the alert itself stays open: `studioctl alerts`).
 * A notice pushed with `settled` (the alerts' durable outbox entry) calls it once it was delivered
 * or given up; not when `close` stopped it, so the outbox sends it again after a restart.
 */
import { backoffDelay, CodedError, type Logger } from '@studio321/protocol';
import { STUDIO_CODES } from '../errors.js';
import { noticeTitle, type AlertNotice } from './alert.js';

export interface AlertChannel {
  readonly name: string;
  send(notice: AlertNotice, signal: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}

export interface DeliveryOptions {
  maxAttempts: number;
  /** First retry delay and ceiling (ms). */
  baseMs?: number;
  maxMs?: number;
  random?: () => number;
  /** How long `close` waits for queued notices before it stops them (they stay in the outbox). */
  closeGraceMs?: number;
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const h = setTimeout(done, ms);
    function done(): void {
      clearTimeout(h);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class DeliveryQueue {
  readonly #channel: AlertChannel;
  readonly #o: Required<Omit<DeliveryOptions, 'random'>> & { random?: () => number };
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;

  constructor(channel: AlertChannel, log: Logger, opts: DeliveryOptions) {
    this.#channel = channel;
    this.#log = log;
    this.#o = { baseMs: 1_000, maxMs: 5 * 60_000, closeGraceMs: 5_000, ...opts };
  }

  get pending(): number {
    return this.#pending;
  }

  /** Resolves when what is queued now was delivered or given up. */
  idle(): Promise<void> {
    return this.#tail;
  }

  get name(): string {
    return this.#channel.name;
  }

  /**
   * Queue a notice; resolves when it was delivered or given up (never rejects). `settled` runs
   * then (its failure is logged), and not when the queue was closed first.
   */
  push(notice: AlertNotice, settled?: () => Promise<void>): Promise<void> {
    this.#pending++;
    const p = this.#tail
      .then(async () => {
        if (!(await this.#deliver(notice)) || settled === undefined) return;
        await settled().catch((err: unknown) =>
          this.#log.warn({ err, channel: this.#channel.name }, 'alert outbox entry not removed; sent again at start'),
        );
      })
      .finally(() => this.#pending--);
    this.#tail = p;
    return p;
  }

  /** True when the notice was delivered or given up; false when the queue was closed first. */
  async #deliver(notice: AlertNotice): Promise<boolean> {
    const signal = this.#abort.signal;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await this.#channel.send(notice, signal);
        return true;
      } catch (err) {
        const retryable = !(err instanceof CodedError) || err.retryable;
        if (signal.aborted) return false; // closed: kept in the outbox for the next start
        if (!retryable || attempt >= this.#o.maxAttempts) {
          this.#log.error(
            { code: STUDIO_CODES.alertDelivery, channel: this.#channel.name, alert: notice.alert.id, attempt, err },
            `alert notice not delivered by ${this.#channel.name}: ${noticeTitle(notice)}`,
          );
          return true;
        }
        this.#log.warn(
          { channel: this.#channel.name, alert: notice.alert.id, attempt, err },
          `alert notice delivery by ${this.#channel.name} failed; retrying`,
        );
        await wait(backoffDelay(attempt - 1, this.#o.baseMs, this.#o.maxMs, this.#o.random), signal);
      }
    }
    return false;
  }

  /** Wait for what is queued (bounded by `graceMs`), then stop retrying. */
  async close(graceMs = this.#o.closeGraceMs): Promise<void> {
    const t = setTimeout(() => this.#abort.abort(), graceMs);
    t.unref();
    await this.#tail;
    clearTimeout(t);
    this.#abort.abort();
    await this.#channel.close?.();
  }
}
