/**
 * What peers that have not authenticated may hold (protocol/SPEC.md §3.3, docs/configuration.md `link`):
 *
 * - at most `maxTotal` connections not yet authenticated, and `maxPerAddress` from one source
 *   address: beyond, the TCP connection is closed at accept, before TLS costs anything;
 * - `deadlineMs` from accept to AuthAccepted, TLS handshake and HTTP upgrade included;
 * - MAX_PREAUTH_BYTES of WebSocket data before AuthAccepted: `ws` buffers a frame whole before
 *   handing it over, so without this bound one unauthenticated peer could make studiod buffer
 *   MAX_FRAME_BYTES, and a few hundred of them gigabytes.
 *
 * So unauthenticated peers together hold at most about `maxTotal` × (MAX_PREAUTH_BYTES + TLS
 * state) of memory, whatever they send. A connection leaves the count when it authenticates or
 * closes.
 */
import type { Socket } from 'node:net';
import { MAX_PREAUTH_BYTES, PROTO_CODES, type Logger } from '@studio321/protocol';
import { STUDIO_CODES } from '../errors.js';

export interface PreAuthLimits {
  maxTotal: number;
  maxPerAddress: number;
  deadlineMs: number;
}

interface Pending {
  address: string;
  raw: Socket;
  timer: NodeJS.Timeout;
  /** Stops counting the WebSocket's bytes (set once the upgrade happened). */
  unwatch?: () => void;
}

/** Refusals are logged at most this often (a flood must not become a log flood). */
const WARN_EVERY_MS = 10_000;

const keyOf = (s: Socket): string => `${s.remoteAddress ?? '?'}|${s.remotePort ?? 0}`;

export class PreAuthGuard {
  readonly limits: PreAuthLimits;
  readonly #log: Logger;
  readonly #pending = new Map<string, Pending>();
  readonly #byAddress = new Map<string, number>();
  #refused = 0;
  #lastWarn = 0;

  constructor(limits: PreAuthLimits, log: Logger) {
    this.limits = limits;
    this.#log = log;
  }

  /** Connections not authenticated now. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Connections refused at accept so far (over a cap). */
  get refused(): number {
    return this.#refused;
  }

  /** A TCP connection was accepted: counted, or refused and destroyed (false). */
  accept(raw: Socket): boolean {
    const address = raw.remoteAddress ?? '?';
    const fromAddress = this.#byAddress.get(address) ?? 0;
    if (this.#pending.size >= this.limits.maxTotal || fromAddress >= this.limits.maxPerAddress) {
      this.#refused++;
      raw.destroy();
      const now = Date.now();
      if (now - this.#lastWarn >= WARN_EVERY_MS) {
        this.#lastWarn = now;
        this.#log.warn(
          {
            code: STUDIO_CODES.connectionLimit,
            address,
            fromAddress,
            unauthenticated: this.#pending.size,
            refused: this.#refused,
            limits: { maxTotal: this.limits.maxTotal, maxPerAddress: this.limits.maxPerAddress },
          },
          'connection refused: too many not authenticated (link.maxUnauthenticated / maxUnauthenticatedPerAddress)',
        );
      }
      return false;
    }
    const key = keyOf(raw);
    const timer = setTimeout(() => {
      this.#log.info({ code: PROTO_CODES.timeout, address }, 'not authenticated within link.handshakeSeconds: cut');
      raw.destroy();
    }, this.limits.deadlineMs);
    timer.unref();
    this.#pending.set(key, { address, raw, timer });
    this.#byAddress.set(address, fromAddress + 1);
    raw.once('close', () => this.#release(key));
    return true;
  }

  /**
   * The upgraded connection (`socket`, the TLS socket over an accepted one): its bytes count
   * against MAX_PREAUTH_BYTES until `authenticated`. False when it is not (or no longer) pending.
   */
  watch(socket: Socket): boolean {
    const p = this.#pending.get(keyOf(socket));
    if (p === undefined) return false;
    let seen = 0;
    const onData = (d: Buffer): void => {
      seen += d.byteLength;
      if (seen <= MAX_PREAUTH_BYTES) return;
      this.#log.warn(
        { code: PROTO_CODES.frameTooLarge, address: p.address, bytes: seen, limit: MAX_PREAUTH_BYTES },
        'more bytes than authentication needs before AuthAccepted: cut',
      );
      socket.destroy();
      p.raw.destroy();
    };
    socket.on('data', onData);
    p.unwatch = () => socket.off('data', onData);
    return true;
  }

  /** The connection authenticated: it no longer counts, and no deadline or byte limit applies. */
  authenticated(socket: Socket): void {
    this.#release(keyOf(socket));
  }

  #release(key: string): void {
    const p = this.#pending.get(key);
    if (p === undefined) return;
    this.#pending.delete(key);
    clearTimeout(p.timer);
    p.unwatch?.();
    const n = (this.#byAddress.get(p.address) ?? 1) - 1;
    if (n > 0) this.#byAddress.set(p.address, n);
    else this.#byAddress.delete(p.address);
  }
}
