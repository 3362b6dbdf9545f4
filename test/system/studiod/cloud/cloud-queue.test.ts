/**
 * The durable queue with a real LevelDB: jobs committed atomically in the
 * caller's catalogue batch, a backlog that survives a restart while the cloud
 * is down, and status figures.
 */
import t from 'tap';
import { S3rverProcess } from '../../../lib/s3rver.js';
import { CloudFixture, target, waitFor } from '../../../lib/cloud-fixture.js';

const s3 = new S3rverProcess({ buckets: ['hot'] });
await s3.start();
t.teardown(() => s3.close());

t.test('enqueue into the catalogue batch: nothing happens until the batch is written, then it uploads', async (t) => {
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  const fw = await fx.start([
    target('east', s3.endpoint, 'hot'),
    target('west', s3.endpoint, 'hot', { prefix: 'west/' }),
  ]);
  const a = await fx.asset(2048, 'IMG_0001.CR3');
  const batch = fx.db.batch();
  batch.put(`asset!${a.blake3}`, { size: a.size });
  await fw.enqueue(a, batch);
  t.same(
    (await fw.status()).map((s) => s.pending),
    [0, 0],
    'not pending before the batch is written',
  );
  await fw.idle();
  t.equal(fx.copies.length, 0, 'nothing uploaded for an unwritten batch');
  await batch.write({ sync: true });
  t.same(
    (await fw.status()).map((s) => [s.pending, s.pendingBytes]),
    [
      [1, 2048],
      [1, 2048],
    ],
    'pending once written',
  );
  await fw.idle();
  t.equal(fx.copies.length, 2);
  t.same(await fx.db.get(`asset!${a.blake3}`), { size: a.size }, 'the catalogue entry committed in the same batch');
});

t.test(
  'cloud down: the backlog is durable across a restart, shown in status, and drains when the cloud returns',
  async (t) => {
    const fx = new CloudFixture();
    await fx.setup();
    t.teardown(() => fx.close());
    const down = new S3rverProcess({ buckets: ['hot'] });
    await down.start();
    t.teardown(() => down.close());
    await down.kill(); // the port is known, nothing listens
    const cfg = target('offline', down.endpoint, 'hot');
    const clockStart = Date.now();
    let fw = await fx.start([cfg]);
    const assets = [await fx.asset(1000, 'a.CR3'), await fx.asset(3000, 'b.CR3'), await fx.asset(5000, 'c.CR3')];
    for (const a of assets) await fw.enqueue(a);
    await waitFor(() => fx.events.filter((e) => e.event === 'cloud.retry').length >= 3, 'retries while down');
    let [st] = await fw.status();
    t.match(st, { pending: 3, pendingBytes: 9000, parked: 0, lastError: { code: 'CLOUD_UNAVAILABLE' } });
    t.ok(
      st !== undefined && st.oldestQueuedAt !== null && Date.parse(st.oldestQueuedAt) >= clockStart - 1000,
      'oldest queued time',
    );
    await fx.stop(); // studiod restarts while the cloud is still down
    fw = await fx.start([cfg]);
    [st] = await fw.status();
    t.match(
      st,
      { pending: 3, pendingBytes: 9000, lastError: { code: 'CLOUD_UNAVAILABLE' } },
      'backlog and last error survive a restart',
    );
    t.equal(fx.copies.length, 0, 'nothing counted while down');
    await down.start(); // back on the same port
    await fw.idle();
    t.equal(fx.copies.length, 3);
    t.match((await fw.status())[0], { pending: 0, pendingBytes: 0, oldestQueuedAt: null, lastError: null });
  },
);

t.test('bad config is refused with CLOUD_CONFIG_INVALID naming the field', async (t) => {
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  await t.rejects(fx.start([target('x', s3.endpoint, 'hot', { storageClass: 'FAST' })]), {
    code: 'CLOUD_CONFIG_INVALID',
    message: /storageClass/,
  });
  await t.rejects(fx.start([target('x', s3.endpoint, 'hot', { partSizeBytes: 1024 })]), {
    code: 'CLOUD_CONFIG_INVALID',
    message: /partSizeBytes/,
  });
  await t.rejects(fx.start([target('x', s3.endpoint, 'hot'), target('x', s3.endpoint, 'hot')]), {
    code: 'CLOUD_CONFIG_INVALID',
  });
});

t.test('verify of an unknown target is a coded error', async (t) => {
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  const fw = await fx.start([target('only', s3.endpoint, 'hot')]);
  await t.rejects(fw.verify('nope', 'ab'.repeat(32)), { code: 'CLOUD_UNKNOWN_TARGET' });
  t.match(await fw.verify('only', 'ab'.repeat(32)), { ok: false, code: 'CLOUD_OBJECT_MISSING' });
});
