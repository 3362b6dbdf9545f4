/**
 * Restore, in-process, over a real catalogue (LevelDB), real mirror and RAID
 * folders with their markers, and cloud targets on MemorySink — the archive
 * class through ArchiveSink (test/lib/archive-sink.ts), a TEST DOUBLE: no
 * server that runs here refuses to GET an archived object or takes hours to
 * restore one, so the double does, on an injected clock.
 *
 * Covered: the source order and --from, fallback after a rotted or missing copy
 * and an unmounted RAID, the sidecar group, never overwriting in DIR, queries
 * that match nothing, the archive request path across a restart, no partial
 * file in DIR after any failure, the sweep of a crashed restore's temps, progress.
 */
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createLogger, hashBytes, hashFile, nameKey, type ProgressSnapshot } from '@studio321/protocol';
import { Catalogue, parseStudiodConfig, type CopyRecord, type StudiodConfig } from '@studio321/studiod';
import { objectKey, type CloudTargetConfig } from '@studio321/studiod/cloud';
import { LedgerService } from '@studio321/studiod/ledger';
import { RestoreRecords, RestoreService, type RestoreReport } from '@studio321/studiod/recovery';
import { ArchiveCloud } from '../../lib/archive-sink.js';
import { rotByte } from '../../lib/bit-rot.js';

const DAY = '2026-11-26';
const SHOOT = 'wedding';
const CARD = 'CARD1-c375e040';
const FOLDER = `${DAY}/${SHOOT}/${CARD}/DCIM/100CANON`;
const HOUR = 3600_000;

function cloudTarget(name: string, storageClass: string, extra: Partial<CloudTargetConfig> = {}): CloudTargetConfig {
  return {
    name,
    region: 'us-east-1',
    bucket: name,
    accessKeyId: 'k',
    secretAccessKey: 's',
    storageClass,
    media: storageClass === 'STANDARD' ? 'cloud-ssd' : 'tape',
    location: name,
    ...extra,
  };
}

const HOT = cloudTarget('cloud-east', 'STANDARD');
const COLD = cloudTarget('cloud-west', 'DEEP_ARCHIVE', { restoreTier: 'Standard', restoreDays: 3 });

interface Studio {
  base: string;
  config: StudiodConfig;
  catalogue: Catalogue;
  ledger: LedgerService;
  restore: RestoreService;
  archive: ArchiveCloud;
  close(): Promise<void>;
}

/** Opens catalogue, ledger (for `findAssets`) and RestoreService over `base`; again after `close()` = a restart. */
async function open(base: string, archive: ArchiveCloud): Promise<Studio> {
  const targets = {
    mirror: { root: join(base, 'mirror'), media: 'hdd', location: 'studio', device: 'mirror-1' },
    raid: { root: join(base, 'raid'), media: 'raid-hdd', location: 'studio', device: 'raid-1' },
  };
  const config = parseStudiodConfig({ stateDir: join(base, 'state'), targets, cloud: [HOT, COLD] });
  const catalogue = new Catalogue(join(base, 'state', 'catalogue'));
  await catalogue.open();
  const log = createLogger({ name: 'test', level: 'silent' });
  // The ledger only resolves names here (its cloud forwarder is not wanted: copies are placed by the test).
  const ledger = new LedgerService({ config: { ...config, cloud: undefined }, catalogue, log });
  await ledger.open();
  const restore = new RestoreService({
    config,
    catalogue,
    log,
    findAssets: (q) => ledger.findAssets(q),
    sinkFactory: (target) => archive.sink(target),
    now: () => archive.now,
    pendingPollMs: 0,
  });
  await restore.open();
  return {
    base,
    config,
    catalogue,
    ledger,
    restore,
    archive,
    close: async () => {
      await restore.close();
      await ledger.close();
      await catalogue.close();
    },
  };
}

async function newStudio(t: Test): Promise<Studio> {
  const base = await mkdtemp(join(tmpdir(), 's321-restore-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  for (const [name, dir] of [
    ['mirror', join(base, 'mirror')],
    ['raid', join(base, 'raid')],
  ] as const) {
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, '.studio321-target.json'),
      JSON.stringify({ target: name, device: `${name}-1`, createdAt: 1 }),
    );
  }
  const s = await open(
    base,
    new ArchiveCloud({ buckets: [HOT.bucket, COLD.bucket], delayMs: 12 * HOUR, now: 1_000_000 }),
  );
  t.teardown(() => s.close().catch(() => undefined));
  return s;
}

interface Stored {
  hash: string;
  bytes: Buffer;
  rel: string;
}

/**
 * Commits a file as studiod would have: the bytes under `<FOLDER>/<name>` on the
 * mirror and the RAID, the catalogue batch (asset, name, copies, stored path),
 * and an object on each cloud target in `clouds` with its copy record.
 */
async function store(
  s: Studio,
  name: string,
  opts: { size?: number; clouds?: CloudTargetConfig[]; local?: boolean } = {},
): Promise<Stored> {
  const bytes = randomBytes(opts.size ?? 3000 + Math.floor(Math.random() * 5000));
  const hash = hashBytes(bytes);
  const rel = `${FOLDER}/${name}`;
  const local = opts.local ?? true;
  const copies: CopyRecord[] = [];
  for (const target of ['mirror', 'raid'] as const) {
    const file = join(s.config.targets[target].root, rel);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, bytes);
    if (local)
      copies.push({
        hash,
        target,
        kind: 'studio',
        path: rel,
        size: bytes.byteLength,
        device: `${target}-1`,
        media: target,
        location: 'studio',
        offsite: false,
        method: 'readback-blake3',
        verifiedAt: 1,
      });
  }
  const cardPath = `DCIM/100CANON/${name.replace(/~\d+/, '')}`;
  await s.catalogue.commitAsset({
    asset: { hash, size: bytes.byteLength, committedAt: 1 },
    names: [
      {
        key: nameKey(`${SHOOT}/${CARD}/${cardPath}`),
        value: {
          hash,
          shoot: SHOOT,
          card: CARD,
          path: cardPath,
          mtime: Date.UTC(2026, 10, 26, 12),
          agentId: 'a',
          seenAt: 1,
        },
      },
    ],
    copies,
    storedPaths: [{ key: nameKey(rel), value: { hash, path: rel } }],
  });
  for (const target of opts.clouds ?? [HOT, COLD]) {
    const sink = s.archive.sink(target);
    await sink.open();
    const key = objectKey(target, hash);
    const src = join(s.config.targets.mirror.root, rel);
    await sink.putObject(
      {
        key,
        path: src,
        start: 0,
        end: bytes.byteLength,
        sha256b64: createHash('sha256').update(bytes).digest('base64'),
        signal: new AbortController().signal,
      },
      { blake3: hash },
    );
    await sink.close();
    await s.catalogue.recordCopy({
      hash,
      target: target.name,
      kind: 'cloud',
      path: key,
      size: bytes.byteLength,
      device: `cloud:${target.name}`,
      media: target.media,
      location: target.location,
      offsite: true,
      method: 'head-size-sha256-meta',
      verifiedAt: 1,
    });
  }
  return { hash, bytes, rel };
}

/** Every file under dir (relative), temps included: nothing may hide. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(join(d, e.name), r);
      else out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

const fileOf = (r: RestoreReport, rel: string) => r.files.find((f) => f.path === rel);

t.test('source order: mirror first; --from forces a target; the bytes written are the asset', async (t) => {
  const s = await newStudio(t);
  const a = await store(s, 'IMG_0001.CR3');
  const to = join(s.base, 'out');
  const r = await s.restore.restore({ queries: ['IMG_0001.CR3'], to });
  t.ok(r.complete);
  t.same(
    r.files.map((f) => [f.path, f.status, f.source]),
    [[a.rel, 'restored', 'mirror']],
  );
  t.equal(fileOf(r, a.rel)?.dest, join(to, a.rel), 'DIR/<stored target-relative path>');
  t.ok((await readFile(join(to, a.rel))).equals(a.bytes), 'restored bytes equal the original');
  for (const from of ['raid', 'cloud-east'] as const) {
    const dir = join(s.base, `from-${from}`);
    const rf = await s.restore.restore({ queries: [a.hash], to: dir, from });
    t.same([rf.files[0]?.status, rf.files[0]?.source], ['restored', from], `--from ${from}`);
    t.equal((await hashFile(join(dir, a.rel))).blake3, a.hash);
  }
  t.same(
    s.archive.calls.filter((c) => c.startsWith('GET')),
    [`GET ${objectKey(HOT, a.hash)}`],
    'the cloud read only when forced',
  );
  await t.rejects(s.restore.restore({ queries: [a.hash], to, from: 'tape-in-a-drawer' }), {
    code: 'RECOVERY_BAD_ARGUMENT',
  });
  await t.rejects(s.restore.restore({ queries: [a.hash], to: 'relative/dir' }), { code: 'RECOVERY_BAD_ARGUMENT' });
  await t.rejects(s.restore.restore({ queries: [], to }), { code: 'RECOVERY_BAD_ARGUMENT' });
});

t.test(
  'a rotted mirror copy is reported and the RAID copy restored; an unmounted RAID falls to the cloud',
  async (t) => {
    const s = await newStudio(t);
    const a = await store(s, 'IMG_0002.CR3');
    await rotByte(join(s.config.targets.mirror.root, a.rel), 100);
    const to = join(s.base, 'out');
    const r = await s.restore.restore({ queries: ['IMG_0002.CR3'], to });
    const f = fileOf(r, a.rel);
    t.same([f?.status, f?.source], ['restored', 'raid']);
    t.same(
      f?.attempts.map((x) => [x.target, x.code]),
      [['mirror', 'DURABLE_HASH_MISMATCH']],
      'the rotted copy is reported with its code',
    );
    t.equal((await hashFile(join(to, a.rel))).blake3, a.hash);

    // The RAID's marker gone (an empty mount point) and the mirror file gone: the hot cloud copy.
    const b = await store(s, 'IMG_0003.CR3');
    await unlink(join(s.config.targets.mirror.root, b.rel));
    await unlink(join(s.config.targets.raid.root, '.studio321-target.json'));
    const r2 = await s.restore.restore({ queries: [b.hash], to });
    const f2 = fileOf(r2, b.rel);
    t.same([f2?.status, f2?.source], ['restored', 'cloud-east']);
    t.same(
      f2?.attempts.map((x) => [x.target, x.code]),
      [
        ['mirror', 'DURABLE_SOURCE_FAILED'],
        ['raid', 'STUDIO_TARGET_MISSING'],
      ],
    );
    t.notOk(
      (await tree(s.config.targets.raid.root)).includes('.studio321-target.json'),
      'a restore never writes a target marker',
    );
    t.ok((await readFile(join(to, b.rel))).equals(b.bytes));
  },
);

t.test('the group comes along: RAW + JPEG + XMP and the ~2 clash names of the stem, nothing else', async (t) => {
  const s = await newStudio(t);
  const group = [
    await store(s, 'IMG_0001.CR3'),
    await store(s, 'IMG_0001.JPG'),
    await store(s, 'img_0001.xmp'),
    await store(s, 'IMG_0001~2.CR3'),
  ];
  const others = [await store(s, 'IMG_00010.CR3'), await store(s, 'IMG_0002.CR3'), await store(s, 'IMG_0001X.JPG')];
  const to = join(s.base, 'out');
  const r = await s.restore.restore({ queries: ['IMG_0001.JPG'], to });
  t.ok(r.complete);
  t.same(r.files.map((f) => f.path).sort(), group.map((g) => g.rel).sort(), 'exactly the group');
  for (const g of group) t.ok((await readFile(join(to, g.rel))).equals(g.bytes), `${g.rel} restored`);
  for (const o of others) t.notOk((await tree(to)).includes(o.rel), `${o.rel} not restored`);
});

t.test('never overwrite in DIR: identical content counts as restored, different content gets ~2', async (t) => {
  const s = await newStudio(t);
  const a = await store(s, 'IMG_0004.CR3');
  const to = join(s.base, 'out');
  await mkdir(dirname(join(to, a.rel)), { recursive: true });
  await writeFile(join(to, a.rel), a.bytes);
  const r = await s.restore.restore({ queries: [a.hash], to });
  t.same([r.files[0]?.status, r.complete], ['present', true], 'identical file there: present, complete');

  const b = await store(s, 'IMG_0005.CR3');
  const someoneElses = Buffer.from('a different file the client put here');
  await writeFile(join(to, b.rel), someoneElses);
  const r2 = await s.restore.restore({ queries: [b.hash], to });
  const f = r2.files[0];
  t.same([f?.status, f?.dest], ['restored', join(to, `${FOLDER}/IMG_0005~2.CR3`)]);
  t.ok((await readFile(join(to, b.rel))).equals(someoneElses), 'the existing file is untouched');
  t.ok((await readFile(join(to, `${FOLDER}/IMG_0005~2.CR3`))).equals(b.bytes));
  const again = await s.restore.restore({ queries: [b.hash], to });
  t.same([again.files[0]?.status, again.files[0]?.dest], ['present', f?.dest], 'a second run finds the ~2 copy');
});

t.test('a query that matches nothing is reported, never skipped; the rest is restored', async (t) => {
  const s = await newStudio(t);
  const a = await store(s, 'IMG_0006.CR3');
  const to = join(s.base, 'out');
  const r = await s.restore.restore({ queries: ['IMG_0006.CR3', 'IMG_9999.CR3'], to });
  t.same(
    r.notFound.map((n) => [n.query, n.code]),
    [['IMG_9999.CR3', 'RECOVERY_NOT_FOUND']],
  );
  t.equal(r.complete, false, 'not complete: exit 3');
  t.same([r.restored, fileOf(r, a.rel)?.status], [1, 'restored']);
  const shootOnly = await s.restore.restore({ queries: [], shoot: 'no-such-shoot', to });
  t.same([shootOnly.files.length, shootOnly.notFound[0]?.code, shootOnly.complete], [0, 'RECOVERY_NOT_FOUND', false]);
  const inOtherShoot = await s.restore.restore({ queries: ['IMG_0006.CR3'], shoot: 'other', to });
  t.same(
    inOtherShoot.notFound.map((n) => n.query),
    ['IMG_0006.CR3'],
    '--shoot restricts the query',
  );
  const wholeCard = await s.restore.restore({ queries: [], card: 'CARD1', to: join(s.base, 'card') });
  t.same([wholeCard.restored, wholeCard.complete], [1, true], '--card alone selects every asset of the card');
});

t.test('every source bad: failed with each code, and nothing (no file, no temp) in DIR', async (t) => {
  const s = await newStudio(t);
  const a = await store(s, 'IMG_0007.CR3', { size: 300_000, clouds: [HOT] });
  await rotByte(join(s.config.targets.mirror.root, a.rel), 5);
  await writeFile(join(s.config.targets.raid.root, a.rel), a.bytes.subarray(0, 1000)); // short
  const obj = s.archive.memory.bucket(HOT.bucket)?.objects.get(objectKey(HOT, a.hash));
  if (obj === undefined) throw new Error('no object');
  obj.bytes[200_000] = (obj.bytes[200_000] ?? 0) ^ 0xff; // rot on the "server"
  const to = join(s.base, 'out');
  const r = await s.restore.restore({ queries: [a.hash], to });
  const f = r.files[0];
  t.same([f?.status, f?.code, r.complete], ['failed', 'RECOVERY_NO_SOURCE', false]);
  t.same(
    f?.attempts.map((x) => [x.target, x.code]),
    [
      ['mirror', 'DURABLE_HASH_MISMATCH'],
      ['raid', 'DURABLE_SIZE_MISMATCH'],
      ['cloud-east', 'DURABLE_HASH_MISMATCH'],
    ],
  );
  t.same(await tree(to), [], 'nothing partial in DIR');
  t.same(await new RestoreRecords(s.catalogue).dirs(), [], 'no directory left noted');
});

t.test('a crashed restore: its temps are swept at the next start, its dir record removed', async (t) => {
  const s = await newStudio(t);
  const dir = join(s.base, 'out', FOLDER);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, '.IMG_0008.CR3.0123456789ab.s321tmp'), 'half a file');
  await writeFile(join(dir, 'IMG_0000.CR3'), 'a restored file stays');
  await new RestoreRecords(s.catalogue).putDir(dir, 1);
  await s.close();
  const again = await open(s.base, s.archive);
  t.teardown(() => again.close());
  t.same(await tree(join(s.base, 'out')), [`${FOLDER}/IMG_0000.CR3`], 'the temp is gone, the final file kept');
  t.same(await new RestoreRecords(again.catalogue).dirs(), []);
});

t.test(
  'archive copy only: RestoreObject requested and recorded; completed after the delay, across a restart',
  async (t) => {
    let s = await newStudio(t);
    const a = await store(s, 'IMG_0009.CR3', { local: false, clouds: [COLD] });
    const b = await store(s, 'IMG_0010.CR3', { local: false, clouds: [HOT, COLD] });
    const to = join(s.base, 'out');
    const r = await s.restore.restore({ queries: [a.hash, b.hash], to });
    const fa = fileOf(r, a.rel);
    t.same([fa?.status, fa?.code, fa?.source], ['requested', 'RECOVERY_ARCHIVE_PENDING', 'cloud-west']);
    t.match(fa?.message, /12–48 h/, 'says honestly when');
    t.same(
      fa?.attempts.map((x) => [x.target, x.code]),
      [['cloud-west', 'RECOVERY_ARCHIVED']],
    );
    t.same(
      [fileOf(r, b.rel)?.status, fileOf(r, b.rel)?.source],
      ['restored', 'cloud-east'],
      'a hot copy needs no archive',
    );
    t.equal(r.complete, false, 'exit 3 while requested');
    t.notOk(
      s.archive.calls.includes(`RESTORE ${objectKey(COLD, b.hash)}`),
      'no archive request when a cheaper copy worked',
    );
    t.same(
      [...s.archive.restores.entries()],
      [[`${COLD.bucket}/${objectKey(COLD, a.hash)}`, { requestedAt: 1_000_000, days: 3, tier: 'Standard' }]],
      "RestoreObject with the target's tier and days",
    );
    let pending = await s.restore.pending();
    t.same(
      pending.map((p) => [p.hash, p.target, p.dir, p.path, p.tier, p.days]),
      [[a.hash, 'cloud-west', to, a.rel, 'Standard', 3]],
    );
    const again = await s.restore.restore({ queries: [a.hash], to });
    t.equal(again.files[0]?.status, 'requested', 'asked again: still requested');
    t.equal((await s.restore.pending()).length, 1, 'one record per file and DIR');

    // Restart: new objects over the same catalogue dir; the request is still there.
    await s.close();
    s = await open(s.base, s.archive);
    t.teardown(() => s.close());
    pending = await s.restore.pending();
    t.equal(pending.length, 1, 'the request survived the restart');
    s.archive.now += 11 * HOUR;
    await s.restore.checkPending();
    t.notOk((await tree(to)).includes(a.rel), 'not readable yet: nothing written');
    t.same(
      (await s.restore.pending()).map((p) => p.checkedAt),
      [s.archive.now],
      'looked at',
    );
    s.archive.now += 2 * HOUR;
    await s.restore.checkPending();
    t.ok((await readFile(join(to, a.rel))).equals(a.bytes), 'written by studiod itself once readable, verified');
    t.same(await s.restore.pending(), [], 'the request is removed once done');
    t.same(
      (await tree(to)).filter((p) => p.endsWith('.s321tmp')),
      [],
      'no temp left',
    );
    const done = await s.restore.restore({ queries: [a.hash], to });
    t.same([done.files[0]?.status, done.complete], ['present', true]);
  },
);

t.test('progress: bytes and files to the end; restore totals', async (t) => {
  const s = await newStudio(t);
  const files = [await store(s, 'IMG_0011.CR3', { size: 20_000_000 }), await store(s, 'IMG_0011.JPG', { size: 1000 })];
  const seen: ProgressSnapshot[] = [];
  const r = await s.restore.restore(
    { queries: ['IMG_0011.CR3'], to: join(s.base, 'out') },
    { progress: (p) => seen.push(p as ProgressSnapshot) },
  );
  t.same([r.restored, r.bytes], [2, files.reduce((n, f) => n + f.bytes.byteLength, 0)]);
  const last = seen.at(-1);
  t.same([last?.files, last?.totalFiles, last?.bytes, last?.totalBytes], [2, 2, r.bytes, r.bytes]);
  t.ok(seen.length >= 2, `${seen.length} progress reports`);
});
