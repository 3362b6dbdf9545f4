/**
 * The alert conditions, each read from one `OpsFigures` (figures.ts) and the thresholds of
 * `alerts` in the config. Pure: what is true now, as a list of conditions with stable ids; the
 * alert service (alerts.ts) turns changes of that list into notices.
 *
 * The unprotected-assets condition needs the assets past their grace period, grouped by shoot:
 * `Unprotected` is read by alerts.ts from the ledger's `lack!` index (ordered by commit time, so
 * only the overdue ones are read; at most `MAX_OVERDUE_SCAN` per evaluation).
 */
import { formatBytes } from '@studio321/protocol';
import type { AlertsConfig } from '../config.js';
import type { AlertCondition } from './alert.js';
import type { OpsFigures } from './figures.js';
import type { FreeSpaceTrend } from './free-space-trend.js';

const DAY_MS = 86_400_000;

/** Per shoot: overdue assets below 3-2-1 (count, bytes, oldest commit). */
export type Unprotected = Map<string, { count: number; bytes: number; oldestCommittedAt: number }>;

export function conditionsOf(
  f: OpsFigures,
  cfg: AlertsConfig,
  trend: FreeSpaceTrend,
  overdue: Unprotected,
): AlertCondition[] {
  const out: AlertCondition[] = [];
  // Uploads held back by a closed upload window: said in the alert, so the admin knows when they go.
  const waiting = f.cloud.flatMap((c) =>
    c.pending > 0 && c.window !== null && !c.window.open && c.window.nextOpen !== null
      ? [{ target: c.target, nextOpen: c.window.nextOpen }]
      : [],
  );
  const waitingText = waiting
    .map(
      (w) =>
        ` Uploads to ${w.target} wait for their upload window, which opens ${w.nextOpen.local} (${w.nextOpen.at}).`,
    )
    .join('');
  for (const [shoot, u] of overdue) {
    out.push({
      id: `unprotected:${shoot}`,
      kind: 'unprotected',
      severity: 'critical',
      subject: shoot,
      summary: `Shoot ${shoot}: ${u.count} asset${u.count === 1 ? '' : 's'} (${formatBytes(u.bytes)}) still below 3-2-1 more than ${cfg.unprotectedGraceHours} h after commit.${waitingText} List them: studioctl assets --unprotected --shoot ${JSON.stringify(shoot)}`,
      detail: {
        shoot,
        assets: u.count,
        bytes: u.bytes,
        oldestCommittedAt: new Date(u.oldestCommittedAt).toISOString(),
        ...(waiting.length === 0 ? {} : { waitingForWindow: waiting }),
      },
    });
  }
  for (const t of f.local) {
    if (!t.available) {
      out.push({
        id: `target-unavailable:${t.target}`,
        kind: 'target-unavailable',
        severity: 'critical',
        subject: t.target,
        summary: `Target ${t.target} is unavailable${t.unavailable === null ? '' : ` (${t.unavailable.code})`}: its copies do not count and nothing is committed. Mount or repair the disk.`,
        detail: {
          target: t.target,
          ...(t.unavailable === null
            ? {}
            : {
                code: t.unavailable.code,
                reason: t.unavailable.reason,
                since: new Date(t.unavailable.since).toISOString(),
              }),
        },
      });
      continue;
    }
    if (t.freeBytes === null) continue;
    if (t.freeBytes < cfg.freeBytesMin) {
      out.push({
        id: `target-low-space:${t.target}`,
        kind: 'target-low-space',
        severity: 'critical',
        subject: t.target,
        summary: `Target ${t.target} has ${formatBytes(t.freeBytes)} free, under the ${formatBytes(cfg.freeBytesMin)} threshold. Add a disk or free space.`,
        detail: { target: t.target, freeBytes: t.freeBytes, thresholdBytes: cfg.freeBytesMin },
      });
      continue;
    }
    const left = cfg.fullWithinDays > 0 ? trend.daysLeft(t.target, f.at, t.freeBytes) : null;
    if (left !== null && left.days < cfg.fullWithinDays) {
      out.push({
        id: `target-filling:${t.target}`,
        kind: 'target-filling',
        severity: 'warning',
        subject: t.target,
        summary: `Target ${t.target} will be full in about ${left.days.toFixed(1)} days at the current rate (${formatBytes(left.bytesPerDay)}/day, ${formatBytes(t.freeBytes)} free). Plan a larger disk.`,
        detail: {
          target: t.target,
          freeBytes: t.freeBytes,
          bytesPerDay: Math.round(left.bytesPerDay),
          daysLeft: Math.round(left.days * 10) / 10,
        },
      });
    }
  }
  for (const s of f.scrub) {
    const found = { healed: 0, lost: 0 };
    for (const p of [s.last, s.current]) {
      found.healed += p?.healed ?? 0;
      found.lost += p?.lost ?? 0;
    }
    const when = s.last === null ? null : new Date(s.last.finishedAt).toISOString();
    if (found.lost > 0) {
      out.push({
        id: `repair-failed:${s.target}`,
        kind: 'repair-failed',
        severity: 'critical',
        subject: s.target,
        summary: `The scrub of ${s.target} found ${found.lost} cop${found.lost === 1 ? 'y' : 'ies'} damaged or missing that could not be made again. Run studioctl verify --target ${s.target} and read its report.`,
        detail: { target: s.target, lost: found.lost, healed: found.healed, lastFullScrub: when },
      });
    } else if (found.healed > 0) {
      out.push({
        id: `scrub-damage:${s.target}`,
        kind: 'scrub-damage',
        severity: 'warning',
        subject: s.target,
        summary: `The scrub of ${s.target} found ${found.healed} damaged cop${found.healed === 1 ? 'y' : 'ies'} and made them again from other copies. Check the disk's health (SMART).`,
        detail: { target: s.target, healed: found.healed, lastFullScrub: when },
      });
    }
  }
  for (const q of f.cloud) {
    if (q.parked === 0) continue;
    out.push({
      id: `cloud-parked:${q.target}`,
      kind: 'cloud-parked',
      severity: 'critical',
      subject: q.target,
      summary: `Uploads to ${q.target} are stopped: ${q.parked} job${q.parked === 1 ? '' : 's'} parked${q.lastError === null ? '' : ` on ${q.lastError.code}`}. Fix the credentials, permissions or quota, then studioctl cloud retry.`,
      detail: {
        target: q.target,
        parked: q.parked,
        pending: q.pending,
        ...(q.lastError === null ? {} : { code: q.lastError.code, message: q.lastError.message, at: q.lastError.at }),
      },
    });
  }
  if (cfg.agentSilentDays > 0) {
    for (const a of f.agents) {
      const files = a.queue?.files ?? 0;
      if (a.connected || files === 0 || a.lastSeenAt === undefined) continue;
      if (f.at - a.lastSeenAt < cfg.agentSilentDays * DAY_MS) continue;
      const days = Math.floor((f.at - a.lastSeenAt) / DAY_MS);
      out.push({
        id: `agent-silent:${a.agentId}`,
        kind: 'agent-silent',
        severity: 'warning',
        subject: a.name,
        summary: `Laptop ${a.name} has not connected for ${days} days and had ${files} file${files === 1 ? '' : 's'} (${formatBytes(a.queue?.bytes ?? 0)}) not yet at the studio. Bring it to the studio network.`,
        detail: {
          agentId: a.agentId,
          name: a.name,
          lastSeenAt: new Date(a.lastSeenAt).toISOString(),
          files,
          bytes: a.queue?.bytes ?? 0,
        },
      });
    }
  }
  return out;
}
