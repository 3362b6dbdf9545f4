/** studioctl's text for `restore` and `restore --pending`. */
import { formatBytes } from '@studio321/protocol';
import { ARCHIVE_READY_HINT, type ArchiveRequestRecord } from './restore-records.js';
import type { RestoreReport } from './restore.js';

export function formatRestore(r: RestoreReport): string {
  const lines: string[] = [];
  for (const n of r.notFound) lines.push(`NOT FOUND  ${n.query}: ${n.code}: ${n.message}`);
  for (const f of r.files) {
    switch (f.status) {
      case 'restored':
        lines.push(`restored   ${f.dest}  (from ${f.source}, ${formatBytes(f.size)}, BLAKE3 verified)`);
        break;
      case 'present':
        lines.push(`present    ${f.dest}  (identical file already there, BLAKE3 verified)`);
        break;
      case 'requested':
        lines.push(`REQUESTED  ${f.path}: ${f.message}`);
        break;
      case 'failed':
        lines.push(`FAILED     ${f.path}: ${f.code}: ${f.message}`);
        break;
    }
    if (f.status !== 'present')
      for (const a of f.attempts) lines.push(`             ${a.target}: ${a.code}: ${a.message}`);
  }
  lines.push(
    `${r.restored} restored (${formatBytes(r.bytes)}), ${r.present} already present, ${r.requested} requested from the archive, ` +
      `${r.failed} failed, ${r.notFound.length} not found → ${r.to}`,
  );
  if (!r.complete)
    lines.push('NOT COMPLETE: the files above marked NOT FOUND, REQUESTED or FAILED are not in the destination.');
  return `${lines.join('\n')}\n`;
}

export function formatPending(pending: ArchiveRequestRecord[]): string {
  if (pending.length === 0) return 'no archive restore pending\n';
  const lines = pending.map(
    (p) =>
      `${new Date(p.requestedAt).toISOString()}  ${p.target} (${p.tier}, ${p.days} d)  ${p.hash.slice(0, 12)}  → ${p.dir}/${p.path}` +
      (p.lastError === null
        ? ''
        : p.failedAt !== undefined
          ? `\n    FAILED: ${p.lastError.code}: ${p.lastError.message} (this request is dropped; run the restore again with another --from)`
          : `\n    last check: ${p.lastError.code}: ${p.lastError.message}`),
  );
  const failed = pending.filter((p) => p.failedAt !== undefined).length;
  const open = pending.length - failed;
  return (
    `${lines.join('\n')}\n${open} archive restore(s) pending, ${ARCHIVE_READY_HINT}; studiod writes each when it is readable.\n` +
    (failed === 0 ? '' : `${failed} archive restore(s) failed for good (shown once).\n`)
  );
}
