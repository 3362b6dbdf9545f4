/**
 * `field-agent status`: from the status summary (summary.ts), which the state keeps in the very
 * batches that change what it counts, so it cannot disagree with the records it summarises and
 * costs a few reads per card however many files they hold. Files listed by name (warnings,
 * errors, safe-to-format examples) are the first ones, with a count of the rest.
 */
import type { StatusReads } from './status-snapshot.js';
import type { CardRecord } from './records.js';
import {
  countCopyDevices,
  EXAMPLES,
  evaluateSafeToFormat,
  shortExample,
  signatureView,
  type SafeToFormat,
} from './safe-to-format.js';
import { formatBytes } from '@studio321/protocol/base';
import { fieldDriveName, probeTargets } from '../targets.js';

export interface CardSummary {
  id: string;
  label: string;
  kind: CardRecord['kind'];
  shoot: string;
  source: string;
  firstSeen: string;
  lastSeen: string;
  lastRun?: CardRecord['lastRun'];
  files: number;
  bytes: number;
  verifiedFiles: number;
  verifiedBytes: number;
  failedFiles: number;
  skippedEntries: number;
  /** Verified here, asset not yet receipted by the studio. */
  queuedFiles: number;
  atStudioFiles: number;
  /** Files the studio's last verdict (link/verdicts.ts) shows with an offsite copy: its claim, not a laptop copy. */
  offsiteFiles: number;
  /** Files the studio's last verdict holds 3-2-1 compliant. */
  studioCompliantFiles: number;
  /**
   * The studio's copies of the card's files by its last verdicts, per target: shown apart from the
   * laptop's own copies, never counted toward safe to format. `checkedAt`: the oldest verdict.
   */
  studioCopies: Array<{
    target: string;
    media: string;
    location: string;
    offsite: boolean;
    storageClass?: string;
    files: number;
  }>;
  verdictCheckedAt?: string;
  /** Files whose laptop copy the freeLaptop policy deleted (free-laptop.ts); `freedAt`: the last one. */
  freedFiles: number;
  freedAt?: string;
  safeToFormat: SafeToFormat;
  /** The first LISTED unresolved warnings (path order); `moreWarnings`: how many more there are. */
  warnings: Array<{ path: string; code: string; message: string }>;
  moreWarnings: number;
  /** The first LISTED files that failed (path order); `moreErrors`: how many more failed. */
  errors: Array<{ path: string; code: string; message: string; at: string }>;
  moreErrors: number;
}

/** How many warnings and errors a card's summary lists by name. */
export const LISTED = 50;

/** The physical disk under a destination there now (disk-identity.ts). */
export interface DestinationDisk {
  /** `disk:<id>,…`, or `nodisk:<st_dev>` when not known. */
  device: string;
  /** Why the disk is not known: the copies there add no device to safe to format. */
  diskUnknown?: string;
}

/** A configured field drive: is it there, and how much waits for its back-fill (backfill.ts). */
export interface FieldDriveStatus extends Partial<DestinationDisk> {
  /** Its target name: `field-drive`, `field-drive-2`… (config order). */
  target: string;
  path: string;
  connected: boolean;
  /** Verified here without a field-drive copy: copied onto the drive when it is connected. */
  waitingFiles: number;
  waitingBytes: number;
}

export interface AgentStatus {
  cards: CardSummary[];
  queue: { files: number; bytes: number };
  copiesBeforeFormat: number;
  /** Every configured field drive, in config order (absent or empty: none). */
  fieldDrives?: FieldDriveStatus[];
  /** The first of `fieldDrives` (what readers of one field drive know). */
  fieldDrive?: FieldDriveStatus;
  /** The laptop store's disk, when the store was given and is there. */
  laptop?: DestinationDisk & { path: string };
}

export async function summariseCard(state: StatusReads, ref: CardRecord, copiesNeeded: number): Promise<CardSummary> {
  const { card, sums } = await state.cardSums(ref.id);
  const n = (k: string): number => sums.c[k] ?? 0;
  // Read only where the counters say there are entries: deleted entries stay in LevelDB until a
  // compaction drops them, and a read of an emptied range would step over every one of them.
  const index = (rel: string, count: number, limit: number, reverse = false): Promise<Array<[string, unknown]>> =>
    limit <= 0 || count <= 0 ? Promise.resolve([]) : state.summaryIndex(card.id, sums.epoch, rel, { limit, reverse });
  const warnings = (await index('w/', n('warnings'), LISTED)).map(([k, v]) => ({
    path: k.slice(2),
    ...(v as { code: string; message: string }),
  }));
  const errors = (await index('e/', n('failed'), LISTED)).map(([k, v]) => ({
    path: k.slice(2),
    ...(v as { code: string; message: string; at: string }),
  }));
  // Safe-to-format examples: unresolved warnings, then files not copied, then files short of copies.
  const examples = warnings.slice(0, EXAMPLES).map((w) => `${w.path}: ${w.code}`);
  for (const [k, v] of await index('n/', n('notCopied'), EXAMPLES - examples.length)) {
    const code = (v as { code?: string }).code;
    examples.push(`${k.slice(2)}: not copied yet${code === undefined ? '' : ` (${code})`}`);
  }
  const signatures = Object.entries(sums.sigs).map(([id, sig]) => ({
    id,
    sig,
    files: n(`sig:${id}`),
    damaged: n(`dmg:${id}`),
    have: countCopyDevices(signatureView(sig), card),
  }));
  for (const s of signatures) {
    if (s.have >= copiesNeeded) continue;
    for (const [k, blake3] of await index(`d/${s.id}/`, s.files, EXAMPLES - examples.length)) {
      const path = k.slice(`d/${s.id}/`.length);
      examples.push(shortExample(path, await state.getAsset(blake3 as string), s.have, copiesNeeded, card));
    }
  }
  const checked = await index('v/', n('verdicts'), 1);
  const freed = await index('f/', n('freed'), 1, true);
  const studioCopies = Object.entries(sums.c)
    .filter(([k]) => k.startsWith('sc:'))
    .map(([k, files]) => {
      const [target, media, location, offsite, storageClass] = JSON.parse(k.slice(3)) as [
        string,
        string,
        string,
        boolean,
        string | null,
      ];
      return { target, media, location, offsite, ...(storageClass === null ? {} : { storageClass }), files };
    })
    .sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  return {
    id: card.id,
    label: card.label,
    kind: card.kind,
    shoot: card.shoot,
    source: card.source,
    firstSeen: card.firstSeen,
    lastSeen: card.lastSeen,
    ...(card.lastRun === undefined ? {} : { lastRun: card.lastRun }),
    files: n('files'),
    bytes: n('bytes'),
    verifiedFiles: n('verified'),
    verifiedBytes: n('verifiedBytes'),
    failedFiles: n('failed'),
    skippedEntries: n('skipped'),
    queuedFiles: n('queued'),
    atStudioFiles: n('atStudio'),
    offsiteFiles: n('offsite'),
    studioCompliantFiles: n('compliant'),
    studioCopies,
    ...(checked[0] === undefined ? {} : { verdictCheckedAt: checked[0][0].slice(2).split('/')[0] as string }),
    freedFiles: n('freed'),
    ...(freed[0] === undefined ? {} : { freedAt: freed[0][0].slice(2).split('/')[0] as string }),
    safeToFormat: evaluateSafeToFormat(
      card,
      {
        entries: n('entries'),
        notCopied: n('notCopied'),
        unresolvedWarnings: n('warnings'),
        warned: warnings.slice(0, 3).map((w) => `${w.path} (${w.code})`),
        signatures,
        examples,
      },
      copiesNeeded,
    ),
    warnings,
    moreWarnings: n('warnings') - warnings.length,
    errors,
    moreErrors: n('failed') - errors.length,
  };
}

function destinationDisk(t: { device: string; diskUnknown?: string }): DestinationDisk {
  return { device: t.device, ...(t.diskUnknown === undefined ? {} : { diskUnknown: t.diskUnknown }) };
}

export async function buildStatus(
  state: StatusReads,
  copiesNeeded: number,
  fieldDrives: readonly string[] = [],
  store?: string,
): Promise<AgentStatus> {
  const targets = await probeTargets(store, fieldDrives);
  await state.refreshLegacyDevices(targets);
  const laptop = targets.find((t) => t.name === 'laptop');
  const cards: CardSummary[] = [];
  for (const card of await state.listCards())
    if (card.forgottenAt === undefined) cards.push(await summariseCard(state, card, copiesNeeded));
  cards.sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : a.lastSeen > b.lastSeen ? -1 : 0));
  const st: AgentStatus = {
    cards,
    queue: await state.queueDepth(),
    copiesBeforeFormat: copiesNeeded,
  };
  const drives: FieldDriveStatus[] = [];
  if (laptop !== undefined) st.laptop = { path: laptop.root, ...destinationDisk(laptop) };
  for (const [i, path] of fieldDrives.entries()) {
    const name = fieldDriveName(i);
    const drive = targets.find((t) => t.name === name);
    const waiting = await state.backfillWaiting(name);
    drives.push({
      target: name,
      path,
      connected: drive !== undefined,
      ...(drive === undefined ? {} : destinationDisk(drive)),
      waitingFiles: waiting.files,
      waitingBytes: waiting.bytes,
    });
  }
  if (drives[0] !== undefined) {
    st.fieldDrives = drives;
    st.fieldDrive = drives[0];
  }
  return st;
}

function diskLine(d: Partial<DestinationDisk>): string {
  if (d.diskUnknown !== undefined) return `physical disk NOT known (${d.diskUnknown}): its copies add no device`;
  return `on ${d.device ?? '?'}`;
}

export function formatStatus(st: AgentStatus): string {
  const lines: string[] = [];
  lines.push(`Queue to studio: ${st.queue.files} files, ${formatBytes(st.queue.bytes)}`);
  for (const fd of st.fieldDrives ?? []) {
    const waiting =
      fd.waitingFiles === 0
        ? 'every file has its copy there'
        : `${fd.waitingFiles} files (${formatBytes(fd.waitingBytes)}) wait for their copy there${fd.connected ? '' : ', made when it is connected'}`;
    lines.push(
      `Field drive ${fd.target === 'field-drive' ? '' : `(${fd.target}) `}${fd.path}: ${fd.connected ? 'connected' : 'NOT connected'}; ${waiting}${fd.connected ? `; ${diskLine(fd)}` : ''}`,
    );
  }
  if (st.laptop !== undefined) lines.push(`Laptop store ${st.laptop.path}: ${diskLine(st.laptop)}`);
  if (st.cards.length === 0) lines.push('No cards seen yet.');
  for (const c of st.cards) {
    lines.push('');
    lines.push(`${c.label}  [${c.id}]  ${c.kind}, shoot ${c.shoot}, last seen ${c.lastSeen}`);
    lines.push(
      `  files ${c.files} (${formatBytes(c.bytes)}): verified ${c.verifiedFiles} (${formatBytes(c.verifiedBytes)}), queued ${c.queuedFiles}, at studio ${c.atStudioFiles}, offsite ${c.offsiteFiles}, failed ${c.failedFiles}, skipped ${c.skippedEntries}`,
    );
    if (c.verdictCheckedAt !== undefined) {
      const copies = c.studioCopies
        .map(
          (x) =>
            `${x.target} ${x.files}${x.offsite ? ' offsite' : ''}${x.storageClass === undefined ? '' : ` ${x.storageClass}`}`,
        )
        .join(', ');
      lines.push(
        `  at the studio, by its verdict of ${c.verdictCheckedAt}: 3-2-1 compliant ${c.studioCompliantFiles} of ${c.files}; its copies: ${copies || 'none'}`,
      );
    }
    if (c.freedFiles > 0)
      lines.push(
        `  laptop copies freed on ${c.freedAt ?? '?'} (${c.freedFiles} of ${c.files} files), at the studio: ${c.studioCompliantFiles >= c.freedFiles ? 'compliant' : 'NOT all compliant now'}`,
      );
    if (c.kind !== 'hot-folder') {
      lines.push(`  safe to format: ${c.safeToFormat.safe ? 'YES' : 'NO'} — ${c.safeToFormat.reason}`);
      for (const e of c.safeToFormat.safe ? [] : c.safeToFormat.examples) lines.push(`    ${e}`);
    }
    if (c.lastRun?.state === 'interrupted')
      lines.push(`  last offload stopped: ${c.lastRun.code ?? ''} ${c.lastRun.message ?? ''}`);
    for (const w of c.warnings) lines.push(`  warning ${w.code}: ${w.message}`);
    if (c.moreWarnings > 0) lines.push(`  … and ${c.moreWarnings} more warnings`);
    for (const e of c.errors) lines.push(`  error ${e.code}: ${e.message}`);
    if (c.moreErrors > 0) lines.push(`  … and ${c.moreErrors} more errors`);
  }
  return lines.join('\n');
}
