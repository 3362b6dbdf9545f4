/**
 * The sync loop: connect (pinned TLS), authenticate, run sync passes; on a
 * retryable failure reconnect with exponential backoff and equal jitter (protocol/src/backoff.ts).
 *
 *  - `syncUntilEmpty` (`field-agent sync`): push the queue until it is empty and
 *    return; reconnects after cuts while progress is made; throws
 *    LINK_UNREACHABLE after `maxAttempts` consecutive failed connections, and
 *    LINK_INCOMPLETE when files were refused or could not be committed.
 *  - `startSync` (`field-agent run`): runs in the background until stopped;
 *    a new pass starts every `pollMs` (or on `wake()`); `syncNow()` (`field-agent
 *    sync` while the agent runs) starts one at once, even out of a backoff wait,
 *    and resolves with that pass's report, or rejects with why it could not run.
 *
 * A studio that cannot be reached is the normal state at a venue, not a fault:
 * the background loop logs it once ("studio not reachable since …", at info, so
 * it stays out of the error list the tray and status page show) and keeps
 * retrying quietly; `status().offlineSince` carries the fact. Only failures the
 * user must act on (not retryable: pairing refused, a studio that breaks the
 * protocol) are logged as errors.
 */
import { CodedError, ProgressTracker, type Logger } from '@studio321/protocol';
import { LinkClient } from './client.js';
import { LINK_CODES, LinkError } from './errors.js';
import { loadIdentity } from './identity.js';
import { emptySyncResult, syncPass, type SyncPassResult } from './sync-pass.js';
import { backoffDelay } from '@studio321/protocol';
import type { AgentState } from '../state/agent-state.js';
import { syncQueueOf, type SyncQueue } from '../state/store-copy.js';
import { freeLaptopCopies, type CardFreeResult } from '../state/free-laptop.js';
import type { FreeLaptopPolicy } from '../config.js';
import { sendMhlGenerations } from './mhl-send.js';
import { refreshVerdicts, VERDICT_INTERVAL_MS } from './verdicts.js';

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
  /** `syncUntilEmpty`: called a few times a second with the progress over the queue it began with. */
  onProgress?: (p: ProgressTracker) => void;
  /**
   * Run after every sync pass on the same link, and while the link idles every `afterPassMs`
   * (the verdicts, verdicts.ts, and the freeLaptop policy); a failure is logged, the link goes on.
   */
  afterPass?: (link: LinkClient) => Promise<void>;
  afterPassMs?: number;
}

/** What `field-agent sync` reports: the passes, and what is still queued after them. */
export type SyncOutcome = SyncReport & { queue: { files: number; bytes: number } };

/** How often a running sync reports its progress (ms). */
const PROGRESS_TICK_MS = 250;

/** A tracker over what `queue` holds now (its depth), or none when nobody follows the progress. */
async function queueProgress(queue: SyncQueue, follow: boolean): Promise<ProgressTracker | undefined> {
  if (!follow) return undefined;
  const d = (await queue.depth?.()) ?? { files: 0, bytes: 0 };
  return new ProgressTracker({ totalBytes: d.bytes, totalFiles: d.files });
}

/** Runs `fn`, handing `progress` to `report` every PROGRESS_TICK_MS and once at the end. */
async function ticking<T>(
  progress: ProgressTracker | undefined,
  report: (p: ProgressTracker) => void,
  fn: () => Promise<T>,
): Promise<T> {
  if (progress === undefined) return fn();
  const tick = setInterval(() => report(progress), PROGRESS_TICK_MS);
  tick.unref();
  try {
    return await fn();
  } finally {
    clearInterval(tick);
    report(progress);
  }
}

/** The files a pass left failing: the last Nack per hash. */
function failingOf(nacks: SyncReport['failed']): SyncReport['failed'] {
  const failing = new Map<string, SyncReport['failed'][number]>();
  for (const n of nacks) failing.set(n.hash, n);
  return [...failing.values()];
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

/** Connects to the paired studio and authenticates (pinned TLS). */
export async function connectStudio(
  o: Pick<SyncLoopOptions, 'dataDir' | 'pingIntervalMs' | 'deadLinkMs'>,
): Promise<LinkClient> {
  return connect(o);
}

async function connect(
  o: Pick<SyncLoopOptions, 'dataDir' | 'pingIntervalMs' | 'deadLinkMs'> & Partial<Pick<SyncLoopOptions, 'queue'>>,
): Promise<LinkClient> {
  const id = await loadIdentity(o.dataDir);
  // The Hello reports the queue (the studio's "laptop gone quiet with unsynced files" alert).
  const queue = await o.queue?.depth?.();
  const link = new LinkClient({
    url: id.pairing.url,
    pin: id.pairing.fingerprint,
    ...(queue === undefined ? {} : { queue }),
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

async function runAfterPass(o: SyncLoopOptions, link: LinkClient): Promise<void> {
  if (o.afterPass === undefined || link.closedError !== undefined) return;
  try {
    await o.afterPass(link);
  } catch (err) {
    o.log?.warn({ err }, 'asking the studio for its verdicts failed; asked again after the next pass');
  }
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
  const onProgress = o.onProgress;
  const progress = await queueProgress(o.queue, onProgress !== undefined);
  for (;;) {
    o.signal?.throwIfAborted();
    let link: LinkClient | undefined;
    const pass = emptySyncResult();
    try {
      link = await connect(o);
      total.connections++;
      failures = 0;
      const session = link;
      // The card's ASC MHL generations before its files (the studio adds them first), and after.
      await sendMhlGenerations(session, o.queue, o.log);
      await ticking(
        progress,
        (p) => onProgress?.(p),
        () =>
          syncPass(session, o.queue, {
            sentMemory,
            stats: pass,
            ...(o.signal === undefined ? {} : { signal: o.signal }),
            ...(progress === undefined ? {} : { progress }),
          }),
      );
      await sendMhlGenerations(session, o.queue, o.log);
      await runAfterPass(o, session);
      link.close();
      mergeInto(total, pass);
      total.failed = failingOf(pass.nacks);
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
  /** Start a pass now instead of at the next poll. */
  wake(): void;
  /**
   * Start a pass now (out of a backoff wait too) and resolve with its report; rejects with why it
   * could not run (the studio unreachable, the link lost, the loop stopped). `onProgress`: a few
   * times a second during the pass.
   */
  syncNow(onProgress?: (p: ProgressTracker) => void): Promise<SyncReport>;
  stop(): Promise<void>;
  /** The authenticated link while there is one (for a verdict asked on demand). */
  link(): LinkClient | undefined;
  status(): {
    state: 'connecting' | 'syncing' | 'idle' | 'offline' | 'stopped';
    lastError?: string;
    /** ISO time since when the studio cannot be reached (absent while it can). */
    offlineSince?: string;
    receipts: number;
    bytesSent: number;
  };
}

interface NowRequest {
  resolve: (r: SyncReport) => void;
  reject: (err: unknown) => void;
  onProgress?: ((p: ProgressTracker) => void) | undefined;
}

/** Continuous background sync for `field-agent run`. */
export function startSync(o: SyncLoopOptions): SyncHandle {
  const ac = new AbortController();
  const signal = o.signal === undefined ? ac.signal : AbortSignal.any([ac.signal, o.signal]);
  let state: ReturnType<SyncHandle['status']>['state'] = 'connecting';
  let lastError: string | undefined;
  let offlineSince: Date | undefined;
  let receipts = 0;
  let bytesSent = 0;
  let wake: (() => void) | undefined;
  const requests: NowRequest[] = [];
  let current: LinkClient | undefined;
  const sentMemory = new Map<string, number>();
  const afterEvery = o.afterPassMs ?? VERDICT_INTERVAL_MS;
  const base = o.backoffBaseMs ?? 1000;
  const max = o.backoffMaxMs ?? 60_000;
  const poll = o.pollMs ?? 5000;
  /** Waits `ms`, or less: wake(), a syncNow, the stop, or the link closing. */
  const pause = (ms: number, link?: LinkClient): Promise<void> =>
    new Promise<void>((r) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        link?.off('close', done);
        wake = undefined;
        r();
      };
      const t = setTimeout(done, ms);
      wake = done;
      signal.addEventListener('abort', done, { once: true });
      link?.once('close', done);
    });
  const loop = (async () => {
    let failures = 0;
    while (!signal.aborted) {
      let link: LinkClient | undefined;
      let serving: NowRequest[] = [];
      try {
        state = 'connecting';
        link = await connect(o);
        current = link;
        failures = 0;
        if (offlineSince !== undefined) {
          o.log?.info({ event: 'studio-reachable' }, 'the studio is reachable again; syncing');
          offlineSince = undefined;
        }
        lastError = undefined;
        let lastAfter = 0;
        let passed = true;
        while (!signal.aborted && link.closedError === undefined) {
          state = 'syncing';
          serving = requests.splice(0);
          const following = serving.filter((r) => r.onProgress !== undefined);
          const progress = await queueProgress(o.queue, following.length > 0);
          const session = link;
          await sendMhlGenerations(session, o.queue, o.log);
          const pass = await ticking(
            progress,
            (p) => {
              for (const r of following) r.onProgress?.(p);
            },
            () => syncPass(session, o.queue, { sentMemory, signal, ...(progress === undefined ? {} : { progress }) }),
          );
          await sendMhlGenerations(session, o.queue, o.log);
          receipts += pass.receipts;
          bytesSent += pass.bytesSent;
          for (const r of serving) r.resolve({ ...pass, connections: 1, failed: failingOf(pass.nacks) });
          serving = [];
          state = 'idle';
          // After a pass that moved something, and while idle at a modest interval.
          if (passed || pass.offered > 0 || Date.now() - lastAfter >= afterEvery) {
            await runAfterPass(o, link);
            lastAfter = Date.now();
          }
          passed = false;
          if (requests.length > 0) continue; // asked for during that pass: one more now
          await pause(pass.nacks.some((n) => n.retryable) ? Math.max(poll, base) : poll, link);
        }
      } catch (err) {
        if (signal.aborted) break;
        const coded =
          err instanceof CodedError
            ? err
            : new LinkError(LINK_CODES.connectionLost, String(err), { cause: err, retryable: true });
        lastError = `${coded.code}: ${coded.message}`;
        state = 'offline';
        failures++;
        if (!coded.retryable) {
          o.log?.error({ event: 'sync-failed', err: coded }, 'studio sync failed; retrying');
        } else if (offlineSince === undefined) {
          offlineSince = new Date();
          o.log?.info(
            { event: 'studio-offline', err: coded },
            `studio not reachable since ${offlineSince.toISOString()}; sync resumes by itself when it is`,
          );
        } else {
          o.log?.debug({ event: 'studio-offline', err: coded, attempt: failures }, 'studio still not reachable');
        }
        const asked = [...serving, ...requests.splice(0)];
        const why =
          coded.retryable && offlineSince !== undefined
            ? new LinkError(
                LINK_CODES.unreachable,
                `The studio is not reachable (since ${offlineSince.toISOString()}): ${coded.message}`,
                { cause: coded, retryable: true },
              )
            : coded;
        for (const r of asked) r.reject(why);
        await pause(backoffDelay(failures, base, max, o.random));
      } finally {
        current = undefined;
        link?.close();
      }
    }
    state = 'stopped';
    for (const r of requests.splice(0)) r.reject(signal.reason);
  })();
  return {
    wake: () => wake?.(),
    syncNow: (onProgress) =>
      new Promise<SyncReport>((resolve, reject) => {
        if (state === 'stopped' || signal.aborted) {
          reject(signal.reason);
          return;
        }
        requests.push({ resolve, reject, onProgress });
        wake?.();
      }),
    link: () => (current?.closedError === undefined ? current : undefined),
    stop: async () => {
      ac.abort(new LinkError(LINK_CODES.connectionLost, 'the sync loop stopped', { retryable: true }));
      wake?.();
      await loop;
    },
    status: () => ({
      state,
      ...(lastError === undefined ? {} : { lastError }),
      ...(offlineSince === undefined ? {} : { offlineSince: offlineSince.toISOString() }),
      receipts,
      bytesSent,
    }),
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
  /** A pass now, its report (`field-agent sync` while the agent runs); LINK_SYNC_PAUSED while paused. */
  syncNow(onProgress?: (p: ProgressTracker) => void): Promise<SyncReport>;
  /** Stops the link (in-flight chunks are simply re-offered later: the studio resumes from its durable offset). */
  pauseSync(): Promise<void>;
  resumeSync(): void;
  /** `field-agent free [card]` through the running agent: the policy now, verdicts re-asked over the live link. */
  free(cards?: string[]): Promise<CardFreeResult[]>;
}

/**
 * The `afterPass` of a sync loop: the verdicts due, then (when the policy frees anything) the
 * freeLaptop round, whose stale verdicts are re-asked over the same link.
 */
export function verdictsAndFreeing(ctx: {
  state: AgentState;
  freeLaptop: FreeLaptopPolicy;
  fieldDrives?: readonly string[];
  log?: Logger;
}): (link: LinkClient) => Promise<void> {
  return async (link) => {
    if (link.features.length === 0) return; // an older studio: nothing to ask
    await refreshVerdicts(link, ctx.state);
    if (ctx.freeLaptop === 'never') return;
    await freeLaptopCopies(ctx.state, {
      policy: ctx.freeLaptop,
      refresh: async (hashes) => void (await refreshVerdicts(link, ctx.state, { hashes })),
      ...(ctx.fieldDrives === undefined ? {} : { fieldDrives: ctx.fieldDrives }),
      ...(ctx.log === undefined ? {} : { log: ctx.log }),
    });
  };
}

export async function startSyncForRun(ctx: {
  state: AgentState;
  paths: { dataDir: string };
  log: Logger;
  signal: AbortSignal;
  config?: { freeLaptop: FreeLaptopPolicy; fieldDrives?: readonly string[] };
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
    afterPass: verdictsAndFreeing({
      state: ctx.state,
      freeLaptop: ctx.config?.freeLaptop ?? 'never',
      ...(ctx.config?.fieldDrives === undefined ? {} : { fieldDrives: ctx.config.fieldDrives }),
      log: ctx.log,
    }),
  };
  let handle = startSync(options);
  let paused = false;
  let receiptsBefore = 0;
  let bytesBefore = 0;
  return {
    close: () => handle.stop(),
    status: () => {
      const s = handle.status();
      const totals = { receipts: receiptsBefore + s.receipts, bytesSent: bytesBefore + s.bytesSent };
      return { ...s, ...totals, state: paused ? 'paused' : s.state };
    },
    wake: () => handle.wake(),
    syncNow: (onProgress) =>
      paused
        ? Promise.reject(
            new LinkError(
              LINK_CODES.syncPaused,
              'Studio sync is paused (from the tray or the status page): resume it there, then sync again.',
            ),
          )
        : handle.syncNow(onProgress),
    free: (cards) => {
      const link = handle.link();
      const fieldDrives = ctx.config?.fieldDrives;
      return freeLaptopCopies(
        ctx.state,
        {
          policy: ctx.config?.freeLaptop ?? 'never',
          ...(link === undefined
            ? {}
            : { refresh: async (hashes) => void (await refreshVerdicts(link, ctx.state, { hashes })) }),
          ...(cards === undefined ? {} : { cards }),
          ...(fieldDrives === undefined ? {} : { fieldDrives }),
          log: ctx.log,
        },
        true,
      );
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
    resumeSync: () => {
      if (!paused || ctx.signal.aborted) return;
      paused = false;
      ctx.log.info({ event: 'sync-resumed' }, 'studio sync resumed');
      handle = startSync(options);
    },
  };
}
