/**
 * One card, start to end: list it, know it, copy what is missing, say how it went.
 *
 *   scanCard → cardIdentity → state.beginOffload (run = running, sync)
 *   → state.recordScan (one batch) → checkSpace (space.ts: refused up front when the
 *   card cannot fit) → CardOffloader.run → state.endOffload
 *
 * A card re-inserted after a pull, a crash or a full disk gets the same id; its
 * verified files are skipped, the rest (including the file that was half copied)
 * are copied again from the card.
 */
import { AGENT_CODES, AgentError } from '../errors.js';
import { checkSpace } from './space.js';
import type { CardInput } from '../state/agent-state.js';
import type { ScanResult } from '../card/scanner.js';
import type { CardRecord } from '../state/records.js';
import { CardOffloader, OffloadStop, type FileOutcome, type OffloadContext } from './offloader.js';
import { ProgressTracker } from '@studio321/protocol';
import { MhlSpool } from './mhl-generation.js';

export interface CardReport {
  card: CardRecord;
  /** Files on the card (regular files in the listing). */
  files: number;
  /** Already verified before this run. */
  alreadyVerified: number;
  copied: number;
  duplicates: number;
  failed: FileOutcome[];
  bytesCopied: number;
  /**
   * Every unresolved warning of the card after this run, each naming its file: entries
   * skipped (symlinks, special files, bad names, unreadable folders) and files kept with
   * a warning (zero-byte files, files that changed while copied).
   */
  warnings: Array<{ path: string; code: string; message: string }>;
  /** Set when the offload had to stop before the end. */
  stoppedBy?: AgentError;
  /** The ASC MHL generations this run wrote (mhl-generation.ts), one per target it copied to. */
  mhl: string[];
}

export interface OffloadCardInput {
  root: string;
  card: Omit<CardInput, 'dev' | 'disk'>;
  /** The card's listing. Taken over: its `files` are emptied once recorded (the report keeps their count). */
  scan: ScanResult;
}

export async function offloadCard(
  ctx: Omit<OffloadContext, 'progress'> & { onProgress?: (p: ProgressTracker) => void },
  input: OffloadCardInput,
): Promise<CardReport> {
  const { state } = ctx;
  const store = ctx.targets[0]?.root;
  await state.beginOffload({
    ...input.card,
    dev: input.scan.dev,
    disk: input.scan.disk,
    ...(store === undefined ? {} : { store }),
  });
  const todo = await state.recordScan(input.card.id, input.scan, new Date(), store);
  const card = (await state.getCard(input.card.id)) as CardRecord;
  const progress = new ProgressTracker({ totalBytes: todo.reduce((n, f) => n + f.size, 0), totalFiles: todo.length });
  // Each copied file goes to the MHL spool as it is recorded; the offloader keeps counts and
  // failures only, so nothing kept per file grows with the card until its end.
  const mhl = new MhlSpool(ctx, card, input.scan.files);
  // The listing is recorded: from here on only the to-do list is needed. Let the listing go (the
  // caller's ScanResult too) rather than hold both for a card of 100,000 files.
  const listedFiles = input.scan.files.length;
  input.scan.files = [];
  const offloader = new CardOffloader(
    {
      ...ctx,
      progress,
      keepOutcomes: false,
      onFile: (o) => {
        mhl.add(o);
        ctx.onFile?.(o);
        ctx.onProgress?.(progress);
      },
    },
    card,
    input.root,
  );
  const report: CardReport = {
    card,
    files: listedFiles,
    alreadyVerified: listedFiles - todo.length,
    copied: 0,
    duplicates: 0,
    failed: [],
    bytesCopied: 0,
    warnings: input.scan.warnings.map((w) => ({ ...w })),
    mhl: [],
  };
  try {
    await checkSpace(state, ctx.targets, todo);
    await offloader.run(todo);
  } catch (e) {
    const err = e instanceof AgentError && e.code === AGENT_CODES.notEnoughSpace ? new OffloadStop(e) : e;
    if (!(err instanceof OffloadStop)) {
      await mhl.discard();
      throw err;
    }
    report.stoppedBy = err.error;
  }
  report.copied = offloader.tally.copied;
  report.bytesCopied = offloader.tally.bytesCopied;
  report.duplicates = offloader.tally.duplicates;
  report.failed = offloader.tally.failed;
  report.mhl = await mhl.write();
  const first = report.stoppedBy ?? report.failed[0];
  await state
    .endOffload(card.id, {
      state: report.stoppedBy === undefined ? 'done' : 'interrupted',
      ...(first?.code === undefined ? {} : { code: first.code }),
      ...(first?.message === undefined ? {} : { message: first.message }),
    })
    .catch(() => undefined);
  report.card = (await state.getCard(card.id)) ?? card;
  // The card's unresolved warnings from its status summary's index (not every file record of the card).
  const seen = new Set(report.warnings.map((w) => `${w.path}\0${w.code}`));
  const { sums } = await state.cardSums(card.id);
  const listed =
    (sums.c.warnings ?? 0) === 0
      ? []
      : await state.summaryIndex(card.id, sums.epoch, 'w/', { limit: Number.MAX_SAFE_INTEGER });
  for (const [k, v] of listed) {
    const w = v as { code: string; message: string };
    const path = k.slice('w/'.length);
    if (!seen.has(`${path}\0${w.code}`)) report.warnings.push({ path, code: w.code, message: w.message });
  }
  return report;
}

/** One line for `field-agent ingest`: the card, its file count, and how many were copied, deduplicated, verified earlier or failed. */
export function reportSummary(r: CardReport): string {
  const parts = [
    `${r.copied} copied`,
    `${r.duplicates} already stored`,
    `${r.alreadyVerified} verified earlier`,
    `${r.failed.length} failed`,
  ];
  return `${r.card.label} (${r.card.id}): ${r.files} files — ${parts.join(', ')}`;
}
