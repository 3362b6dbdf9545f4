/**
 * `studioctl verify [--target T] [--sample P%] [--download] [--no-repair]`:
 * re-read copies and record the result, so a copy that went missing or rotted
 * stops counting — and, unless `--no-repair`, is made again.
 *
 *  - local copies (mirror, RAID): the file is hashed again (`verifyFile`);
 *    ok → the copy's verifiedAt/method are refreshed; missing, short,
 *    unreadable or a different BLAKE3 → the copy record is removed (the ledger
 *    counters follow in the same catalogue batch), then the copy is made again
 *    (recovery/remake-copy.ts: the damaged file moved into the quarantine, the
 *    bytes from the other local target or a hot cloud copy, verified). With
 *    repair, an available local target that has no copy record of an asset at
 *    all (lost by an earlier verify, or a heal cut by a crash) is healed too
 *    (RECOVERY_COPY_NOT_RECORDED). A target whose root (or marker) is gone is
 *    NOT read as "every copy lost": its copies are left alone, the target is
 *    reported unchecked (LEDGER_TARGET_UNCHECKED) and noted unavailable.
 *  - cloud copies: `CloudForwarder.verify` — HEAD (size, metadata, storage
 *    class, server checksum), and with `download` the bytes hashed to BLAKE3.
 *    A missing or different object stops counting and is queued to be re-sent.
 *  - agent copies (laptop, field drive) cannot be read from the studio; they
 *    are counted as skipped.
 */
import { DURABLE_CODES, verifyFile, DurableWriteError } from '@studio321/protocol/durable';
import { CodedError, safeJoin, type Logger } from '@studio321/protocol';
import type { AssetRecord, Catalogue, CopyRecord } from '../catalogue.js';
import type { CloudForwarder } from '../cloud/cloud-forwarder.js';
import { CLOUD_CODES } from '../cloud/errors.js';
import { LOCAL_TARGETS, type LocalTargetConfig, type LocalTargetName } from '../config.js';
import { LEDGER_CODES, LedgerError } from './errors.js';
import { checkTarget } from '../commit/target-check.js';
import { RECOVERY_CODES } from '../recovery/errors.js';
import { remakeCopy, type HealSource, type RemakeDeps } from '../recovery/remake-copy.js';

/** Intact copies whose refresh is recorded in one catalogue batch. */
const REFRESH_BATCH = 256;
/**
 * Assets checked at once: a small file's cost is latency (open, stat, a hash-worker round trip,
 * a catalogue read), so many overlap; large files are bound by the disks, and a few in flight
 * (each asset's copies are already read in parallel, one per target) keep them busy without
 * making them seek between many files.
 */
const VERIFY_IN_FLIGHT = 16;
const VERIFY_BYTES_IN_FLIGHT = 64 * 1024 * 1024;

export interface VerifyOptions {
  /** Only copies on this target. */
  target?: string;
  /** Percentage of assets checked (0 < P ≤ 100, default 100), chosen at random. */
  samplePercent?: number;
  /** Cloud: download and hash the bytes, not only HEAD. */
  download?: boolean;
  /** Default true: make a lost local copy again. False (`--no-repair`): only report. */
  repair?: boolean;
  /** Only these assets (the scrub's chunk after its cursor); default every asset. */
  assets?: AsyncIterable<AssetRecord>;
  /** After each asset checked (progress lines of `studioctl verify`, the scrub's counts). */
  onAsset?: (asset: AssetRecord, checked: number) => void;
}

export interface VerifyLost {
  hash: string;
  target: string;
  path: string;
  code: string;
  /** True when the copy was made again and verified. */
  healed: boolean;
  /** Where its bytes came from (null: the file in place verified after all). */
  healedFrom?: HealSource | null;
  /** Why it was not healed: a code and a sentence. */
  notHealed?: { code: string; message: string };
  /** Where the damaged file now is (target-relative), when one was moved aside. */
  quarantinedPath?: string;
}

export interface VerifyReport {
  startedAt: number;
  finishedAt: number;
  target: string | null;
  samplePercent: number;
  download: boolean;
  assetsChecked: number;
  copiesChecked: number;
  copiesOk: number;
  repair: boolean;
  /** Copies that stopped counting (and, with repair, whether each was made again). */
  lost: VerifyLost[];
  /** Of those: made again and verified. */
  healed: number;
  /** Of those: still lost (not healed, or a cloud copy queued to be sent again). */
  notHealed: number;
  /** Agent copies and copies on targets studiod does not know (cannot be read from here). */
  skipped: number;
  /** Targets that could not be checked (left as they were). */
  unchecked: Array<{ target: string; code: string; message: string }>;
}

export interface VerifyDeps {
  catalogue: Catalogue;
  targets: Record<LocalTargetName, LocalTargetConfig>;
  cloud?: CloudForwarder;
  /** What heals a lost local copy (quarantine, cloud reader, availability); without it nothing is repaired. */
  remake?: Omit<RemakeDeps, 'catalogue' | 'targets'>;
  /** Told what each target check found (recovery/target-availability.ts). */
  noteTarget?: (target: string, err: unknown) => Promise<void>;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

const LOST_LIST_MAX = 1000;

export async function verifyCopies(deps: VerifyDeps, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const sample = opts.samplePercent ?? 100;
  if (!(sample > 0 && sample <= 100))
    throw new LedgerError(
      LEDGER_CODES.badArgument,
      `--sample must be a percentage above 0 and at most 100 (got ${sample}).`,
    );
  const known = new Set<string>([...LOCAL_TARGETS, ...(deps.cloud?.targets ?? [])]);
  if (opts.target !== undefined && !known.has(opts.target)) {
    throw new LedgerError(LEDGER_CODES.unknownTarget, `No target "${opts.target}". Known: ${[...known].join(', ')}.`, {
      detail: { target: opts.target },
    });
  }
  const report: VerifyReport = {
    startedAt: now(),
    finishedAt: 0,
    target: opts.target ?? null,
    samplePercent: sample,
    download: opts.download === true,
    repair: opts.repair !== false && deps.remake !== undefined,
    assetsChecked: 0,
    copiesChecked: 0,
    copiesOk: 0,
    lost: [],
    healed: 0,
    notHealed: 0,
    skipped: 0,
    unchecked: [],
  };
  const unchecked = new Map<string, { code: string; message: string }>();
  const note = async (target: string, err: unknown): Promise<void> => {
    await deps.noteTarget?.(target, err).catch(() => undefined);
  };
  const skipTarget = (target: string, err: unknown): void => {
    if (unchecked.has(target)) return;
    void note(target, err);
    const code = err instanceof CodedError ? err.code : LEDGER_CODES.targetUnchecked;
    const message = `Target "${target}" could not be checked (${err instanceof Error ? err.message : String(err)}); its copies were left as they were. Make it available and run verify again.`;
    unchecked.set(target, { code, message });
    deps.log.warn({ code: LEDGER_CODES.targetUnchecked, target, cause: code }, message);
  };
  const addLost = (l: VerifyLost): void => {
    if (l.healed) report.healed++;
    else report.notHealed++;
    if (report.lost.length < LOST_LIST_MAX) report.lost.push(l);
  };
  /**
   * One asset's lost copies: local ones to heal once every copy of the asset was checked, the
   * others to report; both in the asset's turn, so the report keeps the assets' order.
   */
  interface LostLocal {
    heal: Array<{ copy: CopyRecord; code: string }>;
    report: VerifyLost[];
  }
  const lose = async (copy: CopyRecord, code: string, lostLocal: LostLocal): Promise<void> => {
    await deps.catalogue.removeCopy(copy);
    deps.log.error(
      { code: LEDGER_CODES.copyLost, hash: copy.hash, target: copy.target, path: copy.path, reason: code },
      `The ${copy.target} copy of ${copy.path || copy.hash} no longer verifies (${code}); it stopped counting.`,
    );
    if (copy.kind === 'studio' && report.repair) {
      lostLocal.heal.push({ copy, code });
      return;
    }
    lostLocal.report.push({
      hash: copy.hash,
      target: copy.target,
      path: copy.path,
      code,
      healed: false,
      notHealed:
        copy.kind === 'cloud'
          ? { code: CLOUD_CODES.uploadPending, message: 'queued to be sent to the cloud target again' }
          : { code: 'NOT_REPAIRED', message: 'not repaired (--no-repair)' },
    });
  };
  const heal = async (
    hash: string,
    target: LocalTargetName,
    code: string,
    lost: CopyRecord | undefined,
  ): Promise<void> => {
    const remake = deps.remake;
    if (remake === undefined) return;
    const r = await remakeCopy(
      { ...remake, catalogue: deps.catalogue, targets: deps.targets },
      { hash, target, reason: code, foundBy: 'verify', ...(lost === undefined ? {} : { lost }) },
    );
    const l: VerifyLost = { hash, target, path: r.path, code, healed: r.healed };
    if (r.healed) l.healedFrom = r.from;
    else l.notHealed = { code: r.code ?? RECOVERY_CODES.healFailed, message: r.message ?? '' };
    if (r.quarantined !== undefined) l.quarantinedPath = r.quarantined.quarantinedPath;
    addLost(l);
    if (r.healed)
      deps.log.info(
        { hash, target, path: r.path, from: r.from, quarantined: r.quarantined?.quarantinedPath },
        `The ${target} copy of ${r.path} was made again${r.from === null ? ' (the file in place verifies)' : ` from ${r.from.target}`}.`,
      );
    else
      deps.log.error(
        { code: r.code, hash, target, path: r.path, attempts: r.attempts },
        `The ${target} copy of ${r.path || hash} could not be made again: ${r.message ?? r.code}`,
      );
  };

  /** Is the local target mounted (root there, marker ours)? Otherwise it is reported unchecked. */
  const targetPresent = async (target: LocalTargetName): Promise<boolean> => {
    if (unchecked.has(target)) return false;
    try {
      await checkTarget(target, deps.targets[target], true, now);
      await note(target, undefined);
      return true;
    } catch (err) {
      skipTarget(target, err);
      return false;
    }
  };
  for (const t of LOCAL_TARGETS) if (opts.target === undefined || opts.target === t) await targetPresent(t);

  // Copies found intact: their refreshed verifiedAt is recorded REFRESH_BATCH at a time, in one
  // synced batch (a refresh lost in a crash only leaves the older verifiedAt).
  let refreshed: CopyRecord[] = [];
  const refresh = async (copy: CopyRecord): Promise<void> => {
    refreshed.push(copy);
    if (refreshed.length >= REFRESH_BATCH) await flushRefreshed();
  };
  const flushRefreshed = async (): Promise<void> => {
    const batch = refreshed;
    refreshed = [];
    if (batch.length > 0) await deps.catalogue.recordCopies(batch);
  };

  const checkLocal = async (copy: CopyRecord, lostLocal: LostLocal): Promise<void> => {
    const cfg = deps.targets[copy.target as LocalTargetName];
    let verdict;
    try {
      verdict = await verifyFile(safeJoin(cfg.root, copy.path), { size: copy.size, blake3: copy.hash });
    } catch (err) {
      if (err instanceof DurableWriteError && err.code === DURABLE_CODES.targetMissing) {
        // The file's directory is gone: a lost copy if the target itself is there, else an unmounted disk.
        try {
          await checkTarget(copy.target, cfg, true, now);
        } catch (targetErr) {
          skipTarget(copy.target, targetErr);
          return;
        }
        report.copiesChecked++;
        await lose(copy, DURABLE_CODES.missing, lostLocal);
        return;
      }
      skipTarget(copy.target, err);
      return;
    }
    // A missing file counts as lost only while its target is still mounted (re-checked: it may have gone mid-run).
    if (!verdict.ok && verdict.code === DURABLE_CODES.missing && !(await targetPresent(copy.target as LocalTargetName)))
      return;
    report.copiesChecked++;
    if (verdict.ok) {
      report.copiesOk++;
      await refresh({
        ...copy,
        method: 'verify-blake3',
        verifiedAt: Date.parse(verdict.verifiedAt) || now(),
      });
    } else {
      await lose(copy, verdict.code ?? DURABLE_CODES.hashMismatch, lostLocal);
    }
  };

  const checkCloud = async (copy: CopyRecord, cloud: CloudForwarder, lostLocal: LostLocal): Promise<void> => {
    let r: Awaited<ReturnType<CloudForwarder['verify']>>;
    try {
      r = await cloud.verify(copy.target, copy.hash, { download: opts.download === true });
    } catch (err) {
      skipTarget(copy.target, err);
      return;
    }
    report.copiesChecked++;
    if (r.ok && r.copy !== undefined) {
      report.copiesOk++;
      await refresh({
        ...copy,
        path: r.copy.key,
        method: r.copy.method,
        verifiedAt: Date.parse(r.copy.verifiedAt) || now(),
      });
    } else {
      await lose(copy, r.code ?? CLOUD_CODES.verifyMismatch, lostLocal);
    }
  };

  /** The previous asset's turn: reports and heals go one asset after another, in the assets' order. */
  let turn: Promise<void> = Promise.resolve();
  const checkAsset = async (asset: AssetRecord, checked: number, known: CopyRecord[] | undefined): Promise<void> => {
    const previous = turn;
    let done!: () => void;
    turn = new Promise<void>((r) => {
      done = r;
    });
    try {
      const all = known ?? (await deps.catalogue.copiesOf(asset.hash));
      const copies = all.filter((c) => opts.target === undefined || c.target === opts.target);
      const lostLocal: LostLocal = { heal: [], report: [] };
      await Promise.all(
        copies.map(async (copy) => {
          if (unchecked.has(copy.target)) return;
          if (copy.kind === 'studio' && (LOCAL_TARGETS as readonly string[]).includes(copy.target))
            return checkLocal(copy, lostLocal);
          if (copy.kind === 'cloud' && deps.cloud !== undefined && deps.cloud.targets.includes(copy.target))
            return checkCloud(copy, deps.cloud, lostLocal);
          report.skipped++;
          return undefined;
        }),
      );
      await previous;
      for (const l of lostLocal.report) addLost(l);
      if (report.repair) {
        // Heal in target order: a copy made again is a source for the next one.
        for (const t of LOCAL_TARGETS) {
          if (opts.target !== undefined && opts.target !== t) continue;
          if (unchecked.has(t)) continue;
          const lost = lostLocal.heal.find((l) => l.copy.target === t);
          if (lost !== undefined) await heal(asset.hash, t, lost.code, lost.copy);
          else if (!all.some((c) => c.kind === 'studio' && c.target === t)) {
            // The scan's view may be older than a copy recorded meanwhile: read again before healing.
            const now = known === undefined ? all : await deps.catalogue.copiesOf(asset.hash);
            if (!now.some((c) => c.kind === 'studio' && c.target === t))
              await heal(asset.hash, t, RECOVERY_CODES.copyNotRecorded, undefined);
          }
        }
      }
      opts.onAsset?.(asset, checked);
    } finally {
      done();
    }
  };

  // Several assets in flight (VERIFY_IN_FLIGHT, VERIFY_BYTES_IN_FLIGHT); the first failure stops the pass.
  const running = new Set<Promise<void>>();
  let bytesInFlight = 0;
  let failed: { err: unknown } | undefined;
  // Every asset: its copies come from one scan of the copy records beside the assets (both in hash order),
  // not from a lookup per asset.
  const copyScan = opts.assets === undefined ? deps.catalogue.copies()[Symbol.asyncIterator]() : undefined;
  let nextCopy: CopyRecord | undefined;
  const copiesFromScan = async (hash: string): Promise<CopyRecord[]> => {
    const out: CopyRecord[] = [];
    for (;;) {
      if (nextCopy === undefined) {
        const n = await copyScan?.next();
        if (n === undefined || n.done === true) return out;
        nextCopy = n.value;
      }
      if (nextCopy.hash > hash) return out;
      if (nextCopy.hash === hash) out.push(nextCopy);
      nextCopy = undefined;
    }
  };
  for await (const asset of opts.assets ?? deps.catalogue.assets()) {
    const known = copyScan === undefined ? undefined : await copiesFromScan(asset.hash);
    if (sample < 100 && random() * 100 >= sample) continue;
    while (
      failed === undefined &&
      running.size > 0 &&
      (running.size >= VERIFY_IN_FLIGHT || bytesInFlight + asset.size > VERIFY_BYTES_IN_FLIGHT)
    )
      await Promise.race(running);
    if (failed !== undefined) break;
    report.assetsChecked++;
    const checked = report.assetsChecked;
    bytesInFlight += asset.size;
    const p: Promise<void> = checkAsset(asset, checked, known).then(
      () => {
        bytesInFlight -= asset.size;
        running.delete(p);
      },
      (err: unknown) => {
        bytesInFlight -= asset.size;
        running.delete(p);
        failed ??= { err };
      },
    );
    running.add(p);
  }
  await Promise.all(running);
  await copyScan?.return?.(undefined);
  if (failed !== undefined) throw failed.err;
  await flushRefreshed();
  report.unchecked = [...unchecked.entries()].map(([target, e]) => ({ target, ...e }));
  report.finishedAt = now();
  return report;
}
