/**
 * LiveChunks, the source of a streamed commit: bounded (push waits for the
 * consumer), ends only when told, and a failed stream makes the real
 * durableWrite reading it remove its temps (nothing under a final name).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { durableWrite } from '@studio321/protocol/durable';
import { LiveChunks } from '@studio321/studiod/link';

t.test('push waits while more than maxBytes are queued; end() after the queued chunks', async (t) => {
  const live = new LiveChunks(4);
  await live.push(Buffer.from('abcd'));
  let second = false;
  const p = live.push(Buffer.from('ef')).then(() => {
    second = true;
  });
  await new Promise((r) => setImmediate(r));
  t.equal(second, false, 'the push over the bound waits');
  const it = live[Symbol.asyncIterator]();
  t.same((await it.next()).value, Buffer.from('abcd'));
  await p;
  t.equal(second, true, 'room again after a pull');
  live.end();
  t.same((await it.next()).value, Buffer.from('ef'));
  t.equal((await it.next()).done, true);
});

t.test('abandon(): pushes return at once', async (t) => {
  const live = new LiveChunks(1);
  live.abandon();
  await live.push(Buffer.alloc(10));
  t.equal(live.consumerGone, true);
});

t.test('a stream that ends whole commits; a failed one leaves no temp and no final file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'live-chunks-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const data = randomBytes(3 * 1024 * 1024 + 7);
  const expected = { size: data.length, blake3: hashBytes(data) };

  const ok = new LiveChunks(1024 * 1024);
  const w = durableWrite(ok, {
    targets: [
      { dir: join(dir, 'a'), name: 'ok.bin' },
      { dir: join(dir, 'b'), name: 'ok.bin' },
    ],
    expected,
  });
  for (let off = 0; off < data.length; off += 1024 * 1024) await ok.push(data.subarray(off, off + 1024 * 1024));
  ok.end();
  const res = await w;
  t.equal(res.copies.length, 2);
  t.equal(res.copies[0]?.method, 'readback-blake3');

  const cut = new LiveChunks(1024 * 1024);
  const w2 = durableWrite(cut, {
    targets: [
      { dir: join(dir, 'a'), name: 'cut.bin' },
      { dir: join(dir, 'b'), name: 'cut.bin' },
    ],
    expected,
  });
  await cut.push(data.subarray(0, 1024 * 1024));
  cut.fail(new Error('link cut'));
  await t.rejects(w2, { code: 'DURABLE_SOURCE_FAILED' });
  for (const d of ['a', 'b'])
    t.same((await readdir(join(dir, d))).sort(), ['ok.bin'], `${d}: no temp, no partial final`);
});

t.test('batchBytes: a pull takes the chunks queued by then as one run, up to that many bytes', async (t) => {
  const live = new LiveChunks(16, 6);
  for (const s of ['ab', 'cd', 'ef', 'ghijklmn', 'o']) await live.push(Buffer.from(s));
  live.end();
  const runs: string[][] = [];
  for await (const run of live) {
    t.ok(Array.isArray(run), 'each pull is a run (an array)');
    runs.push((run as readonly Uint8Array[]).map((c) => Buffer.from(c).toString()));
  }
  t.same(runs, [['ab', 'cd', 'ef'], ['ghijklmn'], ['o']], 'in order; up to 6 bytes a run, and a larger chunk alone');
  t.throws(() => new LiveChunks(4, -1), TypeError);
});

t.test('batchBytes: a streamed durableWrite reads runs and commits the exact bytes', async (t) => {
  const dir = t.testdir();
  const data = randomBytes(5 * 1024 * 1024 + 11);
  const live = new LiveChunks(4 * 1024 * 1024, 4 * 1024 * 1024);
  const w = durableWrite(live, {
    targets: [{ dir, name: 'runs.bin' }],
    expected: { size: data.length, blake3: hashBytes(data) },
    hashSource: false,
  });
  for (let off = 0; off < data.length; off += 1024 * 1024) await live.push(data.subarray(off, off + 1024 * 1024));
  live.end();
  const r = await w;
  t.equal(r.size, data.length);
  t.equal(Buffer.compare(await readFile(join(dir, 'runs.bin')), data), 0, 'the file holds the bytes');
  t.same(await readdir(dir), ['runs.bin'], 'no temp left');
});
