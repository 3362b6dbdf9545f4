/**
 * The ledger never lies (PRODUCT.md promise 7), end to end with real processes:
 * the demo's steps (s3rver, studiod, a paired field agent, ingest, sync, cloud
 * forwarding) on a smaller card set; then every copy of every asset `status`
 * calls compliant is read back independently — local files hashed here (and
 * with b3sum), cloud objects fetched with GetObject and hashed;
 * then copies are destroyed behind studiod's back and `studioctl verify
 * --no-repair` must make `status`, `asset` and `assets --unprotected` say so
 * (healing is test/system/studiod/recovery/heal.test.ts). Only archive copies
 * count: the laptop's copies are field copies, listed apart.
 */
import t from 'tap';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { createHasher, hashFile } from '@studio321/protocol';
import { DemoRun } from '../../../../scripts/dist/lib/demo-run.js';
import { independentClient } from '../../../lib/cloud-fixture.js';
import { b3sum } from '../../../lib/b3sum.js';
import { rotByte } from '../../../lib/bit-rot.js';

interface Copy {
  target: string;
  kind: string;
  path: string;
  where: string;
  method: string;
  verifiedAt: number;
  offsite: boolean;
  size: number;
}
interface AssetView {
  hash: string;
  size: number;
  compliant: boolean;
  reasons: string[];
  copies: Copy[];
  fieldCopies: Copy[];
  names: Array<{ path: string }>;
}
interface Status {
  ledger: {
    assets: number;
    compliant: number;
    notCompliant: number;
    missing: { copies: number; media: number; offsite: number };
  };
  targetReport: Array<{
    target: string;
    kind: string;
    copies: number;
    missing: { count: number; oldestCommittedAt: string | null } | null;
  }>;
}

const dir = await mkdtemp(join(tmpdir(), 'ledger-truth-'));
const demo = new DemoRun({ dir, rawSize: 256 * 1024, say: () => undefined });
t.teardown(async () => {
  await demo.stop();
  await rm(dir, { recursive: true, force: true });
});

const { files, settled } = await demo.syncedStudio(60_000);

const s3 = independentClient(demo.s3Endpoint);
t.teardown(() => s3.destroy());

async function cardHashes(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const c of demo.cards)
    for (const f of c.files) out.add((await hashFile(join(c.dir, ...f.path.split('/')))).blake3);
  return out;
}

async function objectBlake3(
  bucket: string,
  key: string,
): Promise<{ blake3: string; size: number; storageClass: string | undefined }> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const h = createHasher();
  let size = 0;
  for await (const chunk of r.Body as AsyncIterable<Uint8Array>) {
    h.update(chunk);
    size += chunk.byteLength;
  }
  return { blake3: h.digest(), size, storageClass: r.StorageClass };
}

const bucketOf = (target: string): string => target; // the demo names each bucket after its target
const status = (): Promise<Status> => demo.studioctlJson<Status>(['status']);
const asset = async (hash: string): Promise<AssetView> =>
  (await demo.studioctlJson<{ assets: AssetView[] }>(['asset', hash])).assets[0] as AssetView;

t.test('every asset status calls compliant has the right bytes in every copy it lists', async (t) => {
  const distinct = await cardHashes();
  t.equal(
    settled.ledger.assets,
    distinct.size,
    `one asset per distinct content (${files} card files, ${distinct.size} distinct)`,
  );
  t.equal(settled.ledger.compliant, settled.ledger.assets, 'every asset is 3-2-1 compliant after the run');
  const list = await demo.studioctlJson<{ items: AssetView[]; total: number; more: boolean }>([
    'assets',
    '--limit',
    '100000',
  ]);
  t.equal(list.items.length, distinct.size);
  t.notOk(list.more);
  let checked = 0;
  const localFiles: Array<{ path: string; hash: string }> = [];
  for (const a of list.items) {
    t.ok(distinct.has(a.hash), `asset ${a.hash.slice(0, 12)} came from a card`);
    t.ok(a.compliant, `${a.names[0]?.path} compliant`);
    const targets = new Set(a.copies.map((c) => c.target));
    for (const want of ['mirror', 'raid', 'cloud-east', 'cloud-west'])
      t.ok(targets.has(want), `${a.hash.slice(0, 12)} lists a ${want} copy`);
    for (const c of a.copies) {
      t.ok(c.method.length > 0 && c.verifiedAt > 0, 'each copy says how and when it was verified');
      if (c.kind === 'studio') {
        const got = await hashFile(c.where);
        t.equal(got.blake3, a.hash, `${c.target} bytes hash to the asset`);
        t.equal(got.size, a.size);
        localFiles.push({ path: c.where, hash: a.hash });
        checked++;
      } else if (c.kind === 'cloud') {
        t.ok(c.offsite, 'cloud copies are offsite');
        const got = await objectBlake3(bucketOf(c.target), c.path);
        t.equal(got.blake3, a.hash, `${c.target} object bytes hash to the asset`);
        t.equal(got.size, a.size);
        if (c.target === 'cloud-west')
          t.equal(got.storageClass, 'DEEP_ARCHIVE', 'tape-class copy has its storage class');
        checked++;
      }
    }
  }
  // An independent tool over every local copy.
  for (const f of localFiles) t.equal(b3sum(f.path), f.hash, `b3sum: ${f.path}`);
  t.ok(checked >= distinct.size * 4, `${checked} copies read back independently`);
});

t.test("copies destroyed behind studiod's back stop counting after verify, and status says why", async (t) => {
  const list = await demo.studioctlJson<{ items: AssetView[] }>(['assets', '--limit', '100000']);
  const victim = list.items[0] as AssetView;
  const copyOf = (a: AssetView, target: string): Copy => {
    const c = a.copies.find((x) => x.target === target);
    if (c === undefined) throw new Error(`no ${target} copy`);
    return c;
  };

  // 1. The mirror file disappears. Three archive copies remain (RAID, two clouds): still 3-2-1, and status says the mirror lacks one.
  await unlink(copyOf(victim, 'mirror').where);
  const v1 = await demo.studioctl(['--json', 'verify', '--target', 'mirror', '--no-repair']);
  t.equal(v1.code, 3, 'verify exits 3 when a copy was lost');
  const r1 = JSON.parse(v1.stdout) as {
    lost: Array<{ hash: string; target: string; code: string }>;
    copiesChecked: number;
    copiesOk: number;
  };
  t.same(
    r1.lost.map((l) => [l.hash, l.target, l.code]),
    [[victim.hash, 'mirror', 'DURABLE_MISSING']],
    'exactly the deleted copy is reported lost',
  );
  t.equal(r1.copiesOk, r1.copiesChecked - 1);
  let a = await asset(victim.hash);
  t.notOk(
    a.copies.some((c) => c.target === 'mirror'),
    'asset no longer lists a mirror copy',
  );
  let s = await status();
  const mirrorRow = s.targetReport.find((r) => r.target === 'mirror');
  t.equal(mirrorRow?.missing?.count, 1, 'status: the mirror is missing one asset');
  t.ok(mirrorRow?.missing?.oldestCommittedAt, 'with the oldest commit time');
  t.equal(s.ledger.compliant, s.ledger.assets, 'still compliant: raid + two clouds remain (the laptop does not count)');

  // 2. Bit rot on the RAID copy and both cloud objects deleted: only the laptop's copy is left.
  const raidPath = copyOf(a, 'raid').where;
  await rotByte(raidPath, 100);
  for (const target of ['cloud-east', 'cloud-west'])
    await s3.send(new DeleteObjectCommand({ Bucket: bucketOf(target), Key: copyOf(a, target).path }));
  const v2 = await demo.studioctl(['--json', 'verify', '--no-repair']);
  t.equal(v2.code, 3);
  const r2 = JSON.parse(v2.stdout) as {
    lost: Array<{ hash: string; target: string; code: string }>;
    unchecked: unknown[];
  };
  t.same(r2.lost.map((l) => `${l.target}:${l.code}`).sort(), [
    'cloud-east:CLOUD_OBJECT_MISSING',
    'cloud-west:CLOUD_OBJECT_MISSING',
    'raid:DURABLE_HASH_MISMATCH',
  ]);
  t.ok(
    r2.lost.every((l) => l.hash === victim.hash),
    'only the victim lost copies',
  );
  t.same(r2.unchecked, [], 'every target could be checked');

  s = await status();
  t.equal(s.ledger.notCompliant, 1, 'status: one asset is no longer compliant');
  t.equal(s.ledger.compliant, s.ledger.assets - 1);
  t.equal(s.ledger.missing.offsite, 1, 'status: it lacks an offsite copy');
  t.equal(s.ledger.missing.copies, 1, 'status: it lacks verified copies');
  for (const target of ['mirror', 'raid', 'cloud-east', 'cloud-west']) {
    t.equal(s.targetReport.find((r) => r.target === target)?.missing?.count, 1, `status: ${target} is missing it`);
  }
  const human = await demo.studioctl(['status']);
  t.match(human.stdout, /NOT yet 3-2-1 safe:\s+1/, 'human status says one asset is not safe');

  const unprot = await demo.studioctlJson<{ items: AssetView[]; total: number }>(['assets', '--unprotected']);
  t.equal(unprot.total, 1);
  t.same(
    unprot.items.map((x) => x.hash),
    [victim.hash],
    'assets --unprotected lists exactly the victim',
  );
  const reasons = unprot.items[0]?.reasons.join(' | ') ?? '';
  t.match(reasons, /more verified cop/, 'reason: copies');
  t.match(reasons, /another location/, 'reason: offsite');
  a = await asset(victim.hash);
  t.same(a.copies, [], 'no archive copy is listed');
  t.same(
    a.fieldCopies.map((c) => c.kind),
    ['agent'],
    'only the laptop copy is still listed, as a field copy',
  );
  t.notOk(a.compliant);

  // The same verify again finds nothing new: the ledger already tells the truth.
  const v3 = await demo.studioctl(['--json', 'verify', '--no-repair']);
  t.equal(v3.code, 0);
  t.same((JSON.parse(v3.stdout) as { lost: unknown[] }).lost, []);
});

t.test(
  'an unmounted target is reported unchecked, never read as "every copy lost"; its copies stop counting while it is away',
  async (t) => {
    const before = await status();
    const away = `${demo.paths.mirror}.unmounted`;
    const { rename } = await import('node:fs/promises');
    await rename(demo.paths.mirror, away);
    try {
      const v = await demo.studioctl(['--json', 'verify', '--target', 'mirror']);
      t.equal(v.code, 0, 'nothing lost');
      const r = JSON.parse(v.stdout) as { lost: unknown[]; unchecked: Array<{ target: string; code: string }> };
      t.same(r.lost, []);
      t.same(
        r.unchecked.map((u) => [u.target, u.code]),
        [['mirror', 'STUDIO_TARGET_MISSING']],
        'mirror reported unchecked, with the reason',
      );
      const after = (await status()) as Status & { unavailableTargets: string[] };
      t.same(after.unavailableTargets, ['mirror'], 'status: the mirror is unavailable');
      t.equal(
        after.targetReport.find((x) => x.target === 'mirror')?.missing?.count,
        after.ledger.assets,
        'no mirror copy counts while it is away',
      );
      t.same(
        after.targetReport.find((x) => x.target === 'mirror')?.copies,
        before.targetReport.find((x) => x.target === 'mirror')?.copies,
        'mirror copy records are kept (not read as lost)',
      );
    } finally {
      await rename(away, demo.paths.mirror);
    }
    const back = await status();
    t.same(back.ledger, before.ledger, 'mirror back: ledger counters exactly as before');
  },
);

t.test('asset and assets: lookups, filters and refusals with their codes', async (t) => {
  const byName = await demo.studioctlJson<{ assets: AssetView[] }>(['asset', 'img_9999.cr3']);
  t.equal(byName.assets.length, 1, 'a file name finds its asset, case-insensitively');
  const card = (await asset(byName.assets[0]?.hash ?? '')).names[0] as unknown as { card: string; shoot: string };
  const byFull = await demo.studioctlJson<{ assets: AssetView[] }>([
    'asset',
    `${card.shoot}/${card.card}/DCIM/100CANON/IMG_9999.CR3`,
  ]);
  t.same(
    byFull.assets.map((a) => a.hash),
    byName.assets.map((a) => a.hash),
    'shoot/card/path finds the same asset',
  );
  const twoBodies = await demo.studioctlJson<{ assets: AssetView[] }>(['asset', 'IMG_0001.CR3']);
  t.ok(twoBodies.assets.length >= 2, 'one name, several contents (two bodies, DCF wrap): every asset is shown');
  const inCard = await demo.studioctlJson<{ items: AssetView[] }>(['assets', '--card', 'R6-BODY-A', '--limit', '1000']);
  t.equal(inCard.items.length, 6, '--card by label: the six files of that card');
  const none = await demo.studioctl(['asset', 'NO_SUCH_FILE.CR3']);
  t.equal(none.code, 1);
  t.match(none.stderr, /LEDGER_NOT_FOUND/);
  const bad = await demo.studioctl(['verify', '--target', 'tape-robot']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /LEDGER_UNKNOWN_TARGET/);
});
