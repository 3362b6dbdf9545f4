/**
 * MemorySink: the CloudSink conformance suite (S3's semantics; the one difference
 * declared: a RestoreObject completes at once, no rehydration is modelled), and the cloud forwarder running on it with a real LevelDB queue —
 * the in-process path that also exercises the server-checksum comparison
 * (full and multipart composite), which s3rver cannot.
 */
import t from 'tap';
import { MemoryCloud, MemorySink, objectKey, type CloudTargetConfig } from '@studio321/studiod/cloud';
import { cloudSinkSuite, SUITE_BUCKET } from '../../lib/cloud-sink-suite.js';
import { CloudFixture, target } from '../../lib/cloud-fixture.js';

const cloud = new MemoryCloud({ buckets: [SUITE_BUCKET] });

cloudSinkSuite(
  t,
  'MemorySink',
  async (fields) => {
    const sink = new MemorySink({ ...target('memory', 'http://memory.invalid', SUITE_BUCKET), ...fields }, { cloud });
    await sink.open();
    return { sink, cleanup: () => sink.close() };
  },
  { archiveRestore: 'instant' },
);

t.test('MemorySink refuses user metadata over S3 2 KB: CLOUD_REQUEST_REJECTED (MetadataTooLarge)', async (t) => {
  const sink = new MemorySink(target('memory', 'http://memory.invalid', 'b'));
  await sink.open();
  t.teardown(() => sink.close());
  const name = encodeURIComponent('日本'.repeat(120)); // 240 characters, 2160 bytes encoded
  await t.rejects(sink.createMultipart('k', { name }, new AbortController().signal), {
    code: 'CLOUD_REQUEST_REJECTED',
    retryable: false,
    detail: { httpStatus: 400, s3Code: 'MetadataTooLarge' },
  });
  t.same(await sink.listMultipart(''), [], 'no upload created');
});

t.test('the forwarder on MemorySinks: PUT and multipart counted, with the server checksum checked', async (t) => {
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  const shared = new MemoryCloud({ buckets: ['hot', 'cold'] });
  const hot = target('mem-hot', 'http://memory.invalid', 'hot');
  const cold = target('mem-cold', 'http://memory.invalid', 'cold', { storageClass: 'DEEP_ARCHIVE', media: 'tape' });
  const fw = await fx.start([hot, cold], {
    sinkFactory: (cfg: CloudTargetConfig) => new MemorySink(cfg, { cloud: shared }),
  });
  const small = await fx.asset(3000, 'IMG_0001.CR3');
  const big = await fx.asset(12 * 1024 * 1024, 'C0001.MP4'); // three 5 MiB parts
  await fw.enqueue(small);
  await fw.enqueue(big);
  await fw.idle();
  t.equal(fx.copies.length, 4, 'two assets, two targets');
  t.ok(
    fx.copies.every((c) => c.serverChecksum),
    'every copy verified against the checksum the server reported',
  );
  t.equal(fx.events.filter((e) => e.event === 'cloud.part' && e.target === 'mem-hot').length, 3, 'multipart');
  t.equal(shared.bucket('cold')?.objects.get(objectKey(cold, big.blake3))?.storageClass, 'DEEP_ARCHIVE');
  t.match(await fw.verify(hot.name, big.blake3, { download: true }), { ok: true, copy: { method: 'download-blake3' } });
  t.same(await fw.status().then((s) => s.map((x) => x.pending)), [0, 0]);
});
