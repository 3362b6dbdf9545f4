/**
 * What an alert is: one condition of the studio that needs a person (docs/design.md §Operations).
 * Its `id` names the condition (`target-unavailable:raid`, `unprotected:<shoot>`): one alert per id
 * until the condition clears, then one "resolved" notice.
 */

export const ALERT_KINDS = [
  'unprotected',
  'target-unavailable',
  'target-low-space',
  'target-filling',
  'scrub-damage',
  'repair-failed',
  'cloud-parked',
  'agent-silent',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export type AlertSeverity = 'warning' | 'critical';

/** A condition found true now. */
export interface AlertCondition {
  id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  /** What it is about: a target, a shoot, an agent. */
  subject: string;
  /** One sentence: what is wrong and what to do. */
  summary: string;
  detail: Record<string, unknown>;
}

/** An open alert as stored (catalogue sublevel `alerts`, key `open!<id>`). */
export interface AlertRecord extends AlertCondition {
  /** When it fired (ms). */
  openedAt: number;
}

/** What the channels carry: an alert that fired, or one that cleared. */
export interface AlertNotice {
  event: 'alert' | 'resolved';
  alert: AlertRecord;
  /** When the notice was made (ms); for `resolved`, when the condition was found clear. */
  at: number;
  /** The studio that sends it (software, TLS fingerprint). */
  studio: { software: string; fingerprint: string };
}

/** A notice's one-line subject (e-mail subject, log message). */
export function noticeTitle(n: AlertNotice): string {
  return `[studiod] ${n.event === 'alert' ? `ALERT ${n.alert.severity.toUpperCase()}` : 'RESOLVED'}: ${n.alert.summary}`;
}

/** `studioctl alerts`: the open alerts, oldest first. */
export function formatAlerts(open: readonly AlertRecord[]): string {
  if (open.length === 0) return 'No open alerts.\n';
  const lines = [`${open.length} open alert${open.length === 1 ? '' : 's'}:`];
  for (const a of open) {
    lines.push(`  ${new Date(a.openedAt).toISOString()}  ${a.severity.toUpperCase().padEnd(8)} ${a.id}`);
    lines.push(`      ${a.summary}`);
  }
  return `${lines.join('\n')}\n`;
}
