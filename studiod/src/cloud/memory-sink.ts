/**
 * An in-memory CloudSink with S3's semantics, for tests and dry runs: objects
 * with their metadata, storage class, ETag and SHA-256 checksum; multipart
 * uploads with parts, complete, abort and list. Every object is held in
 * memory, whole; this is not a cache and not for production data.
 *
 * It behaves as AWS S3 does where s3rver does not (docs/design.md, "What is
 * verified by whom"): each body's SHA-256 is checked (BadDigest), HEAD returns
 * the stored checksum (the full one for a PUT, S3's composite `…-N` for a
 * multipart object), Complete checks its part list (InvalidPart,
 * InvalidPartOrder, EntityTooSmall), an unknown UploadId is NoSuchUpload, and
 * user metadata is limited to S3's 2 KB.
 *
 * It does not model rehydration: an archive-class (GLACIER, DEEP_ARCHIVE) object
 * is readable at once, and a RestoreObject of one completes at once (HEAD then
 * shows `restore: { ongoing: false }`); RestoreObject of any other class is
 * refused with InvalidObjectState, as S3 does. The delay, and S3's refusal to GET
 * an archived object, are modelled by the archive double of the restore tests.
 *
 * Failures are raised the way the SDK raises S3's (an error named by the S3
 * code, with the HTTP status in `$metadata`) and go through classifyS3Error,
 * so a MemorySink fails with exactly the CloudError an S3Sink would, and
 * classification stays in one place.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { isSystemError } from '@studio321/protocol';
import { classifyS3Error } from './errors.js';
import { MIN_PART_SIZE, MAX_PARTS, isArchiveClass, type CloudTargetConfig, type RestoreTier } from './cloud-target.js';
import { RateLimiter } from './rate-limiter.js';
import type { CloudSink, CompletedPart, ObjectInfo, PutSource, RestoreRequestState } from './s3-sink.js';
import { compositeSha256, sourceReadError } from './source-digest.js';

/** S3's largest single PUT. */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** S3's largest part. */
const MAX_PART_BYTES = 5 * 1024 ** 3;
/** S3's limit on user metadata: UTF-8 bytes of every key and value together. */
const MAX_METADATA_BYTES = 2048;
const READ_CHUNK = 1024 * 1024;

export interface MemoryObject {
  readonly bytes: Buffer;
  /** Lower-case keys, as a HEAD returns them. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly storageClass: string;
  /** Base64 SHA-256, or S3's composite `base64(sha256(part digests))-N` for a multipart object. */
  readonly checksumSha256: string;
  readonly etag: string;
}

export interface MemoryUpload {
  readonly key: string;
  readonly uploadId: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly storageClass: string;
  readonly parts: Map<number, { bytes: Buffer; etag: string; sha256b64: string }>;
}

/** One bucket. Its maps are public so a test can look at, or tamper with, what the "server" holds. */
export class MemoryBucket {
  readonly objects = new Map<string, MemoryObject>();
  /** Open multipart uploads by UploadId, in creation order. */
  readonly uploads = new Map<string, MemoryUpload>();
  /** Restores requested per key (RestoreObject); complete at once (no rehydration delay here). */
  readonly restores = new Map<string, { days: number; tier: RestoreTier }>();
}

/**
 * The "server": buckets by name. Sinks given the same MemoryCloud see the same
 * objects, so a forwarder closed and opened again finds what it wrote.
 */
export class MemoryCloud {
  readonly #buckets = new Map<string, MemoryBucket>();

  constructor(opts: { buckets: string[] }) {
    for (const name of opts.buckets) this.#buckets.set(name, new MemoryBucket());
  }

  bucket(name: string): MemoryBucket | undefined {
    return this.#buckets.get(name);
  }
}

/** An S3 service error shaped as the AWS SDK v3 shapes one, for classifyS3Error. */
class MemoryS3Fault extends Error {
  readonly Code: string;
  readonly $fault: 'client' | 'server';
  readonly $metadata: { httpStatusCode: number };

  constructor(code: string, httpStatus: number, message: string) {
    super(message);
    this.name = code;
    this.Code = code;
    this.$fault = httpStatus >= 500 ? 'server' : 'client';
    this.$metadata = { httpStatusCode: httpStatus };
  }
}

/** What the SDK throws when a request's abort signal fires. */
function requestAborted(): Error {
  const err = new Error('Request aborted');
  err.name = 'AbortError';
  return err;
}

const md5 = (b: Buffer): Buffer => createHash('md5').update(b).digest();
const unquote = (etag: string): string => etag.replace(/"/g, '');

function lowerKeys(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k.toLowerCase(), v]));
}

export class MemorySink implements CloudSink {
  readonly target: CloudTargetConfig;
  readonly cloud: MemoryCloud;
  readonly limiter: RateLimiter;
  #open = false;

  /** Without `cloud`, the sink gets a MemoryCloud of its own holding the target's bucket. */
  constructor(target: CloudTargetConfig, opts: { cloud?: MemoryCloud; limiter?: RateLimiter } = {}) {
    this.target = target;
    this.cloud = opts.cloud ?? new MemoryCloud({ buckets: [target.bucket] });
    this.limiter = opts.limiter ?? new RateLimiter({ bytesPerSec: target.bandwidthBytesPerSec ?? 0 });
  }

  async open(): Promise<void> {
    this.#open = true;
  }

  async close(): Promise<void> {
    this.#open = false;
  }

  /** The target's bucket for one call; throws TypeError when the sink is not open. */
  #bucket(what: string): MemoryBucket {
    if (!this.#open) throw new TypeError('MemorySink used before open() or after close()');
    const b = this.cloud.bucket(this.target.bucket);
    if (b === undefined)
      throw this.#fail(new MemoryS3Fault('NoSuchBucket', 404, 'The specified bucket does not exist'), what);
    return b;
  }

  #fail(err: unknown, what: string): Error {
    return classifyS3Error(err, what, this.target.name);
  }

  #checkSignal(signal: AbortSignal | undefined, what: string): void {
    if (signal?.aborted === true) throw this.#fail(requestAborted(), what);
  }

  /** Reads [start, end) of the source through the limiter and checks its length and SHA-256, as S3 does. */
  async #body(src: PutSource, what: string, max: number): Promise<Buffer> {
    const length = src.end - src.start;
    if (!Number.isInteger(length) || length < 0)
      throw new TypeError(`byte range [${src.start}, ${src.end}) is invalid`);
    if (length > max)
      throw this.#fail(
        new MemoryS3Fault('EntityTooLarge', 400, 'Your proposed upload exceeds the maximum allowed size'),
        what,
      );
    this.#checkSignal(src.signal, what);
    const chunks: Buffer[] = [];
    let got = 0;
    if (length > 0) {
      const file = createReadStream(src.path, {
        start: src.start,
        end: src.end - 1,
        highWaterMark: READ_CHUNK,
        signal: src.signal,
      });
      try {
        for await (const chunk of file as AsyncIterable<Buffer>) {
          await this.limiter.take(chunk.byteLength, src.signal);
          chunks.push(chunk);
          got += chunk.byteLength;
        }
      } catch (err) {
        // The file the body is read from (S3Sink gives the same CLOUD_SOURCE_* codes).
        if (!src.signal.aborted && isSystemError(err)) throw sourceReadError(err, src.path);
        throw this.#fail(src.signal.aborted ? requestAborted() : err, what);
      } finally {
        file.destroy();
      }
    }
    if (got !== length) {
      throw this.#fail(
        new MemoryS3Fault(
          'IncompleteBody',
          400,
          'You did not provide the number of bytes specified by the Content-Length HTTP header',
        ),
        what,
      );
    }
    const bytes = Buffer.concat(chunks, got);
    if (createHash('sha256').update(bytes).digest('base64') !== src.sha256b64) {
      throw this.#fail(
        new MemoryS3Fault('BadDigest', 400, 'The SHA256 you specified did not match the calculated checksum.'),
        what,
      );
    }
    return bytes;
  }

  #checkMetadata(metadata: Record<string, string>, what: string): Record<string, string> {
    let bytes = 0;
    for (const [k, v] of Object.entries(metadata)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    if (bytes > MAX_METADATA_BYTES) {
      throw this.#fail(
        new MemoryS3Fault('MetadataTooLarge', 400, 'Your metadata headers exceed the maximum allowed metadata size.'),
        what,
      );
    }
    return lowerKeys(metadata);
  }

  /** The open upload with this id for this key; NoSuchUpload otherwise (S3 ties an UploadId to its key). */
  #upload(bucket: MemoryBucket, key: string, uploadId: string, what: string): MemoryUpload {
    const u = bucket.uploads.get(uploadId);
    if (u === undefined || u.key !== key) {
      throw this.#fail(
        new MemoryS3Fault(
          'NoSuchUpload',
          404,
          'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
        ),
        what,
      );
    }
    return u;
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | null> {
    if (!this.#open) throw new TypeError('MemorySink used before open() or after close()');
    this.#checkSignal(signal, 'HEAD');
    // As with S3Sink: a HEAD's 404 has no body, so a missing bucket looks like a
    // missing key; the PUT or CreateMultipartUpload that follows names it.
    const o = this.cloud.bucket(this.target.bucket)?.objects.get(key);
    if (o === undefined) return null;
    return {
      size: o.bytes.byteLength,
      metadata: { ...o.metadata },
      storageClass: o.storageClass,
      checksumSha256: o.checksumSha256,
      etag: o.etag,
      ...(this.cloud.bucket(this.target.bucket)?.restores.has(key) === true ? { restore: { ongoing: false } } : {}),
    };
  }

  async putObject(src: PutSource, metadata: Record<string, string>): Promise<void> {
    this.#bucket('PUT');
    const meta = this.#checkMetadata(metadata, 'PUT');
    const bytes = await this.#body(src, 'PUT', MAX_PUT_BYTES);
    // Looked up again: the bucket is whatever the "server" holds when the body has arrived.
    this.#bucket('PUT').restores.delete(src.key);
    this.#bucket('PUT').objects.set(src.key, {
      bytes,
      metadata: meta,
      storageClass: this.target.storageClass,
      checksumSha256: src.sha256b64,
      etag: `"${md5(bytes).toString('hex')}"`,
    });
  }

  async createMultipart(key: string, metadata: Record<string, string>, signal: AbortSignal): Promise<string> {
    const what = 'CreateMultipartUpload';
    const bucket = this.#bucket(what);
    const meta = this.#checkMetadata(metadata, what);
    this.#checkSignal(signal, what);
    const uploadId = randomUUID();
    bucket.uploads.set(uploadId, {
      key,
      uploadId,
      metadata: meta,
      storageClass: this.target.storageClass,
      parts: new Map(),
    });
    return uploadId;
  }

  async uploadPart(src: PutSource, uploadId: string, partNumber: number): Promise<string> {
    const what = `UploadPart ${partNumber}`;
    this.#upload(this.#bucket(what), src.key, uploadId, what);
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS) {
      throw this.#fail(
        new MemoryS3Fault('InvalidArgument', 400, `Part number must be an integer between 1 and ${MAX_PARTS}`),
        what,
      );
    }
    const bytes = await this.#body(src, what, MAX_PART_BYTES);
    // An abort while the body was arriving wins: the part has nowhere to go.
    const upload = this.#upload(this.#bucket(what), src.key, uploadId, what);
    const etag = `"${md5(bytes).toString('hex')}"`;
    upload.parts.set(partNumber, { bytes, etag, sha256b64: src.sha256b64 });
    return etag;
  }

  async completeMultipart(key: string, uploadId: string, parts: CompletedPart[], signal: AbortSignal): Promise<void> {
    const what = 'CompleteMultipartUpload';
    const bucket = this.#bucket(what);
    const upload = this.#upload(bucket, key, uploadId, what);
    this.#checkSignal(signal, what);
    const reject = (code: string, message: string): Error => this.#fail(new MemoryS3Fault(code, 400, message), what);
    if (parts.length === 0) throw reject('MalformedXML', 'The XML you provided was not well-formed.');
    const stored: Array<{ bytes: Buffer; etag: string; sha256b64: string }> = [];
    let last = 0;
    for (const p of parts) {
      if (p.partNumber <= last) throw reject('InvalidPartOrder', 'The list of parts was not in ascending order.');
      last = p.partNumber;
      const s = upload.parts.get(p.partNumber);
      if (s === undefined || unquote(s.etag) !== unquote(p.etag) || s.sha256b64 !== p.sha256b64) {
        throw reject(
          'InvalidPart',
          `Part ${p.partNumber} could not be found, or its entity tag or checksum did not match the part's.`,
        );
      }
      stored.push(s);
    }
    for (const s of stored.slice(0, -1)) {
      if (s.bytes.byteLength < MIN_PART_SIZE)
        throw reject('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.');
    }
    const bytes = Buffer.concat(stored.map((s) => s.bytes));
    const etag = `"${md5(Buffer.concat(stored.map((s) => md5(s.bytes)))).toString('hex')}-${stored.length}"`;
    bucket.uploads.delete(uploadId);
    bucket.objects.set(key, {
      bytes,
      metadata: upload.metadata,
      storageClass: upload.storageClass,
      checksumSha256: compositeSha256(stored.map((s) => s.sha256b64)),
      etag,
    });
  }

  async abortMultipart(key: string, uploadId: string): Promise<boolean> {
    const bucket = this.#bucket('AbortMultipartUpload');
    const u = bucket.uploads.get(uploadId);
    if (u === undefined || u.key !== key) return false; // S3: 404 NoSuchUpload, which S3Sink reports as false
    bucket.uploads.delete(uploadId);
    return true;
  }

  async uploadKnown(key: string, uploadId: string, signal?: AbortSignal): Promise<boolean | null> {
    this.#checkSignal(signal, 'ListParts');
    const u = this.#bucket('ListParts').uploads.get(uploadId);
    return u !== undefined && u.key === key;
  }

  async listMultipart(prefix: string): Promise<Array<{ key: string; uploadId: string }> | null> {
    const bucket = this.#bucket('ListMultipartUploads');
    // S3 lists by key (UTF-8 byte order), then by initiation time: Map order is creation order, sort is stable.
    return [...bucket.uploads.values()]
      .filter((u) => u.key.startsWith(prefix))
      .map((u) => ({ key: u.key, uploadId: u.uploadId }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  async read(key: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const bucket = this.#bucket('GET');
    this.#checkSignal(signal, 'GET');
    const o = bucket.objects.get(key);
    if (o === undefined)
      throw this.#fail(new MemoryS3Fault('NoSuchKey', 404, 'The specified key does not exist.'), 'GET');
    // The object as it is now: a later PUT to the key replaces it and does not change this read.
    const bytes = o.bytes;
    const fail = (what: string): Error => this.#fail(requestAborted(), what);
    return (async function* chunks() {
      for (let off = 0; off < bytes.byteLength; off += READ_CHUNK) {
        if (signal?.aborted === true) throw fail('GET');
        yield new Uint8Array(bytes.subarray(off, off + READ_CHUNK)); // a copy: the stored object stays as it is
      }
    })();
  }

  async restoreObject(
    key: string,
    opts: { days: number; tier: RestoreTier },
    signal?: AbortSignal,
  ): Promise<RestoreRequestState> {
    const what = 'RestoreObject';
    const bucket = this.#bucket(what);
    this.#checkSignal(signal, what);
    if (!Number.isInteger(opts.days) || opts.days < 1)
      throw this.#fail(new MemoryS3Fault('MalformedXML', 400, 'Days must be a positive integer.'), what);
    const o = bucket.objects.get(key);
    if (o === undefined)
      throw this.#fail(new MemoryS3Fault('NoSuchKey', 404, 'The specified key does not exist.'), what);
    if (!isArchiveClass(o.storageClass))
      throw this.#fail(
        new MemoryS3Fault('InvalidObjectState', 403, "Restore is not allowed for the object's current storage class."),
        what,
      );
    const before = bucket.restores.has(key);
    bucket.restores.set(key, { days: opts.days, tier: opts.tier });
    return before ? 'restored' : 'started';
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncGenerator<{ key: string; size: number }> {
    const bucket = this.#bucket('LIST');
    this.#checkSignal(signal, 'LIST');
    const keys = [...bucket.objects.keys()]
      .filter((k) => k.startsWith(prefix))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const key of keys) {
      const o = bucket.objects.get(key);
      if (o !== undefined) yield { key, size: o.bytes.byteLength };
    }
  }
}
