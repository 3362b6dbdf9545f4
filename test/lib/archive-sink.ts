/**
 * A TEST DOUBLE of S3's archive storage classes (GLACIER, DEEP_ARCHIVE), because
 * no server that runs here models them: s3rver serves an archived object's bytes
 * at once and does not implement RestoreObject, and MemorySink (deliberately)
 * does not model rehydration either. On AWS S3:
 *   - a GET of an archive-class object fails with 403 InvalidObjectState until it is restored;
 *   - RestoreObject starts a restore (202), answers RestoreAlreadyInProgress (409) while it runs,
 *     and 200 once a restored copy exists;
 *   - HEAD shows `x-amz-restore: ongoing-request="true"` while it runs, `"false"` when readable;
 *   - a Bulk restore of Deep Archive takes up to 48 h.
 * This wrapper over a MemorySink does exactly that, with an injected clock and a
 * fixed delay instead of hours. Objects of other classes pass straight through.
 */
import {
  MemoryCloud,
  MemorySink,
  classifyS3Error,
  isArchiveClass,
  type CloudSink,
  type CloudTargetConfig,
  type CompletedPart,
  type ObjectInfo,
  type PutSource,
  type RestoreRequestState,
  type RestoreTier,
} from '@studio321/studiod/cloud';

/** The "server" side of the double: objects, restores requested, the clock. Shared by every sink of a test (and across restarts). */
export class ArchiveCloud {
  readonly memory: MemoryCloud;
  readonly delayMs: number;
  now: number;
  /** `<bucket>/<key>` → when the restore was asked for, tier and days. */
  readonly restores = new Map<string, { requestedAt: number; tier: RestoreTier; days: number }>();
  /** Calls seen, for assertions: `GET <key>`, `RESTORE <key>`. */
  readonly calls: string[] = [];

  constructor(opts: { buckets: string[]; delayMs: number; now?: number }) {
    this.memory = new MemoryCloud({ buckets: opts.buckets });
    this.delayMs = opts.delayMs;
    this.now = opts.now ?? 0;
  }

  sink(target: CloudTargetConfig): ArchiveSink {
    return new ArchiveSink(target, this);
  }
}

function s3Fault(code: string, status: number, message: string): Error {
  return Object.assign(new Error(message), {
    name: code,
    Code: code,
    $fault: 'client',
    $metadata: { httpStatusCode: status },
  });
}

export class ArchiveSink implements CloudSink {
  readonly target: CloudTargetConfig;
  readonly #inner: MemorySink;
  readonly #cloud: ArchiveCloud;

  constructor(target: CloudTargetConfig, cloud: ArchiveCloud) {
    this.target = target;
    this.#cloud = cloud;
    this.#inner = new MemorySink(target, { cloud: cloud.memory });
  }

  #id(key: string): string {
    return `${this.target.bucket}/${key}`;
  }

  #archived(key: string): boolean {
    const o = this.#cloud.memory.bucket(this.target.bucket)?.objects.get(key);
    return o !== undefined && isArchiveClass(o.storageClass);
  }

  #readable(key: string): boolean {
    const r = this.#cloud.restores.get(this.#id(key));
    return r !== undefined && this.#cloud.now >= r.requestedAt + this.#cloud.delayMs;
  }

  open(): Promise<void> {
    return this.#inner.open();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | null> {
    const info = await this.#inner.head(key, signal);
    if (info === null) return null;
    const { restore: _ignored, ...rest } = info;
    const r = this.#cloud.restores.get(this.#id(key));
    return r === undefined || !this.#archived(key) ? rest : { ...rest, restore: { ongoing: !this.#readable(key) } };
  }

  async read(key: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    this.#cloud.calls.push(`GET ${key}`);
    if (this.#archived(key) && !this.#readable(key))
      throw classifyS3Error(
        s3Fault('InvalidObjectState', 403, "The operation is not valid for the object's storage class"),
        'GET',
        this.target.name,
      );
    return this.#inner.read(key, signal);
  }

  list(prefix: string, signal?: AbortSignal): AsyncIterable<{ key: string; size: number }> {
    return this.#inner.list(prefix, signal);
  }

  async restoreObject(
    key: string,
    opts: { days: number; tier: RestoreTier },
    signal?: AbortSignal,
  ): Promise<RestoreRequestState> {
    this.#cloud.calls.push(`RESTORE ${key}`);
    if (!this.#archived(key)) return this.#inner.restoreObject(key, opts, signal); // NoSuchKey / InvalidObjectState
    const id = this.#id(key);
    if (!this.#cloud.restores.has(id)) {
      this.#cloud.restores.set(id, { requestedAt: this.#cloud.now, ...opts });
      return 'started';
    }
    return this.#readable(key) ? 'restored' : 'in-progress';
  }

  putObject(src: PutSource, metadata: Record<string, string>): Promise<void> {
    return this.#inner.putObject(src, metadata);
  }

  createMultipart(key: string, metadata: Record<string, string>, signal: AbortSignal): Promise<string> {
    return this.#inner.createMultipart(key, metadata, signal);
  }

  uploadPart(src: PutSource, uploadId: string, partNumber: number): Promise<string> {
    return this.#inner.uploadPart(src, uploadId, partNumber);
  }

  completeMultipart(key: string, uploadId: string, parts: CompletedPart[], signal: AbortSignal): Promise<void> {
    return this.#inner.completeMultipart(key, uploadId, parts, signal);
  }

  abortMultipart(key: string, uploadId: string): Promise<boolean> {
    return this.#inner.abortMultipart(key, uploadId);
  }

  listMultipart(prefix: string): Promise<Array<{ key: string; uploadId: string }> | null> {
    return this.#inner.listMultipart(prefix);
  }

  uploadKnown(key: string, uploadId: string, signal?: AbortSignal): Promise<boolean | null> {
    return this.#inner.uploadKnown(key, uploadId, signal);
  }
}
