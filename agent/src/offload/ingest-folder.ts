/**
 * One card or folder given by hand (`field-agent ingest <path>`), offloaded and
 * summed up, by whoever holds the state DB: the CLI itself when no agent runs, or
 * the running agent (runner.ts `ingest`, asked through its status page), so both
 * show the same progress, result and exit status.
 *
 *  0. the rename template (--rename, else the config's for the shoot) is checked;
 *  1. resolve the targets (laptop store, field drive when connected); the CLI
 *     alone also sweeps the temps of interrupted offloads (the running agent swept
 *     at start, and a sweep now could take a temp its hot folder is writing);
 *  2. scan the folder, name the card (volume labels when it is a mount point);
 *  3. offload it (offload-card.ts), every file reported through `onFile`;
 *  4. back-fill the field drive with files offloaded while it was away;
 *  5. safe to format, computed from the state DB after the offload.
 *
 * The outcome is plain JSON (it crosses the status page API as it is).
 */
import type { Logger, ProgressTracker } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from '../errors.js';
import type { AgentState } from '../state/agent-state.js';
import type { SafeToFormat } from '../state/safe-to-format.js';
import { summariseCard } from '../state/status.js';
import { scanCard } from '../card/scanner.js';
import { detectCameraLayouts } from '../card/detector.js';
import { cardIdentity, cardLabel, readVolumeLabels, type VolumeLabels } from '../card/identity.js';
import { MountInfoVolumeSource } from '../card/volume-source.js';
import { resolveTargets } from '../targets.js';
import { sweepInterrupted } from './recovery.js';
import { offloadCard, reportSummary, type CardReport } from './offload-card.js';
import { backfillFieldDrive, type BackfillFailure } from './backfill.js';
import { renameFor, type RenameConfig } from './rename-template.js';
import type { FileOutcome } from './offloader.js';

export interface IngestRequest {
  /** Absolute, real path of the card or folder. */
  root: string;
  shoot: string;
  /** --card-label: overrides the volume label / folder name. */
  cardLabel?: string;
  /** --shoot was given (not the config's or today's default): say when it cannot apply. */
  shootGiven?: boolean;
  /** --rename: the rename template for this card (else the config's for the shoot). */
  rename?: string;
}

export interface IngestContext {
  state: AgentState;
  store: string;
  fieldDrives: readonly string[];
  copiesNeeded: number;
  /** The config's rename templates and body nicknames (rename-template.ts). */
  renaming?: RenameConfig;
  log: Logger;
  signal: AbortSignal;
  /** Step 1's sweep and the back-fill's: only when nothing else writes into the store. */
  sweepTemps: boolean;
  onFile?: (card: string, o: FileOutcome) => void;
  onProgress?: (p: ProgressTracker) => void;
  /** The offload's own report, before the back-fill. */
  onReport?: (report: CardReport) => void;
  /** The card is known and its offload starts (the running agent's status page follows it). */
  onCardStart?: (card: { id: string; label: string; mountPoint: string }) => void;
}

/** A coded error as JSON (CodedError.toJSON), with the two fields every reader uses typed. */
export type CodedJson = Record<string, unknown> & { code: string; message: string };

function codedJson(err: AgentError): CodedJson {
  return { ...err.toJSON(), code: err.code, message: err.message };
}

export interface IngestOutcome {
  ok: boolean;
  card: string;
  label: string;
  shoot: string;
  storeDir: string;
  /** reportSummary's line: "LABEL (id): N files — x copied, …". */
  summary: string;
  files: number;
  copied: number;
  duplicates: number;
  alreadyVerified: number;
  bytesCopied: number;
  failed: FileOutcome[];
  warnings: Array<{ path: string; code: string; message: string }>;
  /** The folder has no camera layout (it was copied as a plain folder): also first in `warnings`. */
  notACard?: { path: string; code: string; message: string };
  /** A --shoot that could not apply: the card was offloaded into this store before and stays in its shoot. */
  shootKept?: string;
  stoppedBy?: CodedJson;
  /** Configured field drives that cannot be used now, one each (the others got their copies). */
  fieldDriveProblems?: CodedJson[];
  backfill?: {
    missing: number;
    copied: number;
    bytes: number;
    failed: BackfillFailure[];
    stoppedBy?: CodedJson;
    /** Each field drive's own back-fill (one full or pulled drive does not stop the others'). */
    drives: Array<{ target: string; root: string; missing: number; copied: number; stoppedBy?: CodedJson }>;
  };
  safeToFormat: SafeToFormat;
}

async function volumeAt(root: string): Promise<{ labels: VolumeLabels; isMount: boolean }> {
  if (process.platform !== 'linux') return { labels: {}, isMount: false };
  try {
    const vols = await new MountInfoVolumeSource().list();
    const v = vols.reverse().find((x) => x.mountPoint === root);
    if (v === undefined) return { labels: {}, isMount: false };
    return { labels: await readVolumeLabels(v.device), isMount: true };
  } catch {
    return { labels: {}, isMount: false };
  }
}

export async function ingestFolder(ctx: IngestContext, req: IngestRequest): Promise<IngestOutcome> {
  const { state, signal, log } = ctx;
  // A template with a typo is refused before anything is read or copied.
  const rename = renameFor(ctx.renaming ?? {}, req.shoot, req.rename);
  const resolved = await resolveTargets(ctx.store, ctx.fieldDrives, {
    storeHasCopies: () => state.hasCopiesUnder('laptop', ctx.store),
  });
  await state.refreshLegacyDevices(resolved.targets);
  if (ctx.sweepTemps) await sweepInterrupted(state, resolved.targets);
  const scan = await scanCard(req.root, { signal });
  if (scan.files.length === 0 && scan.warnings.length === 0)
    // Nothing to copy is not "done": a card the camera wrote to should not read empty.
    throw new AgentError(
      AGENT_CODES.emptyCard,
      `${req.root} holds no files: nothing was copied and nothing on it is safe. If the camera wrote to it, do not format it: check it in a reader.`,
      { detail: { path: req.root } },
    );
  // A folder given by hand is copied even without a camera layout, but not without a word.
  const notACard =
    (await detectCameraLayouts(req.root)).length === 0
      ? {
          path: req.root,
          code: AGENT_CODES.notACard,
          message: `${req.root} is not a camera card (no DCIM, PRIVATE/M4ROOT, PRIVATE/AVCHD, XDROOT or CLIP folder): it is copied as a plain folder. Check it is the folder you meant.`,
        }
      : undefined;
  const vol = await volumeAt(req.root);
  const identity = cardIdentity({
    label: cardLabel(vol.labels, req.root, req.cardLabel),
    ...(vol.labels.uuid === undefined ? {} : { uuid: vol.labels.uuid }),
    files: scan.files,
    ...(vol.isMount ? {} : { folder: req.root }),
  });
  ctx.onCardStart?.({ id: identity.id, label: identity.label, mountPoint: req.root });
  const report = await offloadCard(
    {
      state,
      targets: resolved.targets,
      signal,
      log,
      ...(rename === undefined ? {} : { rename }),
      onFile: (o) => ctx.onFile?.(identity.id, o),
      ...(ctx.onProgress === undefined ? {} : { onProgress: ctx.onProgress }),
    },
    {
      root: req.root,
      card: {
        id: identity.id,
        label: identity.label,
        ...(identity.uuid === undefined ? {} : { uuid: identity.uuid }),
        kind: vol.isMount ? 'card' : 'folder',
        source: req.root,
        shoot: req.shoot,
      },
      scan,
    },
  );
  ctx.onReport?.(report);
  // Files offloaded earlier while the field drive was away get their copy on it now.
  const backfill =
    report.stoppedBy === undefined
      ? await backfillFieldDrive({ state, targets: resolved.targets, signal, log, sweepTemps: ctx.sweepTemps })
      : undefined;
  const summary = await summariseCard(state, report.card, ctx.copiesNeeded);
  if (notACard !== undefined) report.warnings.unshift(notACard);
  // A card offloaded into this store before stays in its shoot (its files are there); say so.
  const shootKept =
    req.shootGiven === true && report.card.shoot !== req.shoot
      ? `${report.card.id} was offloaded into shoot ${report.card.shoot} of this store before: it stays there (--shoot ${req.shoot} applies to new cards and to another store).`
      : undefined;
  return {
    ok: report.failed.length === 0 && report.stoppedBy === undefined,
    card: report.card.id,
    label: report.card.label,
    shoot: report.card.shoot,
    storeDir: `${ctx.store}/${report.card.shoot}/${report.card.id}`,
    summary: reportSummary(report),
    files: report.files,
    copied: report.copied,
    duplicates: report.duplicates,
    alreadyVerified: report.alreadyVerified,
    bytesCopied: report.bytesCopied,
    failed: report.failed,
    warnings: report.warnings,
    ...(notACard === undefined ? {} : { notACard }),
    ...(shootKept === undefined ? {} : { shootKept }),
    ...(report.stoppedBy === undefined ? {} : { stoppedBy: codedJson(report.stoppedBy) }),
    ...(resolved.fieldDriveProblems.length === 0
      ? {}
      : { fieldDriveProblems: resolved.fieldDriveProblems.map(codedJson) }),
    ...(backfill === undefined || backfill.missing === 0
      ? {}
      : {
          backfill: {
            missing: backfill.missing,
            copied: backfill.copied,
            bytes: backfill.bytes,
            failed: backfill.failed,
            ...(backfill.stoppedBy === undefined ? {} : { stoppedBy: codedJson(backfill.stoppedBy) }),
            drives: backfill.drives.map((d) => ({
              target: d.target,
              root: d.root,
              missing: d.missing,
              copied: d.copied,
              ...(d.stoppedBy === undefined ? {} : { stoppedBy: codedJson(d.stoppedBy) }),
            })),
          },
        }),
    safeToFormat: summary.safeToFormat,
  };
}
