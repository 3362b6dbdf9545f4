/**
 * Configuration of one S3-compatible cloud target, its validation, and the
 * content-addressed object key layout.
 */
import { didYouMean } from '@studio321/protocol';
import { CloudError, CLOUD_CODES } from './errors.js';
import { UploadSchedule, type UploadWindowConfig } from './upload-window.js';

/** RestoreObject tiers (S3): Bulk (cheapest, ≤ 48 h for Deep Archive), Standard (≤ 12 h), Expedited (Glacier only). */
export const RESTORE_TIERS = ['Bulk', 'Standard', 'Expedited'] as const;
export type RestoreTier = (typeof RESTORE_TIERS)[number];

/** S3 Object Lock modes: COMPLIANCE (nobody can shorten or remove it), GOVERNANCE (a key with s3:BypassGovernanceRetention can). */
export const LOCK_MODES = ['COMPLIANCE', 'GOVERNANCE'] as const;
export type LockMode = (typeof LOCK_MODES)[number];
/** S3 allows retention of up to 100 years. */
export const MAX_LOCK_DAYS = 36_500;

/** An object's Object Lock retention as HEAD reports it. */
export interface ObjectLockInfo {
  mode: string;
  /** ISO date the retention ends. */
  retainUntil: string;
}

export interface CloudTargetConfig {
  /** Target name used in the catalogue and in `studioctl` (e.g. `cloud-east-ssd`). */
  name: string;
  /** S3 endpoint URL; absent means AWS itself. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Key prefix inside the bucket, e.g. `studio/` (default none). */
  prefix?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** S3 storage class: 'STANDARD' (hot, SSD) | 'DEEP_ARCHIVE' (tape class) | … */
  storageClass: string;
  /** Media class for the 3-2-1 policy: 'cloud-ssd' | 'tape' … */
  media: string;
  /** Location class for the 3-2-1 policy: 'cloud-east' | 'cloud-west' … */
  location: string;
  /** Path-style URLs (needed by MinIO, s3rver and most self-hosted servers). */
  forcePathStyle?: boolean;
  /** Multipart part size (default 64 MiB, minimum 5 MiB as S3 requires). */
  partSizeBytes?: number;
  /** Upload bandwidth limit for this target; 0 or absent = unlimited. */
  bandwidthBytesPerSec?: number;
  /** Parallel uploads for this target (default 2). */
  concurrency?: number;
  /** RestoreObject tier for an archive-class copy (`studioctl restore`): Bulk (default), Standard, Expedited. */
  restoreTier?: RestoreTier;
  /** Days a restored archive copy stays readable (default 7). */
  restoreDays?: number;
  /**
   * Object Lock: every object is uploaded with this retention, confirmed by HEAD before it counts,
   * and the bucket must have versioning and Object Lock enabled (checked before the first upload).
   */
  objectLock?: { mode: LockMode; days: number };
  /**
   * When uploads may run (upload-window.ts): e.g. `[{ "days": "mon-fri", "from": "19:00", "to": "07:00",
   * "bandwidth": "20MiB/s" }, { "days": "sat,sun" }]`. Absent: always.
   */
  windows?: UploadWindowConfig[];
  /** The IANA zone of the `windows` times (default: the studio server's own zone). */
  timeZone?: string;
}

export const DEFAULT_RESTORE_TIER: RestoreTier = 'Bulk';
export const DEFAULT_RESTORE_DAYS = 7;
/** S3 keeps a restored copy at most this long (it accepts larger values; a restore is for days, not years). */
export const MAX_RESTORE_DAYS = 365;

/**
 * Storage classes whose objects cannot be read until restored (GET answers
 * InvalidObjectState). GLACIER_IR is read directly; INTELLIGENT_TIERING's
 * opt-in archive tiers are not used by studiod's uploads.
 */
const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

export function isArchiveClass(storageClass: string): boolean {
  return ARCHIVE_CLASSES.has(storageClass);
}

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 64 * 1024 * 1024;
/** S3 allows at most 10,000 parts per object. */
export const MAX_PARTS = 10_000;
export const DEFAULT_CONCURRENCY = 2;

const STORAGE_CLASSES = new Set([
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'GLACIER_IR',
  'DEEP_ARCHIVE',
  'OUTPOSTS',
  'EXPRESS_ONEZONE',
]);

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Every field a cloud target takes; any other key is refused. A Record over the config's keys, so a
 * field added to CloudTargetConfig without a line here does not compile (and cannot be refused as a typo).
 */
const CLOUD_TARGET_FIELDS: Record<keyof CloudTargetConfig, true> = {
  name: true,
  endpoint: true,
  region: true,
  bucket: true,
  prefix: true,
  accessKeyId: true,
  secretAccessKey: true,
  storageClass: true,
  media: true,
  location: true,
  forcePathStyle: true,
  partSizeBytes: true,
  bandwidthBytesPerSec: true,
  concurrency: true,
  restoreTier: true,
  restoreDays: true,
  objectLock: true,
  windows: true,
  timeZone: true,
};
const CLOUD_TARGET_KEYS = Object.keys(CLOUD_TARGET_FIELDS) as Array<keyof CloudTargetConfig>;

function invalid(target: string, field: string, what: string, path?: string): CloudError {
  const where = path === undefined ? `field "${field}"` : `field "${path}.${field}"`;
  return new CloudError(
    CLOUD_CODES.configInvalid,
    `Cloud target "${target}": ${where} ${what}. Fix it in the studiod config file.`,
    { detail: { target, field: path === undefined ? field : `${path}.${field}` } },
  );
}

/** Throws CLOUD_CONFIG_INVALID naming the field; returns the config unchanged. */
export function validateCloudTarget(c: CloudTargetConfig, path?: string): CloudTargetConfig {
  const n = typeof c.name === 'string' ? c.name : '?';
  for (const key of Object.keys(c)) {
    if (!(CLOUD_TARGET_KEYS as readonly string[]).includes(key))
      throw invalid(
        n,
        key,
        `is not a known option${didYouMean(key, CLOUD_TARGET_KEYS) || ' (check the spelling)'}`,
        path,
      );
  }
  if (!NAME_RE.test(n)) throw invalid(n, 'name', 'must be 1-64 characters of a-z 0-9 . _ -', path);
  for (const f of ['region', 'bucket', 'accessKeyId', 'secretAccessKey', 'media', 'location'] as const) {
    if (typeof c[f] !== 'string' || c[f].length === 0) throw invalid(n, f, 'is required', path);
  }
  if (!STORAGE_CLASSES.has(c.storageClass))
    throw invalid(n, 'storageClass', `must be one of ${[...STORAGE_CLASSES].join(', ')}`, path);
  if (c.endpoint !== undefined) {
    try {
      new URL(c.endpoint);
    } catch {
      throw invalid(n, 'endpoint', 'must be a URL', path);
    }
  }
  if (c.prefix !== undefined && (c.prefix.startsWith('/') || c.prefix.includes('..'))) {
    throw invalid(n, 'prefix', 'must not start with "/" or contain ".."', path);
  }
  if (c.partSizeBytes !== undefined && (!Number.isInteger(c.partSizeBytes) || c.partSizeBytes < MIN_PART_SIZE)) {
    throw invalid(n, 'partSizeBytes', `must be an integer >= ${MIN_PART_SIZE}`, path);
  }
  if (
    c.bandwidthBytesPerSec !== undefined &&
    (!Number.isFinite(c.bandwidthBytesPerSec) || c.bandwidthBytesPerSec < 0)
  ) {
    throw invalid(n, 'bandwidthBytesPerSec', 'must be a number >= 0', path);
  }
  if (c.concurrency !== undefined && (!Number.isInteger(c.concurrency) || c.concurrency < 1 || c.concurrency > 64)) {
    throw invalid(n, 'concurrency', 'must be an integer from 1 to 64', path);
  }
  if (c.restoreTier !== undefined && !(RESTORE_TIERS as readonly string[]).includes(c.restoreTier)) {
    throw invalid(n, 'restoreTier', `must be one of ${RESTORE_TIERS.join(', ')}`, path);
  }
  if (
    c.restoreDays !== undefined &&
    (!Number.isInteger(c.restoreDays) || c.restoreDays < 1 || c.restoreDays > MAX_RESTORE_DAYS)
  ) {
    throw invalid(n, 'restoreDays', `must be an integer from 1 to ${MAX_RESTORE_DAYS}`, path);
  }
  if (c.objectLock !== undefined) {
    const l = c.objectLock;
    for (const key of Object.keys(l))
      if (key !== 'mode' && key !== 'days')
        throw invalid(
          n,
          `objectLock.${key}`,
          `is not a known option${didYouMean(key, ['mode', 'days']) || ' (mode, days)'}`,
        );
    if (typeof l !== 'object' || l === null || !(LOCK_MODES as readonly string[]).includes(l.mode))
      throw invalid(n, 'objectLock.mode', `must be one of ${LOCK_MODES.join(', ')}`);
    if (!Number.isInteger(l.days) || l.days < 1 || l.days > MAX_LOCK_DAYS)
      throw invalid(n, 'objectLock.days', `must be an integer from 1 to ${MAX_LOCK_DAYS}`);
  }
  UploadSchedule.parse(c.windows, c.timeZone, n, path === undefined ? 'windows' : `${path}.windows`);
  return c;
}

/**
 * Content-addressed key: `<prefix>blake3/<hh>/<blake3>` for the first copy;
 * a re-send after the object under that key stopped verifying goes to
 * `<…>/<blake3>.<n>` (n = 2, 3 …) — an existing key is never overwritten.
 */
export function objectKey(c: CloudTargetConfig, blake3: string, generation = 1): string {
  const base = `${c.prefix ?? ''}blake3/${blake3.slice(0, 2)}/${blake3}`;
  return generation <= 1 ? base : `${base}.${generation}`;
}

/**
 * Part size for a file: the configured size, grown when needed so the object
 * fits in S3's 10,000 parts.
 */
export function partSizeFor(c: CloudTargetConfig, size: number): number {
  let p = c.partSizeBytes ?? DEFAULT_PART_SIZE;
  while (Math.ceil(size / p) > MAX_PARTS) p *= 2;
  return p;
}
