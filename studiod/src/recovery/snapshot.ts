/**
 * Catalogue snapshots (docs/design.md §Catalogue snapshots): the catalogue
 * exported (snapshot-format.ts) to the RAID target,
 * `<raid root>/.s321-catalogue/<time>.ndjson.gz` through the durable write, and
 * uploaded from that file to every cloud target under
 * `<prefix>.s321-catalogue/<time>.ndjson.gz`. Regularly (config
 * `snapshots.intervalMinutes`, default a day) and on demand
 * (`studioctl catalogue snapshot`). The newest `snapshots.keepLocal` files stay
 * on the RAID; cloud snapshots are never deleted (the archive only adds).
 *
 * Steps of one snapshot:
 *   1. export: one LevelDB iterator (a consistent view), gzip, streamed
 *   2. local: durableWrite to the RAID's `.s321-catalogue/` (temp → fsync → read back
 *      → link → fsync dir); when the RAID is not there (no marker), to
 *      `<stateDir>/snapshot-outbox/` so the cloud copies are still made
 *   3. cloud: for each target, SHA-256 of the file, then PUT (multipart above 5 GiB)
 *      with the target's storage class and metadata (format, version, size,
 *      sha256, blake3, assets); then HEAD: size and metadata must match
 *   4. prune: keep the newest `keepLocal` local snapshots (the outbox: none once uploaded)
 *   5. record `snapshot!last` in the catalogue's `recovery` sublevel (`sync: true`)
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CodedError, errorCode, type Logger } from '@studio321/protocol';
import { durableWrite, fsyncDir } from '@studio321/protocol/durable';
import type { Catalogue } from '../catalogue.js';
import type { CloudSink } from '../cloud/s3-sink.js';
import { MIN_PART_SIZE, partSizeFor } from '../cloud/cloud-target.js';
import type { StudiodConfig } from '../config.js';
import { RECOVERY_CODES, RecoveryError } from './errors.js';
import {
  SNAPSHOT_DIR,
  SNAPSHOT_FORMAT,
  SNAPSHOT_SUFFIX,
  SNAPSHOT_VERSION,
  encodeSnapshot,
  snapshotName,
} from './snapshot-format.js';
import { hasMarker } from './target-files.js';

/** LevelDB's option, typed loosely as abstract-level's sublevel options do not declare it. */
const SYNC = { sync: true } as object;

/** Largest single PUT (S3's limit); larger snapshots go multipart. */
const MAX_SINGLE_PUT = 5 * 1024 * 1024 * 1024;

export interface SnapshotDestination {
  /** `raid`, `outbox`, or a cloud target name. */
  target: string;
  /** Absolute path, or `s3://bucket/key`. */
  where: string;
  ok: boolean;
  error?: { code: string; message: string };
}

export interface SnapshotResult {
  name: string;
  at: number;
  assets: number;
  records: number;
  bytes: number;
  blake3: string;
  sha256: string;
  ms: number;
  destinations: SnapshotDestination[];
}

export interface SnapshotSettings {
  /** Minutes between scheduled snapshots; 0: only on demand. */
  intervalMinutes: number;
  /** Local snapshots kept on the RAID. */
  keepLocal: number;
}

export const DEFAULT_SNAPSHOT_SETTINGS: SnapshotSettings = { intervalMinutes: 24 * 60, keepLocal: 7 };

export function snapshotSettingsOf(config: StudiodConfig): SnapshotSettings {
  return { ...DEFAULT_SNAPSHOT_SETTINGS, ...(config.snapshots ?? {}) };
}

export interface SnapshotOptions {
  catalogue: Catalogue;
  config: StudiodConfig;
  /** Opened sinks of the cloud targets (none: local only). */
  sinks: readonly CloudSink[];
  software: string;
  now?: () => number;
  log?: Logger;
}

const failure = (err: unknown): { code: string; message: string } => ({
  code: err instanceof CodedError ? err.code : (errorCode(err) ?? RECOVERY_CODES.snapshotFailed),
  message: err instanceof Error ? err.message : String(err),
});

async function sha256OfRange(path: string, start: number, end: number): Promise<Buffer> {
  const h = createHash('sha256');
  if (end > start) for await (const c of createReadStream(path, { start, end: end - 1 })) h.update(c as Buffer);
  return h.digest();
}

/** Step 3 for one target. */
async function upload(
  sink: CloudSink,
  file: string,
  name: string,
  r: Omit<SnapshotResult, 'destinations' | 'ms'>,
): Promise<string> {
  const key = `${sink.target.prefix ?? ''}${SNAPSHOT_DIR}/${name}`;
  const metadata = {
    format: SNAPSHOT_FORMAT,
    version: String(SNAPSHOT_VERSION),
    size: String(r.bytes),
    sha256: r.sha256,
    blake3: r.blake3,
    assets: String(r.assets),
  };
  const signal = new AbortController().signal;
  if (r.bytes <= MAX_SINGLE_PUT) {
    const sha = r.sha256 === '' ? await sha256OfRange(file, 0, r.bytes) : Buffer.from(r.sha256, 'hex');
    await sink.putObject(
      { key, path: file, start: 0, end: r.bytes, sha256b64: sha.toString('base64'), signal },
      metadata,
    );
  } else {
    const partSize = Math.max(MIN_PART_SIZE, partSizeFor(sink.target, r.bytes));
    const uploadId = await sink.createMultipart(key, metadata, signal);
    const parts: Array<{ partNumber: number; etag: string; sha256b64: string }> = [];
    try {
      for (let n = 1, start = 0; start < r.bytes; n++, start += partSize) {
        const end = Math.min(r.bytes, start + partSize);
        const sha256b64 = (await sha256OfRange(file, start, end)).toString('base64');
        const etag = await sink.uploadPart({ key, path: file, start, end, sha256b64, signal }, uploadId, n);
        parts.push({ partNumber: n, etag, sha256b64 });
      }
      await sink.completeMultipart(key, uploadId, parts, signal);
    } catch (err) {
      await sink.abortMultipart(key, uploadId).catch(() => false);
      throw err;
    }
  }
  const head = await sink.head(key);
  if (head === null || head.size !== r.bytes || head.metadata['blake3'] !== r.blake3) {
    throw new RecoveryError(
      RECOVERY_CODES.snapshotFailed,
      `The uploaded snapshot ${key} does not match what was sent.`,
      {
        retryable: true,
        detail: { key },
      },
    );
  }
  return `s3://${sink.target.bucket}/${key}`;
}

/** Local snapshot files of a folder, oldest first. */
export async function localSnapshots(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith(SNAPSHOT_SUFFIX) && !n.startsWith('.')).sort();
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return [];
    throw err;
  }
}

async function prune(dir: string, keep: number): Promise<void> {
  const all = await localSnapshots(dir);
  const old = all.slice(0, Math.max(0, all.length - keep));
  for (const n of old) await rm(join(dir, n), { force: true });
  if (old.length > 0) await fsyncDir(dir);
}

/** Steps 1–5 of one snapshot. Throws only when no destination at all got it. */
export async function takeSnapshot(opts: SnapshotOptions): Promise<SnapshotResult> {
  const now = opts.now ?? Date.now;
  const settings = snapshotSettingsOf(opts.config);
  const at = now();
  const started = Date.now();
  const name = snapshotName(at);
  const raidRoot = opts.config.targets.raid.root;
  const onRaid = await hasMarker(raidRoot);
  const dir = onRaid ? join(raidRoot, SNAPSHOT_DIR) : join(opts.config.stateDir, 'snapshot-outbox');
  const counts = { records: 0, assets: 0 };
  const destinations: SnapshotDestination[] = [];
  // 1–2. Export and the durable local write; the bytes are hashed with SHA-256 on the way for the uploads.
  const sha = createHash('sha256');
  let bytes = 0;
  const gz = encodeSnapshot(opts.catalogue, { createdAt: new Date(at).toISOString(), software: opts.software }, counts);
  async function* tee(): AsyncGenerator<Uint8Array> {
    for await (const c of gz) {
      sha.update(c);
      bytes += c.byteLength;
      yield c;
    }
  }
  const file = join(dir, name);
  let written: { blake3: string };
  try {
    written = await durableWrite(tee(), { targets: [{ dir, name }], createDirs: true });
  } catch (err) {
    throw new RecoveryError(
      RECOVERY_CODES.snapshotFailed,
      `The catalogue snapshot could not be written to ${dir} (${failure(err).code}). Check that disk; the next snapshot tries again.`,
      { cause: err, retryable: true, detail: { dir } },
    );
  }
  destinations.push({ target: onRaid ? 'raid' : 'outbox', where: file, ok: true });
  const base = {
    name,
    at,
    assets: counts.assets,
    records: counts.records,
    bytes,
    blake3: written.blake3,
    sha256: sha.digest('hex'),
  };
  // 3. Cloud copies, from the local file.
  for (const sink of opts.sinks) {
    try {
      const where = await upload(sink, file, name, base);
      destinations.push({ target: sink.target.name, where, ok: true });
    } catch (err) {
      opts.log?.error({ err, target: sink.target.name }, 'catalogue snapshot upload failed');
      destinations.push({
        target: sink.target.name,
        where: `s3://${sink.target.bucket}/${sink.target.prefix ?? ''}${SNAPSHOT_DIR}/${name}`,
        ok: false,
        error: failure(err),
      });
    }
  }
  // 4. Prune: on the RAID keep the newest N; the outbox only holds what no cloud target took.
  if (onRaid) await prune(dir, settings.keepLocal);
  else if (opts.sinks.length > 0 && destinations.every((d) => d.ok)) {
    await rm(file, { force: true });
    await fsyncDir(dir);
    destinations[0] = {
      target: 'outbox',
      where: file,
      ok: false,
      error: {
        code: RECOVERY_CODES.snapshotFailed,
        message: 'the RAID target is not available; the file was only used for the uploads',
      },
    };
  }
  const result: SnapshotResult = { ...base, ms: Date.now() - started, destinations };
  // 5. Remember it (status).
  await opts.catalogue.sublevel('recovery').put('snapshot!last', result as unknown as Record<string, unknown>, SYNC);
  opts.log?.info(
    {
      name,
      assets: result.assets,
      bytes,
      ms: result.ms,
      failed: destinations.filter((d) => !d.ok).map((d) => d.target),
    },
    'catalogue snapshot written',
  );
  return result;
}

export async function lastSnapshot(catalogue: Catalogue): Promise<SnapshotResult | null> {
  const v = await catalogue.sublevel('recovery').get('snapshot!last');
  return (v as unknown as SnapshotResult | undefined) ?? null;
}

/** Does a file exist (for tests and the rebuild)? */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * The schedule: one snapshot every `intervalMinutes` after the last one (the first
 * one interval after the first start), one at a time; `snapshotNow()` on demand.
 */
export class SnapshotScheduler {
  readonly #opts: SnapshotOptions;
  readonly #interval: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<SnapshotResult> | undefined;
  #closed = false;

  constructor(opts: SnapshotOptions) {
    this.#opts = opts;
    this.#interval = snapshotSettingsOf(opts.config).intervalMinutes * 60_000;
  }

  async open(): Promise<void> {
    if (this.#interval <= 0) return;
    const last = await lastSnapshot(this.#opts.catalogue);
    const now = (this.#opts.now ?? Date.now)();
    this.#arm(last === null ? now + this.#interval : last.at + this.#interval);
  }

  #arm(dueAt: number): void {
    if (this.#closed || this.#interval <= 0) return;
    clearTimeout(this.#timer);
    const delay = Math.max(0, dueAt - (this.#opts.now ?? Date.now)());
    // setTimeout takes at most 2^31-1 ms; a longer interval re-arms on wake.
    this.#timer = setTimeout(
      () => {
        this.snapshotNow().catch((err: unknown) =>
          this.#opts.log?.error({ err }, 'scheduled catalogue snapshot failed'),
        );
      },
      Math.min(delay, 2 ** 31 - 1),
    );
    this.#timer.unref();
  }

  /** Take a snapshot now (joins one in progress). */
  snapshotNow(): Promise<SnapshotResult> {
    if (this.#running !== undefined) return this.#running;
    const p = takeSnapshot(this.#opts).finally(() => {
      this.#running = undefined;
      this.#arm((this.#opts.now ?? Date.now)() + this.#interval);
    });
    this.#running = p;
    return p;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
  }
}
