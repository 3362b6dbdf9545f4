/**
 * Make a local copy (mirror or RAID) of one asset again from the best other
 * verified copy — the one step that healing after `verify`, healing after a
 * commit, and (later) refilling a replaced disk all call
 * (docs/design.md §Recovery, "Heal"):
 *
 *   1. the asset and its verified copies from the catalogue
 *   2. the target must be available (target-check.ts: root and marker); else
 *      RECOVERY_TARGET_UNAVAILABLE and nothing is touched
 *   3. the target-relative path: the copy's own record, the other local
 *      copy's (both local copies share one path), or the stored-path index
 *   4. what is at that name now: verified → recorded as it is (a heal that a
 *      crash cut after its write); damaged → moved into the quarantine
 *      (quarantine.ts), never deleted or overwritten; absent → nothing
 *   5. sources in order: the other local target (if available), then each
 *      cloud copy whose storage class is hot (readable now); each one through
 *      the durable write with `expected` = the catalogue's size and BLAKE3, so
 *      a source with other bytes fails verification and the next is tried
 *   6. the new copy recorded (one catalogue batch with the ledger counters),
 *      `healedFrom` saying where its bytes came from
 *
 * Expected failures are returned (`healed: false`, a code, a sentence), not
 * thrown: the callers report per copy and go on with the next.
 */
import { posix } from 'node:path';
import { CodedError, errorCode, nameKey, readFileChunks, safeJoin } from '@studio321/protocol';
import { DURABLE_CODES, DurableWriteError, durableWrite, verifyFile } from '@studio321/protocol/durable';
import { localCopyRecord, type Catalogue, type CopyRecord } from '../catalogue.js';
import { distinctName, layoutFor } from '../commit/commit.js';
import { checkTarget } from '../commit/target-check.js';
import { LOCAL_TARGETS, type LocalTargetConfig, type LocalTargetName } from '../config.js';
import { RECOVERY_CODES } from './errors.js';
import type { Quarantine, QuarantineRecord } from './quarantine.js';

/** Storage classes that cannot be read without a restore request first. */
const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

export function isHotStorageClass(storageClass: string | undefined): boolean {
  return storageClass !== undefined && !ARCHIVE_CLASSES.has(storageClass);
}

/** Reads counted cloud objects (CloudForwarder implements it). */
export interface CloudCopyReader {
  storageClassOf(target: string): string | undefined;
  read(target: string, key: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
}

export interface RemakeDeps {
  catalogue: Catalogue;
  targets: Record<LocalTargetName, LocalTargetConfig>;
  quarantine: Quarantine;
  cloud?: CloudCopyReader;
  /** Targets known to be unavailable are not used as sources (default: all available). */
  isAvailable?: (target: string) => boolean;
  now?: () => number;
  signal?: AbortSignal;
}

export interface RemakeRequest {
  hash: string;
  target: LocalTargetName;
  /** Why the copy is being made again (DURABLE_HASH_MISMATCH, DURABLE_MISSING, RECOVERY_COPY_NOT_RECORDED…). */
  reason: string;
  /** Who found it: `verify`, `commit`, `refill`. */
  foundBy: string;
  /** The lost copy's record, when the caller had one (its path, kept in the quarantine record). */
  lost?: CopyRecord;
}

export interface HealSource {
  target: string;
  kind: 'studio' | 'cloud';
  path: string;
}

export interface RemakeResult {
  hash: string;
  target: LocalTargetName;
  path: string;
  healed: boolean;
  /** Where the bytes came from; null when the file in place verified (nothing written). */
  from: HealSource | null;
  /** Why not healed: a RECOVERY_ code. */
  code?: string;
  message?: string;
  quarantined?: QuarantineRecord;
  /** Sources tried that failed, with the reason. */
  attempts: Array<HealSource & { code: string }>;
}

/** Durable-write failures that say the SOURCE was wrong: try the next one. */
const SOURCE_FAULTS = new Set<string>([
  DURABLE_CODES.hashMismatch,
  DURABLE_CODES.sizeMismatch,
  DURABLE_CODES.sourceFailed,
]);

const MAX_NAME_SUFFIX = 1000;

/** The target-relative path of an asset's local copies when no local copy record is left. */
async function storedPathOf(catalogue: Catalogue, hash: string): Promise<string | undefined> {
  for (const name of await catalogue.namesOf(hash)) {
    const { dir, base } = layoutFor(name);
    for (let n = 1; n <= MAX_NAME_SUFFIX; n++) {
      const rel = posix.join(dir, distinctName(base, n));
      const s = await catalogue.storedPath(nameKey(rel));
      if (s === undefined) break;
      if (s.hash === hash) return s.path;
    }
  }
  return undefined;
}

export async function remakeCopy(deps: RemakeDeps, req: RemakeRequest): Promise<RemakeResult> {
  const now = deps.now ?? Date.now;
  const available = deps.isAvailable ?? (() => true);
  const cfg = deps.targets[req.target];
  if (cfg === undefined) throw new TypeError(`remakeCopy: "${req.target}" is not a local target`);
  const attempts: RemakeResult['attempts'] = [];
  const result = (path: string, r: Partial<RemakeResult>): RemakeResult => ({
    hash: req.hash,
    target: req.target,
    path,
    healed: false,
    from: null,
    attempts,
    ...r,
  });

  // 1. The asset and its verified copies.
  const asset = await deps.catalogue.getAsset(req.hash);
  if (asset === undefined)
    return result(req.lost?.path ?? '', {
      code: RECOVERY_CODES.noSource,
      message: `Asset ${req.hash} is not in the catalogue.`,
    });
  const copies = await deps.catalogue.copiesOf(req.hash);
  const expected = { size: asset.size, blake3: asset.hash };

  // 2. The target must be there (a missing root is an unmounted disk, not a place to write).
  try {
    await checkTarget(req.target, cfg, true, now);
  } catch (err) {
    return result(req.lost?.path ?? '', {
      code: RECOVERY_CODES.targetUnavailable,
      message: `Target ${req.target} is unavailable (${err instanceof CodedError ? err.code : String(err)}); the copy is made again when it is back.`,
    });
  }

  // 3. Where the copy lives.
  const own = copies.find((c) => c.kind === 'studio' && c.target === req.target);
  const path =
    req.lost?.path ??
    own?.path ??
    copies.find((c) => c.kind === 'studio' && (LOCAL_TARGETS as readonly string[]).includes(c.target))?.path ??
    (await storedPathOf(deps.catalogue, req.hash));
  if (path === undefined)
    return result('', {
      code: RECOVERY_CODES.noSource,
      message: `No target path is known for asset ${req.hash}.`,
    });
  const finalPath = safeJoin(cfg.root, path);
  const record = (c: Pick<CopyRecord, 'size' | 'method' | 'verifiedAt' | 'healedFrom'>) =>
    deps.catalogue.recordCopy({
      ...localCopyRecord(req.target, cfg, {
        hash: req.hash,
        path,
        size: c.size,
        method: c.method,
        verifiedAt: c.verifiedAt,
      }),
      ...(c.healedFrom === undefined ? {} : { healedFrom: c.healedFrom }),
    });

  // 4. What is at the final name now.
  let quarantined: QuarantineRecord | undefined;
  try {
    const v = await verifyFile(finalPath, expected, deps.signal === undefined ? {} : { signal: deps.signal });
    if (v.ok) {
      await record({ size: v.size, method: 'verify-blake3', verifiedAt: Date.parse(v.verifiedAt) || now() });
      return result(path, { healed: true });
    }
    if (v.code !== DURABLE_CODES.missing) {
      const q = await deps.quarantine.moveAside(req.target, path, {
        hash: req.hash,
        reason: v.code ?? req.reason,
        foundBy: req.foundBy,
        ...(req.lost === undefined ? {} : { copy: req.lost }),
      });
      if (q !== null) quarantined = q;
    }
  } catch (err) {
    return result(path, {
      code:
        err instanceof CodedError && err.code === RECOVERY_CODES.quarantineFailed
          ? err.code
          : RECOVERY_CODES.healFailed,
      message: err instanceof Error ? err.message : String(err),
    });
  }
  const withQ = quarantined === undefined ? {} : { quarantined };

  // 5. The sources, best first: the other local target, then hot cloud copies.
  const sources: Array<HealSource & { open: () => Promise<AsyncIterable<Uint8Array>> }> = [];
  for (const t of LOCAL_TARGETS) {
    if (t === req.target || !available(t)) continue;
    const c = copies.find((x) => x.kind === 'studio' && x.target === t);
    if (c === undefined) continue;
    const p = safeJoin(deps.targets[t].root, c.path);
    sources.push({ target: t, kind: 'studio', path: c.path, open: async () => readFileChunks(p) });
  }
  const cloud = deps.cloud;
  if (cloud !== undefined) {
    for (const c of copies) {
      if (c.kind !== 'cloud' || !isHotStorageClass(cloud.storageClassOf(c.target))) continue;
      sources.push({
        target: c.target,
        kind: 'cloud',
        path: c.path,
        open: () => cloud.read(c.target, c.path, deps.signal),
      });
    }
  }
  const dir = safeJoin(cfg.root, posix.dirname(path));
  const name = posix.basename(path);
  for (const s of sources) {
    const from: HealSource = { target: s.target, kind: s.kind, path: s.path };
    let written;
    try {
      await deps.catalogue.putIntent({ hash: req.hash, dirs: [dir], startedAt: now() });
      written = await durableWrite(await s.open(), {
        targets: [{ dir, name }],
        expected,
        ...(deps.signal === undefined ? {} : { signal: deps.signal }),
      });
    } catch (err) {
      const code = err instanceof CodedError ? err.code : (errorCode(err) ?? 'ERROR');
      attempts.push({ ...from, code });
      // A source with other bytes, or one that cannot be read: the next source.
      if (!(err instanceof DurableWriteError) || SOURCE_FAULTS.has(err.code)) continue;
      // The target itself failed (full, gone, read-back differs, the name taken meanwhile): stop.
      await deps.catalogue.clearIntent(req.hash).catch(() => undefined);
      return result(path, {
        ...withQ,
        code: RECOVERY_CODES.healFailed,
        message: `The ${req.target} copy could not be written (${code}): ${err.message}`,
      });
    }
    // 6. Record it, with where it came from.
    const copy = written.copies[0];
    await record({
      size: written.size,
      method: copy?.method ?? 'readback-blake3',
      verifiedAt: Date.parse(copy?.verifiedAt ?? '') || now(),
      healedFrom: { ...from, at: now() },
    });
    await deps.catalogue.clearIntent(req.hash).catch(() => undefined);
    return result(path, { ...withQ, healed: true, from });
  }
  await deps.catalogue.clearIntent(req.hash).catch(() => undefined);
  return result(path, {
    ...withQ,
    code: RECOVERY_CODES.noSource,
    message:
      sources.length === 0
        ? `No other verified copy of ${req.hash} can be read now (no local copy on an available target, no hot cloud copy).`
        : `Every other copy of ${req.hash} failed verification while it was read (${attempts.map((a) => `${a.target}: ${a.code}`).join(', ')}).`,
  });
}
