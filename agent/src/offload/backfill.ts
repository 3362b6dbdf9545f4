/**
 * Back-fill of the field drives (each configured drive on its own, `field-drive`, `field-drive-2`…).
 *
 * A card offloaded while the field drive was not connected has its files on the
 * laptop only, so with the default policy (2 copies on distinct devices) it is
 * not safe to format. When the drive is back, every asset without a verified
 * field-drive copy and not yet committed at the studio (backfillCandidates, state/agent-state.ts) is
 * copied from the laptop store to the drive, to the same
 * store-relative path an offload would have used, with the durable verified
 * write: the laptop copy is read once and must hash to the BLAKE3 the ledger
 * holds for it (a laptop copy that changed is reported, never copied onward,
 * and no longer counted as a copy in the ledger), the drive's copy is fsynced, read back and hashed, then ONE synced
 * batch adds the field-drive copy to the asset. Cards whose only missing copy
 * was the drive's become safe to format; nothing on the drive is overwritten.
 *
 * Stops (report.stoppedBy) when the drive is full, unplugged or read-only, or
 * on abort; what was recorded so far stays recorded and the rest is done next time.
 */
import { join, posix } from 'node:path';
import { CodedError, errorCode, readFileChunks, type Logger } from '@studio321/protocol';
import {
  applyTranslation,
  DURABLE_CODES,
  durableWrite,
  sweepStaleTemps,
  translateDurable,
} from '@studio321/protocol/durable';
import { AGENT_CODES, AgentError, type AgentCode } from '../errors.js';
import { backfillCandidates, type AgentState } from '../state/agent-state.js';
import { hasDamagedCopy } from '../state/safe-to-format.js';
import type { AssetRecord } from '../state/records.js';
import { copyFact, isFieldDrive, type AgentTarget } from '../targets.js';
import { laptopStorePresent, markCopyDamaged } from '../state/store-copy.js';
import { BACKFILL_COPY_FAILED, BACKFILL_FAILURES, type BackfillFailureContext } from './durable-failures.js';
import { suffixedPath } from './naming.js';

export interface BackfillFailure {
  blake3: string;
  storePath: string;
  code: AgentCode;
  message: string;
}

export interface BackfillReport {
  /** Back-fill candidates found (backfillCandidates), summed over the drives. */
  missing: number;
  copied: number;
  bytes: number;
  failed: BackfillFailure[];
  /** The first drive's stop (see `drives` for each). */
  stoppedBy?: AgentError;
  /** Each connected field drive's own back-fill, in config order. */
  drives: DriveBackfill[];
}

export interface DriveBackfill {
  target: string;
  root: string;
  missing: number;
  copied: number;
  bytes: number;
  failed: number;
  /** Why this drive's back-fill stopped (full, pulled, read-only…); the other drives go on. */
  stoppedBy?: AgentError;
}

export interface BackfillContext {
  state: AgentState;
  targets: readonly AgentTarget[];
  signal?: AbortSignal;
  log?: Logger;
  /**
   * Remove temps a killed back-fill left in each drive folder before the first write into it.
   * Only where nothing else can be writing there (`field-agent ingest`, which holds the state lock
   * and runs no hot folder); `field-agent run` sweeps every target at start instead.
   */
  sweepTemps?: boolean;
}

/**
 * Copies every back-fill candidate onto each field drive among `targets`, one drive after the
 * other: a drive that is full, pulled or read-only stops its own back-fill, not the others'.
 */
export async function backfillFieldDrive(ctx: BackfillContext): Promise<BackfillReport> {
  const report: BackfillReport = { missing: 0, copied: 0, bytes: 0, failed: [], drives: [] };
  const laptop = ctx.targets.find((t) => t.name === 'laptop');
  if (laptop === undefined) return report;
  for (const drive of ctx.targets.filter((t) => isFieldDrive(t.name))) {
    const d = await backfillDrive(ctx, laptop, drive, report);
    report.drives.push(d);
    report.missing += d.missing;
    report.copied += d.copied;
    report.bytes += d.bytes;
    if (d.stoppedBy !== undefined) report.stoppedBy ??= d.stoppedBy;
    // Stopped for every drive alike: nothing more is done this time.
    if (d.stoppedBy?.code === AGENT_CODES.aborted || d.stoppedBy?.code === AGENT_CODES.stateFailed) break;
  }
  return report;
}

async function backfillDrive(
  ctx: BackfillContext,
  laptop: AgentTarget,
  drive: AgentTarget,
  report: BackfillReport,
): Promise<DriveBackfill> {
  const d: DriveBackfill = { target: drive.name, root: drive.root, missing: 0, copied: 0, bytes: 0, failed: 0 };
  const todo = await backfillCandidates(ctx.state, drive.name);
  d.missing = todo.length;
  const swept = new Set<string>();
  for (const asset of todo) {
    if (ctx.signal?.aborted === true) {
      d.stoppedBy = new AgentError(
        AGENT_CODES.aborted,
        'The field-drive back-fill was stopped; it goes on next time.',
        { cause: ctx.signal.reason, retryable: true },
      );
      break;
    }
    const dir = join(drive.root, ...posix.dirname(asset.storePath).split('/'));
    if (ctx.sweepTemps === true && !swept.has(dir)) {
      swept.add(dir);
      await sweepStaleTemps(dir).catch((err: unknown) =>
        ctx.log?.warn({ event: 'sweep-failed', dir, err }, `could not remove stale temps in ${dir}`),
      );
    }
    const outcome = await copyOne(ctx, asset, laptop, drive, dir);
    if (outcome === 'copied') {
      d.copied += 1;
      d.bytes += asset.size;
    } else if (outcome instanceof AgentError && isStop(outcome)) {
      d.stoppedBy = outcome;
      break;
    } else {
      d.failed += 1;
      report.failed.push({
        blake3: asset.blake3,
        storePath: asset.storePath,
        code: outcome.code,
        message: outcome.message,
      });
      ctx.log?.warn(
        {
          event: 'backfill-failed',
          target: drive.name,
          blake3: asset.blake3,
          storePath: asset.storePath,
          err: outcome,
        },
        outcome.message,
      );
    }
  }
  if (d.copied > 0 || d.failed > 0 || d.stoppedBy !== undefined) {
    ctx.log?.info(
      {
        event: 'backfill',
        target: drive.name,
        missing: d.missing,
        copied: d.copied,
        failed: d.failed,
        ...(d.stoppedBy === undefined ? {} : { stoppedBy: d.stoppedBy.code }),
      },
      `field drive ${drive.root}: ${d.copied} of ${d.missing} earlier files copied`,
    );
  }
  return d;
}

const STOPS: ReadonlySet<AgentCode> = new Set([
  AGENT_CODES.storeFull,
  AGENT_CODES.storeUnwritable,
  AGENT_CODES.fieldDriveMissing,
  AGENT_CODES.aborted,
  AGENT_CODES.stateFailed,
]);

function isStop(err: AgentError): boolean {
  return STOPS.has(err.code);
}

/** Copies one asset into `dir` (its store folder on the drive) and records the copy. */
async function copyOne(
  ctx: BackfillContext,
  asset: AssetRecord,
  laptop: AgentTarget,
  drive: AgentTarget,
  dir: string,
): Promise<'copied' | AgentError> {
  const source = asset.paths[laptop.name] ?? join(laptop.root, ...asset.storePath.split('/'));
  // A copy of ours found damaged on the drive (verify-card.ts) may still hold its name: then the
  // new copy goes next to it (`~2`), never over it.
  const damagedAt = hasDamagedCopy(asset, drive.name) ? asset.paths[drive.name] : undefined;
  let copy;
  for (let k = 1; ; k++) {
    const name = posix.basename(suffixedPath(asset.storePath, k));
    try {
      const result = await durableWrite(
        readFileChunks(source, ctx.signal === undefined ? {} : { signal: ctx.signal }),
        {
          targets: [{ dir, name }],
          expected: { size: asset.size, blake3: asset.blake3 },
          ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
        },
      );
      copy = result.copies[0];
      if (copy === undefined) throw new TypeError('durableWrite returned no copy');
      break;
    } catch (err) {
      if (err instanceof CodedError && err.code === DURABLE_CODES.nameTaken && join(dir, name) === damagedAt) continue;
      const failure = backfillError(err, asset, source, join(dir, name));
      if (failure.code === AGENT_CODES.storeCopyDamaged && !(await laptopStorePresent(asset))) {
        // Its store's disk was pulled: the copy is unavailable, not damaged.
        return new AgentError(
          AGENT_CODES.storeUnavailable,
          `The laptop store holding ${source} is not available: connect its disk; the field drive gets this copy then.`,
          { cause: err, retryable: true, detail: { blake3: asset.blake3, path: source } },
        );
      }
      if (failure.code === AGENT_CODES.storeCopyDamaged) {
        // The ledger never lies: a laptop copy that does not hash right is no longer a copy.
        try {
          await markCopyDamaged(ctx.state, asset);
        } catch (stateErr) {
          return stateErr instanceof AgentError ? stateErr : failure;
        }
      }
      return failure;
    }
  }
  try {
    await ctx.state.recordCopies(asset.blake3, { [drive.name]: copy.path }, [copyFact(drive, copy)]);
  } catch (err) {
    return err instanceof AgentError
      ? err
      : new AgentError(
          AGENT_CODES.stateFailed,
          `Recording the field-drive copy of ${asset.storePath} failed: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
  }
  return 'copied';
}

function backfillError(err: unknown, asset: AssetRecord, source: string, dest: string): AgentError {
  const code = err instanceof CodedError ? err.code : undefined;
  const x: BackfillFailureContext = {
    blake3: asset.blake3,
    storePath: asset.storePath,
    source,
    dest,
    code,
    text: err instanceof Error ? err.message : String(err),
  };
  // A laptop copy that is gone or unreadable is damaged; other read failures (EMFILE…) are not its fault.
  const sourceErrno = code === DURABLE_CODES.sourceFailed ? errorCode((err as Error).cause) : undefined;
  const t =
    code === DURABLE_CODES.sourceFailed && sourceErrno !== 'ENOENT' && sourceErrno !== 'EIO'
      ? applyTranslation(BACKFILL_COPY_FAILED, err, { ...x, code: undefined })
      : (translateDurable(err, BACKFILL_FAILURES, x) ?? applyTranslation(BACKFILL_COPY_FAILED, err, x));
  return new AgentError(t.code, t.message, t.options);
}
