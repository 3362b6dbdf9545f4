/**
 * The `studioctl status` report: what the studio holds, how much of it is
 * 3-2-1 safe, and what is missing for the rest — per target the count, bytes
 * and oldest asset still lacking a verified copy there (and, for cloud targets,
 * the upload queue), agents, target free space, the last verify, last errors.
 *
 * Only archive copies count (ledger.ts); field copies (agent-reported laptop
 * and field-drive copies) are listed apart in `fieldCopies`. A local target
 * that is unavailable (recovery/target-availability.ts) says since when and
 * why, and the summary never reads "every asset is 3-2-1 safe" while one is.
 * Each local target also reports its quarantine (count, bytes).
 *
 * Built from counters kept in the catalogue batches (ledger.ts), one seek per
 * target for "oldest", one statfs per local target: it never scans assets.
 */
import type { PolicyConfig } from '@studio321/protocol';
import type { Catalogue } from '../catalogue.js';
import type { CloudForwarder, CloudTargetStatus } from '../cloud/cloud-forwarder.js';
import type { CloudTargetConfig } from '../cloud/cloud-target.js';
import type { UploadWindowStatus } from '../cloud/upload-window.js';
import { LOCAL_TARGETS, type StudiodConfig } from '../config.js';
import type { Ledger, LedgerCounters, RecountProgress } from './ledger.js';
import type { LinkMemory, LinkServer } from '../link/server.js';
import type { RecentError } from '@studio321/protocol';
import type { VerifyReport } from './verify-copies.js';
import { formatBytes } from '@studio321/protocol';
import type { QuarantineTotals } from '../recovery/quarantine.js';
import type { TargetState } from '../recovery/target-availability.js';
import type { AdoptionStatus } from '../recovery/adopt.js';
import type { ScrubTargetStatus } from '../recovery/scrub.js';

export interface TargetReport {
  target: string;
  kind: 'studio' | 'cloud' | 'agent';
  media: string;
  location: string;
  /** Verified copies recorded on this target. */
  copies: number;
  bytes: number;
  /**
   * Expected targets only: assets without a verified copy here (`count`/`bytes` null while the
   * ledger recounts: not known until it ends).
   */
  missing: { count: number | null; bytes: number | null; oldestCommittedAt: string | null } | null;
  /** Local targets: free space (null when the root cannot be read). */
  freeBytes?: number | null;
  available?: boolean;
  /** Local targets while unavailable: since when (ISO), the code and the sentence. */
  unavailable?: { since: string; code: string; reason: string } | null;
  /** Local targets: damaged files moved aside into `<root>/.s321-quarantine/`. */
  quarantine?: { count: number; bytes: number };
  root?: string;
  /** Cloud targets: the upload queue. */
  queue?: Omit<CloudTargetStatus, 'target'>;
  storageClass?: string;
  bucket?: string;
}

/** The daemon's live state (Studio.status()): the base of every status report. */
export interface StudioStatus {
  software: string;
  startedAt: number;
  port: number;
  fingerprint: string;
  counters: ReturnType<Catalogue['counters']>;
  sessions: ReturnType<LinkServer['sessions']>;
  targets: Record<
    string,
    { root: string; device: string; media: string; location: string; freeBytes: number | null; available: boolean }
  >;
  staging: { files: number; bytes: number };
  commitsInFlight: number;
  lastErrors: RecentError[];
  /** process.memoryUsage() in bytes: where studiod's RSS is (V8 heap, Buffers, the rest native). */
  memory?: NodeJS.MemoryUsage;
  /** The link's own memory (LinkServer.memory()): pooled buffers, bytes held, slabs, reclaims; absent before it opens. */
  link?: LinkMemory;
}

type Verdicts = Omit<LedgerCounters, 'signature' | 'version' | 'lacking'>;

/**
 * The ledger's counts in a report. While a recount runs, what depends on which targets count
 * (compliant, not compliant, why, safe groups) is null: not known, never the counts of before.
 */
export type LedgerSummary =
  | Verdicts
  | (Pick<Verdicts, 'assets' | 'bytes' | 'groups'> & {
      [K in Exclude<keyof Verdicts, 'assets' | 'bytes' | 'groups'>]: null;
    });

/** "45 % (450,000 of 1,000,000 assets)", or what the recount waits for. */
export function recountShare(r: RecountProgress): string {
  if (r.phase === 'waiting') return 'waiting for the commits in flight to end';
  if (r.phase === 'clearing') return 'clearing the old verdicts';
  if (r.phase === 'groups') return 'adding up the sidecar groups';
  const pct = r.total === 0 ? 0 : Math.min(99, Math.floor((r.done / r.total) * 100));
  return `${pct} % (${r.done.toLocaleString('en-US')} of ${r.total.toLocaleString('en-US')} assets)`;
}

export interface StatusReport extends StudioStatus {
  policy: PolicyConfig;
  ledger: LedgerSummary;
  /**
   * A recount of the verdicts after a target's availability changed, while it runs: then `ledger`'s
   * verdicts and each target's `missing` counts are null (not known until it ends).
   */
  recount: RecountProgress | null;
  /** One row per archive target, local first, then cloud. */
  targetReport: TargetReport[];
  /**
   * Copies agents reported (laptop, field drive): each agent's own claims,
   * under its id and with the label it gave, shown apart, never counted toward 3-2-1.
   */
  fieldCopies: Array<{ agentId: string; agentName: string | null; target: string; copies: number; bytes: number }>;
  /** Targets whose copies do not count now. */
  unavailableTargets: string[];
  agents: { paired: number; revoked: number; connected: number };
  lastVerify: (Omit<VerifyReport, 'lost'> & { lost: VerifyReport['lost'] }) | null;
  verifying: boolean;
  /** The last adoption of a new disk per local target (recovery/adopt.ts), with the refill's progress. */
  adoptions: AdoptionStatus[];
  /** Per target: the last full scrub and the pass under way (recovery/scrub.ts). */
  scrub: ScrubTargetStatus[];
  /** Milliseconds spent building this report. */
  builtInMs: number;
}

/** A cloud target's upload window in `studioctl status`: open until when, or when the next one opens. */
export function formatUploadWindow(w: UploadWindowStatus): string {
  if (w.open) {
    const until = w.closesAt === null ? '' : ` until ${w.closesAt.local} ${w.timeZone} (${w.closesAt.at})`;
    return `upload window: open${until}${w.bytesPerSec > 0 ? `, ${formatBytes(w.bytesPerSec)}/s` : ''}`;
  }
  const next = w.nextOpen === null ? '' : `, next opens ${w.nextOpen.local} ${w.timeZone} (${w.nextOpen.at})`;
  return `upload window: closed${next}`;
}

export interface StatusInputs {
  base: StudioStatus;
  availability: TargetState[];
  quarantine: QuarantineTotals;
  ledger: Ledger;
  catalogue: Catalogue;
  config: StudiodConfig;
  cloudTargets: readonly CloudTargetConfig[];
  cloud?: CloudForwarder;
  lastVerify: VerifyReport | null;
  verifying: boolean;
  adoptions?: AdoptionStatus[];
  scrub?: ScrubTargetStatus[];
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export async function buildStatusReport(i: StatusInputs): Promise<StatusReport> {
  const started = performance.now();
  // The copies per target agree with the verdicts and the lacking counts (Ledger.countersNow);
  // i.base.counters is older by the availability check.
  const { ledger: all, catalogue: counters, recounting: recount } = i.ledger.countersNow();
  const { version: _v, signature: _s, lacking, ...counted } = all;
  const ledger: LedgerSummary =
    recount === null
      ? counted
      : {
          assets: counted.assets,
          bytes: counted.bytes,
          groups: counted.groups,
          compliant: null,
          compliantBytes: null,
          notCompliant: null,
          notCompliantBytes: null,
          missing: null,
          groupsCompliant: null,
        };
  const copies = counters.copies;
  const rows: TargetReport[] = [];
  const missingOf = async (t: string): Promise<TargetReport['missing']> => {
    // The lacking index is half rewritten while a recount runs: nothing is read from it then.
    if (recount !== null) return { count: null, bytes: null, oldestCommittedAt: null };
    const l = lacking[t] ?? { count: 0, bytes: 0 };
    return {
      count: l.count,
      bytes: l.bytes,
      oldestCommittedAt: l.count > 0 ? iso(await i.ledger.oldestLacking(t)) : null,
    };
  };
  for (const t of LOCAL_TARGETS) {
    const cfg = i.config.targets[t];
    const b = i.base.targets[t];
    const st = i.availability.find((x) => x.target === t);
    const down = st !== undefined && !st.available;
    rows.push({
      target: t,
      kind: 'studio',
      media: cfg.media,
      location: cfg.location,
      copies: copies[t]?.count ?? 0,
      bytes: copies[t]?.bytes ?? 0,
      missing: await missingOf(t),
      freeBytes: b?.freeBytes ?? null,
      available: (b?.available ?? false) && !down,
      unavailable: down
        ? { since: new Date(st.since).toISOString(), code: st.code ?? '', reason: st.reason ?? '' }
        : null,
      quarantine: i.quarantine[t] ?? { count: 0, bytes: 0 },
      root: cfg.root,
    });
  }
  const queues = new Map((await (i.cloud?.status() ?? Promise.resolve([]))).map((q) => [q.target, q]));
  for (const c of i.cloudTargets) {
    const q = queues.get(c.name);
    const row: TargetReport = {
      target: c.name,
      kind: 'cloud',
      media: c.media,
      location: c.location,
      copies: copies[c.name]?.count ?? 0,
      bytes: copies[c.name]?.bytes ?? 0,
      missing: await missingOf(c.name),
      storageClass: c.storageClass,
      bucket: c.bucket,
    };
    if (q !== undefined) {
      const { target: _t, ...queue } = q;
      row.queue = queue;
    }
    rows.push(row);
  }
  const agents = await i.catalogue.listAgents();
  const nameOf = new Map(agents.map((a) => [a.agentId, a.name]));
  const fieldCopies: StatusReport['fieldCopies'] = [];
  for (const [agentId, labels] of Object.entries(counters.field))
    for (const [t, c] of Object.entries(labels)) {
      if (c.count === 0) continue;
      fieldCopies.push({ agentId, agentName: nameOf.get(agentId) ?? null, target: t, copies: c.count, bytes: c.bytes });
    }
  const connected = new Set(
    i.base.sessions.map((s) => (s as { agentId?: string }).agentId).filter((x) => x !== undefined),
  );
  return {
    ...i.base,
    counters,
    policy: i.ledger.policy,
    ledger,
    recount,
    targetReport: rows,
    fieldCopies,
    unavailableTargets: recount?.unavailable ?? i.ledger.unavailable(),
    agents: {
      paired: agents.filter((a) => a.revokedAt === undefined).length,
      revoked: agents.filter((a) => a.revokedAt !== undefined).length,
      connected: connected.size,
    },
    lastVerify: i.lastVerify,
    verifying: i.verifying,
    adoptions: i.adoptions ?? [],
    scrub: i.scrub ?? [],
    builtInMs: Math.round((performance.now() - started) * 100) / 100,
  };
}

// ── human-readable output ────────────────────────────────────────────

const plural = (n: number, one: string, many = `${one}s`): string =>
  `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

export function formatStatusReport(r: StatusReport): string {
  const L = r.ledger;
  const out: string[] = [];
  out.push(`${r.software} — port ${r.port}, fingerprint ${r.fingerprint}`);
  out.push(
    `3-2-1 policy: ${r.policy.copies} verified copies, ${r.policy.media} kinds of media, ${r.policy.offsite} offsite`,
  );
  out.push('');
  out.push(`Assets: ${plural(L.assets, 'asset')} (${formatBytes(L.bytes)})`);
  if (L.assets > 0)
    out.push(
      `  in ${plural(L.groups, 'group')} (RAW + JPEG + sidecars), ${L.groupsCompliant === null ? 'how many are' : L.groupsCompliant.toLocaleString('en-US')} 3-2-1 safe${L.groupsCompliant === null ? ' is being recounted' : ''} (a group is safe when every member is)`,
    );
  const down = r.targetReport.filter((t) => t.unavailable !== undefined && t.unavailable !== null);
  for (const t of down) {
    out.push(
      `  TARGET ${t.target.toUpperCase()} UNAVAILABLE since ${t.unavailable?.since} (${t.unavailable?.code}): its copies do not count`,
    );
  }
  if (L.assets === 0) {
    out.push('  nothing received yet');
  } else if (L.compliant === null || r.recount !== null) {
    const since = r.recount === null ? '' : ` (since ${new Date(r.recount.since).toISOString()})`;
    out.push(
      `  3-2-1 verdicts: RECOUNTING after a target's availability changed: ${r.recount === null ? '' : recountShare(r.recount)}${since}`,
    );
    out.push('  which assets are 3-2-1 safe is not known until it ends: run studioctl status again');
  } else if (L.notCompliant === 0 && down.length === 0) {
    out.push(
      `  3-2-1 compliant: ${L.compliant.toLocaleString('en-US')} of ${L.assets.toLocaleString('en-US')} — every asset is 3-2-1 safe`,
    );
  } else {
    out.push(`  3-2-1 compliant:     ${L.compliant.toLocaleString('en-US')} (${formatBytes(L.compliantBytes)})`);
    out.push(`  NOT yet 3-2-1 safe:  ${L.notCompliant.toLocaleString('en-US')} (${formatBytes(L.notCompliantBytes)})`);
    const why: string[] = [];
    if (L.missing.copies > 0) why.push(`${plural(L.missing.copies, 'asset')} short of verified copies`);
    if (L.missing.media > 0) why.push(`${plural(L.missing.media, 'asset')} short of media kinds`);
    if (L.missing.offsite > 0) why.push(`${plural(L.missing.offsite, 'asset')} without enough offsite copies`);
    out.push(`  why: ${why.join('; ')}`);
    out.push('  list them: studioctl assets --unprotected');
  }
  out.push('');
  out.push('Targets:');
  for (const t of r.targetReport) {
    let line = `  ${t.target.padEnd(12)} ${t.kind.padEnd(6)} ${(t.media || '-').padEnd(10)} ${(t.location || '-').padEnd(11)} ${plural(t.copies, 'copy', 'copies').padStart(12)} ${formatBytes(t.bytes).padStart(10)}`;
    if (t.kind === 'studio')
      line +=
        t.available === true
          ? `   ${formatBytes(t.freeBytes ?? 0)} free`
          : t.unavailable
            ? `   UNAVAILABLE since ${t.unavailable.since}`
            : '   NOT AVAILABLE';
    if (t.kind === 'cloud' && t.storageClass !== undefined) line += `   ${t.storageClass}`;
    out.push(line);
    if (t.unavailable) out.push(`      why: ${t.unavailable.code}: ${t.unavailable.reason}`);
    if (t.quarantine !== undefined && t.quarantine.count > 0)
      out.push(
        `      quarantine: ${plural(t.quarantine.count, 'damaged file')} (${formatBytes(t.quarantine.bytes)}) in ${t.root ?? ''}/.s321-quarantine`,
      );
    const m = t.missing;
    if (m !== null && m.count === null) out.push('      missing here: being recounted');
    else if (m !== null && m.count !== null && m.count > 0) {
      out.push(
        `      missing here: ${plural(m.count, 'asset')} (${formatBytes(m.bytes ?? 0)}), oldest committed ${m.oldestCommittedAt ?? '?'}`,
      );
    }
    const w = t.queue?.window ?? null;
    if (w !== null) out.push(`      ${formatUploadWindow(w)}`);
    if (t.queue !== undefined && (t.queue.pending > 0 || t.queue.lastError !== null || w !== null)) {
      const q = t.queue;
      out.push(
        `      upload queue: ${plural(q.pending, 'job')} (${formatBytes(q.pendingBytes)}), ${q.uploading} uploading, ${q.parked} parked` +
          (q.oldestQueuedAt === null ? '' : `, oldest queued ${q.oldestQueuedAt}`),
      );
      if (q.lastError !== null)
        out.push(`      last error ${q.lastError.at} ${q.lastError.code}: ${q.lastError.message}`);
    }
  }
  if (r.fieldCopies.length > 0) {
    out.push('');
    out.push('Field copies (reported by agents; not counted toward 3-2-1):');
    for (const f of r.fieldCopies)
      out.push(
        `  ${f.target.padEnd(12)} ${plural(f.copies, 'copy', 'copies').padStart(12)} ${formatBytes(f.bytes).padStart(10)}  claimed by ${f.agentName ?? '?'} (${f.agentId})`,
      );
  }
  out.push('');
  out.push(
    `Agents: ${r.agents.paired} paired, ${r.agents.connected} connected${r.agents.revoked > 0 ? `, ${r.agents.revoked} revoked` : ''}`,
  );
  out.push(
    `Staging: ${plural(r.staging.files, 'partial file')} (${formatBytes(r.staging.bytes)}); commits in flight: ${r.commitsInFlight}`,
  );
  const trim = r.link?.mallocTrim?.unavailable;
  if (trim !== undefined) out.push(`Idle memory trim: UNAVAILABLE (${trim.code}): ${trim.message}`);
  if (r.verifying) out.push('Verify: running now');
  if (r.lastVerify !== null) {
    const v = r.lastVerify;
    out.push(
      `Last verify: ${new Date(v.finishedAt).toISOString()}${v.target === null ? '' : ` (target ${v.target})`}${v.samplePercent < 100 ? ` sample ${v.samplePercent}%` : ''}: ` +
        `${plural(v.copiesChecked, 'copy', 'copies')} checked, ${v.copiesOk} ok, ${v.lost.length} lost` +
        (v.repair ? ` (${v.healed ?? 0} healed, ${v.notHealed ?? 0} not)` : '') +
        (v.unchecked.length > 0 ? `, unchecked: ${v.unchecked.map((u) => u.target).join(', ')}` : ''),
    );
  }
  for (const a of r.adoptions ?? []) out.push(...formatAdoption(a));
  if ((r.scrub ?? []).length > 0) {
    out.push('Scrub (last full pass per target):');
    for (const sc of r.scrub ?? []) {
      const l = sc.last;
      let line = `  ${sc.target.padEnd(12)} ${
        l === null
          ? 'never fully scrubbed'
          : `${new Date(l.finishedAt).toISOString()}: ${l.ok} ok, ${l.healed} healed, ${l.lost} lost`
      }`;
      if (sc.current !== null)
        line += `; now ${plural(sc.current.assets, 'asset')} into a pass${sc.current.blocked === undefined ? '' : ` (waiting: ${sc.current.blocked.code})`}`;
      out.push(line);
    }
  }
  const errs = r.lastErrors.slice(-5);
  if (errs.length > 0) {
    out.push('Last errors:');
    for (const e of errs) out.push(`  ${e.at} ${e.code}: ${e.message}`);
  }
  return `${out.join('\n')}\n`;
}

function formatAdoption(a: AdoptionStatus): string[] {
  const head = `Adopted disk ${a.device} for ${a.target} (replacing ${a.previous}) ${new Date(a.requestedAt).toISOString()}`;
  if (a.phase === 'marking') return [`${head}: marking the old copies lost (${a.markedLost} so far)`];
  const files = `${a.filesDone.toLocaleString('en-US')}/${a.totalFiles.toLocaleString('en-US')} files, ${formatBytes(a.bytesDone)}/${formatBytes(a.totalBytes)}`;
  const failed = a.failed > 0 ? `, ${plural(a.failed, 'file')} could not be made again (studioctl verify)` : '';
  if (a.phase === 'done') return [`${head}: refilled ${new Date(a.finishedAt ?? 0).toISOString()} (${files}${failed})`];
  const rate =
    a.rate === undefined || a.rate.bytesPerSec <= 0
      ? ''
      : `, ${formatBytes(a.rate.bytesPerSec)}/s, ETA ${a.rate.etaSec === undefined ? '?' : `${Math.ceil(a.rate.etaSec)} s`}`;
  const paused = a.paused === undefined ? '' : ` — PAUSED (${a.paused.code}): mount the disk; it goes on`;
  return [`${head}: refilling ${files}${rate}${failed}${paused}`];
}
