/**
 * The sync loop: connect (pinned TLS), authenticate, run sync passes; on a
 * retryable failure reconnect with exponential backoff and equal jitter (protocol/src/backoff.ts).
 *
 *  - `syncUntilEmpty` (`field-agent sync`): push the queue until it is empty and
 *    return; reconnects after cuts while progress is made; throws
 *    LINK_UNREACHABLE after `maxAttempts` consecutive failed connections, and
 *    LINK_INCOMPLETE when files were refused or could not be committed.
 *  - `startSync` (`field-agent run`): runs in the background until stopped;
 *    a new pass starts every `pollMs` (or on `wake()`, which also cuts a backoff
 *    wait short); `nextPass()` resolves with the next pass that ends, or rejects
 *    with the coded error that ends its connection (the status page's "Sync now").
 */
import { CodedError, type Logger } from '@studio321/protocol';
import { LinkClient } from './client.js';
import { LINK_CODES, LinkError } from './errors.js';
import { loadIdentity } from './identity.js';
import { emptySyncResult, syncPass, type SyncPassResult } from './sync-pass.js';
import { backoffDelay } from '@studio321/protocol';
import type { AgentState } from '../state/agent-state.js';
import { syncQueueOf, type SyncQueue } from '../state/store-copy.js';

export interface SyncLoopOptions {
  dataDir: string;
  queue: SyncQueue;
  log?: Logger;
  /** Backoff: first delay and cap (ms). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Consecutive failed connects before syncUntilEmpty gives up. */
  maxAttempts?: number;
  /** Passes that end with retryable Nacks before syncUntilEmpty gives up. */
  maxPasses?: number;
  pingIntervalMs?: number;
  deadLinkMs?: number;
  pollMs?: number;
  signal?: AbortSignal;
  random?: () => number;
}

export interface SyncReport extends SyncPassResult {
  connections: number;
  /** Files still failing at the end (last Nack per hash). */
  failed: Array<{ hash: string; code: string; message: string; retryable: boolean }>;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

async function connect(o: SyncLoopOptions): Promise<LinkClient> {
  const id = await loadIdentity(o.dataDir);
  const link = new LinkClient({
    url: id.pairing.url,
    pin: id.pairing.fingerprint,
    ...(o.pingIntervalMs === undefined ? {} : { pingIntervalMs: o.pingIntervalMs }),
    ...(o.deadLinkMs === undefined ? {} : { deadLinkMs: o.deadLinkMs }),
  });
  try {
    await link.open();
    await link.authenticate(id.pairing.agentId, id.privateKeyPem);
  } catch (err) {
    link.terminate();
    throw err;
  }
  return link;
}

function mergeInto(total: SyncReport, pass: SyncPassResult): void {
  total.offered += pass.offered;
  total.filesSent += pass.filesSent;
  total.bytesSent += pass.bytesSent;
  total.have += pass.have;
  total.receipts += pass.receipts;
  total.nacks.push(...pass.nacks);
  total.bytesResent += pass.bytesResent;
  total.maxResentOnResume = Math.max(total.maxResentOnResume, pass.maxResentOnResume);
}

export async function syncUntilEmpty(o: SyncLoopOptions): Promise<SyncReport> {
  const total: SyncReport = { ...emptySyncResult(), connections: 0, failed: [] };
  const sentMemory = new Map<string, number>();
  const base = o.backoffBaseMs ?? 500;
  const max = o.backoffMaxMs ?? 30_000;
  const maxAttempts = o.maxAttempts ?? 4;
  const maxPasses = o.maxPasses ?? 5;
  let failures = 0;
  let passesWithNacks = 0;
  for (;;) {
    o.signal?.throwIfAborted();
    let link: LinkClient | undefined;
    const pass = emptySyncResult();
    try {
      link = await connect(o);
      total.connections++;
      failures = 0;
      await syncPass(link, o.queue, {
        sentMemory,
        stats: pass,
        ...(o.signal === undefined ? {} : { signal: o.signal }),
      });
      link.close();
      mergeInto(total, pass);
      const failing = new Map<string, SyncReport['failed'][number]>();
      for (const n of pass.nacks) failing.set(n.hash, n);
      total.failed = [...failing.values()];
      if (total.failed.length === 0) return total;
      const retryable = total.failed.some((f) => f.retryable);
      if (pass.receipts === 0) passesWithNacks++; // a pass that made progress does not count against the limit
      if (!retryable || passesWithNacks >= maxPasses) return total;
      await sleep(backoffDelay(passesWithNacks, base, max, o.random), o.signal);
    } catch (err) {
      link?.terminate();
      mergeInto(total, pass);
      const coded =
        err instanceof CodedError
          ? err
          : new LinkError(LINK_CODES.connectionLost, String(err), { cause: err, retryable: true });
      if (!coded.retryable) throw coded;
      if (pass.receipts === 0 && pass.bytesSent === 0) failures++;
      o.log?.warn({ err: coded, attempt: failures }, 'sync interrupted; reconnecting');
      if (failures >= maxAttempts) {
        throw new LinkError(
          LINK_CODES.unreachable,
          `The studio could not be reached after ${failures} attempts: ${coded.message}`,
          { cause: coded, retryable: true },
        );
      }
      await sleep(backoffDelay(failures, base, max, o.random), o.signal);
    }
  }
}

export interface SyncHandle {
  /** Start a pass now instead of at the next poll (or the end of a backoff wait). */
  wake(): void;
  /** The next pass to end (start one with wake()); rejects with the error that ends its connection. */
  nextPass(): Promise<SyncPassResult>;
  stop(): Promise<void>;
  status(): {
    state: 'connecting' | 'syncing' | 'idle' | 'offline' | 'stopped';
    lastError?: string;
    receipts: number;
    bytesSent: number;
  };
}

/** Continuous background sync for `field-agent run`. */
export function startSync(o: SyncLoopOptions): SyncHandle {
  const ac = new AbortController();
  const signal = o.signal === undefined ? ac.signal : AbortSignal.any([ac.signal, o.signal]);
  let state: ReturnType<SyncHandle['status']>['state'] = 'connecting';
  let lastError: string | undefined;
  let receipts = 0;
  let bytesSent = 0;
  let wake: (() => void) | undefined;
  let waiters: Array<{ resolve: (r: SyncPassResult) => void; reject: (err: unknown) => void }> = [];
  const settle = (fn: (w: (typeof waiters)[number]) => void): void => {
    const now = waiters;
    waiters = [];
    for (const w of now) fn(w);
  };
  const sentMemory = new Map<string, number>();
  const base = o.backoffBaseMs ?? 1000;
  const max = o.backoffMaxMs ?? 60_000;
  const poll = o.pollMs ?? 5000;
  const loop = (async () => {
    let failures = 0;
    while (!signal.aborted) {
      let link: LinkClient | undefined;
      try {
        state = 'connecting';
        link = await connect({ ...o, signal });
        failures = 0;
        while (!signal.aborted && link.closedError === undefined) {
          state = 'syncing';
          const pass = await syncPass(link, o.queue, { sentMemory, signal });
          receipts += pass.receipts;
          bytesSent += pass.bytesSent;
          state = 'idle';
          settle((w) => w.resolve(pass));
          await new Promise<void>((r) => {
            wake = r;
            const t = setTimeout(r, pass.nacks.some((n) => n.retryable) ? Math.max(poll, base) : poll);
            signal.addEventListener(
              'abort',
              () => {
                clearTimeout(t);
                r();
              },
              { once: true },
            );
            link?.once('close', () => {
              clearTimeout(t);
              r();
            });
          });
        }
      } catch (err) {
        if (signal.aborted) break;
        const coded = err instanceof CodedError ? err : undefined;
        lastError = coded ? `${coded.code}: ${coded.message}` : String(err);
        state = 'offline';
        o.log?.warn({ err }, 'studio sync offline; retrying');
        const why =
          coded ??
          new LinkError(LINK_CODES.unreachable, `the studio cannot be reached: ${lastError}`, {
            cause: err,
            retryable: true,
          });
        settle((w) => w.reject(why));
        failures++;
        await new Promise<void>((r) => {
          wake = r;
          void sleep(backoffDelay(failures, base, max, o.random), signal).then(r);
        });
      } finally {
        link?.close();
      }
    }
    state = 'stopped';
    settle((w) =>
      w.reject(
        new LinkError(LINK_CODES.connectionLost, 'the studio sync stopped before the pass ended', { retryable: true }),
      ),
    );
  })();
  return {
    wake: () => wake?.(),
    nextPass: () =>
      state === 'stopped'
        ? Promise.reject(new LinkError(LINK_CODES.connectionLost, 'the studio sync is stopped', { retryable: true }))
        : new Promise<SyncPassResult>((resolve, reject) => waiters.push({ resolve, reject })),
    stop: async () => {
      ac.abort();
      wake?.();
      await loop;
    },
    status: () => ({ state, ...(lastError === undefined ? {} : { lastError }), receipts, bytesSent }),
  };
}

/**
 * The `startSync` hook of AgentRunner (`field-agent run`): starts the
 * continuous sync when the agent is paired; when it is not, logs how to pair
 * and runs without sync.
 */
export interface RunSyncHandle {
  close(): Promise<void>;
  /** 'paused' while the photographer has paused sync from the tray or the status page. */
  status(): Omit<ReturnType<SyncHandle['status']>, 'state'> & {
    state: ReturnType<SyncHandle['status']>['state'] | 'paused';
  };
  wake(): void;
  /** "Sync now": resumes a paused sync, starts a pass now and resolves when it ends (or rejects with why it could not). */
  syncNow(): Promise<SyncNowResult>;
  /** Stops the link (in-flight chunks are simply re-offered later: the studio resumes from its durable offset). */
  pauseSync(): Promise<void>;
  resumeSync(): void;
}

export interface SyncNowResult {
  receipts: number;
  filesSent: number;
  bytesSent: number;
  /** Files the studio refused or could not commit in this pass. */
  failed: number;
}

export async function startSyncForRun(ctx: {
  state: AgentState;
  paths: { dataDir: string };
  log: Logger;
  signal: AbortSignal;
}): Promise<RunSyncHandle | undefined> {
  try {
    await loadIdentity(ctx.paths.dataDir);
  } catch (err) {
    if (err instanceof LinkError && err.code === LINK_CODES.notPaired) {
      ctx.log.info(
        { code: err.code },
        'not paired with a studio: offloads only (run `field-agent pair <url> <code>` to sync)',
      );
      return undefined;
    }
    throw err;
  }
  const options: SyncLoopOptions = {
    dataDir: ctx.paths.dataDir,
    queue: syncQueueOf(ctx.state, ctx.log),
    log: ctx.log,
    signal: ctx.signal,
  };
  let handle = startSync(options);
  let paused = false;
  let receiptsBefore = 0;
  let bytesBefore = 0;
  const resume = (): void => {
    if (!paused || ctx.signal.aborted) return;
    paused = false;
    ctx.log.info({ event: 'sync-resumed' }, 'studio sync resumed');
    handle = startSync(options);
  };
  return {
    close: () => handle.stop(),
    status: () => {
      const s = handle.status();
      const totals = { receipts: receiptsBefore + s.receipts, bytesSent: bytesBefore + s.bytesSent };
      return { ...s, ...totals, state: paused ? 'paused' : s.state };
    },
    wake: () => handle.wake(),
    syncNow: async () => {
      resume();
      const next = handle.nextPass();
      handle.wake();
      const pass = await next;
      return {
        receipts: pass.receipts,
        filesSent: pass.filesSent,
        bytesSent: pass.bytesSent,
        failed: pass.nacks.length,
      };
    },
    pauseSync: async () => {
      if (paused) return;
      paused = true;
      ctx.log.info({ event: 'sync-paused' }, 'studio sync paused');
      await handle.stop();
      const s = handle.status();
      receiptsBefore += s.receipts;
      bytesBefore += s.bytesSent;
    },
    resumeSync: resume,
  };
}
