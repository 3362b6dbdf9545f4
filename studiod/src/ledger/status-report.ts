/**
 * The `studioctl status` report: what the studio holds, how much of it is
 * 3-2-1 safe, and what is missing for the rest — per target the count, bytes
 * and oldest asset still lacking a verified copy there (and, for cloud targets,
 * the upload queue), agents, target free space, the last verify, last errors.
 *
 * Built from counters kept in the catalogue batches (ledger.ts), one seek per
 * target for "oldest", one statfs per local target: it never scans assets.
 */
import type { PolicyConfig } from '@studio321/protocol';
import type { Catalogue } from '../catalogue.js';
import type { CloudForwarder, CloudTargetStatus } from '../cloud/cloud-forwarder.js';
import type { CloudTargetConfig } from '../cloud/cloud-target.js';
import { LOCAL_TARGETS, type StudiodConfig } from '../config.js';
import type { Ledger, LedgerCounters } from './ledger.js';
import type { LinkServer } from '../link/server.js';
import type { RecentError } from '@studio321/protocol';
import type { VerifyReport } from './verify-copies.js';
import { formatBytes } from '@studio321/protocol';

export interface TargetReport {
  target: string;
  kind: 'studio' | 'cloud' | 'agent';
  media: string;
  location: string;
  /** Verified copies recorded on this target. */
  copies: number;
  bytes: number;
  /** Expected targets only: assets without a verified copy here. */
  missing: { count: number; bytes: number; oldestCommittedAt: string | null } | null;
  /** Local targets: free space (null when the root cannot be read). */
  freeBytes?: number | null;
  available?: boolean;
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
}

export interface StatusReport extends StudioStatus {
  policy: PolicyConfig;
  ledger: Omit<LedgerCounters, 'signature' | 'version' | 'lacking'>;
  /** One row per target, local first, then cloud, then agent-reported ones. */
  targetReport: TargetReport[];
  agents: { paired: number; revoked: number; connected: number };
  lastVerify: (Omit<VerifyReport, 'lost'> & { lost: VerifyReport['lost'] }) | null;
  verifying: boolean;
  /** Milliseconds spent building this report. */
  builtInMs: number;
}

export interface StatusInputs {
  base: StudioStatus;
  ledger: Ledger;
  catalogue: Catalogue;
  config: StudiodConfig;
  cloudTargets: readonly CloudTargetConfig[];
  cloud?: CloudForwarder;
  lastVerify: VerifyReport | null;
  verifying: boolean;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export async function buildStatusReport(i: StatusInputs): Promise<StatusReport> {
  const started = performance.now();
  const { version: _v, signature: _s, lacking, ...ledger } = i.ledger.counters();
  const copies = i.base.counters.copies;
  const rows: TargetReport[] = [];
  const missingOf = async (t: string): Promise<TargetReport['missing']> => {
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
    rows.push({
      target: t,
      kind: 'studio',
      media: cfg.media,
      location: cfg.location,
      copies: copies[t]?.count ?? 0,
      bytes: copies[t]?.bytes ?? 0,
      missing: await missingOf(t),
      freeBytes: b?.freeBytes ?? null,
      available: b?.available ?? false,
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
  const known = new Set(rows.map((r) => r.target));
  for (const [t, c] of Object.entries(copies)) {
    if (known.has(t) || c.count === 0) continue;
    rows.push({
      target: t,
      kind: 'agent',
      media: '',
      location: 'field',
      copies: c.count,
      bytes: c.bytes,
      missing: null,
    });
  }
  const agents = await i.catalogue.listAgents();
  const connected = new Set(
    i.base.sessions.map((s) => (s as { agentId?: string }).agentId).filter((x) => x !== undefined),
  );
  return {
    ...i.base,
    policy: i.ledger.policy,
    ledger,
    targetReport: rows,
    agents: {
      paired: agents.filter((a) => a.revokedAt === undefined).length,
      revoked: agents.filter((a) => a.revokedAt !== undefined).length,
      connected: connected.size,
    },
    lastVerify: i.lastVerify,
    verifying: i.verifying,
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
  if (L.assets === 0) {
    out.push('  nothing received yet');
  } else if (L.notCompliant === 0) {
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
      line += t.available === true ? `   ${formatBytes(t.freeBytes ?? 0)} free` : '   NOT AVAILABLE';
    if (t.kind === 'cloud' && t.storageClass !== undefined) line += `   ${t.storageClass}`;
    out.push(line);
    if (t.missing !== null && t.missing.count > 0) {
      out.push(
        `      missing here: ${plural(t.missing.count, 'asset')} (${formatBytes(t.missing.bytes)}), oldest committed ${t.missing.oldestCommittedAt ?? '?'}`,
      );
    }
    if (t.queue !== undefined && (t.queue.pending > 0 || t.queue.lastError !== null)) {
      const q = t.queue;
      out.push(
        `      upload queue: ${plural(q.pending, 'job')} (${formatBytes(q.pendingBytes)}), ${q.uploading} uploading, ${q.parked} parked` +
          (q.oldestQueuedAt === null ? '' : `, oldest queued ${q.oldestQueuedAt}`),
      );
      if (q.lastError !== null)
        out.push(`      last error ${q.lastError.at} ${q.lastError.code}: ${q.lastError.message}`);
    }
  }
  out.push('');
  out.push(
    `Agents: ${r.agents.paired} paired, ${r.agents.connected} connected${r.agents.revoked > 0 ? `, ${r.agents.revoked} revoked` : ''}`,
  );
  out.push(
    `Staging: ${plural(r.staging.files, 'partial file')} (${formatBytes(r.staging.bytes)}); commits in flight: ${r.commitsInFlight}`,
  );
  if (r.verifying) out.push('Verify: running now');
  if (r.lastVerify !== null) {
    const v = r.lastVerify;
    out.push(
      `Last verify: ${new Date(v.finishedAt).toISOString()}${v.target === null ? '' : ` (target ${v.target})`}${v.samplePercent < 100 ? ` sample ${v.samplePercent}%` : ''}: ` +
        `${plural(v.copiesChecked, 'copy', 'copies')} checked, ${v.copiesOk} ok, ${v.lost.length} lost` +
        (v.unchecked.length > 0 ? `, unchecked: ${v.unchecked.map((u) => u.target).join(', ')}` : ''),
    );
  }
  const errs = r.lastErrors.slice(-5);
  if (errs.length > 0) {
    out.push('Last errors:');
    for (const e of errs) out.push(`  ${e.at} ${e.code}: ${e.message}`);
  }
  return `${out.join('\n')}\n`;
}
