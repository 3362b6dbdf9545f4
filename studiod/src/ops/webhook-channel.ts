/**
 * The webhook channel: each notice is one JSON POST (the `AlertNotice`), signed so the receiver can
 * trust it and refuse a replay (docs/configuration.md, `alerts.webhook`):
 *
 *   X-S321-Timestamp: <unix seconds>
 *   X-S321-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
 *   X-S321-Delivery:  <random id, the same for every attempt of one notice>
 *
 * A receiver recomputes the HMAC over the raw body, compares in constant time, refuses a timestamp
 * more than `WEBHOOK_TOLERANCE_S` away from its clock, and may drop a delivery id it has seen
 * (`verifyWebhook` does the first two). 2xx is delivered; 408, 429, 5xx, a timeout or a network
 * error is retried; another status is refused for good.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { STUDIO_CODES, StudioError } from '../errors.js';
import type { AlertNotice } from './alert.js';
import type { AlertChannel } from './channels.js';

export const WEBHOOK_TOLERANCE_S = 300;

export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The receiver's check: the signature matches and the timestamp is fresh. */
export function verifyWebhook(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string,
  nowMs = Date.now(),
): { ok: true } | { ok: false; reason: 'unsigned' | 'bad-signature' | 'stale' } {
  const { timestamp, signature } = headers;
  if (timestamp === undefined || signature === undefined || !/^\d{1,12}$/.test(timestamp))
    return { ok: false, reason: 'unsigned' };
  const want = Buffer.from(webhookSignature(secret, timestamp, body));
  const got = Buffer.from(signature);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return { ok: false, reason: 'bad-signature' };
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > WEBHOOK_TOLERANCE_S) return { ok: false, reason: 'stale' };
  return { ok: true };
}

export class WebhookChannel implements AlertChannel {
  readonly name = 'webhook';
  readonly #url: string;
  readonly #secret: string;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #ids = new WeakMap<AlertNotice, string>();

  constructor(cfg: { url: string; secret: string; timeoutMs: number }, now: () => number = Date.now) {
    this.#url = cfg.url;
    this.#secret = cfg.secret;
    this.#timeoutMs = cfg.timeoutMs;
    this.#now = now;
  }

  async send(notice: AlertNotice, signal: AbortSignal): Promise<void> {
    let id = this.#ids.get(notice);
    if (id === undefined) {
      id = randomUUID();
      this.#ids.set(notice, id);
    }
    const body = JSON.stringify(notice);
    // Signed at each attempt: a retry an hour later still carries a fresh timestamp.
    const timestamp = String(Math.floor(this.#now() / 1000));
    let res: Response;
    try {
      res = await fetch(this.#url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'studiod-alerts',
          'x-s321-timestamp': timestamp,
          'x-s321-signature': webhookSignature(this.#secret, timestamp, body),
          'x-s321-delivery': id,
        },
        body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]),
      });
      await res.arrayBuffer().catch(() => undefined);
    } catch (err) {
      throw new StudioError(STUDIO_CODES.alertDelivery, `The webhook ${this.#url} did not answer: ${String(err)}.`, {
        cause: err,
        retryable: true,
      });
    }
    if (res.ok) return;
    const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
    throw new StudioError(
      STUDIO_CODES.alertDelivery,
      `The webhook ${this.#url} answered ${res.status}.${retryable ? '' : ' Check its URL and the shared secret.'}`,
      { retryable, detail: { status: res.status } },
    );
  }
}
