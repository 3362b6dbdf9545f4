/**
 * The catalogue's group commit (studiod/src/catalogue.ts, protocol/src/durable/group-commit.ts)
 * on a real LevelDB and real directories: intents and commit records that arrive together are
 * written in few synced batches; each is recorded exactly as alone (an asset committed twice in
 * one group counts once, the ledger's counters equal a recount, each commit's intent is gone);
 * a folder that cannot be fsync'd fails only the commits that name it, with the durable write's
 * code, and leaves nothing of them in the catalogue.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { nameKey } from '@studio321/protocol';
import { DURABLE_CODES } from '@studio321/protocol/durable';
import { Catalogue, type CommitRecord } from '@studio321/studiod';
import { Ledger } from '@studio321/studiod/ledger';
import { recountLedger, stripCounters } from '../../lib/ledger-recount.js';

const hashOf = (i: number): string => createHash('sha256').update(`g${i}`).digest('hex');

function record(i: number): CommitRecord {
  const hash = hashOf(i);
  const path = `d/s/c/IMG_${i}.JPG`;
  const copy = (target: string) => ({
    hash,
    target,
    kind: 'studio' as const,
    path,
    size: 100 + i,
    device: `${target}-dev`,
    media: target === 'mirror' ? 'hdd' : 'raid-hdd',
    location: 'studio',
    offsite: false,
    method: 'readback-blake3',
    verifiedAt: 1000,
  });
  return {
    asset: { hash, size: 100 + i, committedAt: 1_000_000 + i },
    names: [
      {
        key: nameKey(`s/c/IMG_${i}.JPG`),
        value: { hash, shoot: 's', card: 'c', path: `IMG_${i}.JPG`, mtime: 0, agentId: 'a', seenAt: 0 },
      },
    ],
    copies: [copy('mirror'), copy('raid')],
    storedPaths: [{ key: nameKey(path), value: { hash, path } }],
  };
}

t.test('commits and intents that come together share a batch; a bad folder fails only its commits', async (t) => {
  const dir = t.testdir();
  const cat = new Catalogue(join(dir, 'catalogue'));
  await cat.open();
  t.teardown(() => cat.close());
  const ledger = new Ledger({
    catalogue: cat,
    policy: { copies: 2, media: 2, offsite: 0 },
    targets: ['mirror', 'raid'],
  });
  await ledger.open();
  const folders = [join(dir, 'mirror', 'd'), join(dir, 'raid', 'd')];
  for (const f of folders) await mkdir(f, { recursive: true });
  const missing = join(dir, 'raid', 'no-such-folder');
  const n = 60;
  const before = cat.groupStats;
  const results = await Promise.allSettled([
    ...Array.from({ length: n }, (_, i) =>
      cat.putIntent({ hash: hashOf(1000 + i), dirs: folders, startedAt: 1 }).then(() => 'intent'),
    ),
    ...Array.from({ length: n }, (_, i) => cat.commitAsset(record(i), i === 7 ? [missing] : folders)),
    cat.commitAsset(record(3), folders), // the same asset twice in one group
  ]);
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [[i - n, r.reason]] : []));
  t.equal(failed.length, 1, 'only the commit naming the missing folder failed');
  t.equal(failed[0]?.[0], 7);
  t.equal((failed[0]?.[1] as { code?: string } | undefined)?.code, DURABLE_CODES.targetMissing, 'with its code');
  t.equal(await cat.getAsset(hashOf(7)), undefined, 'and nothing of it is in the catalogue');
  const after = cat.groupStats;
  t.equal(after.items - before.items, 2 * n, 'every other intent and commit was written');
  t.ok(after.batches - before.batches < n / 2, `in few batches (${after.batches - before.batches} for ${2 * n})`);
  t.equal(cat.counters().assets, n - 1, 'an asset committed twice in one group counts once');
  t.equal(cat.counters().copies['raid']?.count, n - 1);
  t.same(stripCounters(ledger.counters()), await recountLedger(cat, ledger), 'the ledger counters equal a recount');
  t.equal((await cat.intents()).length, n, 'the intents were written');
  for (let i = 0; i < n; i++) await cat.commitAsset(record(1000 + i), folders);
  t.equal((await cat.intents()).length, 0, "each commit's batch removes its intent");
});

t.test(
  'point reads asked in one turn are read together: each gets its own value, a closed catalogue rejects them all',
  async (t) => {
    const dir = t.testdir();
    const cat = new Catalogue(join(dir, 'catalogue'));
    await cat.open();
    const n = 40;
    for (let i = 0; i < n; i += 2) await cat.commitAsset(record(i));
    // Assets and stored paths, known and unknown, interleaved in the same turn.
    const reads = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        Promise.all([cat.getAsset(hashOf(i)), cat.storedPath(nameKey(`d/s/c/IMG_${i}.JPG`))]),
      ),
    );
    reads.forEach(([asset, stored], i) => {
      if (i % 2 === 0) {
        t.equal(asset?.size, 100 + i, `asset ${i}`);
        t.same(stored, { hash: hashOf(i), path: `d/s/c/IMG_${i}.JPG` }, `stored path ${i}`);
      } else {
        t.equal(asset, undefined, `no asset ${i}`);
        t.equal(stored, undefined, `no stored path ${i}`);
      }
    });
    // Asked in the turn the catalogue closes: every read settles, none hangs or gets a wrong value.
    const late = Promise.allSettled(Array.from({ length: 5 }, (_, i) => cat.getAsset(hashOf(2 * i))));
    await cat.close();
    for (const r of await late)
      t.ok(
        (r.status === 'rejected' && (r.reason as { code?: string }).code === 'LEVEL_DATABASE_NOT_OPEN') ||
          (r.status === 'fulfilled' && r.value?.hash !== undefined),
        'a read around the close settles (its value, or rejected)',
      );
    await t.rejects(cat.getAsset(hashOf(0)), TypeError, 'a read after the close is refused');
  },
);
