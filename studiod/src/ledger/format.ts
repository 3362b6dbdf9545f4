/** Human-readable output of `studioctl assets`, `asset` and `verify` (the --json output is the raw result). */
import type { AssetView } from './service.js';
import { formatBytes, type FileCapture } from '@studio321/protocol';
import type { VerifyReport } from './verify-copies.js';

const when = (ms: number): string => new Date(ms).toISOString();

function nameLine(a: AssetView): string {
  const n = a.names[0];
  const first = n === undefined ? '(no name)' : `${n.shoot}/${n.card}/${n.path}`;
  return a.names.length > 1 ? `${first} (+${a.names.length - 1} more name${a.names.length > 2 ? 's' : ''})` : first;
}

export function formatAssets(r: unknown): string {
  const x = r as {
    unprotected: boolean;
    total: number;
    items: AssetView[];
    more: boolean;
    shoot: string | null;
    card: string | null;
  };
  const scope = [x.shoot === null ? '' : `shoot ${x.shoot}`, x.card === null ? '' : `card ${x.card}`]
    .filter((s) => s !== '')
    .join(', ');
  if (x.items.length === 0) {
    return x.unprotected ? `Every asset${scope === '' ? '' : ` in ${scope}`} is 3-2-1 compliant.\n` : 'No assets.\n';
  }
  const out: string[] = [];
  out.push(
    x.unprotected
      ? `${x.total} asset(s) not yet 3-2-1 safe${scope === '' ? '' : ` (showing ${scope})`}:`
      : `${x.total} asset(s)${scope === '' ? '' : ` (showing ${scope})`}:`,
  );
  for (const a of x.items) {
    out.push(
      `${a.hash.slice(0, 16)}  ${formatBytes(a.size).padStart(9)}  ${a.compliant ? 'compliant ' : 'NOT SAFE  '} ${nameLine(a)}`,
    );
    if (a.group !== undefined)
      out.push(
        `    group of ${a.group.members.length} files: ${a.group.compliant ? 'compliant' : `NOT SAFE (${a.group.members.filter((m) => !m.compliant).length} not safe)`}`,
      );
    out.push(
      `    copies: ${a.copies.map((c) => (c.counted === false ? `${c.target} (not counted: target unavailable)` : c.target)).join(', ') || 'none'}`,
    );
    if ((a.fieldCopies ?? []).length > 0)
      out.push(
        `    field copies (not counted): ${a.fieldCopies.map((c) => `${c.target} (claimed by ${c.agentId ?? '?'})`).join(', ')}`,
      );
    for (const reason of a.reasons) out.push(`    - ${reason}`);
  }
  if (x.more) out.push(`… more; use --limit N or --json`);
  return `${out.join('\n')}\n`;
}

/** `taken 2026-11-26T23:59:30+01:00 with Canon EOS R5 #012345678901, image 1234, RF24-70mm F2.8 L IS USM`. */
function captureLine(c: FileCapture): string {
  const parts = [
    c.takenAt !== undefined
      ? `taken ${c.takenAt}`
      : `filed under ${c.day} (${c.dateSource === 'exif' ? 'its group’s capture day' : 'no capture time found: the file date'})`,
  ];
  if (c.camera !== undefined) parts.push(`with ${c.camera}${c.serial === undefined ? '' : ` #${c.serial}`}`);
  if (c.imageNumber !== undefined) parts.push(`image ${c.imageNumber}`);
  if (c.lens !== undefined) parts.push(c.lens);
  return parts.join(', ');
}

export function formatAsset(r: unknown): string {
  const x = r as { assets: AssetView[] };
  const out: string[] = [];
  for (const a of x.assets) {
    out.push(`asset ${a.hash}`);
    out.push(`  size ${a.size} bytes (${formatBytes(a.size)}), committed ${when(a.committedAt)}`);
    if (a.xxh3 !== undefined) out.push(`  xxh3 ${a.xxh3} (as the agent offered it: the ASC MHL hash)`);
    out.push(`  3-2-1: ${a.compliant ? 'COMPLIANT' : 'NOT SAFE'}`);
    for (const reason of a.reasons) out.push(`    - ${reason}`);
    if (a.group !== undefined) {
      out.push(`  group (${a.group.members.length} files): ${a.group.compliant ? 'COMPLIANT' : 'NOT SAFE'}`);
      for (const m of a.group.members)
        out.push(
          `    ${m.compliant ? 'compliant' : 'NOT SAFE '}  ${m.path}${m.hash === a.hash ? '  (this file)' : ''}`,
        );
    }
    out.push('  names:');
    for (const n of a.names) {
      out.push(`    ${n.shoot}/${n.card}/${n.path}`);
      if (n.capture?.originalName !== undefined)
        out.push(`      renamed at ingest; on the card: ${n.capture.originalName}`);
      if (n.capture !== undefined) out.push(`      ${captureLine(n.capture)}`);
    }
    out.push('  copies (archive):');
    for (const c of a.copies) {
      out.push(
        `    ${c.target.padEnd(12)} ${c.media.padEnd(10)} ${c.location.padEnd(11)} device ${c.device}${c.offsite ? ' (offsite)' : ''}${c.counted === false ? ' — NOT COUNTED: target unavailable' : ''}`,
      );
      out.push(`      ${c.where}`);
      out.push(`      verified ${when(c.verifiedAt)} by ${c.method}`);
      if (c.lock !== undefined)
        out.push(
          `      locked (${c.lock.mode}) until ${c.lock.retainUntil}${c.lock.versionId === undefined ? '' : `, version ${c.lock.versionId}`}`,
        );
      if (c.healedFrom !== undefined)
        out.push(
          `      made again ${when(c.healedFrom.at)} from the ${c.healedFrom.target} copy (${c.healedFrom.path})`,
        );
    }
    if ((a.fieldCopies ?? []).length > 0) {
      out.push('  field copies (reported by agents; not counted toward 3-2-1):');
      for (const c of a.fieldCopies) {
        out.push(`    ${c.target.padEnd(12)} ${c.media.padEnd(10)} ${c.where}`);
        out.push(`      verified ${when(c.verifiedAt)} by ${c.method}`);
      }
    }
    out.push('');
  }
  return out.join('\n');
}

export function formatVerify(r: unknown): string {
  const v = r as VerifyReport;
  const out = [
    `Verified ${v.copiesChecked} cop${v.copiesChecked === 1 ? 'y' : 'ies'} of ${v.assetsChecked} asset(s)${v.target === null ? '' : ` on ${v.target}`}` +
      `${v.samplePercent < 100 ? ` (sample ${v.samplePercent}%)` : ''}${v.download ? ', cloud objects downloaded' : ''} in ${((v.finishedAt - v.startedAt) / 1000).toFixed(1)} s:`,
    `  ok: ${v.copiesOk}`,
    `  lost (stopped counting): ${v.lost.length}${v.repair ? ` — healed ${v.healed}, not healed ${v.notHealed}` : ' (not repaired: --no-repair)'}`,
  ];
  for (const l of v.lost) {
    let line = `    ${l.target}: ${l.path || l.hash} — ${l.code}`;
    if (l.healed)
      line +=
        l.healedFrom === null || l.healedFrom === undefined
          ? ' — healed (the file in place verifies)'
          : ` — HEALED from ${l.healedFrom.target}`;
    else if (l.notHealed !== undefined) line += ` — NOT healed: ${l.notHealed.code}: ${l.notHealed.message}`;
    if (l.quarantinedPath !== undefined) line += `; damaged file kept in ${l.quarantinedPath}`;
    out.push(line);
  }
  if (v.skipped > 0) out.push(`  not checkable from the studio (agent copies): ${v.skipped}`);
  for (const u of v.unchecked) out.push(`  UNCHECKED ${u.target}: ${u.code}: ${u.message}`);
  if (v.notHealed > 0) out.push('See what is no longer 3-2-1 safe: studioctl assets --unprotected');
  return `${out.join('\n')}\n`;
}
