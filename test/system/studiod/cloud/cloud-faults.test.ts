/**
 * Fault injection against a real s3rver process (through a real HTTP proxy
 * where s3rver cannot produce the fault itself): a 503 SlowDown storm, wrong
 * credentials, AccessDenied, a missing bucket, a key holding other content,
 * the server killed mid-multipart and restarted, and an object altered on the
 * server behind the forwarder's back.
 */
import t from 'tap';
import { appendFile, truncate, open } from 'node:fs/promises';
import { S3rverProcess } from '../../../lib/s3rver.js';
import { FaultProxy, slowDownFirst, accessDenied } from '../../../lib/fault-proxy.js';
import {
  CloudFixture,
  target,
  independentClient,
  headOrNull,
  downloadSha256,
  fileSha256,
  waitFor,
} from '../../../lib/cloud-fixture.js';
import { objectKey } from '@studio321/studiod/cloud';
import { PutObjectCommand } from '@aws-sdk/client-s3';

const s3 = new S3rverProcess({ buckets: ['hot'] });
await s3.start();
t.teardown(() => s3.close());

async function fixture(t: { teardown: (fn: () => Promise<void>) => void }): Promise<CloudFixture> {
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  return fx;
}

t.test('503 SlowDown storm: retried with backoff, completes, counted once', async (t) => {
  const fx = await fixture(t);
  const proxy = new FaultProxy(() => s3.port);
  await proxy.start();
  t.teardown(() => proxy.close());
  proxy.rule = slowDownFirst(12);
  const fw = await fx.start([target('storm', proxy.endpoint, 'hot', { concurrency: 2 })]);
  const assets = [await fx.asset(2000, 'a.CR3'), await fx.asset(12 * 1024 * 1024, 'b.MP4')];
  for (const a of assets) await fw.enqueue(a);
  await fw.idle();
  t.equal(proxy.faults, 12, 'the storm happened');
  const retries = fx.events.filter((e) => e.event === 'cloud.retry');
  t.ok(retries.length >= 1, `retried ${retries.length} times`);
  t.ok(
    retries.every((e) => e.code === 'CLOUD_UNAVAILABLE'),
    'classified retryable CLOUD_UNAVAILABLE',
  );
  t.equal(fx.copies.length, 2, 'both counted, once');
  const c = independentClient(s3.endpoint);
  t.teardown(() => c.destroy());
  for (const a of assets)
    t.equal(await downloadSha256(c, 'hot', objectKey(target('storm', '', 'hot'), a.blake3)), await fileSha256(a.path));
  const [st] = await fw.status();
  t.match(st, { pending: 0, parked: 0, lastError: null }, 'success clears the last error');
});

t.test('wrong access key (s3rver refuses it): permanent CLOUD_BAD_CREDENTIALS, parked, nothing counted', async (t) => {
  const fx = await fixture(t);
  const cfg = target('badkey', s3.endpoint, 'hot', { accessKeyId: 'NOT-A-KEY' });
  const fw = await fx.start([cfg]);
  const a = await fx.asset(1000, 'c.CR3');
  await fw.enqueue(a);
  await fw.idle(); // parked jobs do not hold idle()
  const [st] = await fw.status();
  t.match(st, { pending: 1, parked: 1, pendingBytes: 1000, lastError: { code: 'CLOUD_BAD_CREDENTIALS' } });
  t.match(st?.lastError?.message, /studioctl cloud retry/, 'the message says what to do');
  t.ok(st?.oldestQueuedAt, 'backlog age shown');
  t.equal(fx.copies.length, 0, 'nothing counted');
  t.equal(fx.events.filter((e) => e.event === 'cloud.parked').length, 1, 'tried once, not hammered');
  t.equal(await headOrNull(independentClient(s3.endpoint), 'hot', objectKey(cfg, a.blake3)), null, 'no object written');
});

t.test(
  'AccessDenied (real S3 XML via the proxy; s3rver does not check secrets): parked; retryParked() after the fix completes',
  async (t) => {
    const fx = await fixture(t);
    const proxy = new FaultProxy(() => s3.port);
    await proxy.start();
    t.teardown(() => proxy.close());
    proxy.rule = accessDenied;
    const cfg = target('denied', proxy.endpoint, 'hot', { secretAccessKey: 'wrong-secret' });
    const fw = await fx.start([cfg]);
    const a = await fx.asset(3000, 'd.CR3');
    await fw.enqueue(a);
    await fw.idle();
    const [st] = await fw.status();
    t.match(st, { parked: 1, lastError: { code: 'CLOUD_ACCESS_DENIED' } });
    t.equal(fx.copies.length, 0);
    t.equal(await headOrNull(independentClient(s3.endpoint), 'hot', objectKey(cfg, a.blake3)), null);
    proxy.rule = null; // the operator fixed the policy
    t.equal(await fw.retryParked(), 1);
    await fw.idle();
    t.equal(fx.copies.length, 1);
    t.match((await fw.status())[0], { pending: 0, parked: 0, lastError: null });
  },
);

t.test('missing bucket: permanent CLOUD_NO_SUCH_BUCKET', async (t) => {
  const fx = await fixture(t);
  const fw = await fx.start([target('nobucket', s3.endpoint, 'no-such-bucket')]);
  await fw.enqueue(await fx.asset(100, 'e.CR3'));
  await fw.idle();
  t.match((await fw.status())[0], { parked: 1, lastError: { code: 'CLOUD_NO_SUCH_BUCKET' } });
  t.equal(fx.copies.length, 0);
});

t.test('key already holds other content: CLOUD_KEY_CONFLICT, never overwritten, not counted', async (t) => {
  const fx = await fixture(t);
  const cfg = target('conflict', s3.endpoint, 'hot');
  const a = await fx.asset(5000, 'f.CR3');
  const c = independentClient(s3.endpoint);
  t.teardown(() => c.destroy());
  const key = objectKey(cfg, a.blake3);
  await c.send(new PutObjectCommand({ Bucket: 'hot', Key: key, Body: 'someone else', Metadata: { blake3: 'other' } }));
  const fw = await fx.start([cfg]);
  await fw.enqueue(a);
  await fw.idle();
  t.match((await fw.status())[0], { parked: 1, lastError: { code: 'CLOUD_KEY_CONFLICT' } });
  t.equal(fx.copies.length, 0);
  t.same(
    await headOrNull(c, 'hot', key),
    { size: 12, metadata: { blake3: 'other' } },
    'the existing object is untouched',
  );
});

t.test('an existing identical object counts (after HEAD) without sending the bytes again', async (t) => {
  const fx = await fixture(t);
  const cfg = target('dedupe', s3.endpoint, 'hot');
  const a = await fx.asset(4000, 'g.CR3');
  const fw = await fx.start([cfg]);
  await fw.enqueue(a);
  await fw.idle();
  t.equal(fx.copies.length, 1);
  await fx.stop();
  // a fresh catalogue (e.g. a rebuilt studiod) finds the object already there
  const fx2 = await fixture(t);
  fx2.sources.set(a.blake3, a.path);
  const proxy = new FaultProxy(() => s3.port);
  await proxy.start();
  t.teardown(() => proxy.close());
  const fw2 = await fx2.start([target('dedupe', proxy.endpoint, 'hot')]);
  await fw2.enqueue(a);
  await fw2.idle();
  t.equal(fx2.copies.length, 1, 'counted');
  t.equal(proxy.requests, 1 + 1, 'one ListMultipartUploads sweep + one HEAD, no PUT');
});

t.test('s3rver killed mid-multipart and restarted: the upload resumes from the next part and completes', async (t) => {
  const fx = await fixture(t);
  const cfg = target('restart', s3.endpoint, 'hot', { bandwidthBytesPerSec: 40 * 1024 * 1024 });
  const fw = await fx.start([cfg], { retry: { baseMs: 50, maxMs: 300, parkedMs: 3600_000 } });
  const a = await fx.asset(40 * 1024 * 1024, 'h.MP4'); // 8 parts of 5 MiB
  await fw.enqueue(a);
  await waitFor(() => fx.events.some((e) => e.event === 'cloud.part' && e.part === 3), 'part 3');
  await s3.kill();
  await waitFor(() => fx.events.some((e) => e.event === 'cloud.retry'), 'a retry while the server is down');
  const [down] = await fw.status();
  t.match(down, { pending: 1, lastError: { code: 'CLOUD_UNAVAILABLE' } }, 'backlog and error shown while down');
  t.equal(fx.copies.length, 0, 'nothing counted while down');
  await s3.start();
  await fw.idle();
  t.equal(fx.copies.length, 1);
  const resume = fx.events.find((e) => e.event === 'cloud.resume');
  t.ok(
    resume !== undefined && Number(resume.partsDone) >= 3,
    `resumed after ${String(resume?.partsDone)} durable parts`,
  );
  const sent = fx.events.filter((e) => e.event === 'cloud.part').length;
  t.ok(sent <= 8 + 1, `parts sent ${sent} (8 + at most the one cut)`);
  const c = independentClient(s3.endpoint);
  t.teardown(() => c.destroy());
  t.equal(await downloadSha256(c, 'hot', objectKey(cfg, a.blake3)), await fileSha256(a.path));
});

t.test(
  'object altered on the server: verify() says CLOUD_VERIFY_MISMATCH, the copy stops counting and is re-sent to a new key',
  async (t) => {
    const fx = await fixture(t);
    const cfg = target('alter', s3.endpoint, 'hot');
    const fw = await fx.start([cfg]);
    const a = await fx.asset(64 * 1024, 'i.CR3');
    const b = await fx.asset(64 * 1024, 'j.CR3');
    await fw.enqueue(a);
    await fw.enqueue(b);
    await fw.idle();
    t.equal(fx.copies.length, 2);
    const keyA = objectKey(cfg, a.blake3);
    const keyB = objectKey(cfg, b.blake3);
    // a: grows behind our back → HEAD catches it (size)
    await appendFile(s3.objectPath('hot', keyA), 'tampered');
    // b: one flipped bit, same size, same metadata → only a download catches it
    const fh = await open(s3.objectPath('hot', keyB), 'r+');
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, 1000);
    byte[0] = (byte[0] as number) ^ 0x01;
    await fh.write(byte, 0, 1, 1000);
    await fh.close();

    t.match(await fw.verify(cfg.name, a.blake3), { ok: false, code: 'CLOUD_VERIFY_MISMATCH' });
    t.match(
      await fw.verify(cfg.name, b.blake3),
      { ok: true },
      'HEAD alone cannot see a flipped bit (same size, same metadata)',
    );
    t.match(await fw.verify(cfg.name, b.blake3, { download: true }), { ok: false, code: 'CLOUD_VERIFY_MISMATCH' });
    t.same(
      fx.lost.map((l) => [l.blake3, l.code]),
      [
        [a.blake3, 'CLOUD_VERIFY_MISMATCH'],
        [b.blake3, 'CLOUD_VERIFY_MISMATCH'],
      ],
      'studiod told to drop both copies',
    );
    await fw.idle();
    const resent = fx.copies.slice(2);
    t.same(resent.map((c) => c.key).sort(), [`${keyA}.2`, `${keyB}.2`].sort(), 're-sent under new keys');
    const c = independentClient(s3.endpoint);
    t.teardown(() => c.destroy());
    t.equal(await downloadSha256(c, 'hot', `${keyA}.2`), await fileSha256(a.path));
    t.equal(await downloadSha256(c, 'hot', `${keyB}.2`), await fileSha256(b.path));
    t.equal(
      (await headOrNull(c, 'hot', keyA))?.size,
      a.size + 8,
      'the altered object is left for a human, never overwritten',
    );
    t.match(await fw.verify(cfg.name, a.blake3, { download: true }), {
      ok: true,
      copy: { key: `${keyA}.2`, method: 'download-blake3' },
    });
  },
);

t.test('a mirror copy that rotted is never uploaded: CLOUD_SOURCE_MISMATCH, parked', async (t) => {
  const fx = await fixture(t);
  const cfg = target('rot', s3.endpoint, 'hot');
  const fw = await fx.start([cfg]);
  const a = await fx.asset(10_000, 'k.CR3');
  await truncate(a.path, 9_000);
  await fw.enqueue(a);
  await fw.idle();
  t.match((await fw.status())[0], { parked: 1, lastError: { code: 'CLOUD_SOURCE_MISMATCH' } });
  t.equal(fx.copies.length, 0);
  t.equal(await headOrNull(independentClient(s3.endpoint), 'hot', objectKey(cfg, a.blake3)), null);
});
