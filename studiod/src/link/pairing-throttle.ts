/**
 * Pairing attempts slowed and locked out (protocol/SPEC.md §3.2, docs/configuration.md `pairing`).
 *
 * Each refusal is answered after a delay that grows with the address's refusals
 * (REFUSAL_DELAY_MS × n). After `maxRefusals` refusals from one source address, that address
 * gets PROTO_PAIRING_LOCKED for `lockoutMs`; after `maxRefusalsTotal` from all addresses
 * together, every outstanding code is invalidated and pairing is locked for everyone for
 * `lockoutMs` (or until the operator makes a new code: they are there). Refusals older than
 * `lockoutMs` are forgotten. State is in memory: a restart forgets it.
 */
import { PROTO_CODES, ProtocolError } from '@studio321/protocol';

export interface PairingLimits {
  maxRefusals: number;
  maxRefusalsTotal: number;
  lockoutMs: number;
}

/** The answer to the n-th refusal from an address waits n × this. */
export const REFUSAL_DELAY_MS = 100;

/** Addresses remembered at most (the oldest are forgotten first). */
const MAX_TRACKED = 4096;

interface Count {
  refusals: number;
  lastAt: number;
  lockedUntil: number;
}

export class PairingThrottle {
  readonly limits: PairingLimits;
  readonly #now: () => number;
  readonly #byAddress = new Map<string, Count>();
  readonly #all: Count = { refusals: 0, lastAt: 0, lockedUntil: 0 };

  constructor(limits: PairingLimits, now: () => number) {
    this.limits = limits;
    this.#now = now;
  }

  /** Throws PROTO_PAIRING_LOCKED (retryable, with the time it lifts) while `address`, or everyone, is locked out. */
  check(address: string): void {
    const now = this.#now();
    const mine = this.#byAddress.get(address);
    if (this.#all.lockedUntil > now) throw this.#locked('from all addresses together', this.#all.lockedUntil);
    if (mine !== undefined && mine.lockedUntil > now) throw this.#locked('from this address', mine.lockedUntil);
  }

  /**
   * A refused attempt from `address`. Returns how long to wait before answering it, and whether
   * everyone is now locked out (the caller invalidates the outstanding codes).
   */
  refused(address: string): { delayMs: number; lockedAll: boolean } {
    const now = this.#now();
    let mine = this.#byAddress.get(address);
    if (mine === undefined) {
      if (this.#byAddress.size >= MAX_TRACKED) {
        const oldest = this.#byAddress.keys().next().value;
        if (oldest !== undefined) this.#byAddress.delete(oldest);
      }
      mine = { refusals: 0, lastAt: 0, lockedUntil: 0 };
      this.#byAddress.set(address, mine);
    }
    const n = this.#count(mine, now, this.limits.maxRefusals);
    const wasLocked = this.#all.lockedUntil > now;
    this.#count(this.#all, now, this.limits.maxRefusalsTotal);
    return { delayMs: REFUSAL_DELAY_MS * n, lockedAll: !wasLocked && this.#all.lockedUntil > now };
  }

  /** A pairing succeeded from `address`: its refusals are forgotten. */
  accepted(address: string): void {
    this.#byAddress.delete(address);
  }

  /** The operator made a new code: the lockout of everyone lifts (a lockout of one address stays). */
  codeCreated(): void {
    this.#all.refusals = 0;
    this.#all.lockedUntil = 0;
  }

  /** Counts one refusal; returns how many there were in a row (the lockout starts a new count). */
  #count(c: Count, now: number, max: number): number {
    if (now - c.lastAt > this.limits.lockoutMs) c.refusals = 0;
    const n = ++c.refusals;
    c.lastAt = now;
    if (n >= max) {
      c.lockedUntil = now + this.limits.lockoutMs;
      c.refusals = 0;
    }
    return n;
  }

  #locked(whom: string, until: number): ProtocolError {
    const seconds = Math.ceil((until - this.#now()) / 1000);
    return new ProtocolError(
      PROTO_CODES.pairingLocked,
      `Too many refused pairing attempts ${whom}: pairing is locked until ${new Date(until).toISOString()} (${seconds} s). Check the code, then try again after that time (run \`studioctl pair\` for a new code).`,
      { retryable: true, detail: { until } },
    );
  }
}
