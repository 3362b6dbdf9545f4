/**
 * The catalogue rebuild over a real Catalogue (LevelDB), real mirror and RAID
 * folders and MemorySink (the in-process CloudSink with S3's semantics):
 * snapshot + files committed after it → the same assets, names, copies,
 * counters and pairings; what cannot be accounted for is reported (and nothing
 * of it counted unverified); an interrupted rebuild is refused at start and
 * completes when run again; an empty catalogue over full targets is refused.
 */
import t from 'tap';
import { rm, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '@studio321/protocol';
import type { Catalogue, CopyRecord } from '@studio321/studiod';
import {
  SNAPSHOT_DIR,
  markRebuildServed,
  rebuildCatalogue,
  refuseUnsafeStart,
  takeSnapshot,
  type RebuildReport,
} from '@studio321/studiod/recovery';
import {
  commitFile,
  dump,
  openCatalogue,
  pairAgent,
  recoveryStudio,
  uploadToCloud,
  type RecoveryStudio,
} from '../../lib/recovery-fixture.js';

const SOFTWARE = 'studiod/test';

/** Assets with their names and copies, minus how and when a copy was verified (a rebuild re-verifies). */
async function shape(c: Catalogue): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const a of c.assets()) {
    const copies = (await c.copiesOf(a.hash)).map(({ method: _m, verifiedAt: _v, ...rest }: CopyRecord) => rest);
    const names = (await c.namesOf(a.hash)).map((n) => `${n.shoot}/${n.card}/${n.path}`);
    out.push({ hash: a.hash, size: a.size, copies, names });
  }
  return out;
}

/** The catalogue directory lost: closed and deleted, a new empty one opened. */
async function loseCatalogue(t: { teardown(fn: () => unknown): void }, s: RecoveryStudio): Promise<Catalogue> {
  await s.catalogue.close();
  await rm(s.config.catalogue, { recursive: true, force: true });
  return openCatalogue(t, s.config);
}

t.test('rebuild from a snapshot plus the files committed after it', async (t) => {
  const s = await recoveryStudio(t);
  const before: Array<Awaited<ReturnType<typeof commitFile>>> = [];
  for (let i = 0; i < 5; i++) before.push(await commitFile(s, 'CARD1', `DCIM/100CANON/IMG_000${i}.CR3`));
  await uploadToCloud(s, before[0]!, true);
  await pairAgent(s.catalogue, 'agt_aaaaaa', "Ana's laptop");
  await pairAgent(s.catalogue, 'agt_bbbbbb', 'Ben');
  await s.catalogue.revokeAgent('agt_bbbbbb', 7);
  await takeSnapshot({ catalogue: s.catalogue, config: s.config, sinks: [s.sink], software: SOFTWARE });
  // After the snapshot: two more files (one with a distinct name ~2), one more upload, one more agent.
  const after1 = await commitFile(s, 'CARD2', 'DCIM/100CANON/IMG_0100.CR3');
  const after2 = await commitFile(s, 'CARD2', 'DCIM/100CANON/IMG_0101~2.CR3');
  await uploadToCloud(s, after1, true);
  await uploadToCloud(s, before[1]!, true);
  await pairAgent(s.catalogue, 'agt_cccccc', 'Cleo');
  const shapeBefore = await shape(s.catalogue);
  const countersBefore = s.catalogue.counters();
  const agentsBefore = await s.catalogue.listAgents();

  const cat = await loseCatalogue(t, s);
  await t.rejects(refuseUnsafeStart(cat, s.config), { code: 'RECOVERY_CATALOGUE_EMPTY' }, 'studiod would refuse');

  const r = await rebuildCatalogue(cat, { config: s.config, sinks: [s.sink] });
  t.equal(r.snapshot?.assets, 5, 'the snapshot was used');
  t.equal(r.local.assetsAdded, 2, 'the two files committed since were found');
  t.equal(r.local.hashed, 4, 'each hashed on both targets, nothing else hashed');
  t.equal(r.cloud.copiesAdded, 2, 'the two uploads since were found by their metadata');
  t.equal(r.unaccounted.count, 0, JSON.stringify(r.unaccounted.items));
  t.same(await shape(cat), shapeBefore, 'assets, names and copies as before');
  t.same(cat.counters(), countersBefore, 'counters as before');
  t.same(
    (await cat.listAgents()).map(({ lastSeenAt: _l, ...a }) => a),
    agentsBefore.map(({ lastSeenAt: _l, ...a }) => a),
    'pairings as before (the one made after the snapshot from pairings.json)',
  );
  // The copies added now say how they were verified, and it was now.
  const added = await cat.copiesOf(after2.hash);
  t.same(added.map((c) => c.method).sort(), ['verify-blake3', 'verify-blake3']);
  t.same(
    (await cat.namesOf(after2.hash)).map((n) => n.path),
    ['DCIM/100CANON/IMG_0101.CR3'],
    'the ~2 of a distinct name is not the card name',
  );
  const cloudAdded = (await cat.copiesOf(after1.hash)).find((c) => c.kind === 'cloud');
  t.equal(cloudAdded?.method, 'head-size-sha256-meta');
  t.ok(await cat.sublevel('cloud').get(`obj!cloud-east!${after1.hash}`), 'the forwarder can verify it (object record)');
  await refuseUnsafeStart(cat, s.config);
  t.pass('studiod may start now');
  // Every local copy has the bytes the catalogue says (independent re-hash).
  for await (const c of cat.copies()) {
    if (c.kind !== 'studio') continue;
    const h = await hashFile(join(s.config.targets[c.target as 'mirror' | 'raid'].root, c.path));
    t.equal(h.blake3, c.hash, `${c.target} ${c.path}`);
  }
});

t.test('what cannot be accounted for is reported, nothing of it counted unverified', async (t) => {
  const s = await recoveryStudio(t);
  const a = await commitFile(s, 'CARD1', 'DCIM/IMG_0001.JPG');
  const gone = await commitFile(s, 'CARD1', 'DCIM/IMG_0002.JPG');
  await takeSnapshot({ catalogue: s.catalogue, config: s.config, sinks: [s.sink], software: SOFTWARE });
  const mirrorOnly = await commitFile(s, 'CARD3', 'DCIM/M.JPG', undefined, { targets: ['mirror'] });
  const raidOnly = await commitFile(s, 'CARD3', 'DCIM/R.JPG', undefined, { targets: ['raid'] });
  const differ = await commitFile(s, 'CARD3', 'DCIM/D.JPG');
  await appendFile(join(s.config.targets.raid.root, differ.rel), 'rot');
  await rm(join(s.config.targets.raid.root, gone.rel));
  // A cloud object whose file is on no local target: its metadata (blake3, size) makes it an asset, reported.
  const orphan = { hash: 'f'.repeat(64), size: 3, rel: a.rel, bytes: Buffer.from('abc') };
  await writeFile(join(s.dir, 'orphan'), orphan.bytes);
  const { hashBytes } = await import('@studio321/protocol');
  orphan.hash = hashBytes(orphan.bytes);
  const oldMirror = s.config.targets.mirror.root;
  s.config.targets.mirror.root = s.dir; // the upload helper reads <mirror>/<rel>
  // It was renamed at ingest: the rebuild keeps its name on the card from the metadata.
  const origin = {
    shoot: 'wedding',
    card: 'CARD9',
    path: 'DCIM/Smith_0001.JPG',
    mtime: Date.parse('2026-11-26T10:31:07Z'),
  };
  await uploadToCloud(s, { ...orphan, rel: 'orphan' }, false, s.catalogue, [
    { ...origin, capture: { originalName: 'IMG_0412.JPG' } },
  ]);
  s.config.targets.mirror.root = oldMirror;

  const cat = await loseCatalogue(t, s);
  const r: RebuildReport = await rebuildCatalogue(cat, { config: s.config, sinks: [s.sink] });
  const kinds = r.unaccounted.items.map((i) => `${i.kind} ${i.target} ${i.path}`).sort();
  t.same(
    kinds,
    [
      `cloud-only cloud-east ${'studio/blake3/'}${orphan.hash.slice(0, 2)}/${orphan.hash}`,
      `copy-missing raid ${gone.rel}`,
      `hash-mismatch mirror+raid ${differ.rel}`,
      `one-target-only mirror ${mirrorOnly.rel}`,
      `one-target-only raid ${raidOnly.rel}`,
    ].sort(),
  );
  t.equal(r.unaccounted.count, 5);
  t.equal(await cat.getAsset(differ.hash), undefined, 'a mismatch is not recorded');
  t.same(
    (await cat.copiesOf(gone.hash)).map((c) => c.target),
    ['mirror'],
    'a copy gone is not counted',
  );
  t.same(
    (await cat.copiesOf(mirrorOnly.hash)).map((c) => [c.target, c.method]),
    [['mirror', 'verify-blake3']],
    'one verified copy',
  );
  t.same(
    (await cat.copiesOf(raidOnly.hash)).map((c) => c.target),
    ['raid'],
  );
  t.equal(cat.counters().copies['raid']?.count, 2, 'counters count only what is there');
  t.same(
    (await cat.copiesOf(orphan.hash)).map((c) => [c.kind, c.target, c.method]),
    [['cloud', 'cloud-east', 'head-size-sha256-meta']],
    'an asset known from the cloud alone: its one verified cloud copy',
  );
  t.equal(r.cloud.assetsAdded, 1);
  t.match(
    await cat.namesOf(orphan.hash),
    [{ ...origin, capture: { day: '2026-11-26', dateSource: 'mtime', originalName: 'IMG_0412.JPG' } }],
    'its name, and its name on the card, from the object metadata',
  );
  t.equal(await cat.sublevel('recovery').get('rebuild!state'), undefined, 'finished');
});

t.test('an interrupted rebuild is refused at start and completes when run again', async (t) => {
  const s = await recoveryStudio(t);
  for (let i = 0; i < 3; i++) await commitFile(s, 'CARD1', `DCIM/IMG_${i}.JPG`);
  await takeSnapshot({ catalogue: s.catalogue, config: s.config, sinks: [s.sink], software: SOFTWARE });
  for (let i = 3; i < 6; i++) await commitFile(s, 'CARD1', `DCIM/IMG_${i}.JPG`);
  const want = await shape(s.catalogue);
  const counters = s.catalogue.counters();
  for (const stopAt of ['import', 'check', 'local', 'cloud'] as const) {
    const cat = await loseCatalogue(t, s);
    // The progress callback is the seam: throwing from it stops the rebuild right after that step's work.
    await t.rejects(
      rebuildCatalogue(cat, {
        config: s.config,
        sinks: [s.sink],
        onProgress: (e) => {
          if (e.phase === stopAt) throw new Error(`stopped after ${stopAt}`);
        },
      }),
      { message: `stopped after ${stopAt}` },
    );
    await t.rejects(
      refuseUnsafeStart(cat, s.config),
      { code: 'RECOVERY_REBUILD_INCOMPLETE' },
      `refused after ${stopAt}`,
    );
    const r = await rebuildCatalogue(cat, { config: s.config, sinks: [s.sink] });
    t.equal(r.unaccounted.count, 0, `completes after ${stopAt}`);
    t.same(await shape(cat), want);
    t.same(cat.counters(), counters);
    s.catalogue = cat;
  }
});

t.test('a rebuild over a catalogue that holds assets is refused; a bad newest snapshot is skipped', async (t) => {
  const s = await recoveryStudio(t);
  const first = await commitFile(s, 'CARD1', 'DCIM/IMG_1.JPG');
  await t.rejects(rebuildCatalogue(s.catalogue, { config: s.config, sinks: [s.sink] }), {
    code: 'RECOVERY_CATALOGUE_NOT_EMPTY',
  });
  t.ok(await s.catalogue.getAsset(first.hash), 'untouched');
  let now = Date.parse('2026-11-26T10:00:00Z');
  await takeSnapshot({ catalogue: s.catalogue, config: s.config, sinks: [s.sink], software: SOFTWARE, now: () => now });
  now += 60_000;
  const r2 = await takeSnapshot({
    catalogue: s.catalogue,
    config: s.config,
    sinks: [],
    software: SOFTWARE,
    now: () => now,
  });
  await writeFile(r2.destinations[0]!.where, 'rotten'); // the newest local snapshot is damaged
  const before = await dump(s.catalogue);
  const cat = await loseCatalogue(t, s);
  const r = await rebuildCatalogue(cat, { config: s.config, sinks: [s.sink] });
  t.match(r.snapshotsTried, [{ code: 'RECOVERY_SNAPSHOT_UNREADABLE' }]);
  t.match(r.snapshot?.where, new RegExp(`${SNAPSHOT_DIR}/2026-11-26T10-00-00-000Z`));
  t.equal(r.unaccounted.count, 0);
  t.same(await dump(cat), before);
});

t.test('no snapshot at all: every file is hashed and recorded', async (t) => {
  const s = await recoveryStudio(t);
  for (let i = 0; i < 3; i++) await commitFile(s, 'CARD1', `DCIM/IMG_${i}.JPG`);
  await pairAgent(s.catalogue, 'agt_aaaaaa', 'Ana');
  const want = await shape(s.catalogue);
  const cat = await loseCatalogue(t, s);
  const r = await rebuildCatalogue(cat, { config: s.config, sinks: [] });
  t.equal(r.snapshot, null);
  t.equal(r.local.assetsAdded, 3);
  t.equal(r.agents, 1, 'pairings from the pairing store');
  t.same(await shape(cat), want);
});

t.test('a rebuild killed after it finished prints its report again, until studiod served the catalogue', async (t) => {
  const s = await recoveryStudio(t);
  await commitFile(s, 'CARD1', 'DCIM/IMG_1.JPG');
  const cat = await loseCatalogue(t, s);
  const first = await rebuildCatalogue(cat, { config: s.config, sinks: [] });
  t.same(await rebuildCatalogue(cat, { config: s.config, sinks: [] }), first, 'the same report');
  await markRebuildServed(cat);
  await t.rejects(rebuildCatalogue(cat, { config: s.config, sinks: [] }), { code: 'RECOVERY_CATALOGUE_NOT_EMPTY' });
});
