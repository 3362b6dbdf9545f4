/**
 * Staging with pooled (aligned) chunks: they are written with O_DIRECT, a file's short last
 * chunk through the ordinary descriptor, a resume continues at the durable size, and
 * verify() reads back (O_DIRECT where aligned) exactly the bytes received.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { hashBytes } from '@studio321/protocol';
import { alignedBuffer } from '@studio321/protocol/durable';
import { Staging } from '@studio321/studiod/commit';
import { testBytes } from '../../lib/lying-source.js';

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
