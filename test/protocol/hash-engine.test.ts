import t from 'tap';
import type { Test } from 'tap';
import { execFile } from 'node:child_process';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { durableWrite, hashFileFast, HashPool, nativeHashAvailable, NATIVE_MIN_BYTES, type HashEngine } from '@studio321/protocol/durable';
import { lyingSource, testBytes } from '../lib/lying-source.js';
import { faultFs } from '../lib/fault-fs.js';

const BIG = testBytes(NATIVE_MIN_BYTES * 2 + 12345, 31); // above the native threshold
const BIG_REF = { size: BIG.byteLength, blake3: hashBytes(BIG) };

const native = await nativeHashAvailable();
const engines: { engine: HashEngine; skip: string | false }[] = [
  { engine: 'wasm', skip: false },
  { engine: 'native', skip: native ? false : 'b3sum is not installed (scripts/ensure-system-deps.sh installs it)' },
];

for (const { engine, skip } of engines) {
  t.test(`engine ${engine}`, { skip }, async (t) => {
    t.test('same digest as one-shot blake3-wasm around the native threshold', async (t) => {
      const dir = t.testdir();
      for (const size of [0, 1, NATIVE_MIN_BYTES - 1, NATIVE_MIN_BYTES, NATIVE_MIN_BYTES + 1, BIG.byteLength]) {
        const data = BIG.subarray(0, size);
        const r = await durableWrite(lyingSource({ data, chunkSize: 1024 * 1024 }), { targets: [{ dir, name: `f${size}` }], hashEngine: engine });
        t.equal(r.blake3, hashBytes(data), `${size} bytes`);
      }
    });

    t.test('an identical large final is reused, a different one is refused', async (t) => {
      const dir = t.testdir();
      await writeFile(join(dir, 'same'), BIG);
      const other = Uint8Array.from(BIG);
      other[BIG.byteLength - 1] = other[BIG.byteLength - 1]! ^ 0x80;
      await writeFile(join(dir, 'other'), other);
      const r = await durableWrite(lyingSource({ data: BIG, chunkSize: 1024 * 1024 }), { targets: [{ dir, name: 'same' }], hashEngine: engine });
      t.equal(r.copies[0]!.reused, true);
      await t.rejects(durableWrite(lyingSource({ data: BIG, chunkSize: 1024 * 1024 }), { targets: [{ dir, name: 'other' }], hashEngine: engine }), { code: 'DURABLE_NAME_TAKEN' });
      t.same(Buffer.compare(await readFile(join(dir, 'other')), other), 0, 'the other file is untouched');
      t.same((await readdir(dir)).sort(), ['other', 'same']);
    });

    t.test('a flipped bit in a large source: DURABLE_HASH_MISMATCH, nothing left', async (t) => {
      const dir = t.testdir();
      await t.rejects(
        durableWrite(lyingSource({ data: BIG, flipBitAt: BIG.byteLength - 3, chunkSize: 1024 * 1024 }), { targets: [{ dir, name: 'x' }], expected: BIG_REF, hashEngine: engine }),
        { code: 'DURABLE_HASH_MISMATCH' },
      );
      t.same(await readdir(dir), []);
    });

    t.test('read back while writing (small syncEvery): datasyncs happen, bytes verified', async (t) => {
      const dir = t.testdir();
      const fs = faultFs();
      const r = await durableWrite(lyingSource({ data: BIG, chunkSize: 256 * 1024 }), {
        targets: [{ dir, name: 'a' }, { dir: join(dir, 'b'), name: 'a' }],
        expected: BIG_REF,
        syncEvery: 512 * 1024,
        hashEngine: engine,
        fs,
      });
      t.ok(fs.calls.datasync >= 2, `datasync ran while writing, on both targets (${fs.calls.datasync} calls)`);
      t.same(r.copies.map((c) => c.method), ['readback-blake3', 'readback-blake3']);
      t.same(Buffer.compare(await readFile(join(dir, 'b', 'a')), BIG), 0);
    });

    t.test('rot between write and read-back of a large file: DURABLE_READBACK_MISMATCH', async (t) => {
      const dir = t.testdir();
      for (const syncEvery of [undefined, 512 * 1024]) {
        await t.rejects(
          durableWrite(lyingSource({ data: BIG, chunkSize: 1024 * 1024 }), {
            targets: [{ dir, name: 'x' }],
            hashEngine: engine,
            fs: faultFs({ rotOnRead: /\.s321tmp$/ }),
            ...(syncEvery === undefined ? {} : { syncEvery }),
          }),
          { code: 'DURABLE_READBACK_MISMATCH' },
        );
        t.same(await readdir(dir), [], `nothing left (syncEvery ${syncEvery ?? 'default'})`);
      }
    });
    t.end();
  });
}

t.test('read-backs on a private hash pool and on the calling thread agree', async (t) => {
  const dir = t.testdir();
  const pool = new HashPool(2);
  t.teardown(() => pool.close());
  const a = await durableWrite(lyingSource({ data: BIG }), { targets: [{ dir, name: 'a' }], hashEngine: 'wasm', hashPool: pool });
  const b = await durableWrite(lyingSource({ data: BIG }), { targets: [{ dir, name: 'b' }], hashEngine: 'wasm', hashPool: false });
  t.equal(a.blake3, BIG_REF.blake3);
  t.equal(b.blake3, BIG_REF.blake3);
  await t.rejects(
    durableWrite(lyingSource({ data: BIG }), { targets: [{ dir, name: 'c' }], hashEngine: 'wasm', hashPool: pool, fs: faultFs({ rotOnRead: /\.s321tmp$/ }) }),
    { code: 'DURABLE_READBACK_MISMATCH' },
  );
  t.same((await readdir(dir)).sort(), ['a', 'b']);
});

/**
 * Puts a stand-in `b3sum` (the given shell script) first on PATH for this test
 * and returns an empty output directory. The real b3sum cannot be made to fail on demand.
 */
async function withFakeB3sum(t: Test, script: string): Promise<string> {
  const root = t.testdir({ bin: {}, out: {} });
  const bin = join(root, 'bin');
  await writeFile(join(bin, 'b3sum'), script);
  await chmod(join(bin, 'b3sum'), 0o755);
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath ?? ''}`;
  t.teardown(() => {
    process.env.PATH = oldPath;
  });
  return join(root, 'out');
}

t.test('a b3sum that dies mid-stream: DURABLE_IO_ERROR (retryable), nothing left', async (t) => {
  // A stand-in b3sum on PATH: the real one cannot be made to fail on demand.
  const dir = await withFakeB3sum(t, '#!/bin/sh\nhead -c 1000 >/dev/null\necho "b3sum: simulated crash" >&2\nexit 3\n');
  await t.rejects(durableWrite(lyingSource({ data: BIG, chunkSize: 1024 * 1024 }), { targets: [{ dir, name: 'x' }], hashEngine: 'native' }), {
    code: 'DURABLE_IO_ERROR',
    retryable: true,
    detail: { op: 'hash' },
  });
  t.same(await readdir(dir), []);
});

t.test('native whole-file read-back that disagrees: DURABLE_READBACK_MISMATCH, nothing left', { skip: native ? false : 'b3sum is not installed' }, async (t) => {
  // A stand-in b3sum that hashes streams truly (real b3sum) but reports a wrong hash for a
  // file argument — as if the disk returned other bytes than were written.
  const real = await new Promise<string>((resolve, reject) =>
    execFile('sh', ['-c', 'command -v b3sum'], (err, out) => (err === null ? resolve(out.trim()) : reject(err))),
  );
  const dir = await withFakeB3sum(t, `#!/bin/sh\nfor a in "$@"; do case "$a" in /*) echo ${'0'.repeat(64)}; exit 0;; esac; done\nexec ${real} "$@"\n`);
  await t.rejects(durableWrite(lyingSource({ data: BIG, chunkSize: 1024 * 1024 }), { targets: [{ dir, name: 'x' }], hashEngine: 'native' }), {
    code: 'DURABLE_READBACK_MISMATCH',
  });
  t.same(await readdir(dir), []);
});

t.test('hashFileFast equals hashFile with both engines', async (t) => {
  const dir = t.testdir();
  await writeFile(join(dir, 'big'), BIG);
  await writeFile(join(dir, 'small'), BIG.subarray(0, 1000));
  for (const { engine, skip } of engines) {
    if (skip !== false) {
      t.comment(`${engine}: ${skip}`);
      continue;
    }
    t.same(await hashFileFast(join(dir, 'big'), { hashEngine: engine }), BIG_REF, `${engine}: big`);
    t.same(await hashFileFast(join(dir, 'small'), { hashEngine: engine }), { blake3: hashBytes(BIG.subarray(0, 1000)), size: 1000 }, `${engine}: small`);
  }
  await t.rejects(hashFileFast(join(dir, 'nope')), { code: 'ENOENT' });
});
