/**
 * The offload report of one card a client can be handed (`field-agent report`): every file of
 * the card's last listing with its size, BLAKE3 (the ledger's hash) and XXH3-64 (the ASC MHL
 * hash, protocol/src/durable/mhl.ts), where each copy is (laptop, field drive, studio targets
 * once receipted) and when it was verified. As CSV (RFC 4180) or a printable HTML page that is
 * self-contained (no script, no external asset: it prints and mails as one file).
 */
import { formatBytes } from '@studio321/protocol';
import type { AgentState } from './agent-state.js';
import type { CardRecord } from './records.js';
import { isFieldDrive } from '../targets.js';

export interface CardReportCopy {
  target: string;
  device?: string;
  verifiedAt?: string;
}

export interface CardReportRow {
  path: string;
  size: number;
  state: string;
  blake3?: string;
  xxh3?: string;
  storePath?: string;
  verifiedAt?: string;
  copies: CardReportCopy[];
  warning?: string;
}

export interface OffloadReport {
  card: { id: string; label: string; shoot: string; source: string; lastRun?: CardRecord['lastRun'] };
  generatedAt: string;
  files: CardReportRow[];
  totalBytes: number;
}

export async function buildOffloadReport(
  state: AgentState,
  card: CardRecord,
  now = new Date(),
): Promise<OffloadReport> {
  const files: CardReportRow[] = [];
  let totalBytes = 0;
  for (const f of (await state.cardFiles(card, { current: true })).sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const asset = f.blake3 === undefined ? undefined : await state.getAsset(f.blake3);
    const copies: CardReportCopy[] = (asset?.copies ?? [])
      .filter((c) => c.verified)
      .map((c) => ({
        target: c.target,
        device: c.device,
        ...(c.verifiedAt === undefined ? {} : { verifiedAt: c.verifiedAt }),
      }));
    for (const c of asset?.studio?.copies ?? [])
      copies.push({
        target: `studio ${c.target}`,
        ...(c.device === undefined ? {} : { device: c.device }),
        verifiedAt: c.verifiedAt,
      });
    totalBytes += f.size;
    files.push({
      path: f.path,
      size: f.size,
      state: f.state,
      ...(f.blake3 === undefined ? {} : { blake3: f.blake3 }),
      ...(asset?.xxh3 === undefined ? {} : { xxh3: asset.xxh3 }),
      ...(f.storePath === undefined ? {} : { storePath: f.storePath }),
      ...(f.verifiedAt === undefined ? {} : { verifiedAt: f.verifiedAt }),
      copies,
      ...(f.warning === undefined || f.warning.resolvedAt !== undefined
        ? {}
        : { warning: `${f.warning.code}: ${f.warning.message}` }),
    });
  }
  return {
    card: {
      id: card.id,
      label: card.label,
      shoot: card.shoot,
      source: card.source,
      ...(card.lastRun === undefined ? {} : { lastRun: card.lastRun }),
    },
    generatedAt: now.toISOString(),
    files,
    totalBytes,
  };
}

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

const COPY_COLUMNS = ['laptop', 'field-drive', 'studio mirror', 'studio raid'] as const;

/**
 * One line per file; a copy column holds when that copy was verified (empty: no verified copy there).
 * Further field drives (`field-drive-2`…) get a column each, after the first drive's, when a file has a copy there.
 */
export function offloadReportCsv(r: OffloadReport): string {
  const more = [
    ...new Set(
      r.files.flatMap((f) => f.copies.map((c) => c.target)).filter((t) => isFieldDrive(t) && t !== 'field-drive'),
    ),
  ].sort((a, b) => Number(a.slice('field-drive-'.length)) - Number(b.slice('field-drive-'.length)));
  const columns = [...COPY_COLUMNS.slice(0, 2), ...more, ...COPY_COLUMNS.slice(2)];
  const head = ['card', 'shoot', 'path', 'size', 'state', 'blake3', 'xxh3', 'verified_at', ...columns, 'warning'];
  const lines = [head.join(',')];
  for (const f of r.files) {
    const at = (t: string): string => f.copies.find((c) => c.target === t)?.verifiedAt ?? '';
    lines.push(
      [r.card.id, r.card.shoot, f.path, String(f.size), f.state, f.blake3 ?? '', f.xxh3 ?? '', f.verifiedAt ?? '']
        .concat(columns.map(at), [f.warning ?? ''])
        .map(csvField)
        .join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A printable page: the card, then a table of its files and copies. Inline CSS only. */
export function offloadReportHtml(r: OffloadReport): string {
  const rows = r.files
    .map((f) => {
      const copies = f.copies
        .map((c) => `${esc(c.target)}${c.verifiedAt === undefined ? '' : ` <small>${esc(c.verifiedAt)}</small>`}`)
        .join('<br>');
      return `<tr><td>${esc(f.path)}${f.warning === undefined ? '' : `<br><small class="warn">${esc(f.warning)}</small>`}</td><td class="n">${esc(formatBytes(f.size))}<br><small>${f.size}</small></td><td>${esc(f.state)}</td><td class="h">${esc(f.blake3 ?? '')}<br>${esc(f.xxh3 ?? '')}</td><td>${copies}</td></tr>`;
    })
    .join('\n');
  const run = r.card.lastRun;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Offload report ${esc(r.card.label)} (${esc(r.card.id)})</title>
<style>
body{font:12px/1.4 system-ui,sans-serif;margin:2em;color:#111}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#eee}.n{text-align:right;white-space:nowrap}.h{font-family:monospace;font-size:10px;word-break:break-all}
small{color:#555}.warn{color:#a00}@media print{body{margin:0}tr{break-inside:avoid}}
</style></head><body>
<h1>Offload report: ${esc(r.card.label)}</h1>
<p>Card <b>${esc(r.card.id)}</b>, shoot <b>${esc(r.card.shoot)}</b>, read from ${esc(r.card.source)}.<br>
${r.files.length} files, ${esc(formatBytes(r.totalBytes))}.${run === undefined ? '' : ` Last offload ${esc(run.state)}, ${esc(run.startedAt)}${run.endedAt === undefined ? '' : ` – ${esc(run.endedAt)}`}.`}<br>
Hashes: BLAKE3 (first line) and XXH3-64 (second line, as in the card folder's ASC MHL history). Report made ${esc(r.generatedAt)}.</p>
<table><thead><tr><th>File</th><th>Size</th><th>State</th><th>BLAKE3 / XXH3-64</th><th>Verified copies</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
