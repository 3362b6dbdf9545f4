/**
 * `field-agent status`: computed from the state database each time (never from
 * stored counters), so it cannot disagree with the records it summarises.
 */
import { backfillCandidates, type AgentState } from './agent-state.js';
import type { AssetRecord, CardRecord, FileRecord } from './records.js';
import { evaluateSafeToFormat, type SafeToFormat } from './safe-to-format.js';
import { formatBytes } from '@studio321/protocol';
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
  warnings: Array<{ path: string; code: string; message: string; resolved: boolean }>;
  errors: Array<{ path: string; code: string; message: string; at: string }>;
}

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

/**
 * Offsite as far as the agent knows. A studio receipt covers the studio's LOCAL
 * targets (mirror, RAID), which are never offsite; cloud copies are made later and
 * reach the agent with the studio's verdict (link/verdicts.ts). The agent never
 * guesses from a location name: a copy is offsite only when the verdict says so.
 */
function isOffsite(asset: AssetRecord): boolean {
  return asset.verdict?.copies.some((c) => c.offsite) === true;
}

export async function summariseCard(state: AgentState, card: CardRecord, copiesNeeded: number): Promise<CardSummary> {
  const files: FileRecord[] = await state.cardFiles(card, { current: true });
  const assets = await state.getAssets(files.flatMap((f) => (f.blake3 === undefined ? [] : [f.blake3])));
  const s: CardSummary = {
    id: card.id,
    label: card.label,
    kind: card.kind,
    shoot: card.shoot,
    source: card.source,
    firstSeen: card.firstSeen,
    lastSeen: card.lastSeen,
    ...(card.lastRun === undefined ? {} : { lastRun: card.lastRun }),
    files: 0,
    bytes: 0,
    verifiedFiles: 0,
    verifiedBytes: 0,
    failedFiles: 0,
    skippedEntries: 0,
    queuedFiles: 0,
    atStudioFiles: 0,
    offsiteFiles: 0,
    studioCompliantFiles: 0,
    studioCopies: [],
    freedFiles: 0,
    safeToFormat: evaluateSafeToFormat(card, files, assets, copiesNeeded),
    warnings: [],
    errors: [],
  };
  for (const f of files) {
    if (f.warning !== undefined)
      s.warnings.push({
        path: f.path,
        code: f.warning.code,
        message: f.warning.message,
        resolved: f.warning.resolvedAt !== undefined,
      });
    if (f.state === 'skipped') {
      s.skippedEntries += 1;
      continue;
    }
    s.files += 1;
    s.bytes += f.size;
    if (f.state === 'failed' && f.error !== undefined) {
      s.failedFiles += 1;
      s.errors.push({ path: f.path, code: f.error.code, message: f.error.message, at: f.error.at });
    }
    if (f.state !== 'verified' || f.blake3 === undefined) continue;
    s.verifiedFiles += 1;
    s.verifiedBytes += f.size;
    const a = assets.get(f.blake3);
    if (a?.studio !== undefined) {
      s.atStudioFiles += 1;
      if (isOffsite(a)) s.offsiteFiles += 1;
      addVerdict(s, a);
    } else {
      s.queuedFiles += 1;
    }
    if (a?.freed !== undefined) {
      s.freedFiles += 1;
      if (s.freedAt === undefined || a.freed.at > s.freedAt) s.freedAt = a.freed.at;
    }
  }
  return s;
}

/** One file's studio verdict into the card's summary. */
function addVerdict(s: CardSummary, a: AssetRecord): void {
  const v = a.verdict;
  if (v === undefined) return;
  if (v.compliant) s.studioCompliantFiles += 1;
  if (s.verdictCheckedAt === undefined || v.checkedAt < s.verdictCheckedAt) s.verdictCheckedAt = v.checkedAt;
  for (const c of v.copies) {
    const row = s.studioCopies.find((x) => x.target === c.target);
    if (row !== undefined) row.files += 1;
    else
      s.studioCopies.push({
        target: c.target,
        media: c.media,
        location: c.location,
        offsite: c.offsite,
        ...(c.storageClass === undefined ? {} : { storageClass: c.storageClass }),
        files: 1,
      });
  }
}

function destinationDisk(t: { device: string; diskUnknown?: string }): DestinationDisk {
  return { device: t.device, ...(t.diskUnknown === undefined ? {} : { diskUnknown: t.diskUnknown }) };
}

export async function buildStatus(
  state: AgentState,
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
    const waiting = await backfillCandidates(state, name);
    drives.push({
      target: name,
      path,
      connected: drive !== undefined,
      ...(drive === undefined ? {} : destinationDisk(drive)),
      waitingFiles: waiting.length,
      waitingBytes: waiting.reduce((n, a) => n + a.size, 0),
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
    for (const w of c.warnings.filter((x) => !x.resolved)) lines.push(`  warning ${w.code}: ${w.message}`);
    for (const e of c.errors) lines.push(`  error ${e.code}: ${e.message}`);
  }
  return lines.join('\n');
}
