/**
 * The ledger counters a full recount from the copy records gives: what the counters the
 * ledger keeps in its write batches must always equal (ledger and unavailable-target tests).
 */
import type { Catalogue } from '@studio321/studiod';
import type { Ledger, LedgerCounters } from '@studio321/studiod/ledger';
import { groupKeyOf } from '@studio321/studiod/recovery';

export type Counted = Omit<LedgerCounters, 'signature' | 'version'>;

export async function recountLedger(cat: Catalogue, ledger: Ledger): Promise<Counted> {
  const c: Counted = {
    assets: 0,
    bytes: 0,
    compliant: 0,
    compliantBytes: 0,
    notCompliant: 0,
    notCompliantBytes: 0,
    missing: { copies: 0, media: 0, offsite: 0 },
    lacking: {},
    groups: 0,
    groupsCompliant: 0,
  };
  for (const t of ledger.targets) c.lacking[t] = { count: 0, bytes: 0 };
  // Sidecar groups: the assets stored in one folder with one stem; safe when every member is.
  const groups = new Map<string, boolean>();
  for await (const a of cat.assets()) {
    const copies = await cat.copiesOf(a.hash);
    const v = ledger.verdict(copies);
    c.assets++;
    c.bytes += a.size;
    if (v.compliant) {
      c.compliant++;
      c.compliantBytes += a.size;
    } else {
      c.notCompliant++;
      c.notCompliantBytes += a.size;
      if (v.missing.copies > 0) c.missing.copies++;
      if (v.missing.media > 0) c.missing.media++;
      if (v.missing.offsite > 0) c.missing.offsite++;
    }
    const have = new Set(ledger.counted(copies).map((x) => x.target));
    for (const t of ledger.targets)
      if (!have.has(t)) {
        const l = c.lacking[t] as { count: number; bytes: number };
        l.count++;
        l.bytes += a.size;
      }
    const stored = copies.find((x) => x.kind === 'studio' && x.path !== '');
    const key = stored === undefined ? a.hash : groupKeyOf(stored.path);
    groups.set(key, (groups.get(key) ?? true) && v.compliant);
  }
  c.groups = groups.size;
  c.groupsCompliant = [...groups.values()].filter((safe) => safe).length;
  return c;
}

export function stripCounters(c: LedgerCounters): Counted {
  const { signature: _s, version: _v, ...rest } = c;
  return rest;
}
