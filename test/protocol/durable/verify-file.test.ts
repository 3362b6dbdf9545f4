import t from 'tap';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { nativeHashAvailable, verifyFile } from '@studio321/protocol/durable';
import { testBytes } from '../../lib/lying-source.js';

const DATA = testBytes(300_000, 21);
const REF = { size: DATA.byteLength, blake3: hashBytes(DATA) };

t.test('a good copy verifies', async (t) => {
  const dir = t.testdir();
  await writeFile(join(dir, 'a'), DATA);
  const r = await verifyFile(join(dir, 'a'), REF);
  t.match(r, { ok: true, size: REF.size, blake3: REF.blake3 });
  t.equal(r.code, undefined);
  t.ok(!Number.isNaN(Date.parse(r.verifiedAt)));
});

t.test('bit rot, truncation and a missing file are verdicts (ok:false with a code)', async (t) => {
  const dir = t.testdir();
  const rotten = Uint8Array.from(DATA);
  rotten[123_456] = rotten[123_456]! ^ 0x10;
  await writeFile(join(dir, 'rot'), rotten);
  await writeFile(join(dir, 'short'), DATA.subarray(0, DATA.byteLength - 1));
  t.match(await verifyFile(join(dir, 'rot'), REF), {
    ok: false,
    code: 'DURABLE_HASH_MISMATCH',
    size: REF.size,
    blake3: hashBytes(rotten),
  });
  t.match(await verifyFile(join(dir, 'short'), REF), { ok: false, code: 'DURABLE_SIZE_MISMATCH', size: REF.size - 1 });
  t.match(await verifyFile(join(dir, 'gone'), REF), { ok: false, code: 'DURABLE_MISSING', size: 0 });
  t.same((await readdir(dir)).sort(), ['rot', 'short'], 'verifying changes nothing');
});

t.test('a file under a missing directory is missing too (callers check the target root first)', async (t) => {
  const dir = t.testdir({ f: 'x' });
  t.match(await verifyFile(join(dir, 'gone-dir', 'a'), REF), { ok: false, code: 'DURABLE_MISSING' });
  t.match(
    await verifyFile(join(dir, 'f', 'a'), REF),
    { ok: false, code: 'DURABLE_MISSING' },
    'a file where a directory is expected (ENOTDIR)',
  );
});

t.test('abort', async (t) => {
  const dir = t.testdir();
  await writeFile(join(dir, 'a'), DATA);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(verifyFile(join(dir, 'a'), REF, { signal: ac.signal }), { code: 'DURABLE_ABORTED' });
});

t.test('large files: both hash engines give the same verdicts', async (t) => {
  const big = testBytes(3 * 1024 * 1024 + 5, 22);
  const ref = { size: big.byteLength, blake3: hashBytes(big) };
  const rotten = Uint8Array.from(big);
  rotten[2_000_000] = rotten[2_000_000]! ^ 0x01;
  const dir = t.testdir();
  await writeFile(join(dir, 'good'), big);
  await writeFile(join(dir, 'rot'), rotten);
  const native = nativeHashAvailable();
  for (const hashEngine of ['wasm', 'native'] as const) {
    if (hashEngine === 'native' && !native) {
      t.comment('the native engine does not load here: not checked');
      continue;
    }
    t.match(
      await verifyFile(join(dir, 'good'), ref, { hashEngine }),
      { ok: true, blake3: ref.blake3 },
      `${hashEngine}: good`,
    );
    t.match(
      await verifyFile(join(dir, 'rot'), ref, { hashEngine }),
      { ok: false, code: 'DURABLE_HASH_MISMATCH' },
      `${hashEngine}: rot`,
    );
    const ac = new AbortController();
    ac.abort();
    await t.rejects(verifyFile(join(dir, 'good'), ref, { hashEngine, signal: ac.signal }), { code: 'DURABLE_ABORTED' });
  }
});
