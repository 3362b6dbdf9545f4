/**
 * Self-heal, in process: a real Catalogue, real mirror and RAID folders, the
 * real LedgerService; the cloud targets are MemorySinks (a hot STANDARD one and
 * a DEEP_ARCHIVE one). A lost local copy is made again from the other local
 * target, else from the hot cloud copy (never the archive class), through the
 * durable write; the damaged file is moved into the quarantine, never deleted
 * or overwritten; `repair: false` only reports.
 */
import t from 'tap';
import { readFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '@studio321/protocol';
import { QUARANTINE_DIR } from '@studio321/studiod/recovery';
import { objectKey } from '@studio321/studiod/cloud';
import { rotByte } from '../../lib/bit-rot.js';
import { recoveryFixture, type RecoveryFixture } from '../../lib/recovery-fixture.js';

async function open(
  t: { teardown(fn: () => unknown): void },
  opts: { cloud?: boolean } = {},
): Promise<RecoveryFixture> {
  const fx = await recoveryFixture(opts);
  t.teardown(() => fx.close());
  return fx;
}

const root = (fx: RecoveryFixture, target: 'mirror' | 'raid'): string => fx.config.targets[target].root;
const file = (fx: RecoveryFixture, target: 'mirror' | 'raid', rel: string): string => join(root(fx, target), rel);

async function temps(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile() && e.name.endsWith('.s321tmp')) out.push(e.name);
  return out;
}

t.test('verify heals a rotted mirror copy from the RAID and a deleted RAID copy from the mirror', async (t) => {
  const fx = await open(t);
  const [a, b, c] = await fx.commit(3);
  if (a === undefined || b === undefined || c === undefined) throw new Error('no assets');
  t.equal(fx.service.ledger.counters().compliant, 3, 'compliant before');

  await rotByte(file(fx, 'mirror', a.rel), 1000);
  const rotted = await readFile(file(fx, 'mirror', a.rel));
  await unlink(file(fx, 'raid', b.rel));

  const r = await fx.service.verify();
  t.equal(r.repair, true, 'verify repairs by default');
  t.same(
    r.lost.map((l) => [l.hash, l.target, l.code, l.healed, l.healedFrom?.target]),
    [
      [a.hash, 'mirror', 'DURABLE_HASH_MISMATCH', true, 'raid'],
      [b.hash, 'raid', 'DURABLE_MISSING', true, 'mirror'],
    ],
    'each lost copy reported with where it was healed from',
  );
  t.equal(r.healed, 2);
  t.equal(r.notHealed, 0);
  t.equal((await hashFile(file(fx, 'mirror', a.rel))).blake3, a.hash, 'mirror copy of a verifies again');
  t.equal((await hashFile(file(fx, 'raid', b.rel))).blake3, b.hash, 'raid copy of b verifies again');

  const qPath = r.lost[0]?.quarantinedPath ?? '';
  t.equal(qPath, `${QUARANTINE_DIR}/2024-05-01/${a.rel}`, 'the damaged file is under the quarantine tree');
  t.same(await readFile(join(root(fx, 'mirror'), qPath)), rotted, 'its rotted bytes are kept as they were');
  t.same(fx.service.quarantine.totals(), { mirror: { count: 1, bytes: a.size } }, 'quarantine totals per target');
  const qrec = [];
  for await (const q of fx.service.quarantine.records('mirror')) qrec.push(q);
  t.match(qrec, [
    { hash: a.hash, path: a.rel, reason: 'DURABLE_HASH_MISMATCH', foundBy: 'verify', copy: { target: 'mirror' } },
  ]);

  const mirrorCopy = (await fx.catalogue.copiesOf(a.hash)).find((x) => x.target === 'mirror');
  t.match(mirrorCopy, { method: 'readback-blake3', healedFrom: { target: 'raid', kind: 'studio', path: a.rel } });
  t.equal(fx.service.ledger.counters().compliant, 3, 'compliant again');
  t.same(await temps(root(fx, 'mirror')), [], 'no temp file left');

  const again = await fx.service.verify();
  t.same(again.lost, [], 'a second verify finds nothing');
});

t.test('both local copies lost: the hot cloud copy is the source; the archive class never is', async (t) => {
  const fx = await open(t);
  const [a, b] = await fx.commit(2);
  if (a === undefined || b === undefined) throw new Error('no assets');
  await rotByte(file(fx, 'mirror', a.rel), 10);
  await unlink(file(fx, 'raid', a.rel));
  const r = await fx.service.verify({ target: 'mirror' });
  t.same(
    r.lost.map((l) => [l.target, l.healed, l.healedFrom?.target]),
    [['mirror', true, 'cloud-east']],
    'mirror healed from the hot cloud copy (the RAID copy is not checked in a mirror-only verify, and does not verify)',
  );
  t.same(
    (await fx.service.verify({ target: 'raid' })).lost.map((l) => [l.target, l.code, l.healedFrom?.target]),
    [['raid', 'DURABLE_MISSING', 'mirror']],
    'then the RAID from the healed mirror copy',
  );

  // Now the hot object is gone too: only the DEEP_ARCHIVE copy is left → not healed, said why.
  const east = fx.config.cloud as Array<{ name: string }>;
  t.ok(east.length === 2);
  const hot = fx.cloud.bucket('hot');
  for (const k of [...(hot?.objects.keys() ?? [])]) if (k.includes(b.hash)) hot?.objects.delete(k);
  await rotByte(file(fx, 'mirror', b.rel), 10);
  await unlink(file(fx, 'raid', b.rel));
  const r2 = await fx.service.verify();
  const local = r2.lost.filter((l) => l.target === 'mirror' || l.target === 'raid');
  t.same(
    local.map((l) => [l.target, l.healed, l.notHealed?.code]),
    [
      ['mirror', false, 'RECOVERY_NO_SOURCE'],
      ['raid', false, 'RECOVERY_NO_SOURCE'],
    ],
    'no verified source that can be read now: reported, not healed',
  );
  t.match(
    r2.lost.find((l) => l.target === 'cloud-east'),
    { code: 'CLOUD_OBJECT_MISSING', healed: false, notHealed: { code: 'CLOUD_UPLOAD_PENDING' } },
  );
  t.ok(r2.notHealed >= 3, 'verify would exit 3');
  await t.rejects(stat(file(fx, 'mirror', b.rel)), { code: 'ENOENT' }, 'the damaged file is no longer under its name');
  t.same(await temps(root(fx, 'mirror')), [], 'nothing partial');
  t.same(await temps(root(fx, 'raid')), [], 'nothing partial');
  const copies = await fx.catalogue.copiesOf(b.hash);
  t.same(
    copies.map((c) => c.target).sort(),
    ['cloud-west', 'laptop'],
    'only the archive-class copy and the field copy are recorded',
  );
  t.notOk(fx.service.ledger.verdict(copies).compliant, 'and they are not 3-2-1');
  const key = objectKey(fx.service.cloudTargets[1] as never, b.hash);
  t.ok(fx.cloud.bucket('cold')?.objects.has(key), 'the archive object is untouched');
});

t.test('a source whose bytes do not verify is skipped for the next one', async (t) => {
  const fx = await open(t);
  const [a] = await fx.commit(1);
  if (a === undefined) throw new Error('no asset');
  await unlink(file(fx, 'mirror', a.rel));
  await rotByte(file(fx, 'raid', a.rel), 5); // still recorded as verified: verify has not seen it yet
  const r = await fx.service.remake({ hash: a.hash, target: 'mirror', reason: 'DURABLE_MISSING', foundBy: 'test' });
  t.match(r, { healed: true, from: { target: 'cloud-east', kind: 'cloud' } });
  t.same(
    r.attempts.map((x) => [x.target, x.code]),
    [['raid', 'DURABLE_HASH_MISMATCH']],
    'the rotted RAID copy was tried first and refused by the durable write',
  );
  t.equal((await hashFile(file(fx, 'mirror', a.rel))).blake3, a.hash);
  t.same(await temps(root(fx, 'mirror')), [], 'the refused attempt left no temp');
});

t.test('--no-repair only reports; a later verify heals what it left (RECOVERY_COPY_NOT_RECORDED)', async (t) => {
  const fx = await open(t);
  const [a] = await fx.commit(1);
  if (a === undefined) throw new Error('no asset');
  await rotByte(file(fx, 'mirror', a.rel), 77);
  const rotted = await readFile(file(fx, 'mirror', a.rel));
  const r = await fx.service.verify({ repair: false });
  t.same(
    r.lost.map((l) => [l.target, l.code, l.healed, l.notHealed?.code]),
    [['mirror', 'DURABLE_HASH_MISMATCH', false, 'NOT_REPAIRED']],
  );
  t.same(await readFile(file(fx, 'mirror', a.rel)), rotted, 'the damaged file is left where it is');
  t.same(fx.service.quarantine.totals(), {}, 'nothing quarantined');
  t.notOk(
    (await fx.catalogue.copiesOf(a.hash)).some((c) => c.target === 'mirror'),
    'the copy stopped counting',
  );

  // The same state a kill -9 between "stop counting" and "heal" leaves.
  const r2 = await fx.service.verify();
  t.same(
    r2.lost.map((l) => [l.target, l.code, l.healed, l.healedFrom?.target]),
    [['mirror', 'RECOVERY_COPY_NOT_RECORDED', true, 'raid']],
  );
  t.same(fx.service.quarantine.totals(), { mirror: { count: 1, bytes: a.size } });
  t.equal((await hashFile(file(fx, 'mirror', a.rel))).blake3, a.hash);
});

t.test('a heal cut after its write: the verified file in place is recorded, nothing written again', async (t) => {
  const fx = await open(t);
  const [a] = await fx.commit(1);
  if (a === undefined) throw new Error('no asset');
  const mirrorCopy = (await fx.catalogue.copiesOf(a.hash)).find((c) => c.target === 'mirror');
  if (mirrorCopy === undefined) throw new Error('no mirror copy');
  await fx.catalogue.removeCopy(mirrorCopy); // the record is gone, the (good) file is there
  const before = await stat(file(fx, 'mirror', a.rel));
  const r = await fx.service.verify();
  t.match(r.lost, [{ target: 'mirror', code: 'RECOVERY_COPY_NOT_RECORDED', healed: true, healedFrom: null }]);
  t.equal((await stat(file(fx, 'mirror', a.rel))).ino, before.ino, 'the same file, not a new one');
  t.same(fx.service.quarantine.totals(), {}, 'nothing quarantined');
  t.match(
    (await fx.catalogue.copiesOf(a.hash)).find((c) => c.target === 'mirror'),
    { method: 'verify-blake3' },
  );
});

t.test('a damaged copy found by a commit is moved aside; a good one is not', async (t) => {
  const fx = await open(t);
  const [a] = await fx.commit(1);
  if (a === undefined) throw new Error('no asset');
  t.equal(
    await fx.service.moveDamagedAside({ target: 'raid', path: a.rel, hash: a.hash }),
    false,
    'a copy that verifies stays',
  );
  await rotByte(file(fx, 'raid', a.rel), 3);
  t.equal(await fx.service.moveDamagedAside({ target: 'raid', path: a.rel, hash: a.hash }), true);
  await t.rejects(stat(file(fx, 'raid', a.rel)), { code: 'ENOENT' }, 'the name is free for the commit');
  t.notOk(
    (await fx.catalogue.copiesOf(a.hash)).some((c) => c.target === 'raid'),
    'its record stopped counting',
  );
  t.same(fx.service.quarantine.totals(), { raid: { count: 1, bytes: a.size } });
  // A second damaged file under the same name on the same day does not replace the first in the quarantine.
  await fx.service.remake({ hash: a.hash, target: 'raid', reason: 'DURABLE_MISSING', foundBy: 'test' });
  await rotByte(file(fx, 'raid', a.rel), 4);
  t.equal(await fx.service.moveDamagedAside({ target: 'raid', path: a.rel, hash: a.hash }), true);
  const qdir = join(root(fx, 'raid'), QUARANTINE_DIR, '2024-05-01', a.rel, '..');
  t.same((await readdir(qdir)).sort(), ['IMG_0001.CR3', 'IMG_0001~2.CR3'], 'the second gets a distinct name');
});
