/**
 * `field-agent ingest <path> [--shoot S] [--card-label L] [--rename TEMPLATE] [--json]`
 *
 * Offloads one card or folder given by hand and exits: 0 when every file is
 * verified, 1 when any file failed or the offload had to stop (a card that cannot
 * fit is refused before anything is copied: AGENT_NOT_ENOUGH_SPACE), 2 for bad
 * usage, 3 when the card holds no files (AGENT_EMPTY_CARD: nothing to do is not
 * "done"). A folder without a camera layout is copied with a warning (AGENT_NOT_A_CARD).
 * `--rename` renames each sidecar group by a template (offload/rename-template.ts; else the
 * config's template for the shoot); a template with a typo is AGENT_RENAME_TEMPLATE (exit 2),
 * before anything is copied.
 * Progress (bytes, files, MB/s, ETA) goes to stderr; the summary to stdout
 * (`--json`: one JSON line per file, then the report).
 */
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { validateSegment, createLogger, errorCode, EXIT, type ProgressSnapshot } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from '../errors.js';
import { defaultShootName } from '../config.js';
import { ingestFolder, type IngestOutcome, type IngestRequest } from '../offload/ingest-folder.js';
import { renameFor } from '../offload/rename-template.js';
import type { FileOutcome } from '../offload/offloader.js';
import { callRunningAgent, directOrRunning } from './running-agent.js';
import { loadContext, parse, progressPrinter, reportError, type CommandIo } from './common.js';
import { statusBuilder } from './status.js';

const USAGE =
  'usage: field-agent ingest <path> [--shoot NAME] [--card-label LABEL] [--rename TEMPLATE] [--json] [--data-dir DIR] [--config FILE]';

export async function ingestCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { shoot: { type: 'string' }, 'card-label': { type: 'string' }, rename: { type: 'string' } },
    USAGE,
  );
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
  // Checked here first (exit 2 before the state DB is touched); again where the offload runs.
  renameFor(config, shoot, values.rename);
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
  const abort = new AbortController();
  const onSignal = (): void => abort.abort(new AgentError(AGENT_CODES.aborted, 'interrupted', { retryable: true }));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const progress = progressPrinter(io);
  const onFile = (card: string, o: FileOutcome): void => {
    if (json) io.stdout.write(`${JSON.stringify({ event: 'file', card, ...o })}\n`);
  };
  const cardLabelOpt = values['card-label'];
  const req: IngestRequest = {
    root,
    shoot,
    shootGiven: values.shoot !== undefined,
    ...(cardLabelOpt === undefined ? {} : { cardLabel: cardLabelOpt }),
    ...(values.rename === undefined ? {} : { rename: values.rename }),
  };
  try {
    // While `field-agent run` holds the state DB, the running agent offloads the folder (in turn
    // with the cards it sees) and streams the same progress and file events back.
    const outcome = await directOrRunning(
      paths.dataDir,
      (state) =>
        ingestFolder(
          {
            state,
            store: config.store,
            fieldDrives: config.fieldDrives,
            copiesNeeded: config.policy.copiesBeforeFormat,
            renaming: config,
            log,
            signal: abort.signal,
            sweepTemps: true,
            onFile,
            onProgress: (p) => progress.show(p.snapshot()),
          },
          req,
        ),
      async () =>
        (await callRunningAgent(
          paths.dataDir,
          '/api/ingest',
          {
            root: req.root,
            shoot: req.shoot,
            ...(req.shootGiven === true ? { shootGiven: '1' } : {}),
            ...(req.cardLabel === undefined ? {} : { cardLabel: req.cardLabel }),
            ...(req.rename === undefined ? {} : { rename: req.rename }),
          },
          AGENT_CODES.stateLocked,
          {
            signal: abort.signal,
            onEvent: (e) => {
              if (e['event'] === 'progress') progress.show(e['progress'] as ProgressSnapshot);
              else if (e['event'] === 'file') onFile(String(e['card']), e['file'] as FileOutcome);
            },
          },
        )) as IngestOutcome,
      // The next `field-agent status` answers from what this ingest leaves (status-snapshot.ts).
      { status: statusBuilder(config) },
    );
    progress.done();
    printOutcome(outcome, io, json, startedAt);
    return outcome.ok ? EXIT.ok : EXIT.error;
  } catch (err) {
    progress.done();
    if (errorCode(err) === AGENT_CODES.emptyCard && err instanceof Error) {
      const coded = err as AgentError;
      if (json) io.stdout.write(`${JSON.stringify({ event: 'done', ok: false, files: 0, ...coded.toJSON() })}\n`);
      else io.stdout.write(`${root}: no files — nothing copied\n`);
      io.stderr.write(`field-agent: ${coded.code}: ${coded.message}\n`);
      return EXIT.notSafe;
    }
    return reportError(err, io, json);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function printOutcome(o: IngestOutcome, io: CommandIo, json: boolean, startedAt: number): void {
  if (o.notACard !== undefined) io.stderr.write(`field-agent: ${o.notACard.code}: ${o.notACard.message}\n`);
  if (o.shootKept !== undefined) io.stderr.write(`field-agent: ${o.shootKept}\n`);
  for (const p of o.fieldDriveProblems ?? []) io.stderr.write(`field-agent: ${p.code}: ${p.message}\n`);
  const b = o.backfill;
  if (b !== undefined) {
    if (json)
      io.stdout.write(
        `${JSON.stringify({
          event: 'backfill',
          missing: b.missing,
          copied: b.copied,
          bytes: b.bytes,
          failed: b.failed,
          ...(b.stoppedBy === undefined ? {} : { stoppedBy: b.stoppedBy }),
        })}\n`,
      );
    else
      io.stdout.write(
        `field drive: ${b.copied} of ${b.missing} files offloaded earlier copied to it${b.failed.length > 0 ? `, ${b.failed.length} failed` : ''}\n`,
      );
    for (const f of b.failed) io.stderr.write(`field-agent: ${f.code}: ${f.message}\n`);
    if (b.stoppedBy !== undefined) io.stderr.write(`field-agent: ${b.stoppedBy.code}: ${b.stoppedBy.message}\n`);
  }
  if (json) {
    io.stdout.write(
      `${JSON.stringify({
        event: 'done',
        ok: o.ok,
        card: o.card,
        label: o.label,
        storeDir: o.storeDir,
        files: o.files,
        copied: o.copied,
        duplicates: o.duplicates,
        alreadyVerified: o.alreadyVerified,
        bytesCopied: o.bytesCopied,
        failed: o.failed,
        warnings: o.warnings,
        ...(o.stoppedBy === undefined ? {} : { stoppedBy: o.stoppedBy }),
        safeToFormat: o.safeToFormat,
        shoot: o.shoot,
        elapsedMs: Math.round(performance.now() - startedAt),
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
      })}\n`,
    );
  } else {
    io.stdout.write(`${o.summary}\n`);
    io.stdout.write(`stored in ${o.storeDir}\n`);
    for (const f of o.failed) io.stdout.write(`  FAILED ${f.path}: ${f.code}: ${f.message}\n`);
    for (const w of o.warnings) io.stdout.write(`  WARNING ${w.path}: ${w.code}: ${w.message}\n`);
    io.stdout.write(`safe to format: ${o.safeToFormat.safe ? 'YES' : 'NO'} — ${o.safeToFormat.reason}\n`);
  }
  if (o.stoppedBy !== undefined) io.stderr.write(`field-agent: ${o.stoppedBy.code}: ${o.stoppedBy.message}\n`);
}
