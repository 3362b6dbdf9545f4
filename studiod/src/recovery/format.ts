/** studioctl's text for snapshots and the rebuild report. */
import { formatBytes } from '@studio321/protocol';
import type { RebuildReport } from './rebuild.js';
import type { SnapshotResult } from './snapshot.js';

export function formatSnapshot(s: SnapshotResult | null): string {
  if (s === null) return 'catalogue snapshot: none yet (`studioctl catalogue snapshot` makes one)\n';
  const lines = [
    `catalogue snapshot: ${new Date(s.at).toISOString()}, ${s.assets} assets, ${formatBytes(s.bytes)}`,
    ...s.destinations.map(
      (d) =>
        `  ${d.ok ? 'ok    ' : 'FAILED'} ${d.target}: ${d.where}${d.error === undefined ? '' : ` (${d.error.code}: ${d.error.message})`}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

export function formatRebuild(r: RebuildReport): string {
  const out: string[] = [];
  out.push(
    r.snapshot === null
      ? 'snapshot: none readable; the catalogue was rebuilt from the targets alone'
      : `snapshot: ${r.snapshot.where} (${r.snapshot.assets} assets, ${r.snapshot.records} records)`,
  );
  for (const s of r.snapshotsTried) out.push(`  skipped ${s.where}: ${s.code}`);
  out.push(`agents (pairings): ${r.agents}`);
  out.push(
    `local files: ${r.local.files} walked, ${r.local.hashed} hashed (${formatBytes(r.local.hashedBytes)}), ${r.local.assetsAdded} assets and ${r.local.copiesAdded} copies added`,
  );
  out.push(
    `cloud objects: ${r.cloud.objects} listed, ${r.cloud.copiesAdded} copies added, ${r.cloud.assetsAdded} assets known from the cloud alone`,
  );
  if (r.removedCopies > 0) out.push(`snapshot copies no longer on their target: ${r.removedCopies} (removed)`);
  out.push(`catalogue: ${r.counters.assets} assets, ${formatBytes(r.counters.bytes)}`);
  if (r.unaccounted.count === 0) out.push('everything on the targets is accounted for');
  else {
    out.push(`NOT ACCOUNTED FOR: ${r.unaccounted.count}`);
    for (const i of r.unaccounted.items) out.push(`  ${i.kind} ${i.target} ${i.path}: ${i.why}`);
    if (r.unaccounted.items.length < r.unaccounted.count)
      out.push(
        `  … and ${r.unaccounted.count - r.unaccounted.items.length} more (--json for the first ${r.unaccounted.items.length})`,
      );
  }
  return `${out.join('\n')}\n`;
}
