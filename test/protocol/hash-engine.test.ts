/**
 * The two BLAKE3 engines (native, blake3-wasm) agree, through durableWrite, the
 * hash pool's workers (threads, in this process) and the read-back lanes. The
 * case that starts a child process is in test/system/protocol/hash-engine.test.ts.
 */
import t from 'tap';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHasher, hashBytes, hashFile } from '@studio321/protocol';
import {
  createReadBack,
  durableWrite,
  HashPool,
  nativeHashAvailable,
  nodeFs,
  resolveHashEngine,
  type HashEngine,
} from '@studio321/protocol/durable';
import { lyingSource, testBytes } from '../lib/lying-source.js';
import { faultFs } from '../lib/fault-fs.js';

const MiB = 1024 * 1024;
const BIG = testBytes(4 * MiB + 12345, 31);
const BIG_REF = { size: BIG.byteLength, blake3: hashBytes(BIG, 'wasm') };

const native = nativeHashAvailable();
const engines: { engine: HashEngine; skip: string | false }[] = [
  { engine: 'wasm', skip: false },
  { engine: 'native', skip: native ? false : 'no prebuilt @napi-rs/blake-hash binary for this platform' },
];

t.test('the native engine loads here (the CI machine is linux-x64 with its prebuilt binary)', async (t) => {
  t.equal(native, true);
});

t.test('both engines agree on the BLAKE3 test vectors and on unaligned views', async (t) => {
  // Official BLAKE3 test vectors: input byte i = i % 251, lengths 0, 1, 1023, 1024, 1025, 102400.
  const vectors: Array<[number, string]> = [
    [0, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
    [1, '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213'],
    [1023, '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11'],
    [1024, '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7'],
    [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444'],
  ];
  for (const [len, hex] of vectors) {
    const data = Uint8Array.from({ length: len }, (_, i) => i % 251);
    for (const { engine, skip } of engines) {
      if (skip !== false) continue;
      t.equal(hashBytes(data, engine), hex, `${engine}: ${len} bytes`);
    }
  }
  // A view into a larger buffer hashes only its own bytes, whatever its offset.
  const big = testBytes(3 * MiB + 17, 5);
  const view = big.subarray(12345, big.byteLength - 777);
  const expected = hashBytes(Uint8Array.from(view), 'wasm');
  for (const { engine, skip } of engines) {
    if (skip !== false) continue;
    const h = createHasher(engine);
    h.update(view.subarray(0, 1000));
    h.update(view.subarray(1000));
    t.equal(h.digest(), expected, `${engine}: streamed view`);
  }
});

for (const { engine, skip } of engines) {
  t.test(`engine ${engine}`, { skip }, async (t) => {
    t.test('same digest as one-shot blake3-wasm', async (t) => {
      const dir = t.testdir();
      for (const size of [0, 1, MiB - 1, MiB, MiB + 1, BIG.byteLength]) {
        const data = BIG.subarray(0, size);
        const r = await durableWrite(lyingSource({ data, chunkSize: 1024 * 1024 }), {
          targets: [{ dir, name: `f${size}` }],
          hashEngine: engine,
        });
        t.equal(r.blake3, hashBytes(data, 'wasm'), `${size} bytes`);
      }
    });

    t.test('an identical large final is reused, a different one is refused', async (t) => {
      const dir = t.testdir();
      await writeFile(join(dir, 'same'), BIG);
      const other = Uint8Array.from(BIG);
      other[BIG.byteLength - 1] = other[BIG.byteLength - 1]! ^ 0x80;
      await writeFile(join(dir, 'other'), other);
      const r = await durableWrite(lyingSource({ data: BIG, chunkSize: 1024 * 1024 }), {
        targets: [{ dir, name: 'same' }],
        hashEngine: engine,
      });
      t.equal(r.copies[0]!.reused, true);
      await t.rejects(
        durableWrite(lyingSource({ data: BIG, chunkSize: 1024 * 1024 }), {
          targets: [{ dir, name: 'other' }],
          hashEngine: engine,
        }),
        { code: 'DURABLE_NAME_TAKEN' },
      );
      t.same(Buffer.compare(await readFile(join(dir, 'other')), other), 0, 'the other file is untouched');
      t.same((await readdir(dir)).sort(), ['other', 'same']);
    });

    t.test('a flipped bit in a large source: DURABLE_HASH_MISMATCH, nothing left', async (t) => {
      const dir = t.testdir();
      await t.rejects(
        durableWrite(lyingSource({ data: BIG, flipBitAt: BIG.byteLength - 3, chunkSize: 1024 * 1024 }), {
          targets: [{ dir, name: 'x' }],
          expected: BIG_REF,
          hashEngine: engine,
        }),
        { code: 'DURABLE_HASH_MISMATCH' },
      );
      t.same(await readdir(dir), []);
    });

    t.test('read back while writing (small syncEvery): datasyncs happen, bytes verified', async (t) => {
      const dir = t.testdir();
      const fs = faultFs();
      const r = await durableWrite(lyingSource({ data: BIG, chunkSize: 256 * 1024 }), {
        targets: [
          { dir, name: 'a' },
          { dir: join(dir, 'b'), name: 'a' },
        ],
        expected: BIG_REF,
        syncEvery: 512 * 1024,
        hashEngine: engine,
        fs,
      });
      t.ok(fs.calls.datasync >= 2, `datasync ran while writing, on both targets (${fs.calls.datasync} calls)`);
      t.same(
        r.copies.map((c) => c.method),
        ['readback-blake3', 'readback-blake3'],
      );
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
  const a = await durableWrite(lyingSource({ data: BIG }), {
    targets: [{ dir, name: 'a' }],
    hashEngine: 'wasm',
    hashPool: pool,
  });
  const b = await durableWrite(lyingSource({ data: BIG }), {
    targets: [{ dir, name: 'b' }],
    hashEngine: 'wasm',
    hashPool: false,
  });
  t.equal(a.blake3, BIG_REF.blake3);
  t.equal(b.blake3, BIG_REF.blake3);
  await t.rejects(
    durableWrite(lyingSource({ data: BIG }), {
      targets: [{ dir, name: 'c' }],
      hashEngine: 'wasm',
      hashPool: pool,
      fs: faultFs({ rotOnRead: /\.s321tmp$/ }),
    }),
    { code: 'DURABLE_READBACK_MISMATCH' },
  );
  t.same((await readdir(dir)).sort(), ['a', 'b']);
});

t.test('hashFile gives the same result with both engines', async (t) => {
  const dir = t.testdir();
  await writeFile(join(dir, 'big'), BIG);
  await writeFile(join(dir, 'small'), BIG.subarray(0, 1000));
  for (const { engine, skip } of engines) {
    if (skip !== false) {
      t.comment(`${engine}: ${skip}`);
      continue;
    }
    t.same(await hashFile(join(dir, 'big'), { engine }), BIG_REF, `${engine}: big`);
    t.same(
      await hashFile(join(dir, 'small'), { engine }),
      { blake3: hashBytes(BIG.subarray(0, 1000), 'wasm'), size: 1000 },
      `${engine}: small`,
    );
  }
  await t.rejects(hashFile(join(dir, 'nope')), { code: 'ENOENT' });
});

t.test('file lane: the worker reads the file itself, behind the durable mark, to end of file at finish', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'f');
  const data = testBytes(3 * MiB + 4321, 77);
  await writeFile(path, data);
  const pool = new HashPool(1);
  t.teardown(() => pool.close());
  const lane = createReadBack(path, { fs: nodeFs, pool, engine: resolveHashEngine(), signal: undefined });
  await lane.open();
  lane.advance(MiB);
  // The pool's one worker handles messages in order: once another lane's open is answered,
  // the advance has been carried out.
  const barrier = createReadBack(path, { fs: nodeFs, pool, engine: resolveHashEngine(), signal: undefined });
  await barrier.open();
  await barrier.close();
  // Now one byte below the mark and one past it change on disk. The one below was read back
  // at the advance (before the change); the one past it only at finish (after the change).
  const onDisk = Uint8Array.from(data);
  onDisk[100] = onDisk[100]! ^ 0xff;
  onDisk[2 * MiB + 5] = onDisk[2 * MiB + 5]! ^ 0xff;
  await writeFile(path, onDisk);
  const expected = Uint8Array.from(data);
  expected[2 * MiB + 5] = onDisk[2 * MiB + 5]!;
  t.same(
    await lane.finish(),
    { size: data.byteLength, blake3: hashBytes(expected, 'wasm') },
    'read up to the mark at the advance, and past it only at finish, from the disk',
  );
  await lane.close();

  // A path the worker cannot read: the error keeps its errno code.
  const bad = createReadBack(dir, { fs: nodeFs, pool, engine: resolveHashEngine(), signal: undefined });
  await bad.open();
  await t.rejects(bad.finish(), { code: 'EISDIR' });
  await bad.close();
  const missing = createReadBack(join(dir, 'nope'), {
    fs: nodeFs,
    pool,
    engine: resolveHashEngine(),
    signal: undefined,
  });
  await t.rejects(missing.open(), { code: 'ENOENT' });

  // Abort: finish rejects with the reason at once.
  const ac = new AbortController();
  const aborted = createReadBack(path, { fs: nodeFs, pool, engine: resolveHashEngine(), signal: ac.signal });
  await aborted.open();
  ac.abort(new Error('stop'));
  await t.rejects(aborted.finish(), { message: 'stop' });
  await aborted.close();
});
