/** Human-readable output of studioctl commands (the --json output is the raw result). */
import { formatBytes } from '@studio321/protocol';
import type { AgentRecord } from '../catalogue.js';
import type { ShootSummary } from './service.js';

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
