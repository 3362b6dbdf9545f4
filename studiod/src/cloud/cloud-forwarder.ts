/**
 * Forwards every committed asset to each cloud target: a durable queue per
 * (target, asset), workers per target, retries with exponential backoff and
 * jitter, permanent errors parked with their code, and an object counted as a
 * copy only after a HEAD confirms size, checksum and metadata.
 *
 * The steps of one upload (digest, HEAD and decide, record, send, verify,
 * count) are an UploadJob (upload-job.ts, numbered as in docs/design.md,
 * "Cloud"); this file runs jobs and decides what a failure means: retry with
 * backoff, park, or restart a multipart upload the server forgot.
 */
import { createHash } from 'node:crypto';
import { createHasher, backoffDelay } from '@studio321/protocol';
import { CloudError, CLOUD_CODES, classifyS3Error } from './errors.js';
import { validateCloudTarget, objectKey, DEFAULT_CONCURRENCY, type CloudTargetConfig } from './cloud-target.js';
import {
  CloudQueue,
  ENQUEUE_MARK,
  keys,
  type CloudBatch,
  type CloudDb,
  type CloudErrorInfo,
  type CloudJob,
  type CloudObject,
  type CloudOp,
} from './cloud-queue.js';
import { S3Sink, type CloudSink } from './s3-sink.js';
import type { AssetOrigin } from './object-metadata.js';
import { UploadSchedule, windowStatus, type UploadWindowStatus } from './upload-window.js';
import {
  UploadJob,
  abortQuietly,
  copyRecord,
  objectMismatch,
  type CloudCopyRecord,
  type UploadJobContext,
} from './upload-job.js';

export type { CloudCopyRecord } from './upload-job.js';

export interface CloudTargetStatus {
  target: string;
  /** Jobs not yet counted, parked ones included. */
  pending: number;
  pendingBytes: number;
  /** Jobs stopped on a permanent error, waiting for `retryParked()` (or the long automatic retry). */
  parked: number;
  oldestQueuedAt: string | null;
  lastError: CloudErrorInfo | null;
  uploading: number;
  /** The target's upload window now; null: no `windows`, uploads run at any time. */
  window: UploadWindowStatus | null;
}

export interface CloudRetryOptions {
  /** First backoff delay (default 2 s); doubles per attempt, with jitter. */
  baseMs?: number;
  /** Backoff ceiling (default 15 min): a cloud down for days is retried every ≤ 15 min, forever. */
  maxMs?: number;
  /** Parked jobs are tried again after this long (default 6 h) or on retryParked(). */
  parkedMs?: number;
}

export interface CloudForwarderOptions {
  db: CloudDb;
  targets: CloudTargetConfig[];
  /** Path of the verified mirror copy of an asset. */
  resolveSource: (blake3: string) => Promise<string>;
  /** Called once an object verified; studiod records the copy (sync: true). Must be idempotent. */
  onCopyVerified: (copy: CloudCopyRecord) => Promise<void>;
  /** Called when verify() finds a counted object missing or different; studiod removes the copy. */
  onCopyLost?: (lost: { target: string; blake3: string; key: string; code: string }) => Promise<void>;
  clock?: () => number;
  log?: (event: Record<string, unknown>) => void;
  retry?: CloudRetryOptions;
  /** The names an asset is known by, written into its object's metadata (object-metadata.ts). */
  describeAsset?: (blake3: string) => Promise<AssetOrigin[]>;
  /** Seam for tests and other protocols; default S3Sink. */
  sinkFactory?: (target: CloudTargetConfig) => CloudSink;
  /**
   * Longest sleep of a target's window timer (default 60 s): the timer is armed to the next window
   * boundary computed from `clock`, so a wall clock that jumps (NTP, suspend) is noticed within this.
   */
  windowRecheckMs?: number;
}

interface TargetRuntime {
  cfg: CloudTargetConfig;
  sink: CloudSink;
  /** What every UploadJob of this target runs with. */
  jobs: UploadJobContext;
  inFlight: Map<string, AbortController>;
  wake: () => void;
  wakeSignal: Promise<void>;
  workers: Promise<void>[];
  /** The bucket protection check (locked targets) passed since open(). */
  protected: boolean;
  /** The target's upload windows; null: always open. */
  schedule: UploadSchedule | null;
  /** The window state last evaluated (undefined before the first evaluation). */
  windowOpen: boolean | undefined;
  /** The one timer to the next window boundary (or the recheck). */
  windowTimer: NodeJS.Timeout | undefined;
}

type Lifecycle = 'new' | 'opening' | 'open' | 'closing' | 'closed';

function info(err: CloudError, at: number): CloudErrorInfo {
  return { code: err.code, message: err.message, at: new Date(at).toISOString() };
}

export class CloudForwarder {
  readonly #opts: CloudForwarderOptions;
  readonly #clock: () => number;
  readonly #log: (event: Record<string, unknown>) => void;
  readonly #retry: Required<CloudRetryOptions>;
  readonly #queue: CloudQueue;
  readonly #targets = new Map<string, TargetRuntime>();
  #state: Lifecycle = 'new';
  #idleWaiters: Array<() => void> = [];
  readonly #onWrite = (ops: Array<Record<string, unknown>>): void => {
    for (const op of ops) {
      const mark = op[ENQUEUE_MARK] as { target: string; size: number } | undefined;
      if (mark === undefined || op.type !== 'put') continue;
      const rt = this.#targets.get(mark.target);
      if (rt === undefined) continue;
      this.#queue.noteCreated(mark);
      rt.wake();
    }
  };

  constructor(opts: CloudForwarderOptions) {
    const names = new Set<string>();
    for (const t of opts.targets) {
      validateCloudTarget(t);
      if (names.has(t.name)) {
        throw new CloudError(
          CLOUD_CODES.configInvalid,
          `Two cloud targets are named "${t.name}"; names must be unique. Fix the studiod config file.`,
        );
      }
      names.add(t.name);
    }
    this.#opts = opts;
    this.#clock = opts.clock ?? Date.now;
    this.#log = opts.log ?? (() => undefined);
    this.#retry = {
      baseMs: opts.retry?.baseMs ?? 2_000,
      maxMs: opts.retry?.maxMs ?? 15 * 60_000,
      parkedMs: opts.retry?.parkedMs ?? 6 * 3600_000,
    };
    this.#queue = new CloudQueue(opts.db);
  }

  get targets(): string[] {
    return this.#opts.targets.map((t) => t.name);
  }

  async open(): Promise<void> {
    if (this.#state !== 'new') throw new TypeError(`CloudForwarder.open() called in state ${this.#state}`);
    this.#state = 'opening';
    await this.#queue.open(this.targets);
    for (const cfg of this.#opts.targets) {
      const sink = this.#opts.sinkFactory?.(cfg) ?? new S3Sink(cfg);
      await sink.open();
      const rt: TargetRuntime = {
        cfg,
        sink,
        jobs: {
          cfg,
          sink,
          queue: this.#queue,
          clock: this.#clock,
          log: this.#log,
          resolveSource: (blake3) => this.#opts.resolveSource(blake3),
          onCopyVerified: (copy) => this.#opts.onCopyVerified(copy),
          ...(this.#opts.describeAsset === undefined ? {} : { describeAsset: this.#opts.describeAsset }),
          windowOpen: () => this.#windowOpen(rt),
        },
        inFlight: new Map(),
        wake: () => undefined,
        wakeSignal: Promise.resolve(),
        workers: [],
        protected: false,
        schedule: UploadSchedule.parse(cfg.windows, cfg.timeZone, cfg.name),
        windowOpen: undefined,
        windowTimer: undefined,
      };
      this.#resetWake(rt);
      this.#evaluateWindow(rt);
      this.#targets.set(cfg.name, rt);
    }
    this.#opts.db.db.on('write', this.#onWrite);
    this.#state = 'open';
    for (const rt of this.#targets.values()) {
      const n = rt.cfg.concurrency ?? DEFAULT_CONCURRENCY;
      for (let i = 0; i < n; i++) rt.workers.push(this.#worker(rt));
      void this.#sweepStaleUploads(rt);
    }
  }

  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'new') {
      this.#state = 'closed';
      return;
    }
    this.#state = 'closing';
    this.#opts.db.db.off('write', this.#onWrite);
    for (const rt of this.#targets.values()) {
      clearTimeout(rt.windowTimer);
      for (const ac of rt.inFlight.values())
        ac.abort(
          new CloudError(CLOUD_CODES.closed, 'studiod is stopping; the upload stays queued.', { retryable: true }),
        );
      rt.wake();
    }
    for (const rt of this.#targets.values()) await Promise.all(rt.workers);
    for (const rt of this.#targets.values()) await rt.sink.close();
    this.#state = 'closed';
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  #assertOpen(): void {
    if (this.#state !== 'open') throw new TypeError(`CloudForwarder used in state ${this.#state}; call open() first`);
  }

  #rt(target: string): TargetRuntime {
    const rt = this.#targets.get(target);
    if (rt === undefined) {
      throw new CloudError(
        CLOUD_CODES.unknownTarget,
        `No cloud target named "${target}". Known: ${this.targets.join(', ') || 'none'}.`,
        { detail: { target } },
      );
    }
    return rt;
  }

  /** The configured storage class of a cloud target (undefined: no such target). */
  storageClassOf(target: string): string | undefined {
    return (
      this.#targets.get(target)?.cfg.storageClass ?? this.#opts.targets.find((t) => t.name === target)?.storageClass
    );
  }

  /** The bytes of a counted object, streamed through the target's sink (recovery reads a hot copy this way). */
  async read(target: string, key: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    this.#assertOpen();
    return this.#rt(target).sink.read(key, signal);
  }

  /**
   * Queue an asset for every cloud target (durable, idempotent). With a batch,
   * the job records are added to it and become live when the caller writes it.
   */
  async enqueue(asset: { blake3: string; size: number; name: string }, batch?: CloudBatch): Promise<void> {
    this.#assertOpen();
    for (const rt of this.#targets.values()) {
      const t = rt.cfg.name;
      if ((await this.#queue.getJob(t, asset.blake3)) !== undefined) continue;
      if ((await this.#queue.getObject(t, asset.blake3)) !== undefined) continue;
      const job = this.#queue.newJob(t, asset, this.#clock());
      if (batch === undefined) {
        await this.#queue.create(job);
        rt.wake();
      } else {
        const ops = this.#queue.createOps(job);
        ops.forEach((op, i) => {
          if (op.type !== 'put') return;
          batch.put(
            op.key,
            op.value,
            i === 0
              ? { sublevel: this.#opts.db, [ENQUEUE_MARK]: { target: t, size: job.size } }
              : { sublevel: this.#opts.db },
          );
        });
      }
    }
  }

  async status(): Promise<CloudTargetStatus[]> {
    const out: CloudTargetStatus[] = [];
    for (const rt of this.#targets.values()) {
      const c = this.#queue.counters(rt.cfg.name);
      out.push({
        target: rt.cfg.name,
        pending: c.pending,
        pendingBytes: c.pendingBytes,
        parked: c.parked,
        oldestQueuedAt: c.pending > 0 ? await this.#queue.oldestQueuedAt(rt.cfg.name) : null,
        lastError: c.lastError,
        uploading: rt.inFlight.size,
        window:
          rt.schedule === null ? null : windowStatus(rt.schedule, this.#clock(), rt.cfg.bandwidthBytesPerSec ?? 0),
      });
    }
    return out;
  }

  /** Operator action: parked jobs of one target (or all) are tried again now. Returns how many. */
  async retryParked(target?: string): Promise<number> {
    this.#assertOpen();
    let n = 0;
    for (const rt of target === undefined ? this.#targets.values() : [this.#rt(target)]) {
      for (const blake3 of await this.#queue.parkedJobs(rt.cfg.name)) {
        const job = await this.#queue.getJob(rt.cfg.name, blake3);
        if (job === undefined || job.parked === null) continue;
        await this.#queue.update(job, { ...job, parked: null, attempts: 0, dueAt: this.#clock() });
        n++;
      }
      await this.#queue.clearError(rt.cfg.name);
      rt.wake();
    }
    return n;
  }

  /** Resolves when no job is waiting to run (parked jobs excepted) and nothing is uploading. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #isIdle(): boolean {
    if (this.#state !== 'open') return true;
    for (const rt of this.#targets.values()) {
      const c = this.#queue.counters(rt.cfg.name);
      // Jobs waiting for the next upload window cannot run now, like parked ones.
      if ((rt.windowOpen !== false && c.pending - c.parked > 0) || rt.inFlight.size > 0) return false;
    }
    return true;
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length > 0 && this.#isIdle()) for (const w of this.#idleWaiters.splice(0)) w();
  }

  /**
   * Re-check a counted object: HEAD (size, metadata, storage class, server
   * checksum), and with `download` its bytes hashed to the asset's BLAKE3.
   * A missing or different object stops counting (onCopyLost) and is re-sent
   * to a new key; the different object itself is left untouched.
   */
  async verify(
    target: string,
    blake3: string,
    opts: { download?: boolean } = {},
  ): Promise<{ ok: boolean; code?: string; copy?: CloudCopyRecord }> {
    this.#assertOpen();
    const rt = this.#rt(target);
    const obj = await this.#queue.getObject(target, blake3);
    if (obj === undefined) {
      const queued = await this.#queue.getJob(target, blake3);
      return { ok: false, code: queued === undefined ? CLOUD_CODES.objectMissing : CLOUD_CODES.uploadPending };
    }
    const head = await rt.sink.head(obj.key, undefined, obj.versionId);
    if (head === null) return this.#lost(rt, obj, CLOUD_CODES.objectMissing, obj.generation);
    const mismatch = objectMismatch(rt.cfg, head, obj, obj.sha256, null);
    if (mismatch !== null) {
      this.#log({ event: 'cloud.verify-mismatch', target, blake3, key: obj.key, mismatch });
      return this.#lost(rt, obj, CLOUD_CODES.verifyMismatch, obj.generation + 1);
    }
    let method: CloudObject['method'] = 'head-size-sha256-meta';
    if (opts.download === true) {
      const h = createHasher();
      const sha = createHash('sha256');
      let size = 0;
      try {
        for await (const chunk of await rt.sink.read(obj.key, undefined, obj.versionId)) {
          h.update(chunk);
          sha.update(chunk);
          size += chunk.byteLength;
        }
      } catch (err) {
        h.dispose();
        throw classifyS3Error(err, 'GET', target);
      }
      const got = h.digest();
      if (got !== blake3 || size !== obj.size || sha.digest('hex') !== obj.sha256) {
        this.#log({
          event: 'cloud.verify-mismatch',
          target,
          blake3,
          key: obj.key,
          mismatch: `download: blake3 ${got}, size ${size}`,
        });
        return this.#lost(rt, obj, CLOUD_CODES.verifyMismatch, obj.generation + 1);
      }
      method = 'download-blake3';
    }
    const next: CloudObject = { ...obj, verifiedAt: new Date(this.#clock()).toISOString(), method };
    await this.#queue.putObjectRecord(next);
    return { ok: true, copy: copyRecord(rt.cfg, next) };
  }

  async #lost(
    rt: TargetRuntime,
    obj: CloudObject,
    code: string,
    generation: number,
  ): Promise<{ ok: false; code: string }> {
    const t = rt.cfg.name;
    const ops: CloudOp[] = await this.#queue.deleteObjectRecordOps(t, obj.blake3);
    let job: CloudJob | undefined;
    if ((await this.#queue.getJob(t, obj.blake3)) === undefined) {
      job = this.#queue.newJob(t, obj, this.#clock(), { generation, reason: 'resend' });
      ops.push(...this.#queue.createOps(job));
    }
    await this.#queue.db.batch(ops, { sync: true });
    if (job !== undefined) this.#queue.noteCreated(job);
    this.#log({
      event: 'cloud.copy-lost',
      target: t,
      blake3: obj.blake3,
      key: obj.key,
      code,
      resendTo: objectKey(rt.cfg, obj.blake3, generation),
    });
    await this.#opts.onCopyLost?.({ target: t, blake3: obj.blake3, key: obj.key, code });
    rt.wake();
    return { ok: false, code };
  }

  // ── workers ──────────────────────────────────────────────────────────

  /** wake() releases every worker waiting on the current signal and arms a fresh one. */
  #resetWake(rt: TargetRuntime): void {
    let release: () => void = () => undefined;
    rt.wakeSignal = new Promise<void>((resolve) => {
      release = resolve;
    });
    rt.wake = () => {
      release();
      this.#resetWake(rt);
    };
  }

  async #sleep(signal: Promise<void>, ms: number): Promise<void> {
    if (ms <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    const t = Number.isFinite(ms)
      ? new Promise<void>((r) => {
          timer = setTimeout(r, Math.min(ms, 2 ** 31 - 1));
        })
      : new Promise<void>(() => undefined);
    await Promise.race([signal, t]);
    if (timer !== undefined) clearTimeout(timer);
  }

  async #worker(rt: TargetRuntime): Promise<void> {
    while (this.#state === 'open') {
      // Taken before looking at the queue: a wake-up while we look is not missed.
      const signal = rt.wakeSignal;
      if (!this.#windowOpen(rt)) {
        // The window timer wakes us when the next window opens.
        this.#checkIdle();
        await this.#sleep(signal, Infinity);
        continue;
      }
      let next: Awaited<ReturnType<CloudQueue['nextDue']>>;
      try {
        next = await this.#queue.nextDue(rt.cfg.name, this.#clock(), new Set(rt.inFlight.keys()));
      } catch (err) {
        if (this.#state !== 'open') return;
        this.#log({ event: 'cloud.queue-error', target: rt.cfg.name, error: String(err) });
        await this.#sleep(signal, 1000);
        continue;
      }
      if (this.#state !== 'open') return;
      if (next !== null && 'job' in next) {
        if (rt.inFlight.has(next.job.blake3)) continue;
        await this.#run(rt, next.job);
        continue;
      }
      this.#checkIdle();
      await this.#sleep(signal, next === null ? Infinity : next.dueAt - this.#clock());
    }
  }

  async #run(rt: TargetRuntime, job: CloudJob): Promise<void> {
    const ac = new AbortController();
    rt.inFlight.set(job.blake3, ac);
    const started = this.#clock();
    try {
      await this.#checkProtection(rt, ac.signal);
      await new UploadJob(rt.jobs, job, ac.signal).run();
      this.#log({
        event: 'cloud.uploaded',
        target: rt.cfg.name,
        blake3: job.blake3,
        bytes: job.size,
        ms: this.#clock() - started,
      });
    } catch (err) {
      if (ac.signal.aborted && this.#state !== 'open') return; // closing: the job stays queued as it is
      if (err instanceof CloudError && err.code === CLOUD_CODES.windowClosed) {
        // Not a failure: the job stays due as it is, its UploadId and parts recorded.
        this.#log({ event: 'cloud.paused', target: rt.cfg.name, blake3: job.blake3 });
        return;
      }
      await this.#fail(rt, job.blake3, err).catch((e: unknown) => {
        this.#log({ event: 'cloud.queue-error', target: rt.cfg.name, error: String(e) });
      });
    } finally {
      rt.inFlight.delete(job.blake3);
      this.#checkIdle();
    }
  }

  /**
   * A target with objectLock uploads nothing until its bucket has versioning and Object Lock
   * (CLOUD_BUCKET_UNPROTECTED parks the job); a missing abort rule for stale multipart
   * uploads is a warning. Checked before the first upload after open().
   */
  async #checkProtection(rt: TargetRuntime, signal: AbortSignal): Promise<void> {
    if (rt.protected || rt.cfg.objectLock === undefined) return;
    const name = rt.cfg.name;
    const p = await rt.sink.protection?.(signal);
    if (p === undefined || !p.versioning || !p.objectLock) {
      const missing =
        p === undefined
          ? ['Object Lock (this sink has none)']
          : [...(p.versioning ? [] : ['versioning']), ...(p.objectLock ? [] : ['Object Lock'])];
      throw new CloudError(
        CLOUD_CODES.bucketUnprotected,
        `Cloud target "${name}" is configured with objectLock, but bucket "${rt.cfg.bucket}" lacks ${missing.join(' and ')}; ` +
          'nothing is uploaded to it. Create the bucket with Object Lock enabled (it enables versioning), or remove objectLock ' +
          'from the target, then `studioctl cloud retry`.',
        { retryable: false, detail: { target: name, bucket: rt.cfg.bucket, missing } },
      );
    }
    if (!p.abortsIncompleteUploads) {
      this.#log({
        event: 'cloud.bucket-warning',
        level: 'warn',
        target: name,
        code: CLOUD_CODES.noAbortRule,
        message:
          `Bucket "${rt.cfg.bucket}" of cloud target "${name}" has no lifecycle rule aborting incomplete multipart uploads: ` +
          'parts of an upload studiod could not finish stay billed. Add an AbortIncompleteMultipartUpload rule (e.g. 7 days).',
      });
    }
    this.#log({ event: 'cloud.bucket-protected', target: name, ...p });
    rt.protected = true;
  }

  #backoff(attempts: number): number {
    return backoffDelay(attempts - 1, this.#retry.baseMs, this.#retry.maxMs);
  }

  async #fail(rt: TargetRuntime, blake3: string, err: unknown): Promise<void> {
    let ce = err instanceof CloudError ? err : classifyS3Error(err, 'upload', rt.cfg.name);
    const job = await this.#queue.getJob(rt.cfg.name, blake3);
    if (job === undefined) return;
    const now = this.#clock();
    const attempts = job.attempts + 1;
    let next: CloudJob;
    const extra: CloudOp[] = [];
    if (ce.code === CLOUD_CODES.uploadLost && job.upload !== null) {
      // The server forgot the multipart upload: drop its UploadId and parts durably and start again
      // from part 1 — once. Losing the fresh upload too is not chance: park it with its own code.
      extra.push(...(await this.#queue.partDelOps(job, job.upload.uploadId)));
      const restarts = job.uploadRestarts ?? 0;
      if (restarts >= 1) {
        ce = new CloudError(
          CLOUD_CODES.uploadLostAgain,
          `Cloud target "${rt.cfg.name}" forgot the multipart upload of ${job.name} again after it restarted from part 1. ` +
            'Check the bucket for a lifecycle rule that aborts incomplete uploads too early (upload windows pause uploads), ' +
            'then `studioctl cloud retry`.',
          { cause: ce, retryable: false, detail: { target: rt.cfg.name, blake3, uploadId: job.upload.uploadId } },
        );
        const e = info(ce, now);
        next = {
          ...job,
          attempts,
          lastError: e,
          parked: e,
          upload: null,
          uploadRestarts: 0,
          dueAt: now + this.#retry.parkedMs,
        };
      } else {
        this.#log({ event: 'cloud.upload-restart', target: rt.cfg.name, blake3, uploadId: job.upload.uploadId });
        next = { ...job, attempts, lastError: info(ce, now), upload: null, uploadRestarts: restarts + 1, dueAt: now };
      }
    } else if (ce.retryable) {
      next = { ...job, attempts, lastError: info(ce, now), dueAt: now + this.#backoff(attempts) };
    } else {
      const e = info(ce, now);
      next = { ...job, attempts, lastError: e, parked: e, dueAt: now + this.#retry.parkedMs };
    }
    await this.#queue.update(job, next, extra);
    await this.#queue.recordError(rt.cfg.name, next.lastError as CloudErrorInfo);
    this.#log({
      event: ce.retryable ? 'cloud.retry' : 'cloud.parked',
      target: rt.cfg.name,
      blake3,
      code: ce.code,
      message: ce.message,
      attempts,
      retryInMs: next.dueAt - now,
    });
  }

  // ── upload windows ───────────────────────────────────────────────────

  /** Whether the target may upload now, re-evaluated from the clock (each part boundary asks). */
  #windowOpen(rt: TargetRuntime): boolean {
    if (rt.schedule === null) return true;
    const st = rt.schedule.at(this.#clock());
    const limiter = rt.sink.limiter;
    const rate = st.bytesPerSec ?? rt.cfg.bandwidthBytesPerSec ?? 0;
    if (st.open !== rt.windowOpen || (st.open && limiter !== undefined && limiter.bytesPerSec !== rate))
      this.#evaluateWindow(rt);
    return st.open;
  }

  /**
   * Applies the window state at the clock's now (log, rate, wake the workers when it opens) and
   * arms the target's one timer to the next boundary — capped, so a clock that jumps is noticed.
   */
  #evaluateWindow(rt: TargetRuntime): void {
    const schedule = rt.schedule;
    if (schedule === null || this.#state === 'closing' || this.#state === 'closed') return;
    const now = this.#clock();
    const st = schedule.at(now);
    const rate = st.bytesPerSec ?? rt.cfg.bandwidthBytesPerSec ?? 0;
    if (st.open) rt.sink.limiter?.setRate(rate);
    if (st.open !== rt.windowOpen) {
      rt.windowOpen = st.open;
      const w = windowStatus(schedule, now, rt.cfg.bandwidthBytesPerSec ?? 0);
      this.#log(
        st.open
          ? { event: 'cloud.window-open', target: rt.cfg.name, bytesPerSec: rate, closesAt: w.closesAt?.at ?? null }
          : {
              event: 'cloud.window-closed',
              target: rt.cfg.name,
              nextOpen: w.nextOpen?.at ?? null,
              nextOpenLocal: w.nextOpen?.local ?? null,
            },
      );
      if (st.open) rt.wake();
      this.#checkIdle();
    }
    clearTimeout(rt.windowTimer);
    const next = schedule.nextChange(now);
    const cap = this.#opts.windowRecheckMs ?? 60_000;
    rt.windowTimer = setTimeout(
      () => this.#evaluateWindow(rt),
      Math.max(1, Math.min(cap, next === null ? cap : next - now)),
    );
    rt.windowTimer.unref();
  }

  /** Abort unfinished multipart uploads under our prefix that no job owns (a crash before the UploadId was recorded). */
  async #sweepStaleUploads(rt: TargetRuntime): Promise<void> {
    try {
      const prefix = `${rt.cfg.prefix ?? ''}blake3/`;
      const uploads = await rt.sink.listMultipart(prefix);
      if (uploads === null) {
        this.#log({ event: 'cloud.sweep-unsupported', target: rt.cfg.name });
        return;
      }
      for (const u of uploads) {
        const blake3 = u.key.slice(prefix.length + 3).split('.')[0] ?? '';
        const job = await this.#queue.getJob(rt.cfg.name, blake3);
        if (job?.upload?.uploadId === u.uploadId || rt.inFlight.has(blake3)) continue;
        await abortQuietly(rt.jobs, u.key, u.uploadId);
      }
    } catch (err) {
      this.#log({ event: 'cloud.sweep-failed', target: rt.cfg.name, error: String(err) });
    }
  }
}

export { keys as cloudKeys };
