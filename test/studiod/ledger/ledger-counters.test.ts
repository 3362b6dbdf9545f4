/**
 * The ledger's counters against a real LevelDB catalogue: after any sequence
 * of commits, extra names, recorded and removed copies, the counters kept in
 * the write batches equal a full recount from the copy records; they survive a
 * reopen; a policy change rebuilds them; a failed batch changes nothing. Sidecar groups
 * (RAW + JPEG) are counted too: a group is safe when every member is.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nameKey, type PolicyConfig } from '@studio321/protocol';
import { Catalogue, type CatalogueHook, type CommitRecord, type CopyRecord } from '@studio321/studiod';
import { Ledger } from '@studio321/studiod/ledger';
import { recountLedger, stripCounters } from '../../lib/ledger-recount.js';
import { copy } from '../../lib/ledger-records.mjs';

const TARGETS = ['mirror', 'raid', 'cloud-east', 'cloud-west'];
const POLICY: PolicyConfig = { copies: 3, media: 2, offsite: 1 };

const hashOf = (i: number): string => createHash('sha256').update(`a${i}`).digest('hex');

function record(i: number): CommitRecord {
  const hash = hashOf(i);
  const size = 1000 + i;
  // Sidecar groups of two: IMG_0000.CR3 + IMG_0000.JPG, IMG_0001.CR3 + IMG_0001.JPG, …
  const path = `DCIM/100CANON/IMG_${String(Math.floor(i / 2)).padStart(4, '0')}.${i % 2 === 0 ? 'CR3' : 'JPG'}`;
  const stored = (c: CopyRecord): CopyRecord => ({ ...c, path: `d/s/c/${path}` });
  return {
    asset: { hash, size, committedAt: 1_000_000 + i },
    names: [
      { key: nameKey(`s/c/${path}`), value: { hash, shoot: 's', card: 'c', path, mtime: 0, agentId: 'a', seenAt: 0 } },
    ],
    copies: [stored(copy(hash, 'mirror', size)), stored(copy(hash, 'raid', size))],
    storedPaths: [{ key: nameKey(`d/s/c/${path}`), value: { hash, path: `d/s/c/${path}` } }],
  };
}

const recount = recountLedger;
const strip = stripCounters;

async function openAll(dir: string, policy = POLICY): Promise<{ cat: Catalogue; ledger: Ledger; rebuilt: boolean }> {
  const cat = new Catalogue(join(dir, 'catalogue'));
  await cat.open();
  const ledger = new Ledger({ catalogue: cat, policy, targets: TARGETS });
  const { rebuilt } = await ledger.open();
  return { cat, ledger, rebuilt };
}

t.test('counters follow every kind of write and equal a recount', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ledger-counters-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let { cat, ledger, rebuilt } = await openAll(dir);
  t.ok(rebuilt, 'a fresh catalogue gets counters built once');
  for (let i = 0; i < 40; i++) await cat.commitAsset(record(i));
  await cat.commitAsset(record(3)); // idempotent re-commit
  t.same(strip(ledger.counters()), await recount(cat, ledger), 'after commits');
  t.equal(ledger.counters().compliant, 0, 'mirror + raid alone: no offsite copy');
  t.match(ledger.counters(), { groups: 20, groupsCompliant: 0 }, 'RAW + JPEG pairs: 20 groups, none safe');
  for (let i = 0; i < 30; i++) await cat.recordCopy(copy(hashOf(i), 'cloud-east', 1000 + i));
  for (let i = 0; i < 20; i++) await cat.recordCopy(copy(hashOf(i), 'cloud-west', 1000 + i));
  await cat.recordCopy(copy(hashOf(0), 'cloud-west', 1000)); // refresh of an existing copy
  await cat.addAgentNames(
    hashOf(5),
    'a',
    [
      {
        key: nameKey('s/c2/X.CR3'),
        value: { hash: hashOf(5), shoot: 's', card: 'c2', path: 'X.CR3', mtime: 0, agentId: 'a', seenAt: 0 },
      },
    ],
    [],
  );
  t.same(strip(ledger.counters()), await recount(cat, ledger), 'after cloud copies and names');
  t.equal(ledger.counters().compliant, 30);
  t.equal(ledger.counters().groupsCompliant, 15, 'a group is safe when every member is (assets 0–29: groups 0–14)');
  t.equal(ledger.counters().lacking['cloud-west']?.count, 20);
  t.equal(await ledger.oldestLacking('cloud-west'), 1_000_000 + 20, 'oldest lacking asset by commit time');
  t.equal(await ledger.oldestLacking('mirror'), null);
  await cat.removeCopy({ hash: hashOf(1), target: 'mirror', kind: 'studio' });
  await cat.removeCopy({ hash: hashOf(2), target: 'cloud-east', kind: 'cloud' });
  t.notOk(await cat.removeCopy({ hash: hashOf(2), target: 'cloud-east', kind: 'cloud' }), 'removing twice is a no-op');
  const c = ledger.counters();
  t.same(strip(c), await recount(cat, ledger), 'after removals');
  t.equal(c.compliant, 30, 'both still compliant: three devices, three media, offsite copies remain');
  const unprot: string[] = [];
  for await (const h of ledger.unprotected()) unprot.push(h);
  t.equal(unprot.length, c.notCompliant, 'unprotected index matches the counter');
  t.same(await ledger.byName('x.cr3'), [hashOf(5)], 'lookup by file name, case-insensitive');
  await cat.close();

  ({ cat, ledger, rebuilt } = await openAll(dir));
  t.notOk(rebuilt, 'same config: counters loaded, not rebuilt');
  t.same(strip(ledger.counters()), strip(c), 'counters survive a reopen');
  await cat.close();

  ({ cat, ledger, rebuilt } = await openAll(dir, { copies: 4, media: 3, offsite: 2 }));
  t.ok(rebuilt, 'another policy: counters rebuilt');
  t.same(strip(ledger.counters()), await recount(cat, ledger), 'rebuilt counters equal a recount under the new policy');
  t.equal(ledger.counters().compliant, 18, 'only assets with all four copies meet 4/3/2 (hashes 1 and 2 lost one)');
  await cat.close();
});

t.test('a batch that fails leaves records and counters as they were', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ledger-counters-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { cat, ledger } = await openAll(dir);
  t.teardown(() => cat.close());
  await cat.commitAsset(record(1));
  const before = ledger.counters();
  const failing: CatalogueHook = {
    prepare: async () => {
      throw Object.assign(new Error('hook refused'), { code: 'TEST_HOOK' });
    },
  };
  cat.addHook(failing);
  await t.rejects(cat.recordCopy(copy(hashOf(1), 'cloud-east', 1001)), { message: 'hook refused' });
  t.same(ledger.counters(), before, 'in-memory counters unchanged');
  t.same((await cat.copiesOf(hashOf(1))).map((c) => c.target).sort(), ['mirror', 'raid'], 'no copy record written');
  t.same(strip(ledger.counters()), await recount(cat, ledger));
});

t.test('bulk import: one batch, counters equal a recount', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ledger-counters-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { cat, ledger } = await openAll(dir);
  t.teardown(() => cat.close());
  const recs = Array.from({ length: 500 }, (_, i) => {
    const r = record(i);
    if (i % 3 === 0)
      r.copies.push(copy(r.asset.hash, 'cloud-east', r.asset.size), copy(r.asset.hash, 'cloud-west', r.asset.size));
    return r;
  });
  await cat.importAssets(recs);
  const c = ledger.counters();
  t.equal(c.assets, 500);
  t.equal(c.compliant, 167);
  t.same(strip(c), await recount(cat, ledger));
  t.equal(cat.counters().assets, 500, 'catalogue counters too');
});

/** Every ledger record but the counters' config signature, key → JSON value. */
async function ledgerRecords(cat: Catalogue): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [k, v] of cat.sublevel('ledger').iterator()) {
    const { signature: _s, ...rest } = v as { signature?: string };
    out.set(k, JSON.stringify(rest));
  }
  return out;
}

t.test(
  'a recount writes the very index and groups the commits kept, in one pass, and leaves nothing of its own',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ledger-counters-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    let { cat, ledger } = await openAll(dir);
    for (let i = 0; i < 301; i++) await cat.commitAsset(record(i)); // 151 groups, the last of one member
    for (let i = 0; i < 120; i++) await cat.recordCopy(copy(hashOf(i), 'cloud-east', 1000 + i));
    for (let i = 0; i < 61; i++) await cat.recordCopy(copy(hashOf(i), 'cloud-west', 1000 + i));
    await cat.removeCopy({ hash: hashOf(7), target: 'mirror', kind: 'studio' });
    // A copy record whose asset record is missing (a rebuild's leftover): passed over, not counted.
    await cat.recordCopy(copy('0'.repeat(64), 'cloud-east', 5));
    await cat.recordCopy(copy('f'.repeat(64), 'cloud-east', 5));
    const kept = await ledgerRecords(cat);
    const counters = strip(ledger.counters());
    t.same(counters, await recount(cat, ledger), 'the commits kept counters equal to a recount');
    t.match(counters, { assets: 301, compliant: 120, groups: 151, groupsCompliant: 60 });

    await ledger.setUnavailable(['cloud-west']);
    t.same(strip(ledger.counters()), await recount(cat, ledger), 'a target away: recounted');
    t.match(
      ledger.counters(),
      { compliant: 119, groupsCompliant: 59 },
      'cloud-west away: the asset without its mirror copy is short of three, and its group unsafe',
    );
    await ledger.setUnavailable([]);
    t.same(await ledgerRecords(cat), kept, 'back: every index record and group as the commits wrote them');
    t.same(strip(ledger.counters()), counters);
    await cat.close();

    // Another policy rebuilds everything, the by-name index too; the first policy again: the same records.
    ({ cat, ledger } = await openAll(dir, { copies: 4, media: 3, offsite: 2 }));
    t.same(strip(ledger.counters()), await recount(cat, ledger), 'rebuilt under another policy');
    await cat.close();
    ({ cat, ledger } = await openAll(dir));
    t.same(await ledgerRecords(cat), kept, 'rebuilt under the first policy: the very records the commits wrote');
    t.same(await ledger.byName('img_0003.jpg'), [hashOf(7)], 'the by-name index rebuilt');
    const leftovers: string[] = [];
    for await (const k of cat.sublevel('ledger').keys({ gte: 'gacc!', lt: 'gacc!\xff' })) leftovers.push(k);
    t.same(leftovers, [], 'no temporary group entries left');
    await cat.close();
  },
);
