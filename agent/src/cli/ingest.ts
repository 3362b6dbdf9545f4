/**
 * `field-agent ingest <path> [--shoot S] [--card-label L] [--json]`
 *
 * Offloads one card or folder given by hand and exits: 0 when every file is
 * verified, 1 when any file failed or the offload had to stop (a card that cannot
 * fit is refused before anything is copied: AGENT_NOT_ENOUGH_SPACE), 2 for bad
 * usage, 3 when the card holds no files (AGENT_EMPTY_CARD: nothing to do is not
 * "done"). A folder without a camera layout is copied with a warning (AGENT_NOT_A_CARD).
 * Progress (bytes, files, MB/s, ETA) goes to stderr; the summary to stdout
 * (`--json`: one JSON line per file, then the report).
 */
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { validateSegment, createLogger, EXIT } from '@studio321/protocol';
import { detectCameraLayouts } from '../card/detector.js';
import { AGENT_CODES, AgentError } from '../errors.js';
import { AgentState } from '../state/agent-state.js';
import { resolveTargets } from '../targets.js';
import { sweepInterrupted } from '../offload/recovery.js';
import { scanCard } from '../card/scanner.js';
import { cardIdentity, cardLabel, readVolumeLabels, type VolumeLabels } from '../card/identity.js';
import { offloadCard, reportSummary } from '../offload/offload-card.js';
import { defaultShootName } from '../config.js';
import { MountInfoVolumeSource } from '../card/volume-source.js';
import { formatProgressLine, type ProgressTracker } from '@studio321/protocol';
import { summariseCard } from '../state/status.js';
import { backfillFieldDrive } from '../offload/backfill.js';
import { loadContext, parse, reportError, type CommandIo } from './common.js';

const USAGE =
  'usage: field-agent ingest <path> [--shoot NAME] [--card-label LABEL] [--json] [--data-dir DIR] [--config FILE]';

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

export async function ingestCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(argv, { shoot: { type: 'string' }, 'card-label': { type: 'string' } }, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const json = values.json === true;
  const target = positionals[0];
  if (target === undefined || positionals.length > 1)
    throw new AgentError(AGENT_CODES.usage, `give exactly one folder to ingest\n${USAGE}`);
  const { paths, config } = await loadContext(values, io.env);
  let shoot: string;
  try {
    shoot = validateSegment(values.shoot ?? config.shoot ?? defaultShootName());
  } catch (err) {
    throw new AgentError(
      AGENT_CODES.usage,
      `--shoot must be one folder name (no "/", no control characters)\n${USAGE}`,
      { cause: err },
    );
  }
  let root: string;
  try {
    root = await realpath(resolve(target));
  } catch (err) {
    throw new AgentError(AGENT_CODES.notAFolder, `${target} does not exist: check the path (is the card mounted?).`, {
      cause: err,
      detail: { path: target },
    });
  }

  const startedAt = performance.now();
  const log = createLogger({ name: 'field-agent', level: 'warn', stream: io.stderr });
  const state = await AgentState.open(paths.dataDir);
  const abort = new AbortController();
  const onSignal = (): void => abort.abort(new AgentError(AGENT_CODES.aborted, 'interrupted', { retryable: true }));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let lastLine = 0;
  const showProgress = (p: ProgressTracker, force = false): void => {
    const now = Date.now();
    if (!force && now - lastLine < (io.stderr.isTTY ? 200 : 1000)) return;
    lastLine = now;
    const line = formatProgressLine(p.snapshot());
    io.stderr.write(io.stderr.isTTY ? `\r${line}\u001b[K` : `${line}\n`);
  };
  try {
    const resolved = await resolveTargets(config.store, config.fieldDrive, {
      storeHasCopies: () => state.hasCopiesUnder('laptop', config.store),
    });
    if (resolved.fieldDriveProblem !== undefined)
      io.stderr.write(`field-agent: ${resolved.fieldDriveProblem.code}: ${resolved.fieldDriveProblem.message}\n`);
    await sweepInterrupted(state, resolved.targets);
    const scan = await scanCard(root, { signal: abort.signal });
    if (scan.files.length === 0 && scan.warnings.length === 0) {
      // Nothing to copy is not "done": a card the camera wrote to should not read empty.
      const err = new AgentError(
        AGENT_CODES.emptyCard,
        `${root} holds no files: nothing was copied and nothing on it is safe. If the camera wrote to it, do not format it: check it in a reader.`,
        { detail: { path: root } },
      );
      if (json) io.stdout.write(`${JSON.stringify({ event: 'done', ok: false, files: 0, ...err.toJSON() })}\n`);
      else io.stdout.write(`${root}: no files — nothing copied\n`);
      io.stderr.write(`field-agent: ${err.code}: ${err.message}\n`);
      return EXIT.notSafe;
    }
    // A folder given by hand is copied even without a camera layout, but not without a word.
    const layouts = await detectCameraLayouts(root);
    const notACard =
      layouts.length === 0
        ? {
            path: root,
            code: AGENT_CODES.notACard,
            message: `${root} is not a camera card (no DCIM, PRIVATE/M4ROOT, PRIVATE/AVCHD, XDROOT or CLIP folder): it is copied as a plain folder. Check it is the folder you meant.`,
          }
        : undefined;
    if (notACard !== undefined) io.stderr.write(`field-agent: ${notACard.code}: ${notACard.message}\n`);
    const vol = await volumeAt(root);
    const cardLabelOpt = values['card-label'];
    const label = cardLabel(vol.labels, root, cardLabelOpt);
    const identity = cardIdentity({
      label,
      ...(vol.labels.uuid === undefined ? {} : { uuid: vol.labels.uuid }),
      files: scan.files,
      ...(vol.isMount ? {} : { folder: root }),
    });
    let progress: ProgressTracker | undefined;
    const report = await offloadCard(
      {
        state,
        targets: resolved.targets,
        signal: abort.signal,
        log,
        onFile: (o) => {
          if (json) io.stdout.write(`${JSON.stringify({ event: 'file', card: identity.id, ...o })}\n`);
        },
        onProgress: (p) => {
          progress = p;
          showProgress(p);
        },
      },
      {
        root,
        card: {
          id: identity.id,
          label: identity.label,
          ...(identity.uuid === undefined ? {} : { uuid: identity.uuid }),
          kind: vol.isMount ? 'card' : 'folder',
          source: root,
          shoot,
        },
        scan,
      },
    );
    if (progress !== undefined) {
      showProgress(progress, true);
      if (io.stderr.isTTY) io.stderr.write('\n');
    }
    // Files offloaded earlier while the field drive was away get their copy on it now.
    const backfill =
      report.stoppedBy === undefined
        ? await backfillFieldDrive({ state, targets: resolved.targets, signal: abort.signal, log, sweepTemps: true })
        : undefined;
    if (backfill !== undefined && backfill.missing > 0) {
      if (json)
        io.stdout.write(
          `${JSON.stringify({
            event: 'backfill',
            missing: backfill.missing,
            copied: backfill.copied,
            bytes: backfill.bytes,
            failed: backfill.failed,
            ...(backfill.stoppedBy === undefined ? {} : { stoppedBy: backfill.stoppedBy.toJSON() }),
          })}\n`,
        );
      else
        io.stdout.write(
          `field drive: ${backfill.copied} of ${backfill.missing} files offloaded earlier copied to it${backfill.failed.length > 0 ? `, ${backfill.failed.length} failed` : ''}\n`,
        );
      for (const f of backfill.failed) io.stderr.write(`field-agent: ${f.code}: ${f.message}\n`);
      if (backfill.stoppedBy !== undefined)
        io.stderr.write(`field-agent: ${backfill.stoppedBy.code}: ${backfill.stoppedBy.message}\n`);
    }
    if (notACard !== undefined) report.warnings.unshift(notACard);
    // A card offloaded into this store before stays in its shoot (its files are there); say so.
    const shootKept =
      values.shoot !== undefined && report.card.shoot !== shoot
        ? `${report.card.id} was offloaded into shoot ${report.card.shoot} of this store before: it stays there (--shoot ${shoot} applies to new cards and to another store).`
        : undefined;
    if (shootKept !== undefined) io.stderr.write(`field-agent: ${shootKept}\n`);
    const summary = await summariseCard(state, report.card, config.policy.copiesBeforeFormat);
    const failed = report.failed.length > 0 || report.stoppedBy !== undefined;
    if (json) {
      io.stdout.write(
        `${JSON.stringify({
          event: 'done',
          ok: !failed,
          card: report.card.id,
          label: report.card.label,
          storeDir: `${config.store}/${report.card.shoot}/${report.card.id}`,
          files: report.files,
          copied: report.copied,
          duplicates: report.duplicates,
          alreadyVerified: report.alreadyVerified,
          bytesCopied: report.bytesCopied,
          failed: report.failed,
          warnings: report.warnings,
          ...(report.stoppedBy === undefined ? {} : { stoppedBy: report.stoppedBy.toJSON() }),
          safeToFormat: summary.safeToFormat,
          shoot: report.card.shoot,
          elapsedMs: Math.round(performance.now() - startedAt),
          peakRssBytes: process.resourceUsage().maxRSS * 1024,
        })}\n`,
      );
    } else {
      io.stdout.write(`${reportSummary(report)}\n`);
      io.stdout.write(`stored in ${config.store}/${report.card.shoot}/${report.card.id}\n`);
      for (const f of report.failed) io.stdout.write(`  FAILED ${f.path}: ${f.code}: ${f.message}\n`);
      for (const w of report.warnings) io.stdout.write(`  WARNING ${w.path}: ${w.code}: ${w.message}\n`);
      io.stdout.write(`safe to format: ${summary.safeToFormat.safe ? 'YES' : 'NO'} — ${summary.safeToFormat.reason}\n`);
    }
    if (report.stoppedBy !== undefined)
      io.stderr.write(`field-agent: ${report.stoppedBy.code}: ${report.stoppedBy.message}\n`);
    return failed ? 1 : 0;
  } catch (err) {
    return reportError(err, io, json);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await state.close();
  }
}
