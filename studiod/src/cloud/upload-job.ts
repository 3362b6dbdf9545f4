/**
 * One upload job of the cloud forwarder: the steps that take one queued asset
 * to a verified, counted object on one target. The forwarder owns the
 * lifecycle, the workers and what happens after a failure (retry, park,
 * restart a lost multipart upload); a job only runs its steps and throws a
 * CloudError when one fails.
 *
 * Steps (numbered as in docs/design.md, "Write order of one upload"):
 *   1. digest   — read the mirror copy once: BLAKE3 + size must match the asset;
 *                 SHA-256 of the file and of each part are recorded in the job;
 *   2. decide   — HEAD the content-addressed key: a matching object counts
 *                 (go to 6); a different object that this job did not write →
 *                 CLOUD_KEY_CONFLICT; one it did write → the next key generation;
 *   3. record   — record the key (and, for multipart, the UploadId) in the job, durably;
 *   4. send     — PUT, or upload the parts not yet recorded (each acknowledged
 *                 part recorded durably, so a restart resumes from the next part)
 *                 and complete; a closed upload window stops it between requests;
 *   5. verify   — HEAD: size, metadata (blake3, size, sha256), storage class, the Object Lock
 *                 retention of a locked target (set by PutObjectRetention when the server dropped it) and
 *                 the server's checksum when it reports one must match;
 *   6. count    — onCopyVerified(copy) (studiod records it), then the job is
 *                 replaced by the object record in one sync batch. A crash
 *                 between 5 and 6 repeats 5 and 6 (onCopyVerified must be idempotent).
 */
import { CloudError, CLOUD_CODES, uploadLostError } from './errors.js';
import { objectKey, partSizeFor, type CloudTargetConfig, type ObjectLockInfo } from './cloud-target.js';
import type { CloudJob, CloudObject, CloudOp, CloudQueue, PreparedSource } from './cloud-queue.js';
import type { CloudSink, ObjectInfo } from './s3-sink.js';
import { digestSource, compositeSha256 } from './source-digest.js';
import { objectMetadata, type AssetOrigin } from './object-metadata.js';

export interface CloudCopyRecord {
  target: string;
  bucket: string;
  key: string;
  storageClass: string;
  media: string;
  location: string;
  offsite: true;
  size: number;
  blake3: string;
  /** Hex SHA-256 of the object bytes (also in its metadata). */
  sha256: string;
  verifiedAt: string;
  method: 'head-size-sha256-meta' | 'download-blake3';
  /** True when the server itself reported a SHA-256 checksum and it matched. */
  serverChecksum: boolean;
  /** The object's version in a versioned bucket. */
  versionId?: string;
  /** The Object Lock retention HEAD confirmed (locked targets). */
  lock?: ObjectLockInfo;
}

/** What a job needs from its forwarder: one target's config and sink, the queue, and studiod's hooks. */
export interface UploadJobContext {
  cfg: CloudTargetConfig;
  sink: CloudSink;
  queue: CloudQueue;
  clock: () => number;
  log: (event: Record<string, unknown>) => void;
  /** Path of the verified mirror copy of an asset. */
  resolveSource: (blake3: string) => Promise<string>;
  /** Records the verified copy; must be idempotent. */
  onCopyVerified: (copy: CloudCopyRecord) => Promise<void>;
  /** The names the asset is known by now (its object's metadata); absent: the job's name only. */
  describeAsset?: (blake3: string) => Promise<AssetOrigin[]>;
  /** False while the target's upload window is closed (asked before a send, each part and Complete); absent: always open. */
  windowOpen?: () => boolean;
}

/** Why the object does not match, or null when it does. `p` null: the part checksums are not known. */
export function objectMismatch(
  cfg: CloudTargetConfig,
  head: ObjectInfo,
  want: { blake3: string; size: number },
  sha256: string,
  p: PreparedSource | null,
): string | null {
  if (head.size !== want.size) return `size ${head.size}, expected ${want.size}`;
  if (head.metadata.blake3 !== want.blake3) return `metadata blake3 ${head.metadata.blake3 ?? 'absent'}`;
  if (head.metadata.size !== String(want.size)) return `metadata size ${head.metadata.size ?? 'absent'}`;
  if (head.metadata.sha256 !== sha256) return `metadata sha256 ${head.metadata.sha256 ?? 'absent'}`;
  if (head.storageClass !== cfg.storageClass) return `storage class ${head.storageClass}, expected ${cfg.storageClass}`;
  if (head.checksumSha256 !== undefined) {
    const full = Buffer.from(sha256, 'hex').toString('base64');
    const ok =
      head.checksumSha256 === full ||
      (p !== null && head.checksumSha256 === compositeSha256(p.partSha256)) ||
      (p === null && head.checksumSha256.includes('-')); // composite of unknown parts: size+metadata decide
    if (!ok) return `server checksum ${head.checksumSha256}`;
  }
  return null;
}

/**
 * Why a locked target's object does not carry the configured retention, or null. Checked
 * when an upload counts (not on later verifies: a retention that ran out is not damage).
 */
export function lockMismatch(cfg: CloudTargetConfig, head: ObjectInfo, now: number): string | null {
  const want = cfg.objectLock;
  if (want === undefined) return null;
  if (head.lock === undefined) return 'no Object Lock retention';
  if (head.lock.mode !== want.mode) return `Object Lock mode ${head.lock.mode}, expected ${want.mode}`;
  if (!(Date.parse(head.lock.retainUntil) > now)) return `Object Lock retention ended ${head.lock.retainUntil}`;
  return null;
}

/** The copy studiod records for a verified object. */
export function copyRecord(cfg: CloudTargetConfig, o: CloudObject): CloudCopyRecord {
  return {
    target: cfg.name,
    bucket: cfg.bucket,
    key: o.key,
    storageClass: cfg.storageClass,
    media: cfg.media,
    location: cfg.location,
    offsite: true,
    size: o.size,
    blake3: o.blake3,
    sha256: o.sha256,
    verifiedAt: o.verifiedAt,
    method: o.method,
    serverChecksum: o.serverChecksum,
    ...(o.versionId === undefined ? {} : { versionId: o.versionId }),
    ...(o.lock === undefined ? {} : { lock: o.lock }),
  };
}

/** Abort a multipart upload, best effort: the outcome is logged, never thrown. */
export async function abortQuietly(
  ctx: Pick<UploadJobContext, 'cfg' | 'sink' | 'log'>,
  key: string,
  uploadId: string,
): Promise<void> {
  try {
    const aborted = await ctx.sink.abortMultipart(key, uploadId);
    ctx.log({ event: 'cloud.abort-multipart', target: ctx.cfg.name, key, uploadId, aborted });
  } catch (err) {
    ctx.log({
      event: 'cloud.abort-multipart',
      target: ctx.cfg.name,
      key,
      uploadId,
      aborted: false,
      error: String(err),
    });
  }
}

/**
 * One run of one job. Its fields are the state the steps share: the job as
 * last saved (`#job`, replaced on every durable update), the mirror path and
 * the digest. Construct, then `await run()`; a run is not reused.
 */
export class UploadJob {
  readonly #ctx: UploadJobContext;
  readonly #signal: AbortSignal;
  #job: CloudJob;
  #path = '';

  constructor(ctx: UploadJobContext, job: CloudJob, signal: AbortSignal) {
    this.#ctx = ctx;
    this.#job = job;
    this.#signal = signal;
  }

  get #prepared(): PreparedSource {
    return this.#job.prepared as PreparedSource;
  }

  async run(): Promise<void> {
    this.#path = await this.#resolveSource();
    await this.#digest();
    for (;;) {
      this.#signal.throwIfAborted();
      const key = objectKey(this.#ctx.cfg, this.#job.blake3, this.#job.generation);
      const existing = await this.#ctx.sink.head(key, this.#signal);
      if (existing !== null) {
        if (await this.#decide(key, existing)) return this.#count(key, existing);
        continue;
      }
      await this.#recordKey(key);
      await this.#send(key);
      return this.#count(key, await this.#verify(key));
    }
  }

  async #save(patch: Partial<CloudJob>, extra: CloudOp[] = []): Promise<void> {
    const next = { ...this.#job, ...patch };
    await this.#ctx.queue.update(this.#job, next, extra);
    this.#job = next;
  }

  async #resolveSource(): Promise<string> {
    const blake3 = this.#job.blake3;
    try {
      return await this.#ctx.resolveSource(blake3);
    } catch (err) {
      if (err instanceof CloudError) throw err;
      const retryable = err instanceof Error && (err as { retryable?: unknown }).retryable === true;
      throw new CloudError(
        CLOUD_CODES.sourceMissing,
        `No readable mirror copy of asset ${blake3} to upload (${err instanceof Error ? err.message : String(err)}). ` +
          'Check the mirror target; the job is retried when it is back.',
        { cause: err, retryable, detail: { blake3 } },
      );
    }
  }

  /** The object's metadata (object-metadata.ts): the checked fields, then shoot, card, names, capture time. */
  async #metadata(): Promise<Record<string, string>> {
    const job = this.#job;
    const origins = (await this.#ctx.describeAsset?.(job.blake3)) ?? [{ shoot: '', card: '', path: job.name }];
    return objectMetadata({ blake3: job.blake3, size: job.size, sha256: this.#prepared.sha256 }, origins);
  }

  /** Step 1: digest the mirror copy, once per job (the result is saved with the job). */
  async #digest(): Promise<void> {
    if (this.#job.prepared !== null) return;
    const job = this.#job;
    const prepared = await digestSource(this.#path, job, partSizeFor(this.#ctx.cfg, job.size), this.#signal);
    await this.#save({ prepared });
  }

  /**
   * Step 2, when the key already holds an object: true when it is ours and
   * matches (it counts); false after moving to the next key generation (our
   * own earlier write that did not verify); throws CLOUD_KEY_CONFLICT otherwise.
   */
  async #decide(key: string, existing: ObjectInfo): Promise<boolean> {
    const { cfg, queue } = this.#ctx;
    const job = this.#job;
    const why =
      objectMismatch(cfg, existing, job, this.#prepared.sha256, this.#prepared) ??
      lockMismatch(cfg, existing, this.#ctx.clock());
    if (why === null) return true;
    if (!job.touchedKeys.includes(key)) {
      throw new CloudError(
        CLOUD_CODES.keyConflict,
        `Cloud target "${cfg.name}" already holds a different object at ${key} (${why}); it is never overwritten. ` +
          'Check whether another system writes to this bucket/prefix, then `studioctl cloud retry`.',
        { retryable: false, detail: { target: cfg.name, key, mismatch: why } },
      );
    }
    // Our own earlier write there did not verify: leave it, use the next key.
    this.#ctx.log({ event: 'cloud.verify-mismatch', target: cfg.name, blake3: job.blake3, key, mismatch: why });
    const extra = job.upload === null ? [] : await queue.partDelOps(job, job.upload.uploadId);
    await this.#save({ generation: job.generation + 1, upload: null }, extra);
    return false;
  }

  /** Step 3: the key goes into touchedKeys before anything is sent to it. */
  async #recordKey(key: string): Promise<void> {
    if (!this.#job.touchedKeys.includes(key)) await this.#save({ touchedKeys: [...this.#job.touchedKeys, key] });
  }

  /**
   * A closed upload window stops the job between requests (never mid-part): the parts
   * acknowledged so far are recorded, so the next window resumes from the next part.
   */
  #checkWindow(): void {
    if (this.#ctx.windowOpen?.() !== false) return;
    const name = this.#ctx.cfg.name;
    throw new CloudError(
      CLOUD_CODES.windowClosed,
      `The upload window of cloud target "${name}" closed; the upload resumes when the next window opens.`,
      { retryable: true, detail: { target: name } },
    );
  }

  /** Step 4: one PUT, or a multipart upload. */
  async #send(key: string): Promise<void> {
    this.#checkWindow();
    const p = this.#prepared;
    if (p.partSha256.length === 1) {
      await this.#ctx.sink.putObject(
        {
          key,
          path: this.#path,
          start: 0,
          end: this.#job.size,
          sha256b64: p.partSha256[0] as string,
          ...(p.partMd5?.[0] === undefined ? {} : { md5b64: p.partMd5[0] }),
          signal: this.#signal,
        },
        await this.#metadata(),
      );
      return;
    }
    const uploadId = await this.#startMultipart(key);
    await this.#sendParts(key, uploadId);
  }

  /** Step 3 for multipart: reuse the recorded upload of this key, or create one and record its UploadId. */
  async #startMultipart(key: string): Promise<string> {
    const { sink, queue, clock } = this.#ctx;
    const job = this.#job;
    if (job.upload !== null && job.upload.key === key) return job.upload.uploadId;
    if (job.upload !== null) await abortQuietly(this.#ctx, job.upload.key, job.upload.uploadId);
    const extra = job.upload === null ? [] : await queue.partDelOps(job, job.upload.uploadId);
    const uploadId = await sink.createMultipart(key, await this.#metadata(), this.#signal);
    await this.#save({ upload: { key, uploadId, startedAt: new Date(clock()).toISOString() } }, extra);
    return uploadId;
  }

  /** Step 4 for multipart: the parts not yet acknowledged, each recorded durably, then complete. */
  async #sendParts(key: string, uploadId: string): Promise<void> {
    const { cfg, sink, queue, log } = this.#ctx;
    const job = this.#job;
    const p = this.#prepared;
    const done = await queue.parts(job, uploadId);
    const total = p.partSha256.length;
    if (done.size > 0)
      log({ event: 'cloud.resume', target: cfg.name, blake3: job.blake3, partsDone: done.size, parts: total });
    for (let n = 1; n <= total; n++) {
      if (done.has(n)) continue;
      this.#signal.throwIfAborted();
      this.#checkWindow();
      const start = (n - 1) * p.partSize;
      const end = Math.min(job.size, n * p.partSize);
      const sha256b64 = p.partSha256[n - 1] as string;
      const md5b64 = p.partMd5?.[n - 1];
      const etag = await sink.uploadPart(
        {
          key,
          path: this.#path,
          start,
          end,
          sha256b64,
          ...(md5b64 === undefined ? {} : { md5b64 }),
          signal: this.#signal,
        },
        uploadId,
        n,
      );
      const part = { etag, sha256b64 };
      await queue.putPart(job, uploadId, n, part);
      done.set(n, part);
      log({ event: 'cloud.part', target: cfg.name, blake3: job.blake3, part: n, parts: total });
    }
    this.#checkWindow();
    const parts = [...done.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([partNumber, v]) => ({ partNumber, etag: v.etag, sha256b64: v.sha256b64 }));
    try {
      await sink.completeMultipart(key, uploadId, parts, this.#signal);
    } catch (err) {
      throw await this.#lostOrAsIs(err, key, uploadId);
    }
  }

  /**
   * RADOS Gateway answers Complete of an upload it forgot with 500 InternalError, not NoSuchUpload:
   * ask the server (ListParts) whether the upload still exists before retrying the same Complete forever.
   */
  async #lostOrAsIs(err: unknown, key: string, uploadId: string): Promise<unknown> {
    if (!(err instanceof CloudError) || err.code !== CLOUD_CODES.unavailable || err.detail?.httpStatus !== 500)
      return err;
    const known = await this.#ctx.sink.uploadKnown(key, uploadId, this.#signal).catch(() => null);
    if (known !== false) return err;
    const name = this.#ctx.cfg.name;
    return uploadLostError(name, err, { target: name, operation: 'CompleteMultipartUpload', uploadId });
  }

  /** Step 5: HEAD the object just written; anything but a match throws (the job is retried). */
  async #verify(key: string): Promise<ObjectInfo> {
    const { cfg, sink, log } = this.#ctx;
    const job = this.#job;
    let head = await sink.head(key, this.#signal);
    if (head !== null && head.lock === undefined && cfg.objectLock !== undefined && sink.retain !== undefined) {
      // Some servers (RADOS Gateway) drop the retention given at CreateMultipartUpload: set it on the version.
      await sink.retain(key, head.versionId, this.#signal);
      head = await sink.head(key, this.#signal, head.versionId);
    }
    if (head === null) {
      throw new CloudError(
        CLOUD_CODES.objectMissing,
        `Cloud target "${cfg.name}" accepted ${key} but a HEAD does not find it; the upload is retried.`,
        { retryable: true, detail: { target: cfg.name, key } },
      );
    }
    const why =
      objectMismatch(cfg, head, job, this.#prepared.sha256, this.#prepared) ??
      lockMismatch(cfg, head, this.#ctx.clock());
    if (why !== null) {
      // The next run's step 2 sees our own bad write and moves to the next key.
      log({ event: 'cloud.verify-mismatch', target: cfg.name, blake3: job.blake3, key, mismatch: why });
      throw new CloudError(
        CLOUD_CODES.verifyMismatch,
        `The object ${key} on cloud target "${cfg.name}" does not match what was sent (${why}); it is not counted and is sent again.`,
        { retryable: true, detail: { target: cfg.name, key, mismatch: why } },
      );
    }
    return head;
  }

  /** Step 6: studiod records the copy, then the object record replaces the job. */
  async #count(key: string, head: ObjectInfo): Promise<void> {
    const { cfg, queue, clock } = this.#ctx;
    const job = this.#job;
    const obj: CloudObject = {
      target: cfg.name,
      blake3: job.blake3,
      key,
      generation: job.generation,
      size: job.size,
      name: job.name,
      sha256: this.#prepared.sha256,
      verifiedAt: new Date(clock()).toISOString(),
      method: 'head-size-sha256-meta',
      serverChecksum: head.checksumSha256 !== undefined,
      ...(head.versionId === undefined ? {} : { versionId: head.versionId }),
      ...(head.lock === undefined ? {} : { lock: head.lock }),
    };
    await this.#ctx.onCopyVerified(copyRecord(cfg, obj));
    await queue.complete(job, obj);
    if (job.upload !== null && job.upload.key !== key)
      await abortQuietly(this.#ctx, job.upload.key, job.upload.uploadId);
    await queue.clearError(cfg.name);
  }
}
