/**
 * BLAKE3 in-process: known vectors, streaming against one-shot, hashFile. The
 * cross-check against Debian's b3sum (a child process) is in
 * test/system/protocol/hash.test.ts. Finished native states are reused: a reused one hashes afresh.
 */
import t from 'tap';
import { join } from 'node:path';
import {
  createHasher,
  createXxh3,
  hashBytes,
  hashFile,
  hashStream,
  isBlake3Hex,
  HASH_HEX_LENGTH,
} from '@studio321/protocol';
import { testBytes } from '../lib/lying-source.js';

t.test('known BLAKE3 vectors', async (t) => {
  t.equal(HASH_HEX_LENGTH, 64);
  t.equal(hashBytes(new Uint8Array(0)), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
  t.equal(
    hashBytes(new TextEncoder().encode('abc')),
    '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
  );
  t.ok(isBlake3Hex(hashBytes(new Uint8Array(1))));
  t.notOk(
    isBlake3Hex('AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F3262'),
    'upper case is not the canonical form',
  );
  t.notOk(isBlake3Hex('af13'));
});

t.test('streaming equals one-shot for many chunk splits', async (t) => {
  const data = testBytes(3 * 1024 + 17, 11); // crosses BLAKE3 1 KiB chunk boundaries
  const whole = hashBytes(data);
  for (const size of [1, 7, 63, 64, 65, 1023, 1024, 1025, 2048, 3000, data.byteLength, data.byteLength + 1]) {
    const h = createHasher();
    for (let off = 0; off < data.byteLength; off += size) h.update(data.subarray(off, off + size));
    t.equal(h.digest(), whole, `split every ${size} bytes`);
  }
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let off = 0; off < data.byteLength; off += 100) yield data.subarray(off, off + 100);
  }
  t.same(await hashStream(chunks()), { blake3: whole, size: data.byteLength });
  const h = createHasher();
  h.update(data);
  t.equal(h.digest(), whole);
  t.throws(() => h.digest(), TypeError, 'a hasher is used once');
  t.throws(() => h.update(data), TypeError);
  h.dispose();
});

t.test('hashFile: missing file throws ENOENT; abort stops it', async (t) => {
  const dir = t.testdir({ 'a.bin': 'x'.repeat(10000) });
  await t.rejects(hashFile(join(dir, 'nope')), { code: 'ENOENT' });
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  await t.rejects(hashFile(join(dir, 'a.bin'), { signal: ac.signal }), { message: 'stop' });
});

t.test('reused hash states: a state given back after digest or dispose starts afresh', async (t) => {
  const a = testBytes(5000, 3);
  const b = testBytes(700, 4);
  // Interleaved, digested, disposed half-way: every hash must still equal the one-shot one.
  for (let round = 0; round < 3; round++) {
    const left = createHasher();
    left.update(b);
    left.dispose();
    const h1 = createHasher();
    const h2 = createHasher();
    h1.update(a);
    h2.update(b);
    t.equal(h2.digest(), hashBytes(b));
    t.equal(h1.digest(), hashBytes(a));
    const x1 = createXxh3();
    x1.update(a);
    const first = x1.digest();
    const x2 = createXxh3();
    x2.update(a);
    t.equal(x2.digest(), first, 'XXH3 of the same bytes on a reused state');
  }
  t.equal(
    (() => {
      const x = createXxh3();
      x.update(new Uint8Array(0));
      return x.digest();
    })(),
    '2d06800538d394c2',
    'XXH3-64 of nothing',
  );
});
