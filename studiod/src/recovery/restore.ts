/**
 * Restore: `studioctl restore <name|hash>... [--shoot S] [--card C] --to DIR [--from TARGET]`
 * copies each selected asset and the rest of its sidecar group into DIR from its
 * cheapest verified copy, through the durable write (docs/design.md "Recovery"):
 *
 *   1. select the assets (names, hashes, shoot, card); a query that matches nothing is reported;
 *   2. add each file's group (same folder, same stem) from the `stored!` index;
 *   3. order each file's sources: mirror, RAID (when its disk is there), cloud hot, cloud archive;
 *   4. choose the name in DIR: `DIR/<stored path>`; identical content there counts as restored,
 *      other content moves this file to the next free `~N` name (never overwritten);
 *   5. note the directory (`dir!`, sync) so a crash's temps are swept at the next start;
 *   6. durableWrite from the source with `expected: {size, blake3}` from the catalogue
 *      (temp → fsync → read back → link); a source that is missing, unreadable or has other
 *      bytes is reported with its code and the next source is tried;
 *   7. an archive-class copy that S3 will not serve yet (InvalidObjectState), when no cheaper
 *      copy worked: record `req!` (sync), then RestoreObject; the file is "requested";
 *   8. the watcher HEADs each request; once `ongoing-request="false"` it does step 6 into the
 *      recorded DIR and deletes the record (sync). Records survive restarts.
 */
import { mkdir } from 'node:fs/promises';
import { posix, isAbsolute, join, dirname, basename } from 'node:path';
import {
  CodedError,
  ProgressTracker,
  errorCode,
  safeJoin,
  type Logger,
  type ProgressSnapshot,
} from '@studio321/protocol';
import { DURABLE_CODES, durableWrite, readFileChunks, sweepStaleTemps, verifyFile } from '@studio321/protocol/durable';
import type { AssetRecord, Catalogue } from '../catalogue.js';
import { CLOUD_CODES, CloudError } from '../cloud/errors.js';
import {
  DEFAULT_RESTORE_DAYS,
  DEFAULT_RESTORE_TIER,
  type CloudTargetConfig,
  type RestoreTier,
} from '../cloud/cloud-target.js';
import { S3Sink, type CloudSink } from '../cloud/s3-sink.js';
import { distinctName } from '../commit/commit.js';
import { checkTarget } from '../commit/target-check.js';
import { LOCAL_TARGETS, cloudTargetsOf, type StudiodConfig } from '../config.js';
import type { ControlContext, ControlSocket } from '../control-socket.js';
import { RECOVERY_CODES, RecoveryError } from './errors.js';
import {
  groupOf,
  selectAssets,
  sourcesFor,
  storedPathOf,
  type NotFound,
  type PlannedFile,
  type RestoreSelection,
  type SourceRef,
} from './restore-plan.js';
import { ARCHIVE_READY_HINT, RestoreRecords, type ArchiveRequestRecord } from './restore-records.js';

export interface RestoreServiceOptions {
  config: StudiodConfig;
  catalogue: Catalogue;
  log: Logger;
  /** `studioctl asset`'s resolution (LedgerService.findAssets). */
  findAssets: (query: string) => Promise<AssetRecord[]>;
  now?: () => number;
  /** Seam for tests (MemorySink, the archive double); default S3Sink. */
  sinkFactory?: (target: CloudTargetConfig) => CloudSink;
  /** How often pending archive requests are looked at (default 15 min; 0: never by itself, tests call checkPending). */
  pendingPollMs?: number;
  /** Files restored at once (default 4). */
  concurrency?: number;
}

export interface RestoreRequest extends RestoreSelection {
  /** Absolute destination directory. */
  to: string;
  /** Read from this target only. */
  from?: string;
}

export interface SourceAttempt {
  target: string;
  code: string;
  message: string;
}

export interface RestoredFile extends PlannedFile {
  /** `restored`: written and verified now; `present`: identical content already there; `requested`: asked from the archive; `failed`. */
  status: 'restored' | 'present' | 'requested' | 'failed';
  /** Absolute path in DIR (restored, present, or where a requested file will go). */
  dest?: string;
  /** The target it came from (or is requested from). */
  source?: string;
  code?: string;
  message?: string;
  /** Sources that were tried and failed, in order. */
  attempts: SourceAttempt[];
}

export interface RestoreReport {
  to: string;
  from: string | null;
  notFound: NotFound[];
  files: RestoredFile[];
  restored: number;
  present: number;
  requested: number;
  failed: number;
  /** Bytes written now. */
  bytes: number;
  /** True when every selected query matched and every file is restored or present (exit 0). */
  complete: boolean;
}

/** The durable write's codes that say the source was bad (try the next one); any other is the destination's. */
const SOURCE_CODES = new Set<string>([
  DURABLE_CODES.sizeMismatch,
  DURABLE_CODES.hashMismatch,
  DURABLE_CODES.sourceFailed,
]);
const MAX_NAMES = 1000;
const PROGRESS_EVERY_MS = 250;

const codeOf = (err: unknown): string => (err instanceof CodedError ? err.code : (errorCode(err) ?? 'ERROR'));
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const isArchivedRefusal = (err: unknown): boolean =>
  err instanceof CloudError && err.detail?.['s3Code'] === 'InvalidObjectState';

/** A source could not give the verified bytes: the next one is tried. */
class SourceFailure extends Error {
  readonly attempt: SourceAttempt;
  readonly archived: boolean;
  constructor(attempt: SourceAttempt, archived = false) {
    super(attempt.message);
    this.attempt = attempt;
    this.archived = archived;
  }
}

export class RestoreService {
  readonly #o: RestoreServiceOptions;
  readonly #now: () => number;
  readonly #records: RestoreRecords;
  readonly #cloudTargets: CloudTargetConfig[];
  readonly #sinks = new Map<string, CloudSink>();
  /** Directories being written by a running restore (reference counts), so `dir!` is deleted by the last one. */
  readonly #dirsInUse = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #state: 'new' | 'open' | 'closed' = 'new';
  readonly #abort = new AbortController();

  constructor(opts: RestoreServiceOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#records = new RestoreRecords(opts.catalogue);
    this.#cloudTargets = cloudTargetsOf(opts.config);
  }

  /** Sweeps the temps of restores a crash interrupted, opens the cloud sinks, starts the watcher. */
  async open(): Promise<void> {
    if (this.#state !== 'new') throw new TypeError(`RestoreService.open() in state ${this.#state}`);
    for (const d of await this.#records.dirs()) {
      const n = await sweepStaleTemps(d.dir).catch((err: unknown) => {
        this.#o.log.warn({ err, dir: d.dir }, 'could not sweep temp files of an interrupted restore');
        return 0;
      });
      if (n > 0) this.#o.log.info({ dir: d.dir, removed: n }, 'removed temp files of an interrupted restore');
      await this.#records.deleteDir(d.dir);
    }
    for (const cfg of this.#cloudTargets) {
      const sink = this.#o.sinkFactory?.(cfg) ?? new S3Sink(cfg);
      await sink.open();
      this.#sinks.set(cfg.name, sink);
    }
    this.#state = 'open';
    const every = this.#o.pendingPollMs ?? 15 * 60_000;
    if (every > 0) {
      this.#timer = setInterval(() => {
        void this.checkPending().catch((err: unknown) => this.#o.log.warn({ err }, 'archive restore check failed'));
      }, every);
      this.#timer.unref();
      if ((await this.#records.requests()).length > 0) void this.checkPending().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    clearInterval(this.#timer);
    this.#abort.abort(new Error('studiod is stopping'));
    await this.#checking?.catch(() => undefined);
    for (const s of this.#sinks.values()) await s.close();
  }

  /** The archive restores requested and not yet written (and those that failed for good, not yet reported). */
  pending(): Promise<ArchiveRequestRecord[]> {
    return this.#records.requests();
  }

  /**
   * `studioctl restore --pending`: the pending requests; a request that failed for good
   * (`failedAt`) is in this answer once and removed after it.
   */
  async reportPending(): Promise<ArchiveRequestRecord[]> {
    const all = await this.#records.requests();
    for (const r of all) if (r.failedAt !== undefined) await this.#records.deleteRequest(r);
    return all;
  }

  registerCommands(ctl: ControlSocket): void {
    ctl.register('restore', (args, ctx) => this.restore(parseRequest(args), ctx));
    ctl.register('restore-pending', async () => ({ pending: await this.reportPending() }));
  }

  /** Steps 1–7 for one request. Throws RecoveryError only when the request as a whole cannot go on. */
  async restore(req: RestoreRequest, ctx?: Partial<ControlContext>): Promise<RestoreReport> {
    if (this.#state !== 'open') throw new TypeError('RestoreService is not open');
    if (!isAbsolute(req.to))
      throw new RecoveryError(RECOVERY_CODES.badArgument, `The destination must be an absolute path, not "${req.to}".`);
    if (req.queries.length === 0 && req.shoot === undefined && req.card === undefined)
      throw new RecoveryError(
        RECOVERY_CODES.badArgument,
        'Name what to restore: a file name, shoot/card/path or hash, or --shoot S / --card C.',
      );
    if (req.from !== undefined && !this.#knowsTarget(req.from))
      throw new RecoveryError(
        RECOVERY_CODES.badArgument,
        `--from ${req.from}: no such target. Use mirror, raid or a cloud target's name (${this.#cloudTargets.map((t) => t.name).join(', ') || 'none configured'}).`,
      );
    const signal = AbortSignal.any([this.#abort.signal, ...(ctx?.signal === undefined ? [] : [ctx.signal])]);
    const cat = this.#o.catalogue;
    const { assets, notFound } = await selectAssets(cat, this.#o.findAssets, req);
    const planned = new Map<string, PlannedFile>();
    for (const a of assets) {
      const rel = await storedPathOf(cat, a.hash, await cat.copiesOf(a.hash));
      for (const m of [{ hash: a.hash, path: rel }, ...(await groupOf(cat, rel))]) {
        if (planned.has(m.path)) continue;
        const asset = m.hash === a.hash ? a : await cat.getAsset(m.hash);
        if (asset !== undefined) planned.set(m.path, { hash: m.hash, size: asset.size, path: m.path });
      }
    }
    const files = [...planned.values()].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
    const tracker = new ProgressTracker({
      totalBytes: files.reduce((n, f) => n + f.size, 0),
      totalFiles: files.length,
    });
    let lastSent = 0;
    const report = (force = false): void => {
      if (ctx?.progress === undefined) return;
      const t = performance.now();
      if (!force && t - lastSent < PROGRESS_EVERY_MS) return;
      lastSent = t;
      ctx.progress(tracker.snapshot() satisfies ProgressSnapshot);
    };
    const results: RestoredFile[] = new Array(files.length);
    const localOk = new Map<string, Promise<SourceAttempt | undefined>>();
    const run = { dirs: new Set<string>() };
    let next = 0;
    let fatal: unknown;
    const worker = async (): Promise<void> => {
      // A destination failure (DIR full, read-only) ends the request: no worker takes another file.
      for (let i = next++; i < files.length && fatal === undefined; i = next++) {
        const f = files[i]!;
        try {
          results[i] = await this.#restoreFile(f, req, { signal, tracker, report, localOk, run });
        } catch (err) {
          fatal ??= err;
          return;
        }
        tracker.fileDone(results[i]!.status === 'restored' ? 0 : f.size);
        report(true);
      }
    };
    // Every worker has finished (its temps removed) before the dir records go.
    await Promise.allSettled(
      Array.from({ length: Math.min(this.#o.concurrency ?? 4, Math.max(1, files.length)) }, worker),
    );
    await this.#releaseDirs(run.dirs);
    if (fatal !== undefined) throw fatal;
    const count = (s: RestoredFile['status']): number => results.filter((r) => r.status === s).length;
    const out: RestoreReport = {
      to: req.to,
      from: req.from ?? null,
      notFound,
      files: results,
      restored: count('restored'),
      present: count('present'),
      requested: count('requested'),
      failed: count('failed'),
      bytes: results.filter((r) => r.status === 'restored').reduce((n, r) => n + r.size, 0),
      complete: notFound.length === 0 && results.every((r) => r.status === 'restored' || r.status === 'present'),
    };
    this.#o.log.info(
      {
        to: req.to,
        restored: out.restored,
        present: out.present,
        requested: out.requested,
        failed: out.failed,
        notFound: notFound.length,
      },
      'restore finished',
    );
    return out;
  }

  #knowsTarget(name: string): boolean {
    return (LOCAL_TARGETS as readonly string[]).includes(name) || this.#cloudTargets.some((t) => t.name === name);
  }

  /** Steps 3–7 for one file. */
  async #restoreFile(
    f: PlannedFile,
    req: RestoreRequest,
    io: {
      signal: AbortSignal;
      tracker: ProgressTracker;
      report: () => void;
      localOk: Map<string, Promise<SourceAttempt | undefined>>;
      run: { dirs: Set<string> };
    },
  ): Promise<RestoredFile> {
    const attempts: SourceAttempt[] = [];
    const sources = sourcesFor(await this.#o.catalogue.copiesOf(f.hash), this.#cloudTargets, req.from);
    if (sources.length === 0) {
      return {
        ...f,
        status: 'failed',
        code: RECOVERY_CODES.noSource,
        message:
          req.from === undefined
            ? 'No verified copy of this file is recorded on any target.'
            : `No verified copy of this file is recorded on ${req.from}.`,
        attempts,
      };
    }
    let archived: (SourceRef & { kind: 'cloud' }) | undefined;
    for (const src of sources) {
      try {
        const done = await this.#fromSource(f, src, req.to, io);
        return { ...f, ...done, source: src.target, attempts };
      } catch (err) {
        if (!(err instanceof SourceFailure)) throw err;
        attempts.push(err.attempt);
        if (err.archived && src.kind === 'cloud' && archived === undefined) archived = src;
        this.#o.log.warn({ hash: f.hash, path: f.path, ...err.attempt }, 'restore source failed; trying the next');
      }
    }
    if (archived !== undefined) return { ...f, ...(await this.#requestArchive(f, archived, req.to)), attempts };
    return {
      ...f,
      status: 'failed',
      code: RECOVERY_CODES.noSource,
      message: `No copy could be read and verified (${attempts.map((a) => `${a.target}: ${a.code}`).join('; ')}).`,
      attempts,
    };
  }

  /** Opens one source (local file or cloud object) and writes it; SourceFailure when the source is at fault. */
  async #fromSource(
    f: PlannedFile,
    src: SourceRef,
    to: string,
    io: {
      signal: AbortSignal;
      tracker: ProgressTracker;
      report: () => void;
      localOk: Map<string, Promise<SourceAttempt | undefined>>;
      run: { dirs: Set<string> };
    },
  ): Promise<{ status: 'restored' | 'present'; dest: string }> {
    let open: () => Promise<AsyncIterable<Uint8Array>>;
    if (src.kind === 'local') {
      const cfg = this.#o.config.targets[src.target];
      let check = io.localOk.get(src.target);
      if (check === undefined) {
        // hasCopies: true — a restore never writes a marker; a root without one is "not there".
        check = checkTarget(src.target, cfg, true).then(
          () => undefined,
          (err: unknown) => ({ target: src.target, code: codeOf(err), message: messageOf(err) }),
        );
        io.localOk.set(src.target, check);
      }
      const down = await check;
      if (down !== undefined) throw new SourceFailure(down);
      const path = safeJoin(cfg.root, src.path);
      open = async () => readFileChunks(path, { signal: io.signal });
    } else {
      const sink = this.#sinks.get(src.target);
      if (sink === undefined) throw new TypeError(`no sink for cloud target ${src.target}`);
      open = async () => {
        try {
          return await sink.read(src.key, io.signal);
        } catch (err) {
          throw new SourceFailure(
            {
              target: src.target,
              code: isArchivedRefusal(err) ? RECOVERY_CODES.archived : codeOf(err),
              message: isArchivedRefusal(err)
                ? `s3://${src.config.bucket}/${src.key} is in ${src.config.storageClass} and not restored yet.`
                : messageOf(err),
            },
            isArchivedRefusal(err),
          );
        }
      };
    }
    let counted = 0;
    try {
      return await this.#place(f, to, open, io.signal, io.run, (bytes) => {
        io.tracker.addBytes(bytes - counted);
        counted = bytes;
        io.report();
      });
    } catch (err) {
      io.tracker.addBytes(-counted);
      if (err instanceof SourceFailure) throw new SourceFailure({ ...err.attempt, target: src.target }, err.archived);
      throw err;
    }
  }

  /**
   * Steps 4–6: the free name in DIR, the dir intent, the durable write. Identical
   * content under the name → present; other content → the next `~N` name.
   */
  async #place(
    f: PlannedFile,
    to: string,
    open: () => Promise<AsyncIterable<Uint8Array>>,
    signal: AbortSignal,
    run: { dirs: Set<string> },
    onProgress: (bytes: number) => void,
  ): Promise<{ status: 'restored' | 'present'; dest: string }> {
    const final = safeJoin(to, f.path);
    const dir = dirname(final);
    const base = basename(final);
    const expected = { size: f.size, blake3: f.hash };
    for (let n = 1; n <= MAX_NAMES; n++) {
      const name = distinctName(base, n);
      const dest = join(dir, name);
      const there = await verifyFile(dest, expected, { signal }).catch((err: unknown) => {
        throw destinationFailed(dest, err);
      });
      if (there.ok) return { status: 'present', dest };
      if (there.code !== DURABLE_CODES.missing) continue; // other content holds the name: never replaced
      await this.#noteDir(dir, run);
      const source = await open();
      try {
        await durableWrite(source, { targets: [{ dir, name }], expected, signal, onProgress });
        return { status: 'restored', dest };
      } catch (err) {
        const code = codeOf(err);
        if (code === DURABLE_CODES.nameTaken) continue;
        if (SOURCE_CODES.has(code)) {
          const cause = err instanceof Error && err.cause !== undefined ? err.cause : undefined;
          if (isArchivedRefusal(cause))
            throw new SourceFailure({ target: '', code: codeOf(cause), message: messageOf(cause) }, true);
          throw new SourceFailure({ target: '', code, message: messageOf(err) });
        }
        throw destinationFailed(dest, err);
      }
    }
    throw new RecoveryError(
      RECOVERY_CODES.noFreeName,
      `No free name for ${base} in ${dir} after ${MAX_NAMES} tries. Clear the destination folder or restore elsewhere.`,
    );
  }

  /** Step 5: `dir!<dir>` (sync) before the first temp is created there. */
  async #noteDir(dir: string, run: { dirs: Set<string> }): Promise<void> {
    if (run.dirs.has(dir)) return;
    run.dirs.add(dir);
    const users = this.#dirsInUse.get(dir) ?? 0;
    this.#dirsInUse.set(dir, users + 1);
    if (users === 0) {
      await mkdir(dirname(dir), { recursive: true }).catch(() => undefined);
      await this.#records.putDir(dir, this.#now());
    }
  }

  async #releaseDirs(dirs: Set<string>): Promise<void> {
    for (const dir of dirs) {
      const users = (this.#dirsInUse.get(dir) ?? 1) - 1;
      if (users > 0) {
        this.#dirsInUse.set(dir, users);
        continue;
      }
      this.#dirsInUse.delete(dir);
      await this.#records.deleteDir(dir).catch((err: unknown) => this.#o.log.warn({ err, dir }, 'dir record'));
    }
  }

  /** Step 7: record the request (sync), then ask S3 to restore the object. */
  async #requestArchive(
    f: PlannedFile,
    src: SourceRef & { kind: 'cloud' },
    to: string,
  ): Promise<Omit<RestoredFile, keyof PlannedFile | 'attempts'>> {
    const tier: RestoreTier = src.config.restoreTier ?? DEFAULT_RESTORE_TIER;
    const days = src.config.restoreDays ?? DEFAULT_RESTORE_DAYS;
    const rec: ArchiveRequestRecord = {
      v: 1,
      hash: f.hash,
      size: f.size,
      target: src.target,
      key: src.key,
      dir: to,
      path: f.path,
      tier,
      days,
      requestedAt: this.#now(),
      checkedAt: null,
      lastError: null,
    };
    const existing = await this.#records.getRequest(RestoreRecords.requestKey(rec));
    if (existing === undefined) await this.#records.putRequest(rec);
    const dest = safeJoin(to, f.path);
    try {
      await this.#sinks.get(src.target)?.restoreObject(src.key, { days, tier });
    } catch (err) {
      if (existing === undefined) await this.#records.deleteRequest(rec);
      return {
        status: 'failed',
        source: src.target,
        code: codeOf(err),
        message: `The archive copy on ${src.target} cannot be restored: ${messageOf(err)}`,
      };
    }
    this.#o.log.info({ hash: f.hash, target: src.target, tier, days, dest }, 'archive restore requested');
    return {
      status: 'requested',
      source: src.target,
      dest,
      code: RECOVERY_CODES.archivePending,
      message: `Requested from the archive (${src.target}, ${tier} tier), ${ARCHIVE_READY_HINT}; studiod writes it to ${dest} by itself. \`studioctl restore --pending\` lists the requests.`,
    };
  }

  /**
   * Step 8: looks at every pending archive request; writes each readable one into its
   * recorded DIR (verified) and deletes its record. One pass at a time.
   */
  checkPending(): Promise<void> {
    this.#checking ??= this.#checkPending().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #checkPending(): Promise<void> {
    for (const rec of await this.#records.requests()) {
      if (this.#abort.signal.aborted) return;
      if (rec.failedAt !== undefined) continue; // over; waits to be reported
      const note = async (code: string, message: string): Promise<void> => {
        await this.#records.putRequest({ ...rec, checkedAt: this.#now(), lastError: { code, message } });
      };
      const sink = this.#sinks.get(rec.target);
      const cfg = this.#cloudTargets.find((t) => t.name === rec.target);
      if (sink === undefined || cfg === undefined) {
        await note(RECOVERY_CODES.noSource, `Cloud target ${rec.target} is no longer configured.`);
        continue;
      }
      let head;
      try {
        head = await sink.head(rec.key, this.#abort.signal);
      } catch (err) {
        await note(codeOf(err), messageOf(err));
        continue;
      }
      if (head === null) {
        await note(CLOUD_CODES.objectMissing, `s3://${cfg.bucket}/${rec.key} is gone.`);
        continue;
      }
      if (head.restore?.ongoing === true) {
        await this.#records.putRequest({ ...rec, checkedAt: this.#now(), lastError: null });
        continue;
      }
      const run = { dirs: new Set<string>() };
      try {
        const placed = await this.#place(
          rec,
          rec.dir,
          async () => {
            try {
              return await sink.read(rec.key, this.#abort.signal);
            } catch (err) {
              throw new SourceFailure(
                { target: rec.target, code: codeOf(err), message: messageOf(err) },
                isArchivedRefusal(err),
              );
            }
          },
          this.#abort.signal,
          run,
          () => undefined,
        );
        await this.#records.deleteRequest(rec);
        this.#o.log.info(
          { hash: rec.hash, target: rec.target, dest: placed.dest, status: placed.status },
          'archive restore written',
        );
      } catch (err) {
        if (err instanceof SourceFailure && err.archived && head.restore === undefined) {
          // Not readable and no restore on record at S3 (never reached it, or it expired): ask again.
          try {
            await sink.restoreObject(rec.key, { days: rec.days, tier: rec.tier }, this.#abort.signal);
            await this.#records.putRequest({
              ...rec,
              checkedAt: this.#now(),
              requestedAt: this.#now(),
              lastError: null,
            });
          } catch (again) {
            if (again instanceof CodedError && !again.retryable) {
              // Asking again cannot succeed (e.g. CLOUD_NOT_SUPPORTED): the request is over.
              await this.#records.putRequest({
                ...rec,
                checkedAt: this.#now(),
                lastError: { code: again.code, message: messageOf(again) },
                failedAt: this.#now(),
              });
              this.#o.log.warn(
                { hash: rec.hash, target: rec.target, code: again.code },
                'archive restore failed for good; `studioctl restore --pending` reports it once',
              );
            } else await note(codeOf(again), messageOf(again));
          }
        } else if (err instanceof SourceFailure) {
          await note(err.attempt.code, err.attempt.message);
        } else {
          await note(codeOf(err), messageOf(err));
        }
      } finally {
        await this.#releaseDirs(run.dirs);
      }
    }
  }
}

function destinationFailed(dest: string, err: unknown): RecoveryError {
  if (err instanceof RecoveryError) return err;
  return new RecoveryError(
    RECOVERY_CODES.destinationFailed,
    `Cannot write ${dest} (${codeOf(err)}): ${messageOf(err)} Make the destination writable by studiod's user and check its free space; files already restored are complete.`,
    { cause: err, detail: { dest, code: codeOf(err) } },
  );
}

/** The control request's arguments (studioctl sends DIR absolute). */
function parseRequest(args: Record<string, unknown>): RestoreRequest {
  const str = (k: string): string | undefined => (typeof args[k] === 'string' ? (args[k] as string) : undefined);
  const queries = Array.isArray(args['queries'])
    ? args['queries'].filter((q): q is string => typeof q === 'string')
    : [];
  const to = str('to');
  if (to === undefined)
    throw new RecoveryError(RECOVERY_CODES.badArgument, 'Give the destination: studioctl restore … --to DIR');
  const shoot = str('shoot');
  const card = str('card');
  const from = str('from');
  return {
    queries,
    to: posix.normalize(to),
    ...(shoot === undefined ? {} : { shoot }),
    ...(card === undefined ? {} : { card }),
    ...(from === undefined ? {} : { from }),
  };
}
