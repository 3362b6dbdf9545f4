/**
 * The durable cloud upload queue: one job per (target, asset), stored in a
 * sublevel of studiod's catalogue DB, every state change a `sync: true` batch.
 *
 * Key schema (inside the sublevel, valueEncoding 'json'):
 *   job!<target>!<blake3>                 CloudJob (authoritative job state)
 *   due!<target>!<dueAt:15>!<blake3>      ''  jobs by next attempt time (parked jobs far ahead)
 *   age!<target>!<queuedAt>!<blake3>      ''  jobs by enqueue time (oldest pending in O(log n))
 *   park!<target>!<blake3>                ''  parked jobs (permanent error; operator retry)
 *   part!<target>!<blake3>!<uploadId>!<n:5> CloudPart (a part the server acknowledged)
 *   obj!<target>!<blake3>                 CloudObject (a verified, counted upload)
 *   err!<target>                          last error of the target
 *
 * Counters (pending, bytes, parked) are kept in memory, computed once at open()
 * by reading job! keys, then maintained on every write — status() never scans.
 */
import type { ObjectLockInfo } from './cloud-target.js';

/** Structural view of an abstract-level sublevel (valueEncoding 'json'). */
export interface CloudDb {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown, options: { sync?: boolean }): Promise<void>;
  batch(ops: CloudOp[], options: { sync?: boolean }): Promise<void>;
  iterator(options: {
    gt?: string;
    gte?: string;
    lt?: string;
    lte?: string;
    limit?: number;
  }): AsyncIterable<[string, unknown]> & { close(): Promise<void> };
  readonly db: {
    on(event: 'write', listener: (ops: Array<Record<string, unknown>>) => void): unknown;
    off(event: 'write', listener: (ops: Array<Record<string, unknown>>) => void): unknown;
  };
}

/** Structural view of an abstract-level chained batch on the root DB or on the sublevel. */
export interface CloudBatch {
  put(key: string, value: unknown, options: { sublevel: unknown; [mark: string]: unknown }): unknown;
}

export type CloudOp = { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string };

export interface CloudErrorInfo {
  code: string;
  message: string;
  at: string;
}

export interface PreparedSource {
  /** Hex SHA-256 of the whole file. */
  sha256: string;
  partSize: number;
  /** Base64 SHA-256 of each part (one entry for a single PUT). */
  partSha256: string[];
  /** Base64 MD5 of each part, sent as Content-MD5 (S3 requires it with Object Lock; RADOS Gateway checks it). */
  partMd5?: string[];
}

export interface CloudJob {
  v: 1;
  target: string;
  blake3: string;
  size: number;
  name: string;
  queuedAt: string;
  /** Epoch ms of the next attempt (also encoded in the due! key). */
  dueAt: number;
  attempts: number;
  /** 1 = primary key; n > 1 = `<key>.<n>` after a copy stopped verifying. */
  generation: number;
  reason: 'new' | 'resend';
  parked: CloudErrorInfo | null;
  lastError: CloudErrorInfo | null;
  prepared: PreparedSource | null;
  /** Multipart upload in progress (recorded before the first part is sent). */
  upload: { key: string; uploadId: string; startedAt: string } | null;
  /** Keys this job has started writing; an existing object there that does not verify is our own failed write. */
  touchedKeys: string[];
  /**
   * 1 after the server forgot this job's multipart upload and it restarted from part 1 (absent: 0).
   * A second loss parks the job (CLOUD_UPLOAD_LOST_AGAIN) instead of restarting again.
   */
  uploadRestarts?: number;
}

export interface CloudPart {
  etag: string;
  sha256b64: string;
}

export interface CloudObject {
  target: string;
  blake3: string;
  key: string;
  generation: number;
  size: number;
  name: string;
  sha256: string;
  verifiedAt: string;
  method: 'head-size-sha256-meta' | 'download-blake3';
  serverChecksum: boolean;
  /** The object's version (versioned buckets): verify and read address this version, not whatever is newest. */
  versionId?: string;
  /** The Object Lock retention HEAD confirmed before the copy counted. */
  lock?: ObjectLockInfo;
}

/** Marks ops that studiod commits in its own batch, so the 'write' event can account for them. */
export const ENQUEUE_MARK = 's321CloudEnqueue';

const pad = (n: number, w: number): string => String(Math.max(0, Math.floor(n))).padStart(w, '0');

export const keys = {
  job: (t: string, h: string) => `job!${t}!${h}`,
  due: (t: string, dueAt: number, h: string) => `due!${t}!${pad(dueAt, 15)}!${h}`,
  age: (t: string, queuedAt: string, h: string) => `age!${t}!${queuedAt}!${h}`,
  park: (t: string, h: string) => `park!${t}!${h}`,
  part: (t: string, h: string, uploadId: string, n: number) => `part!${t}!${h}!${uploadId}!${pad(n, 5)}`,
  parts: (t: string, h: string, uploadId: string) => `part!${t}!${h}!${uploadId}!`,
  obj: (t: string, h: string) => `obj!${t}!${h}`,
  err: (t: string) => `err!${t}`,
};

export interface TargetCounters {
  pending: number;
  pendingBytes: number;
  parked: number;
  lastError: CloudErrorInfo | null;
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === 'LEVEL_NOT_FOUND';
}

export class CloudQueue {
  readonly db: CloudDb;
  #counters = new Map<string, TargetCounters>();

  constructor(db: CloudDb) {
    this.db = db;
  }

  async open(targets: string[]): Promise<void> {
    for (const t of targets) {
      const c: TargetCounters = { pending: 0, pendingBytes: 0, parked: 0, lastError: null };
      for await (const [, v] of this.db.iterator({ gt: `job!${t}!`, lt: `job!${t}!~` })) {
        const job = v as CloudJob;
        c.pending++;
        c.pendingBytes += job.size;
        if (job.parked !== null) c.parked++;
      }
      const err = await this.#get(keys.err(t));
      c.lastError = (err as CloudErrorInfo | undefined) ?? null;
      this.#counters.set(t, c);
    }
  }

  counters(target: string): TargetCounters {
    const c = this.#counters.get(target);
    if (c === undefined) throw new TypeError(`unknown cloud target ${target}`);
    return c;
  }

  async #get(key: string): Promise<unknown> {
    try {
      const v = await this.db.get(key);
      return v ?? undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async getJob(target: string, blake3: string): Promise<CloudJob | undefined> {
    return (await this.#get(keys.job(target, blake3))) as CloudJob | undefined;
  }

  async getObject(target: string, blake3: string): Promise<CloudObject | undefined> {
    return (await this.#get(keys.obj(target, blake3))) as CloudObject | undefined;
  }

  newJob(
    target: string,
    asset: { blake3: string; size: number; name: string },
    now: number,
    extra: { generation?: number; reason?: 'new' | 'resend' } = {},
  ): CloudJob {
    return {
      v: 1,
      target,
      blake3: asset.blake3,
      size: asset.size,
      name: asset.name,
      queuedAt: new Date(now).toISOString(),
      dueAt: now,
      attempts: 0,
      generation: extra.generation ?? 1,
      reason: extra.reason ?? 'new',
      parked: null,
      lastError: null,
      prepared: null,
      upload: null,
      touchedKeys: [],
    };
  }

  /** The ops that create a job (for the caller's batch or ours). */
  createOps(job: CloudJob): CloudOp[] {
    return [
      { type: 'put', key: keys.job(job.target, job.blake3), value: job },
      { type: 'put', key: keys.due(job.target, job.dueAt, job.blake3), value: '' },
      { type: 'put', key: keys.age(job.target, job.queuedAt, job.blake3), value: '' },
    ];
  }

  /** Account for a job that became durable (our batch or the caller's). */
  noteCreated(job: { target: string; size: number }): void {
    const c = this.counters(job.target);
    c.pending++;
    c.pendingBytes += job.size;
  }

  async create(job: CloudJob): Promise<void> {
    await this.db.batch(this.createOps(job), { sync: true });
    this.noteCreated(job);
  }

  /** Persist a changed job; moves its due! entry and park! marker as needed. */
  async update(prev: CloudJob, next: CloudJob, extra: CloudOp[] = []): Promise<void> {
    const ops: CloudOp[] = [{ type: 'put', key: keys.job(next.target, next.blake3), value: next }];
    if (prev.dueAt !== next.dueAt) {
      ops.push({ type: 'del', key: keys.due(prev.target, prev.dueAt, prev.blake3) });
      ops.push({ type: 'put', key: keys.due(next.target, next.dueAt, next.blake3), value: '' });
    }
    const wasParked = prev.parked !== null;
    const isParked = next.parked !== null;
    if (!wasParked && isParked) ops.push({ type: 'put', key: keys.park(next.target, next.blake3), value: '' });
    if (wasParked && !isParked) ops.push({ type: 'del', key: keys.park(next.target, next.blake3) });
    ops.push(...extra);
    await this.db.batch(ops, { sync: true });
    const c = this.counters(next.target);
    if (!wasParked && isParked) c.parked++;
    if (wasParked && !isParked) c.parked--;
  }

  async recordError(target: string, info: CloudErrorInfo): Promise<void> {
    this.counters(target).lastError = info;
    await this.db.put(keys.err(target), info, { sync: false });
  }

  async clearError(target: string): Promise<void> {
    const c = this.counters(target);
    if (c.lastError === null) return;
    c.lastError = null;
    await this.db.batch([{ type: 'del', key: keys.err(target) }], { sync: false });
  }

  async putPart(job: CloudJob, uploadId: string, n: number, part: CloudPart): Promise<void> {
    await this.db.put(keys.part(job.target, job.blake3, uploadId, n), part, { sync: true });
  }

  async parts(job: CloudJob, uploadId: string): Promise<Map<number, CloudPart>> {
    const out = new Map<number, CloudPart>();
    const prefix = keys.parts(job.target, job.blake3, uploadId);
    for await (const [k, v] of this.db.iterator({ gt: prefix, lt: `${prefix}~` })) {
      out.set(Number(k.slice(prefix.length)), v as CloudPart);
    }
    return out;
  }

  async partDelOps(job: CloudJob, uploadId: string): Promise<CloudOp[]> {
    const ops: CloudOp[] = [];
    for (const n of (await this.parts(job, uploadId)).keys()) {
      ops.push({ type: 'del', key: keys.part(job.target, job.blake3, uploadId, n) });
    }
    return ops;
  }

  /** The job is done: its verified object record replaces it, in one durable batch. */
  async complete(job: CloudJob, obj: CloudObject): Promise<void> {
    const ops: CloudOp[] = [
      { type: 'del', key: keys.job(job.target, job.blake3) },
      { type: 'del', key: keys.due(job.target, job.dueAt, job.blake3) },
      { type: 'del', key: keys.age(job.target, job.queuedAt, job.blake3) },
      { type: 'put', key: keys.obj(job.target, job.blake3), value: obj },
    ];
    if (job.parked !== null) ops.push({ type: 'del', key: keys.park(job.target, job.blake3) });
    if (job.upload !== null) ops.push(...(await this.partDelOps(job, job.upload.uploadId)));
    await this.db.batch(ops, { sync: true });
    const c = this.counters(job.target);
    c.pending--;
    c.pendingBytes -= job.size;
    if (job.parked !== null) c.parked--;
  }

  async putObjectRecord(obj: CloudObject): Promise<void> {
    await this.db.put(keys.obj(obj.target, obj.blake3), obj, { sync: true });
  }

  async deleteObjectRecordOps(target: string, blake3: string): Promise<CloudOp[]> {
    return [{ type: 'del', key: keys.obj(target, blake3) }];
  }

  /**
   * The first due jobs of a target not in `skip`, in due order: returns the job
   * to run, or the time the next one is due, or null when nothing is queued.
   */
  async nextDue(target: string, now: number, skip: Set<string>): Promise<{ job: CloudJob } | { dueAt: number } | null> {
    const it = this.db.iterator({ gt: `due!${target}!`, lt: `due!${target}!~`, limit: skip.size + 1 });
    try {
      for await (const [k] of it) {
        const rest = k.slice(`due!${target}!`.length);
        const dueAt = Number(rest.slice(0, 15));
        const blake3 = rest.slice(16);
        if (skip.has(blake3)) continue;
        if (dueAt > now) return { dueAt };
        const job = await this.getJob(target, blake3);
        if (job === undefined) continue;
        return { job };
      }
      return null;
    } finally {
      await it.close();
    }
  }

  async oldestQueuedAt(target: string): Promise<string | null> {
    const it = this.db.iterator({ gt: `age!${target}!`, lt: `age!${target}!~`, limit: 1 });
    try {
      for await (const [k] of it) return k.slice(`age!${target}!`.length).split('!')[0] ?? null;
      return null;
    } finally {
      await it.close();
    }
  }

  async parkedJobs(target: string): Promise<string[]> {
    const out: string[] = [];
    for await (const [k] of this.db.iterator({ gt: `park!${target}!`, lt: `park!${target}!~` })) {
      out.push(k.slice(`park!${target}!`.length));
    }
    return out;
  }
}
