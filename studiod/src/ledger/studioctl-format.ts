/** Human-readable output of studioctl commands (the --json output is the raw result). */
import { formatBytes } from '@studio321/protocol';
import type { AgentRecord } from '../catalogue.js';
import type { ShootSummary } from './service.js';
import type { StudioStatus } from './status-report.js';

const GB = 1024 ** 3;

function bytes(n: number): string {
  if (n >= GB) return `${(n / GB).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${n} B`;
}

export function formatPair(r: unknown): string {
  const p = r as { code: string; expiresAt: number; fingerprint: string; port?: number };
  const shown = `${p.code.slice(0, 4)}-${p.code.slice(4)}`;
  return (
    `Pairing code: ${shown}\n` +
    `Expires:      ${new Date(p.expiresAt).toISOString()} (single use)\n` +
    `Fingerprint:  ${p.fingerprint}\n` +
    `On the laptop: field-agent pair wss://<studio-host>:${p.port ?? '<port>'}/v1 ${p.code} --fingerprint ${p.fingerprint}\n`
  );
}

export function formatAgents(r: unknown): string {
  const agents = r as Array<AgentRecord & { connected: boolean }>;
  if (agents.length === 0) return 'No paired agents. Pair one with `studioctl pair`.\n';
  return `${agents
    .map((a) => {
      const state = a.revokedAt !== undefined ? 'revoked' : a.connected ? 'connected' : 'paired';
      const seen = a.lastSeenAt === undefined ? 'never seen' : `last seen ${new Date(a.lastSeenAt).toISOString()}`;
      return `${a.agentId}  ${state.padEnd(9)}  ${a.name}  paired ${new Date(a.pairedAt).toISOString()}  ${seen}`;
    })
    .join('\n')}\n`;
}

export function formatStatus(r: unknown): string {
  const s = r as StudioStatus;
  const lines = [
    `${s.software} on port ${s.port}, fingerprint ${s.fingerprint}`,
    `assets: ${s.counters.assets} (${bytes(s.counters.bytes)})`,
  ];
  for (const [name, t] of Object.entries(s.targets)) {
    const c = s.counters.copies[name] ?? { count: 0, bytes: 0 };
    lines.push(
      `target ${name}: ${c.count} copies (${bytes(c.bytes)}), ${t.available ? `${bytes(t.freeBytes ?? 0)} free` : 'NOT AVAILABLE'} at ${t.root}`,
    );
  }
  lines.push(
    `staging: ${s.staging.files} partial file(s), ${bytes(s.staging.bytes)}; commits in flight: ${s.commitsInFlight}`,
  );
  lines.push(`agents connected: ${s.sessions.filter((x) => x.agentId !== undefined).length}`);
  for (const e of s.lastErrors.slice(-5)) lines.push(`last error ${e.at} ${e.code}: ${e.message}`);
  return `${lines.join('\n')}\n`;
}

/** `studioctl shoots`: one line per shoot, what is missing per target under it. */
export function formatShoots(r: unknown): string {
  const { shoots } = r as { shoots: ShootSummary[] };
  if (shoots.length === 0) return 'No shoots in the catalogue yet.\n';
  const width = Math.max(5, ...shoots.map((s) => s.shoot.length));
  const out = [`${'shoot'.padEnd(width)}  assets  compliant  size`];
  for (const s of shoots) {
    out.push(
      `${s.shoot.padEnd(width)}  ${String(s.assets).padStart(6)}  ${String(s.compliant).padStart(9)}  ${formatBytes(s.bytes)}${s.compliant === s.assets ? '  3-2-1 safe' : ''}`,
    );
    const missing = Object.entries(s.lacking).filter(([, n]) => n > 0);
    if (missing.length > 0)
      out.push(`${' '.repeat(width)}  missing a copy on: ${missing.map(([t, n]) => `${t} ${n}`).join(', ')}`);
    const short = Object.entries(s.short).filter(([, n]) => n > 0);
    if (short.length > 0)
      out.push(`${' '.repeat(width)}  short of: ${short.map(([rule, n]) => `${rule} ${n}`).join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}
