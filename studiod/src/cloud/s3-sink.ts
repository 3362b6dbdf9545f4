/**
 * The S3 side of cloud forwarding: one S3 client per target, every call it
 * makes, and the translation of every failure into a classified CloudError.
 *
 * Bodies are streamed from the mirror file (fs.createReadStream over a byte
 * range, through the target's bandwidth limiter); nothing holds a whole file.
 * Every PUT and every part carries `x-amz-checksum-sha256`, which a real S3
 * checks before it stores the bytes (BadDigest otherwise).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { PassThrough, Readable } from 'node:stream';
import {
  S3Client,
  HeadObjectCommand,
  PutObjectCommand,
  GetObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  RestoreObjectCommand,
  ListObjectsV2Command,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  GetBucketLifecycleConfigurationCommand,
  PutObjectRetentionCommand,
  type ObjectLockMode,
  type StorageClass,
  type Tier,
} from '@aws-sdk/client-s3';
import type { CloudTargetConfig, ObjectLockInfo, RestoreTier } from './cloud-target.js';
import { classifyS3Error, httpStatusOf, s3CodeOf } from './errors.js';
import { RateLimiter, throttle } from './rate-limiter.js';
import { sourceReadError } from './source-digest.js';

/** What a HEAD tells us about an object. */
export interface ObjectInfo {
  size: number;
  /** x-amz-meta-* without the prefix, lower-case keys. */
  metadata: Record<string, string>;
  /** Storage class as the server reports it (S3 omits it for STANDARD). */
  storageClass: string;
  /** `x-amz-checksum-sha256` if the server stored one (base64; `…-N` for a multipart composite). */
  checksumSha256: string | undefined;
  etag: string | undefined;
  /** The version HEAD answered for (versioned buckets). */
  versionId?: string;
  /** Object Lock retention, when the object has one. */
  lock?: ObjectLockInfo;
  /**
   * An archive-class object's restore state (`x-amz-restore`), present only when
   * a restore was requested: `ongoing: false` means a readable copy exists until `expiresAt`.
   */
  restore?: RestoreState;
}

export interface RestoreState {
  ongoing: boolean;
  /** The `expiry-date` the server gave, as it gave it. */
  expiresAt?: string;
}

/**
 * What RestoreObject answered: `started` (202, a new request), `in-progress`
 * (409 RestoreAlreadyInProgress), `restored` (200: a restored copy exists; its expiry was extended).
 */
export type RestoreRequestState = 'started' | 'in-progress' | 'restored';

/** Parses `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`. */
export function parseRestoreHeader(value: string | undefined): RestoreState | undefined {
  if (value === undefined || value === '') return undefined;
  const ongoing = /ongoing-request\s*=\s*"?(true|false)"?/i.exec(value);
  if (ongoing === null) return undefined;
  const expiry = /expiry-date\s*=\s*"([^"]*)"/i.exec(value);
  return {
    ongoing: ongoing[1]?.toLowerCase() === 'true',
    ...(expiry?.[1] === undefined ? {} : { expiresAt: expiry[1] }),
  };
}

export interface PutSource {
  key: string;
  path: string;
  /** Byte range [start, end) of the file. */
  start: number;
  end: number;
  /** Base64 SHA-256 of exactly these bytes. */
  sha256b64: string;
  /** Base64 MD5 of exactly these bytes, sent as Content-MD5 when known. */
  md5b64?: string;
  signal: AbortSignal;
}

/** What protects a bucket's objects: versioning, Object Lock, and a rule that aborts stale multipart uploads. */
export interface BucketProtection {
  versioning: boolean;
  objectLock: boolean;
  abortsIncompleteUploads: boolean;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
  sha256b64: string;
}

/** One implementation per cloud protocol; tests run the same suite against each. */
export interface CloudSink {
  readonly target: CloudTargetConfig;
  open(): Promise<void>;
  close(): Promise<void>;
  /** HEAD of the newest version, or of `versionId`. */
  head(key: string, signal?: AbortSignal, versionId?: string): Promise<ObjectInfo | null>;
  putObject(src: PutSource, metadata: Record<string, string>): Promise<void>;
  createMultipart(key: string, metadata: Record<string, string>, signal: AbortSignal): Promise<string>;
  uploadPart(src: PutSource, uploadId: string, partNumber: number): Promise<string>;
  completeMultipart(key: string, uploadId: string, parts: CompletedPart[], signal: AbortSignal): Promise<void>;
  /** Best effort: false when the server does not support it or the upload is already gone. */
  abortMultipart(key: string, uploadId: string): Promise<boolean>;
  /** Unfinished multipart uploads under the prefix; null when the server cannot list them. */
  listMultipart(prefix: string): Promise<Array<{ key: string; uploadId: string }> | null>;
  /**
   * Whether the server still has this multipart upload (ListParts): false on NoSuchUpload (RADOS Gateway: NoSuchKey), null when
   * the server cannot tell (s3rver). Asked when Complete fails with a 500 (RADOS Gateway's answer for a lost upload).
   */
  uploadKnown(key: string, uploadId: string, signal?: AbortSignal): Promise<boolean | null>;
  /** The token bucket every upload of this target goes through (upload windows change its rate). */
  readonly limiter?: RateLimiter;
  /**
   * Streams the object's bytes (download verification, restore). An archive-class
   * object that is not restored fails with a CloudError whose `detail.s3Code` is
   * `InvalidObjectState` (S3 answers 403).
   */
  read(key: string, signal?: AbortSignal, versionId?: string): Promise<AsyncIterable<Uint8Array>>;
  /** Sets the target's Object Lock retention on one version (PutObjectRetention); absent: not supported. */
  retain?(key: string, versionId: string | undefined, signal?: AbortSignal): Promise<void>;
  /** The bucket's protection settings; absent when the protocol has none (the memory sink). */
  protection?(signal?: AbortSignal): Promise<BucketProtection>;
  /**
   * RestoreObject: asks for a temporary readable copy of an archive-class object
   * for `days`, at `tier`. An object that is not in an archive class fails with
   * `detail.s3Code` `InvalidObjectState`; a missing one with `NoSuchKey`.
   */
  restoreObject(
    key: string,
    opts: { days: number; tier: RestoreTier },
    signal?: AbortSignal,
  ): Promise<RestoreRequestState>;
  /** Every object under the prefix, in key order (UTF-8 byte order), page by page (the catalogue rebuild). */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<{ key: string; size: number }>;
}

export class S3Sink implements CloudSink {
  readonly target: CloudTargetConfig;
  readonly limiter: RateLimiter;
  #client: S3Client | undefined;

  constructor(target: CloudTargetConfig, limiter?: RateLimiter) {
    this.target = target;
    this.limiter = limiter ?? new RateLimiter({ bytesPerSec: target.bandwidthBytesPerSec ?? 0 });
  }

  async open(): Promise<void> {
    const t = this.target;
    this.#client = new S3Client({
      region: t.region,
      ...(t.endpoint === undefined ? {} : { endpoint: t.endpoint }),
      forcePathStyle: t.forcePathStyle ?? false,
      credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey },
      // We send our own SHA-256 on every body. The SDK's default CRC32 (aws-chunked
      // trailers on streams) is not understood by every S3-compatible server
      // (s3rver stores the chunk framing as object bytes), so only when required.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The forwarder owns retries (backoff + jitter, durable queue); a consumed
      // stream cannot be replayed by the SDK anyway.
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
    });
  }

  async close(): Promise<void> {
    this.#client?.destroy();
    this.#client = undefined;
  }

  /** Taken before a call's try block: misuse is a TypeError, not a network failure to retry. */
  get #s3(): S3Client {
    if (this.#client === undefined) throw new TypeError('S3Sink used before open() or after close()');
    return this.#client;
  }

  get #bucket(): string {
    return this.target.bucket;
  }

  async head(key: string, signal?: AbortSignal, versionId?: string): Promise<ObjectInfo | null> {
    const s3 = this.#s3;
    try {
      const r = await s3.send(
        new HeadObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          ChecksumMode: 'ENABLED',
          ...(versionId === undefined ? {} : { VersionId: versionId }),
        }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      return {
        size: r.ContentLength ?? -1,
        metadata: Object.fromEntries(Object.entries(r.Metadata ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
        storageClass: r.StorageClass ?? 'STANDARD',
        checksumSha256: r.ChecksumSHA256,
        etag: r.ETag,
        ...(r.VersionId === undefined || r.VersionId === 'null' ? {} : { versionId: r.VersionId }),
        ...(r.ObjectLockMode === undefined || r.ObjectLockRetainUntilDate === undefined
          ? {}
          : { lock: { mode: r.ObjectLockMode, retainUntil: r.ObjectLockRetainUntilDate.toISOString() } }),
        ...(parseRestoreHeader(r.Restore) === undefined ? {} : { restore: parseRestoreHeader(r.Restore) }),
      };
    } catch (err) {
      const status = httpStatusOf(err);
      const code = s3CodeOf(err);
      if (status === 404 && code !== 'NoSuchBucket') return null;
      if (status === 403) throw await this.#explain403(key, err, signal);
      throw classifyS3Error(err, 'HEAD', this.target.name);
    }
  }

  /**
   * A HEAD response has no body, so a 403 does not say whether the key id, the
   * signature or the policy is wrong. A one-byte GET of the same key returns
   * the S3 error document with the real code.
   */
  async #explain403(key: string, headErr: unknown, signal?: AbortSignal): Promise<Error> {
    try {
      const r = await this.#s3.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: key, Range: 'bytes=0-0' }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      (r.Body as { destroy?: () => void } | undefined)?.destroy?.();
    } catch (err) {
      if (httpStatusOf(err) !== undefined && httpStatusOf(err) !== 404)
        return classifyS3Error(err, 'HEAD', this.target.name);
    }
    return classifyS3Error(headErr, 'HEAD', this.target.name);
  }

  /**
   * The request body: the file range, opened first so that a mirror copy that is gone fails
   * here with its CLOUD_SOURCE_* code (never as an unhandled stream error), then read through
   * a pipeline that hands any later read error to the request.
   */
  async #body(src: PutSource): Promise<Readable> {
    // An empty range has no bytes to read (createReadStream cannot express end = start - 1).
    if (src.end === src.start) return Readable.from([]);
    let fh: FileHandle;
    try {
      fh = await open(src.path, 'r');
    } catch (err) {
      throw sourceReadError(err, src.path);
    }
    const file = fh.createReadStream({ start: src.start, end: src.end - 1, highWaterMark: 1024 * 1024 });
    const out = new PassThrough();
    const done = this.limiter.unlimited ? pipeline(file, out) : pipeline(file, throttle(this.limiter, src.signal), out);
    done.catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
    return out;
  }

  async putObject(src: PutSource, metadata: Record<string, string>): Promise<void> {
    const s3 = this.#s3;
    const body = await this.#body(src);
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: src.key,
          Body: body,
          ContentLength: src.end - src.start,
          ChecksumSHA256: src.sha256b64,
          ...(src.md5b64 === undefined ? {} : { ContentMD5: src.md5b64 }),
          Metadata: metadata,
          StorageClass: this.target.storageClass as StorageClass,
          ContentType: 'application/octet-stream',
          ...this.#lock(),
        }),
        { abortSignal: src.signal },
      );
    } catch (err) {
      throw classifyS3Error(err, 'PUT', this.target.name);
    } finally {
      body.destroy();
    }
  }

  async createMultipart(key: string, metadata: Record<string, string>, signal: AbortSignal): Promise<string> {
    const s3 = this.#s3;
    try {
      const r = await s3.send(
        new CreateMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          Metadata: metadata,
          ChecksumAlgorithm: 'SHA256',
          StorageClass: this.target.storageClass as StorageClass,
          ContentType: 'application/octet-stream',
          ...this.#lock(),
        }),
        { abortSignal: signal },
      );
      if (r.UploadId === undefined) throw new TypeError('CreateMultipartUpload returned no UploadId');
      return r.UploadId;
    } catch (err) {
      throw classifyS3Error(err, 'CreateMultipartUpload', this.target.name);
    }
  }

  async uploadPart(src: PutSource, uploadId: string, partNumber: number): Promise<string> {
    const s3 = this.#s3;
    const body = await this.#body(src);
    try {
      const r = await s3.send(
        new UploadPartCommand({
          Bucket: this.#bucket,
          Key: src.key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: src.end - src.start,
          ChecksumSHA256: src.sha256b64,
          ...(src.md5b64 === undefined ? {} : { ContentMD5: src.md5b64 }),
        }),
        { abortSignal: src.signal },
      );
      if (r.ETag === undefined) throw new TypeError('UploadPart returned no ETag');
      return r.ETag;
    } catch (err) {
      throw classifyS3Error(err, `UploadPart ${partNumber}`, this.target.name);
    } finally {
      body.destroy();
    }
  }

  async completeMultipart(key: string, uploadId: string, parts: CompletedPart[], signal: AbortSignal): Promise<void> {
    const s3 = this.#s3;
    try {
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: {
            Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, ChecksumSHA256: p.sha256b64 })),
          },
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      throw classifyS3Error(err, 'CompleteMultipartUpload', this.target.name);
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<boolean> {
    const s3 = this.#s3;
    try {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId }));
      return true;
    } catch (err) {
      const status = httpStatusOf(err);
      // 404 NoSuchUpload: already gone. 405/501: the server cannot abort (s3rver).
      if (status === 404 || status === 405 || status === 501) return false;
      throw classifyS3Error(err, 'AbortMultipartUpload', this.target.name);
    }
  }

  async uploadKnown(key: string, uploadId: string, signal?: AbortSignal): Promise<boolean | null> {
    try {
      await this.#s3.send(
        new ListPartsCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId, MaxParts: 1 }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      return true;
    } catch (err) {
      // RADOS Gateway answers ListParts of an upload it forgot with 404 NoSuchKey (the upload's own record is gone).
      const code = s3CodeOf(err);
      if (code === 'NoSuchUpload' || code === 'NoSuchKey') return false;
      const status = httpStatusOf(err);
      if (status === 405 || status === 501) return null;
      throw classifyS3Error(err, 'ListParts', this.target.name);
    }
  }

  async listMultipart(prefix: string): Promise<Array<{ key: string; uploadId: string }> | null> {
    const s3 = this.#s3;
    const out: Array<{ key: string; uploadId: string }> = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      for (;;) {
        const r = await s3.send(
          new ListMultipartUploadsCommand({
            Bucket: this.#bucket,
            Prefix: prefix,
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
          }),
        );
        for (const u of r.Uploads ?? []) {
          if (u.Key !== undefined && u.UploadId !== undefined) out.push({ key: u.Key, uploadId: u.UploadId });
        }
        if (r.IsTruncated !== true) return out;
        keyMarker = r.NextKeyMarker;
        uploadIdMarker = r.NextUploadIdMarker;
      }
    } catch (err) {
      const status = httpStatusOf(err);
      if (status === 405 || status === 501) return null;
      throw classifyS3Error(err, 'ListMultipartUploads', this.target.name);
    }
  }

  async read(key: string, signal?: AbortSignal, versionId?: string): Promise<AsyncIterable<Uint8Array>> {
    const s3 = this.#s3;
    try {
      const r = await s3.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          ...(versionId === undefined ? {} : { VersionId: versionId }),
        }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      const body = r.Body;
      if (body === undefined) throw new TypeError('GetObject returned no body');
      return body as AsyncIterable<Uint8Array>;
    } catch (err) {
      throw classifyS3Error(err, 'GET', this.target.name);
    }
  }

  /** The retention a new object gets: the configured days from now. */
  #lock(): { ObjectLockMode?: ObjectLockMode; ObjectLockRetainUntilDate?: Date } {
    const l = this.target.objectLock;
    if (l === undefined) return {};
    return { ObjectLockMode: l.mode, ObjectLockRetainUntilDate: new Date(Date.now() + l.days * 86_400_000) };
  }

  async retain(key: string, versionId: string | undefined, signal?: AbortSignal): Promise<void> {
    const s3 = this.#s3;
    const l = this.#lock();
    if (l.ObjectLockMode === undefined)
      throw new TypeError(`S3Sink.retain: target ${this.target.name} has no objectLock`);
    try {
      await s3.send(
        new PutObjectRetentionCommand({
          Bucket: this.#bucket,
          Key: key,
          ...(versionId === undefined ? {} : { VersionId: versionId }),
          Retention: { Mode: l.ObjectLockMode, RetainUntilDate: l.ObjectLockRetainUntilDate },
        }),
        signal === undefined ? {} : { abortSignal: signal },
      );
    } catch (err) {
      throw classifyS3Error(err, 'PutObjectRetention', this.target.name);
    }
  }

  async protection(signal?: AbortSignal): Promise<BucketProtection> {
    const s3 = this.#s3;
    const opts = signal === undefined ? {} : { abortSignal: signal };
    const absent = (err: unknown, codes: string[]): boolean =>
      httpStatusOf(err) === 404 && codes.includes(s3CodeOf(err) ?? '');
    try {
      const v = await s3.send(new GetBucketVersioningCommand({ Bucket: this.#bucket }), opts);
      let objectLock = false;
      try {
        const l = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: this.#bucket }), opts);
        objectLock = l.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
      } catch (err) {
        if (!absent(err, ['ObjectLockConfigurationNotFoundError', 'ObjectLockConfigurationNotFound'])) throw err;
      }
      let abortsIncompleteUploads = false;
      try {
        const lc = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: this.#bucket }), opts);
        abortsIncompleteUploads = (lc.Rules ?? []).some(
          (r) => r.Status === 'Enabled' && r.AbortIncompleteMultipartUpload?.DaysAfterInitiation !== undefined,
        );
      } catch (err) {
        if (!absent(err, ['NoSuchLifecycleConfiguration'])) throw err;
      }
      return { versioning: v.Status === 'Enabled', objectLock, abortsIncompleteUploads };
    } catch (err) {
      throw classifyS3Error(err, 'the bucket protection check', this.target.name);
    }
  }

  async restoreObject(
    key: string,
    opts: { days: number; tier: RestoreTier },
    signal?: AbortSignal,
  ): Promise<RestoreRequestState> {
    const s3 = this.#s3;
    try {
      const r = await s3.send(
        new RestoreObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          RestoreRequest: { Days: opts.days, GlacierJobParameters: { Tier: opts.tier as Tier } },
        }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      return r.$metadata.httpStatusCode === 200 ? 'restored' : 'started';
    } catch (err) {
      if (s3CodeOf(err) === 'RestoreAlreadyInProgress') return 'in-progress';
      throw classifyS3Error(err, 'RestoreObject', this.target.name);
    }
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncGenerator<{ key: string; size: number }> {
    const s3 = this.#s3;
    let token: string | undefined;
    for (;;) {
      let r;
      try {
        r = await s3.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: prefix,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
          signal === undefined ? {} : { abortSignal: signal },
        );
      } catch (err) {
        throw classifyS3Error(err, 'LIST', this.target.name);
      }
      for (const o of r.Contents ?? []) if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? -1 };
      if (r.IsTruncated !== true || r.NextContinuationToken === undefined) return;
      token = r.NextContinuationToken;
    }
  }
}
