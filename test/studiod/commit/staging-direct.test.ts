/**
 * Staging with pooled (aligned) chunks: they are written with O_DIRECT, a file's short last
 * chunk through the ordinary descriptor, a resume continues at the durable size, and
 * verify() reads back (O_DIRECT where aligned) exactly the bytes received. Chunks queued
 * together join one run (at most WRITE_RUN_BYTES, one pwritev); a run that fails part way fails
 * every chunk of it with the coded error, and the bytes written before the failure still count.
 */
import t from 'tap';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { alignedBuffer } from '@studio321/protocol/durable';
import { Staging, STAGING_DIR, WRITE_RUN_BYTES } from '@studio321/studiod/commit';
import { testBytes } from '../../lib/lying-source.js';
import { mountTmpfs } from '../../lib/tmpfs.js';

const CHUNK = 128 * 1024; // the chunk size here: whole 4 KiB blocks, small enough to keep the test quick

function pooled(bytes: Uint8Array): Buffer {
  const buf = alignedBuffer(CHUNK);
  buf.set(bytes);
  return buf.subarray(0, bytes.byteLength);
}

t.test('aligned chunks, a resume, a short tail: verify() gives the bytes received', async (t) => {
  const root = t.testdir();
  const staging = new Staging(root, async () => undefined);
  const data = testBytes(3 * CHUNK + 4097, 11);
  const hash = hashBytes(data);
  const a = await staging.acquire(hash, data.byteLength, 's1');
  await a.write(0, pooled(data.subarray(0, CHUNK)));
  await a.write(CHUNK, pooled(data.subarray(CHUNK, 2 * CHUNK)));
  t.equal(await a.sync(), 2 * CHUNK);
  await a.close(); // the link was cut: the durable bytes stay for a resume
  const b = await staging.acquire(hash, data.byteLength, 's2');
  t.equal(b.durable, 2 * CHUNK, 'resumes after the durable bytes');
  await b.write(2 * CHUNK, pooled(data.subarray(2 * CHUNK, 3 * CHUNK)));
  await b.write(3 * CHUNK, pooled(data.subarray(3 * CHUNK))); // 4097 bytes: not a whole block
  t.equal(b.complete, true);
  const got = await b.verify();
  t.same(got, { size: data.byteLength, blake3: hash }, 'read back: the bytes received');
  t.equal(Buffer.compare(await readFile(staging.pathOf(hash)), data), 0, 'the partial holds them');
  await b.discard();
});

t.test('chunks queued together: runs of at most WRITE_RUN_BYTES, the short tail alone; bytes exact', async (t) => {
  const root = t.testdir();
  const staging = new Staging(root, async () => undefined);
  const perRun = WRITE_RUN_BYTES / CHUNK;
  const data = testBytes((perRun + 3) * CHUNK + 4097, 12);
  const hash = hashBytes(data);
  const a = await staging.acquire(hash, data.byteLength, 's1');
  const writes: Array<Promise<void>> = [];
  for (let off = 0; off < data.byteLength; off += CHUNK)
    writes.push(a.append(off, pooled(data.subarray(off, Math.min(off + CHUNK, data.byteLength)))));
  t.equal(a.queued, data.byteLength, 'all queued');
  t.equal(new Set(writes.slice(0, perRun)).size, 1, `the first ${perRun} chunks: one run`);
  t.equal(new Set(writes.slice(perRun, perRun + 3)).size, 1, 'the next three: a second run');
  t.not(writes[perRun], writes[perRun - 1], 'a run holds at most WRITE_RUN_BYTES');
  t.not(writes[perRun + 3], writes[perRun + 2], 'the short tail (not a whole block) is a run of its own');
  await Promise.all(writes);
  t.equal(a.written, data.byteLength);
  t.equal(a.queued, 0);
  t.same(await a.verify(), { size: data.byteLength, blake3: hash }, 'read back: the bytes received');
  t.equal(Buffer.compare(await readFile(staging.pathOf(hash)), data), 0, 'the partial holds them');
  await a.discard();
});

t.test(
  'a run that fails part way (mirror full): every chunk of it and after it fails with the code; the bytes before count',
  async (t) => {
    const root = t.testdir();
    const unmount: Array<() => unknown> = [];
    // A 1 MiB tmpfs as the mirror (it refuses O_DIRECT: the run's chunks go one by one, the 9th finds it full).
    const m = await mountTmpfs({ teardown: (fn) => unmount.push(fn) }, root, 'size=1m');
    if (!m.mounted)
      return void t.skip(`a small tmpfs is needed as the mirror (${m.reason}): this case did not run`, () => undefined);
    try {
      const staging = new Staging(root, async () => undefined);
      const data = testBytes(12 * CHUNK, 13);
      const hash = hashBytes(data);
      const a = await staging.acquire(hash, data.byteLength, 's1');
      const writes: Array<Promise<void>> = [];
      for (let off = 0; off < 10 * CHUNK; off += CHUNK)
        writes.push(a.append(off, pooled(data.subarray(off, off + CHUNK))));
      t.equal(new Set(writes).size, 1, 'one run');
      const results = await Promise.allSettled(writes);
      t.ok(
        results.every((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'STUDIO_TARGET_FULL'),
        'every chunk of the run: STUDIO_TARGET_FULL',
      );
      t.match(a.failed, { code: 'STUDIO_TARGET_FULL', retryable: true });
      await t.rejects(a.append(10 * CHUNK, pooled(data.subarray(10 * CHUNK, 11 * CHUNK))), {
        code: 'STUDIO_TARGET_FULL',
      });
      const size = (await stat(staging.pathOf(hash))).size;
      t.ok(a.written > 0 && a.written === size, `the bytes written before the failure count (${a.written})`);
      await a.close();
      t.equal(a.durable, size, 'synced at close: a resume starts after them');
      const kept = await readFile(join(root, STAGING_DIR, `${hash}.part`));
      t.equal(Buffer.compare(kept, data.subarray(0, kept.byteLength)), 0, 'the partial holds a prefix of the bytes');
    } finally {
      for (const fn of unmount) await fn();
    }
  },
);
