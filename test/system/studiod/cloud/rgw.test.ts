/**
 * The cloud leg against a REAL S3 server: Ceph's RADOS Gateway on a
 * single-node cluster (scripts/rgw.sh, started once for this file). Unlike
 * s3rver it checks SigV4 signatures, Content-MD5, multipart part lists,
 * versioning and Object Lock.
 *
 * What RADOS Gateway (Ceph 16, Debian 12) does not model, and how the tests say so:
 *
 * | S3 behaviour                                   | RADOS Gateway                                  | where                   |
 * | ---------------------------------------------- | ---------------------------------------------- | ----------------------- |
 * | checks and stores `x-amz-checksum-sha256`      | ignores it (HEAD returns none)                 | suite: serverChecksums, checksBodyDigest |
 * | Complete of a lost upload: NoSuchUpload         | 500 InternalError (ListParts: NoSuchKey)       | suite: completeKnowsLostUploads; window cases |
 * | uploads of one key listed by creation time      | listed by UploadId                             | suite: listsUploadsInCreationOrder |
 * | Complete checks ETags, then sizes; may omit parts | sizes first; every part must be listed       | suite: completeChecksEtagsFirst, completeMayLeaveOutParts |
 * | RestoreObject (202, hours of rehydration)       | 501 NotImplemented: CLOUD_NOT_SUPPORTED        | suite: archiveRestore; the delay stays in test/lib/archive-sink.ts |
 * | GET of a GLACIER/DEEP_ARCHIVE object: 403       | served at once                                 | restore case: a read-refusing wrapper; the archive double elsewhere |
 * | CompleteMultipartUpload returns the ETag        | an empty ETag (the forwarder does not use it)  | forwarder cases below   |
 * | the SDK's default streaming CRC32 upload        | 411 (aws-chunked not accepted)                 | S3Sink sends WHEN_REQUIRED |
 * | Object Lock given at CreateMultipartUpload kept | dropped: the object has no retention           | the forwarder sets it (PutObjectRetention); Object Lock case |
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  PutBucketLifecycleConfigurationCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { createLogger, hashFile, nameKey } from '@studio321/protocol';
import { Catalogue, parseStudiodConfig } from '@studio321/studiod';
import {
  S3Sink,
  classifyS3Error,
  describeObject,
  objectKey,
  type AssetOrigin,
  type CloudCopyRecord,
  type CloudTargetConfig,
} from '@studio321/studiod/cloud';
import { RestoreRecords, RestoreService, rebuildCatalogue } from '@studio321/studiod/recovery';
import { RgwCluster } from '../../../lib/rgw.js';
import { CloudFixture, target, downloadSha256, fileSha256, headOrNull, waitFor } from '../../../lib/cloud-fixture.js';
import { cloudSinkSuite, SUITE_BUCKET } from '../../../lib/cloud-sink-suite.js';

const CHILD = fileURLToPath(new URL('../../../lib/cloud-forwarder-child.mjs', import.meta.url));
const MiB = 1024 * 1024;

const rgw = new RgwCluster();
await rgw.start();
t.teardown(() => rgw.stop());
t.comment(`RADOS Gateway: first signed PUT ${Math.round(rgw.startMs)} ms after start`);
await rgw.createBucket(SUITE_BUCKET);

function rgwTarget(name: string, bucket: string, extra: Partial<CloudTargetConfig> = {}): CloudTargetConfig {
  return target(name, rgw.endpoint, bucket, {
    accessKeyId: rgw.accessKeyId,
    secretAccessKey: rgw.secretAccessKey,
    ...extra,
  });
}

cloudSinkSuite(
  t,
  'S3Sink on RADOS Gateway',
  async (fields) => {
    const sink = new S3Sink({ ...rgwTarget('rgw', SUITE_BUCKET), ...fields });
    await sink.open();
    return { sink, cleanup: () => sink.close() };
  },
  {
    serverChecksums: false,
    checksBodyDigest: false,
    completeKnowsLostUploads: false,
    listsUploadsInCreationOrder: false,
    completeChecksEtagsFirst: false,
    completeMayLeaveOutParts: false,
    archiveRestore: 'unsupported',
  },
);

/** The open multipart uploads under a prefix, as an independent client sees them. */
async function openUploads(prefix: string): Promise<string[]> {
  const c = rgw.client();
  try {
    const r = await c.send(new ListMultipartUploadsCommand({ Bucket: 'forwarder', Prefix: prefix }));
    return (r.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
  } finally {
    c.destroy();
  }
}

/** `rclone check` (Debian's rclone, an independent client) between the mirror files and the bucket's objects. */
async function rcloneCheck(dir: string, bucket: string, prefix: string): Promise<{ code: number | null; out: string }> {
  const child = spawn('rclone', ['check', '--download', '--copy-links', dir, `rgw:${bucket}/${prefix}`], {
    env: {
      // The machine's AWS_CA_BUNDLE (if any) makes rclone's S3 SDK refuse its own HTTP transport; loopback needs no CA.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'AWS_CA_BUNDLE')),
      RCLONE_CONFIG: '/dev/null',
      RCLONE_CONFIG_RGW_TYPE: 's3',
      RCLONE_CONFIG_RGW_PROVIDER: 'Ceph',
      RCLONE_CONFIG_RGW_ENDPOINT: rgw.endpoint,
      RCLONE_CONFIG_RGW_ACCESS_KEY_ID: rgw.accessKeyId,
      RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY: rgw.secretAccessKey,
      RCLONE_CONFIG_RGW_FORCE_PATH_STYLE: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  return { code, out };
}

t.test('the forwarder on RADOS Gateway', async (t) => {
  await rgw.createBucket('forwarder');
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());

  t.test('a PUT and a multipart upload: counted after HEAD; rclone check agrees with the mirror', async (t) => {
    const cfg = rgwTarget('rgw-hot', 'forwarder', { prefix: 'up/' });
    const fw = await fx.start([cfg]);
    t.teardown(() => fx.stop());
    const small = await fx.asset(70_000, 'DCIM/100CANON/IMG 0001.CR3');
    const big = await fx.asset(6 * MiB + 17, 'DCIM/100CANON/MVI 0002.MP4');
    await fw.enqueue(small);
    await fw.enqueue(big);
    await fw.idle();
    t.equal(fx.copies.length, 2, 'both counted');
    for (const a of [small, big]) {
      const copy = fx.copies.find((c) => c.blake3 === a.blake3);
      t.equal(copy?.key, objectKey(cfg, a.blake3));
      const c = rgw.client();
      t.equal(await downloadSha256(c, 'forwarder', objectKey(cfg, a.blake3)), await fileSha256(a.path), 'bytes equal');
      c.destroy();
    }
    t.same(await openUploads('up/'), [], 'no open multipart upload left');
    // rclone sees the bucket through the content-addressed layout: a view of the mirror by key.
    const view = join(fx.dir, 'rclone-view');
    for (const a of [small, big]) {
      const rel = objectKey({ ...cfg, prefix: '' }, a.blake3);
      await mkdir(join(view, rel, '..'), { recursive: true });
      await symlink(a.path, join(view, rel));
    }
    const ok = await rcloneCheck(view, 'forwarder', 'up');
    t.equal(ok.code, 0, `rclone check: ${ok.out.trim().split('\n').pop()}`);
    // One file the bucket does not hold: rclone reports it, so the check above is not vacuous.
    const extra = await fx.asset(10, 'not-uploaded.JPG');
    const rel = objectKey({ ...cfg, prefix: '' }, extra.blake3);
    await mkdir(join(view, rel, '..'), { recursive: true });
    await symlink(extra.path, join(view, rel));
    const bad = await rcloneCheck(view, 'forwarder', 'up');
    t.not(bad.code, 0, 'rclone check finds the file the bucket lacks');
    t.match(bad.out, /1 files missing/);
  });

  t.test(
    'self-describing objects: HEAD shows where each came from; the bucket alone rebuilds a catalogue',
    async (t) => {
      fx.copies = [];
      const cfg = rgwTarget('rgw-described', 'forwarder', { prefix: 'described/' });
      const captured = Date.parse('2026-11-26T10:31:07.000Z');
      // A long NFD + emoji name that S3's 2 KB cannot hold whole, given to the multipart upload.
      const longPath = `DCIM/${'Grüße 👩‍👩‍👧 '.normalize('NFD').repeat(60)}/MVI 0042.MP4`;
      const names = new Map<string, AssetOrigin[]>();
      const fw = await fx.start([cfg], { describeAsset: async (h) => names.get(h) ?? [] });
      t.teardown(() => fx.stop());
      const small = await fx.asset(20_000, 'IMG 0041.CR3');
      const big = await fx.asset(5 * MiB + 1, 'MVI 0042.MP4');
      names.set(small.blake3, [
        {
          shoot: 'Hochzeit Müller'.normalize('NFD'),
          card: 'CARD1-c375e040',
          path: 'DCIM/IMG 0041.CR3',
          mtime: captured,
        },
        { shoot: 'portfolio', card: 'CARD9', path: 'best/IMG 0041.CR3' },
      ]);
      names.set(big.blake3, [{ shoot: 'wedding', card: 'CARD2', path: longPath, mtime: captured }]);
      await fw.enqueue(small);
      await fw.enqueue(big);
      await fw.idle();
      t.equal(fx.copies.length, 2, 'both counted (a name too long for the metadata does not fail the upload)');
      const c = rgw.client();
      const head = await headOrNull(c, 'forwarder', objectKey(cfg, small.blake3));
      c.destroy();
      t.match(head?.metadata, {
        blake3: small.blake3,
        size: String(small.size),
        shoot: 'Hochzeit%20Mu%CC%88ller',
        card: 'CARD1-c375e040',
        name: 'DCIM/IMG%200041.CR3',
        captured: '2026-11-26T10:31:07.000Z',
        names: 'portfolio/CARD9/best/IMG%200041.CR3',
      });

      // The catalogue and both local targets are gone: only the bucket remains.
      const dir = join(fx.dir, 'lost-studio');
      const config = parseStudiodConfig({
        stateDir: join(dir, 'state'),
        targets: {
          mirror: { root: join(dir, 'mirror'), media: 'hdd-mirror', location: 'calgary', device: 'm' },
          raid: { root: join(dir, 'raid'), media: 'hdd-raid', location: 'calgary', device: 'r' },
        },
      });
      const cat = new Catalogue(config.catalogue);
      await cat.open();
      t.teardown(() => cat.close());
      const sink = new S3Sink(cfg);
      await sink.open();
      t.teardown(() => sink.close());
      const r = await rebuildCatalogue(cat, { config, sinks: [sink] });
      t.match(r, { snapshot: null, cloud: { assetsAdded: 2, copiesAdded: 2 }, counters: { assets: 2 } });
      t.same(
        r.unaccounted.items.map((i) => [i.kind, i.hash, /shortened/.test(i.why)]).sort(),
        [
          ['cloud-only', small.blake3, false],
          ['cloud-only', big.blake3, true],
        ].sort(),
        'each reported as known from the cloud alone; the shortened name said so',
      );
      t.same(
        (await cat.namesOf(small.blake3)).map((n) => [n.shoot, n.card, n.path, n.mtime]).sort(),
        [
          ['Hochzeit Müller'.normalize('NFD'), 'CARD1-c375e040', 'DCIM/IMG 0041.CR3', captured],
          ['portfolio', 'CARD9', 'best/IMG 0041.CR3', 0],
        ].sort(),
        'shoot, card, names and capture time back from the metadata, code points exact',
      );
      const [bigName] = await cat.namesOf(big.blake3);
      t.match(bigName, { shoot: 'wedding', card: 'CARD2', mtime: captured });
      t.ok(bigName?.path.endsWith('/MVI 0042.MP4') && longPath.endsWith(bigName.path), 'the long name keeps its end');
      t.same(
        (await cat.copiesOf(big.blake3)).map((x) => [x.kind, x.target, x.path]),
        [['cloud', 'rgw-described', objectKey(cfg, big.blake3)]],
        'its cloud copy, verified by HEAD',
      );
      t.equal(describeObject(head?.metadata ?? {}).origins.length, 2);
    },
  );

  t.test('a wrong secret key (SigV4 checked): CLOUD_BAD_CREDENTIALS, parked, nothing counted', async (t) => {
    fx.copies = [];
    fx.events = [];
    const cfg = rgwTarget('rgw-badsecret', 'forwarder', { prefix: 'bad/', secretAccessKey: 'not-the-secret' });
    const fw = await fx.start([cfg]);
    t.teardown(() => fx.stop());
    const a = await fx.asset(6 * MiB, 'IMG 0003.CR3');
    await fw.enqueue(a);
    await fw.idle();
    const [st] = await fw.status();
    t.match(st, { pending: 1, parked: 1, lastError: { code: 'CLOUD_BAD_CREDENTIALS' } });
    t.equal(fx.copies.length, 0, 'nothing counted');
    t.equal(fx.events.filter((e) => e.event === 'cloud.parked').length, 1, 'tried once');
    const c = rgw.client();
    t.teardown(() => c.destroy());
    await t.rejects(downloadSha256(c, 'forwarder', objectKey(cfg, a.blake3)), { name: 'NoSuchKey' }, 'no object');
    t.same(await openUploads('bad/'), [], 'no upload started');
  });

  t.test('SIGKILL mid-multipart: the restart resumes the same upload and completes it', async (t) => {
    const PARTS = 3;
    for (let round = 0; round < 2; round++) {
      const killAfterPart = 1 + Math.floor(Math.random() * (PARTS - 1));
      const a = await fx.asset(PARTS * 5 * MiB, `kill-${round}.MP4`);
      const cfg = rgwTarget('rgw-kill', 'forwarder', { prefix: `kill${round}/`, bandwidthBytesPerSec: 40 * MiB });
      const arg = { dbDir: join(fx.dir, `db-${round}`), target: cfg, asset: a, copiesFile: join(fx.dir, `c-${round}`) };
      const run = (kill: boolean): Promise<{ code: number | null; events: Array<Record<string, unknown>> }> => {
        const child = spawn(process.execPath, [CHILD, JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'ignore'] });
        const events: Array<Record<string, unknown>> = [];
        createInterface({ input: child.stdout }).on('line', (line) => {
          const e = JSON.parse(line) as Record<string, unknown>;
          events.push(e);
          if (kill && e.event === 'cloud.part' && e.part === killAfterPart) child.kill('SIGKILL');
        });
        return new Promise((r) => child.once('exit', (code) => r({ code, events })));
      };
      const counted = async (): Promise<CloudCopyRecord[]> =>
        (await readFile(arg.copiesFile, 'utf8').catch(() => ''))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as CloudCopyRecord);
      const first = await run(true);
      t.not(first.code, 0, `round ${round}: killed after part ${killAfterPart}`);
      t.same(await counted(), [], 'nothing counted before the restart');
      const open = await openUploads(cfg.prefix as string);
      t.equal(open.length, 1, 'the interrupted upload is open on the server');
      const second = await run(false);
      t.equal(second.code, 0, 'the restart completes');
      const resume = second.events.find((e) => e.event === 'cloud.resume');
      t.ok(Number(resume?.partsDone) >= killAfterPart, `resumed after part ${String(resume?.partsDone)}`);
      t.ok(
        second.events.filter((e) => e.event === 'cloud.part').length <= PARTS - killAfterPart,
        'the parts already acknowledged were not sent again',
      );
      const after = await counted();
      t.equal(after.length, 1, 'counted once');
      const c = rgw.client();
      t.equal(await downloadSha256(c, 'forwarder', objectKey(cfg, a.blake3)), await fileSha256(a.path), 'bytes equal');
      c.destroy();
      t.same(await openUploads(cfg.prefix as string), [], 'no orphaned upload or parts left');
    }
  });

  // The window closes after part `pauseAfter` (an injected clock); while paused, the upload is aborted with the
  // SDK behind the forwarder's back. After part 1, the next UploadPart answers NoSuchUpload; after the last
  // part, Complete answers 500 InternalError (RADOS Gateway), which ListParts (NoSuchKey) explains.
  for (const pauseAfter of [1, 2]) {
    t.test(
      `window closed after part ${pauseAfter}, upload aborted meanwhile: restarts from part 1 when it reopens`,
      async (t) => {
        let now = Date.parse('2026-12-07T19:00:00Z'); // a Monday
        const events: Array<Record<string, unknown>> = [];
        const cfg = rgwTarget('rgw-window', 'forwarder', {
          prefix: `window${pauseAfter}/`,
          windows: [{ days: 'mon-fri', from: '19:00', to: '07:00' }],
          timeZone: 'UTC',
        });
        const fw = await fx.start([cfg], {
          clock: () => now,
          windowRecheckMs: 20,
          log: (e) => {
            events.push(e);
            if (e.event === 'cloud.part' && e.part === pauseAfter && now < Date.parse('2026-12-08T07:00:00Z'))
              now = Date.parse('2026-12-08T07:00:00Z');
          },
        });
        t.teardown(() => fx.stop());
        const a = await fx.asset(5 * MiB + 100_000, `window-${pauseAfter}.MP4`); // 2 parts
        await fw.enqueue(a);
        await waitFor(() => events.some((e) => e.event === 'cloud.paused'), 'paused by the window');
        const [open] = await openUploads(cfg.prefix as string);
        const [key, uploadId] = (open ?? '').split(' ');
        const c = rgw.client();
        t.teardown(() => c.destroy());
        await c.send(new AbortMultipartUploadCommand({ Bucket: 'forwarder', Key: key, UploadId: uploadId }));
        now = Date.parse('2026-12-08T19:00:00Z');
        await waitFor(() => fx.copies.some((x) => x.blake3 === a.blake3), 'counted after the restart');
        t.match(
          events.filter((e) => e.event === 'cloud.upload-restart'),
          [{ uploadId }],
          'the lost upload restarted once',
        );
        t.same(
          events.filter((e) => e.event === 'cloud.part').map((e) => e.part),
          [...Array.from({ length: pauseAfter }, (_, i) => i + 1), 1, 2],
          'every part of the new upload sent',
        );
        t.notOk(
          events.some((e) => e.event === 'cloud.parked'),
          'not parked',
        );
        t.equal(
          await downloadSha256(c, 'forwarder', objectKey(cfg, a.blake3)),
          await fileSha256(a.path),
          'bytes equal',
        );
        t.same(await openUploads(cfg.prefix as string), [], 'no upload left open');
      },
    );
  }
});

t.test("Object Lock: a locked version survives delete and overwrite with studiod's own keys", async (t) => {
  await rgw.createBucket('locked', { objectLock: true });
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  const lock = { mode: 'COMPLIANCE', days: 1 } as const;

  t.test('a bucket without Object Lock: CLOUD_BUCKET_UNPROTECTED, parked, nothing uploaded', async (t) => {
    const cfg = rgwTarget('rgw-unlocked', 'forwarder', { prefix: 'nolock/', objectLock: lock });
    const fw = await fx.start([cfg]);
    t.teardown(() => fx.stop());
    await fw.enqueue(await fx.asset(1000, 'IMG 0010.CR3'));
    await fw.idle();
    const [st] = await fw.status();
    t.match(st, { parked: 1, lastError: { code: 'CLOUD_BUCKET_UNPROTECTED' } });
    t.match(st?.lastError?.message, /lacks versioning and Object Lock/);
    t.equal(fx.copies.length, 0, 'nothing counted');
    t.same(await openUploads('nolock/'), [], 'nothing started');
  });

  t.test(
    'uploads carry the retention, confirmed by HEAD; delete and overwrite leave the counted version',
    async (t) => {
      fx.copies = [];
      fx.events = [];
      const cfg = rgwTarget('rgw-locked', 'locked', { prefix: 'l/', objectLock: lock });
      const fw = await fx.start([cfg]);
      t.teardown(() => fx.stop());
      const small = await fx.asset(3000, 'IMG 0011.CR3');
      const big = await fx.asset(5 * MiB + 1, 'MVI 0012.MP4');
      await fw.enqueue(small);
      await fw.enqueue(big);
      await fw.idle();
      t.match(
        fx.events.find((e) => e.event === 'cloud.bucket-warning'),
        { code: 'CLOUD_NO_ABORT_RULE' },
        'no abort rule yet: warned',
      );
      t.equal(fx.copies.length, 2, 'both counted');
      for (const copy of fx.copies) {
        t.equal(copy.lock?.mode, 'COMPLIANCE', 'the retention was confirmed by HEAD');
        t.ok(Date.parse(copy.lock?.retainUntil ?? '') > Date.now() + 23 * 3600_000, 'about a day from now');
        t.type(copy.versionId, 'string', 'the version is recorded');
      }
      const c = rgw.client();
      t.teardown(() => c.destroy());
      const copy = fx.copies.find((x) => x.blake3 === small.blake3) as CloudCopyRecord;
      // The attacker holds studiod's keys.
      await t.rejects(
        c.send(new DeleteObjectCommand({ Bucket: 'locked', Key: copy.key, VersionId: copy.versionId })),
        { name: 'AccessDenied' },
        'deleting the locked version is refused',
      );
      await c.send(new PutObjectCommand({ Bucket: 'locked', Key: copy.key, Body: 'ransom note' }));
      await c.send(new DeleteObjectCommand({ Bucket: 'locked', Key: copy.key })); // a delete marker on top
      for (const a of [small, big]) {
        const r = await fw.verify('rgw-locked', a.blake3, { download: true });
        t.match(r, { ok: true, copy: { method: 'download-blake3' } }, `${a.name}: the locked version still verifies`);
      }
      t.same(fx.lost, [], 'no copy lost');
    },
  );

  t.test('with an abort rule on the bucket: no warning', async (t) => {
    fx.events = [];
    const c = rgw.client();
    t.teardown(() => c.destroy());
    await c.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: 'locked',
        LifecycleConfiguration: {
          Rules: [
            {
              ID: 'abort',
              Status: 'Enabled',
              Filter: { Prefix: '' },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
            },
          ],
        },
      }),
    );
    const fw = await fx.start([rgwTarget('rgw-locked', 'locked', { prefix: 'l2/', objectLock: lock })]);
    t.teardown(() => fx.stop());
    await fw.enqueue(await fx.asset(100, 'IMG 0013.JPG'));
    await fw.idle();
    t.match(
      fx.events.find((e) => e.event === 'cloud.bucket-protected'),
      {
        versioning: true,
        objectLock: true,
        abortsIncompleteUploads: true,
      },
    );
    t.notOk(fx.events.some((e) => e.event === 'cloud.bucket-warning'));
  });
});

t.test('the restore service on RADOS Gateway: an archive-class copy', async (t) => {
  await rgw.createBucket('archive');
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  const cfg = rgwTarget('rgw-deep', 'archive', { storageClass: 'DEEP_ARCHIVE', media: 'tape' });
  const a = await fx.asset(30_000, 'IMG 0050.CR3');
  const names = new Map([[a.blake3, [{ shoot: 'wedding', card: 'CARD5', path: 'DCIM/IMG 0050.CR3' }]]]);
  const fw = await fx.start([cfg], { describeAsset: async (h) => names.get(h) ?? [] });
  await fw.enqueue(a);
  await fw.idle();
  await fx.stop();
  t.equal(fx.copies[0]?.storageClass, 'DEEP_ARCHIVE', 'uploaded to the archive class for real');

  // The studio: its catalogue knows the asset by its cloud copy only (mirror and RAID lost it).
  const base = join(fx.dir, 'studio');
  const config = parseStudiodConfig({
    stateDir: join(base, 'state'),
    targets: {
      mirror: { root: join(base, 'mirror'), media: 'hdd', location: 'studio', device: 'm' },
      raid: { root: join(base, 'raid'), media: 'hdd', location: 'studio', device: 'r' },
    },
    cloud: [cfg],
  });
  const cat = new Catalogue(config.catalogue);
  await cat.open();
  t.teardown(() => cat.close());
  const asset = { hash: a.blake3, size: a.size, committedAt: 1 };
  const name = {
    hash: a.blake3,
    shoot: 'wedding',
    card: 'CARD5',
    path: 'DCIM/IMG 0050.CR3',
    mtime: 1,
    agentId: '',
    seenAt: 1,
  };
  await cat.commitAsset({
    asset,
    names: [{ key: nameKey('wedding/CARD5/DCIM/IMG 0050.CR3'), value: name }],
    copies: [
      {
        hash: a.blake3,
        target: cfg.name,
        kind: 'cloud',
        path: objectKey(cfg, a.blake3),
        size: a.size,
        device: `cloud:${cfg.name}`,
        media: 'tape',
        location: cfg.location,
        offsite: true,
        method: 'head-size-sha256-meta',
        verifiedAt: 1,
      },
    ],
    storedPaths: [],
  });
  // A TEST WRAPPER over the real sink: RADOS Gateway serves DEEP_ARCHIVE objects at once, AWS answers a GET
  // with 403 InvalidObjectState until a restore finished. Only GET is refused, until `readable` (the moment the
  // test chooses); HEAD, and RestoreObject (RADOS Gateway: 501 → CLOUD_NOT_SUPPORTED), go to the real server.
  let readable = false;
  const gets: string[] = [];
  const service = new RestoreService({
    config,
    catalogue: cat,
    log: createLogger({ name: 'test', level: 'silent' }),
    findAssets: async (q) => (q === a.blake3 ? [asset] : []),
    sinkFactory: (target) => {
      const sink = new S3Sink(target);
      const read = sink.read.bind(sink);
      sink.read = async (key, signal, versionId) => {
        gets.push(key);
        if (readable) return read(key, signal, versionId);
        const refusal = Object.assign(new Error("The operation is not valid for the object's storage class"), {
          name: 'InvalidObjectState',
          $fault: 'client',
          $metadata: { httpStatusCode: 403 },
        });
        throw classifyS3Error(refusal, 'GET', target.name);
      };
      return sink;
    },
    pendingPollMs: 0,
  });
  await service.open();
  t.teardown(() => service.close());
  const records = new RestoreRecords(cat);
  const request = (dir: string) => ({
    v: 1 as const,
    hash: a.blake3,
    size: a.size,
    target: cfg.name,
    key: objectKey(cfg, a.blake3),
    dir,
    path: 'wedding/CARD5/IMG 0050.CR3',
    tier: 'Bulk' as const,
    days: 7,
    requestedAt: 1,
    checkedAt: null,
    lastError: null,
  });
  /** The files (not folders) under DIR: nothing partial or unverified may be there. */
  const files = async (dir: string): Promise<string[]> => {
    const all = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    return all.filter((e) => e.isFile()).map((e) => e.name);
  };

  t.test(
    'restore: the GET is refused, RestoreObject answers 501: failed honestly, nothing written or pending',
    async (t) => {
      const to = join(fx.dir, 'restored-1');
      const r = await service.restore({ queries: [a.blake3], to });
      t.match(r, { complete: false, failed: 1, requested: 0 });
      t.match(r.files[0], { status: 'failed', source: cfg.name, code: 'CLOUD_NOT_SUPPORTED' });
      t.ok(gets.length >= 1, 'the archive copy was tried (GET refused)');
      t.same(await files(to), [], 'no file in DIR');
      t.same(await service.pending(), [], 'no request kept: the server cannot restore');
    },
  );

  t.test(
    'a recorded request asked again gets a permanent error: reported once by --pending, then dropped',
    async (t) => {
      // Recorded earlier (as when the server took the request and the restored copy has expired since).
      const to = join(fx.dir, 'restored-2');
      await records.putRequest(request(to));
      await service.checkPending();
      const first = await service.reportPending();
      t.equal(first.length, 1);
      t.match(first[0], { lastError: { code: 'CLOUD_NOT_SUPPORTED' } });
      t.type(first[0]?.failedAt, 'number', 'marked as failed for good');
      t.same(await service.reportPending(), [], 'shown once, then removed');
      await service.checkPending();
      t.same(await service.pending(), [], 'not asked again');
      t.same(await files(to), [], 'no file in DIR');
    },
  );

  t.test('a pending request whose object became readable is written, verified, by studiod itself', async (t) => {
    const to = join(fx.dir, 'restored-3');
    await records.putRequest(request(to));
    readable = true; // the test-controlled moment: the restore "finished"
    await service.checkPending();
    t.same(await service.pending(), [], 'the request is done');
    const written = await hashFile(join(to, 'wedding/CARD5/IMG 0050.CR3'));
    t.same(written, { blake3: a.blake3, size: a.size }, 'the bytes from RADOS Gateway, BLAKE3 verified');
  });
});
