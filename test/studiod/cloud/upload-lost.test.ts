/**
 * A multipart upload the server forgets (aborted behind the forwarder's back, as a lifecycle
 * rule or an operator would): the forwarder drops the stale UploadId and its part records and
 * restarts from part 1 — once; losing the fresh upload too parks the job with its own code.
 * The "server" is MemorySink, which answers NoSuchUpload as S3 does (the RADOS Gateway case,
 * a 500 on Complete, runs against the real server in test/system/studiod/cloud/rgw.test.ts).
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { MemoryCloud, MemorySink, type CloudJob } from '@studio321/studiod/cloud';
import { CloudFixture, target, waitFor } from '../../lib/cloud-fixture.js';

const MiB = 1024 * 1024;

/** A forwarder on a MemoryCloud whose uploads are aborted, through a second sink, after part 2 of the first `times` uploads. */
async function setup(t: Test, times: number) {
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  const cloud = new MemoryCloud({ buckets: ['hot'] });
  const cfg = target('lost', 'http://memory.invalid', 'hot', { concurrency: 1 });
  const other = new MemorySink(cfg, { cloud });
  await other.open();
  const bucket = cloud.bucket('hot');
  if (bucket === undefined) throw new TypeError('no bucket');
  const aborted: string[] = [];
  const fw = await fx.start([cfg], {
    sinkFactory: (c) => new MemorySink(c, { cloud }),
    log: (e) => {
      fx.events.push(e);
      if (e.event !== 'cloud.part' || e.part !== 2 || aborted.length >= times) return;
      const [id, u] = [...bucket.uploads][0] ?? [];
      if (id === undefined || u === undefined) return;
      aborted.push(id);
      void other.abortMultipart(u.key, id); // removes the upload before the next part is sent
    },
  });
  return { fx, fw, bucket, aborted, cfg };
}

async function partKeys(fx: CloudFixture): Promise<string[]> {
  const out: string[] = [];
  for await (const [k] of fx.sub.iterator({ gte: 'part!', lt: 'part!\xff' })) out.push(k);
  return out;
}

t.test('forgotten mid-upload: restarts from part 1 with a new upload, completes', async (t) => {
  const { fx, fw, bucket, aborted } = await setup(t, 1);
  const a = await fx.asset(18 * MiB, 'A002.MOV'); // 4 parts
  await fw.enqueue(a);
  await waitFor(() => fx.copies.length === 1, 'the upload completes');
  await fw.idle();
  t.equal(aborted.length, 1, 'the first upload was aborted behind the forwarder');
  t.match(
    fx.events.filter((e) => e.event === 'cloud.upload-restart'),
    [{ uploadId: aborted[0] }],
    'restarted once',
  );
  t.same(
    fx.events.filter((e) => e.event === 'cloud.part').map((e) => e.part),
    [1, 2, 1, 2, 3, 4],
    'parts 1-2 of the lost upload, then every part of the new one',
  );
  t.notOk(
    fx.events.some((e) => e.event === 'cloud.parked'),
    'not parked',
  );
  const obj = [...bucket.objects.values()][0];
  t.equal(
    obj === undefined ? '' : createHash('sha256').update(obj.bytes).digest('hex'),
    createHash('sha256')
      .update(await readFile(a.path))
      .digest('hex'),
    'the object is whole',
  );
  t.same(await partKeys(fx), [], 'no part records left');
  t.equal(bucket.uploads.size, 0, 'no open upload left on the server');
});

t.test('forgotten again after the restart: parked CLOUD_UPLOAD_LOST_AGAIN, nothing partial kept', async (t) => {
  const { fx, fw, bucket, aborted } = await setup(t, 2);
  const a = await fx.asset(12 * MiB, 'A003.MOV'); // 3 parts
  await fw.enqueue(a);
  await waitFor(() => fx.events.some((e) => e.event === 'cloud.parked'), 'the job parks');
  await fw.idle();
  t.equal(aborted.length, 2, 'both uploads were aborted');
  const [st] = await fw.status();
  t.match(st, { pending: 1, parked: 1, lastError: { code: 'CLOUD_UPLOAD_LOST_AGAIN' } });
  t.match(st?.lastError?.message, /lifecycle rule/, 'the message says what to check');
  const job = (await fx.sub.get(`job!lost!${a.blake3}`)) as CloudJob;
  t.match(
    job,
    { upload: null, uploadRestarts: 0, parked: { code: 'CLOUD_UPLOAD_LOST_AGAIN' } },
    'stale UploadId dropped',
  );
  t.same(await partKeys(fx), [], 'no part records of either upload');
  t.equal(fx.copies.length, 0, 'nothing counted');
  t.equal(bucket.objects.size, 0, 'no object written');
  t.equal(fx.events.filter((e) => e.event === 'cloud.upload-restart').length, 1, 'restarted once only');
});
