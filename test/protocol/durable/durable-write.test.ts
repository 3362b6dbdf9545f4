/**
 * The durable write in-process: real files in a test directory, a lying source
 * and the fs seam (test/lib/fault-fs.ts) for the faults a healthy disk cannot
 * produce on demand. The cases that start processes (tmpfs mounts, b3sum) are
 * in test/system/protocol/durable/durable-write.test.ts.
 */
import t from 'tap';
import { mkdir, readdir, readFile, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import {
  durableWrite,
  nodeFs,
  sweepStaleTemps,
  syncInterval,
  type DurableFileHandle,
  type DurableFs,
  type DurableWriteOptions,
} from '@studio321/protocol/durable';
import { lyingSource, systemError, testBytes } from '../../lib/lying-source.js';
import { faultFs } from '../../lib/fault-fs.js';

const DATA = testBytes(1024 * 1024 + 123, 7); // a bit over 1 MiB: several chunks, an odd tail
const REF = { size: DATA.byteLength, blake3: hashBytes(DATA) };

/** Sorted listing of a directory tree (relative paths), for "nothing partial remains" checks. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

/** A fresh empty directory for one test (removed by tap afterwards). */
function newDir(t: { testdir(): string }): string {
  return t.testdir();
}

t.test('one target: written, fsynced, read back, linked; no temp left', async (t) => {
  const dir = newDir(t);
  const progress: number[] = [];
  const r = await durableWrite(lyingSource({ data: DATA }), {
    targets: [{ dir, name: 'IMG_0001.CR3' }],
    onProgress: (n) => progress.push(n),
  });
  t.equal(r.size, REF.size);
  t.equal(r.blake3, REF.blake3);
  t.equal(r.copies.length, 1);
  const c = r.copies[0]!;
  t.match(c, {
    path: join(dir, 'IMG_0001.CR3'),
    name: 'IMG_0001.CR3',
    size: REF.size,
    blake3: REF.blake3,
    method: 'readback-blake3',
    reused: false,
  });
  t.ok(!Number.isNaN(Date.parse(c.verifiedAt)), 'verifiedAt is an ISO time');
  t.same(Buffer.compare(await readFile(c.path), DATA), 0, 'bytes on disk are the source bytes');
  t.same(await tree(dir), ['IMG_0001.CR3'], 'only the final file, no temp');
  t.equal(progress.at(-1), REF.size, 'progress reaches the full size');
});

t.test('expected size+hash given and matching; empty file; readBack:false says write-blake3', async (t) => {
  const dir = newDir(t);
  const r = await durableWrite(lyingSource({ data: DATA, chunkSize: 4096 }), {
    targets: [{ dir, name: 'a' }],
    expected: REF,
  });
  t.equal(r.copies[0]!.method, 'readback-blake3');
  const empty = await durableWrite(lyingSource({ data: new Uint8Array(0) }), {
    targets: [{ dir, name: 'empty' }],
    readBack: false,
  });
  t.equal(empty.size, 0);
  t.equal(empty.blake3, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
  t.equal(empty.copies[0]!.method, 'write-blake3');
  t.same(await tree(dir), ['a', 'empty']);
});

t.test('target dirs are created (mkdir -p) unless createDirs is false', async (t) => {
  const root = newDir(t);
  const deep = join(root, '2026-11-26-wedding', 'CARD-7F3A', 'DCIM', '100CANON');
  await durableWrite(lyingSource({ data: DATA }), { targets: [{ dir: deep, name: 'IMG_0001.CR3' }] });
  t.same(await readdir(deep), ['IMG_0001.CR3']);
  const missing = join(root, 'unmounted-disk', 'store');
  const p = durableWrite(lyingSource({ data: DATA }), { targets: [{ dir: missing, name: 'x' }], createDirs: false });
  await t.rejects(p, { code: 'DURABLE_TARGET_MISSING', retryable: true });
  t.same(
    await tree(join(root)),
    [
      '2026-11-26-wedding',
      '2026-11-26-wedding/CARD-7F3A',
      '2026-11-26-wedding/CARD-7F3A/DCIM',
      '2026-11-26-wedding/CARD-7F3A/DCIM/100CANON',
      '2026-11-26-wedding/CARD-7F3A/DCIM/100CANON/IMG_0001.CR3',
    ],
    'nothing created for the missing target',
  );
});

t.test('a lying source leaves nothing behind', async (t) => {
  const cases: {
    name: string;
    src: Parameters<typeof lyingSource>[0];
    expected?: DurableWriteOptions['expected'];
    code: string;
    retryable: boolean;
  }[] = [
    {
      name: 'short',
      src: { data: DATA, truncateBy: 1 },
      expected: REF,
      code: 'DURABLE_SIZE_MISMATCH',
      retryable: false,
    },
    { name: 'long', src: { data: DATA, extendBy: 1 }, expected: REF, code: 'DURABLE_SIZE_MISMATCH', retryable: false },
    {
      name: 'one flipped bit',
      src: { data: DATA, flipBitAt: 500_000 },
      expected: REF,
      code: 'DURABLE_HASH_MISMATCH',
      retryable: false,
    },
    {
      name: 'card pulled on chunk 3 (EIO)',
      src: { data: DATA, failOnChunk: 3 },
      code: 'DURABLE_SOURCE_FAILED',
      retryable: true,
    },
    {
      name: 'card gone on chunk 0 (ENODEV)',
      src: { data: DATA, failOnChunk: 0, failWith: systemError('ENODEV') },
      code: 'DURABLE_SOURCE_FAILED',
      retryable: true,
    },
    {
      name: 'unreadable source (EACCES)',
      src: { data: DATA, failOnChunk: 2, failWith: systemError('EACCES') },
      code: 'DURABLE_SOURCE_FAILED',
      retryable: false,
    },
  ];
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const a = newDir(t);
      const b = join(a, 'second');
      await mkdir(b);
      const opts: DurableWriteOptions = {
        targets: [
          { dir: a, name: 'IMG_0001.CR3' },
          { dir: b, name: 'IMG_0001.CR3' },
        ],
      };
      if (c.expected !== undefined) opts.expected = c.expected;
      await t.rejects(durableWrite(lyingSource(c.src), opts), {
        code: c.code,
        retryable: c.retryable,
        name: 'DurableWriteError',
      });
      t.same(await tree(a), ['second'], 'no temp, no final file in either target');
    });
  }
  t.end();
});

t.test('hashSource: false — each copy is checked against `expected` by its read-back only', async (t) => {
  const dir = newDir(t);
  const two = [
    { dir, name: 'a' },
    { dir: join(dir, 'b'), name: 'a' },
  ];
  const r = await durableWrite(lyingSource({ data: DATA }), { targets: two, expected: REF, hashSource: false });
  t.equal(r.blake3, REF.blake3);
  t.same(
    r.copies.map((c) => c.method),
    ['readback-blake3', 'readback-blake3'],
  );
  t.same(Buffer.compare(await readFile(join(dir, 'b', 'a')), DATA), 0);
  // Other bytes than announced: caught by the read-back, nothing kept.
  const bad = newDir(t);
  await t.rejects(
    durableWrite(lyingSource({ data: DATA, flipBitAt: 700_000 }), {
      targets: [{ dir: bad, name: 'x' }],
      expected: REF,
      hashSource: false,
    }),
    { code: 'DURABLE_READBACK_MISMATCH', name: 'DurableWriteError' },
  );
  await t.rejects(
    durableWrite(lyingSource({ data: DATA, truncateBy: 5 }), {
      targets: [{ dir: bad, name: 'x' }],
      expected: REF,
      hashSource: false,
    }),
    { code: 'DURABLE_SIZE_MISMATCH' },
  );
  t.same(await tree(bad), [], 'no temp, no final file');
  // Without a known hash there is nothing to check against.
  await t.rejects(
    durableWrite(lyingSource({ data: DATA }), { targets: [{ dir: bad, name: 'y' }], hashSource: false }),
    TypeError,
  );
  await t.rejects(
    durableWrite(lyingSource({ data: DATA }), {
      targets: [{ dir: bad, name: 'y' }],
      expected: REF,
      readBack: false,
      hashSource: false,
    }),
    TypeError,
  );
  t.same(await tree(bad), []);
});

t.test('source error keeps its cause', async (t) => {
  const dir = newDir(t);
  const cause = systemError('EIO');
  const err = await durableWrite(lyingSource({ data: DATA, failOnChunk: 1, failWith: cause }), {
    targets: [{ dir, name: 'x' }],
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof Error && err.cause === cause, 'cause is the source error');
  t.same(await tree(dir), []);
});

t.test('existing final name with different content: DURABLE_NAME_TAKEN, existing file untouched', async (t) => {
  const dir = newDir(t);
  const other = testBytes(5000, 99);
  await writeFile(join(dir, 'IMG_0001.CR3'), other);
  const before = await stat(join(dir, 'IMG_0001.CR3'));
  await t.rejects(durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name: 'IMG_0001.CR3' }] }), {
    code: 'DURABLE_NAME_TAKEN',
    retryable: false,
  });
  t.same(Buffer.compare(await readFile(join(dir, 'IMG_0001.CR3')), other), 0, 'existing bytes unchanged');
  t.equal((await stat(join(dir, 'IMG_0001.CR3'))).ino, before.ino, 'same inode: not replaced');
  t.same(await tree(dir), ['IMG_0001.CR3'], 'no temp left');
  // Same size, different bytes: decided by hash, not by size.
  const sameSize = testBytes(DATA.byteLength, 3);
  await writeFile(join(dir, 'same-size'), sameSize);
  await t.rejects(durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name: 'same-size' }] }), {
    code: 'DURABLE_NAME_TAKEN',
  });
  t.same(Buffer.compare(await readFile(join(dir, 'same-size')), sameSize), 0);
  t.same(await tree(dir), ['IMG_0001.CR3', 'same-size']);
});

t.test('existing final name with identical content is reused', async (t) => {
  const dir = newDir(t);
  await writeFile(join(dir, 'IMG_0001.CR3'), DATA);
  const before = await stat(join(dir, 'IMG_0001.CR3'));
  const r = await durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name: 'IMG_0001.CR3' }] });
  t.equal(r.copies[0]!.reused, true);
  t.equal(r.copies[0]!.blake3, REF.blake3);
  t.equal((await stat(join(dir, 'IMG_0001.CR3'))).ino, before.ino, 'existing file kept');
  t.same(await tree(dir), ['IMG_0001.CR3']);
});

t.test('two targets from one read; a taken name on one reports the committed other', async (t) => {
  const root = newDir(t);
  const mirror = join(root, 'mirror');
  const raid = join(root, 'raid');
  let reads = 0;
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const c of lyingSource({ data: DATA })) {
      reads++;
      yield c;
    }
  }
  const r = await durableWrite(counted(), {
    targets: [
      { dir: mirror, name: 'f' },
      { dir: raid, name: 'f' },
    ],
    expected: REF,
  });
  t.equal(reads, Math.ceil(DATA.byteLength / 65536), 'the source was read once');
  t.same(
    r.copies.map((c) => c.path),
    [join(mirror, 'f'), join(raid, 'f')],
  );
  t.same(Buffer.compare(await readFile(join(mirror, 'f')), DATA), 0);
  t.same(Buffer.compare(await readFile(join(raid, 'f')), DATA), 0);

  await writeFile(join(raid, 'g'), 'someone else');
  const err = await durableWrite(lyingSource({ data: DATA }), {
    targets: [
      { dir: mirror, name: 'g' },
      { dir: raid, name: 'g' },
    ],
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(
    err,
    { code: 'DURABLE_NAME_TAKEN', detail: { committed: [join(mirror, 'g')] } },
    'the complete, verified mirror copy is reported',
  );
  t.same(await tree(root), ['mirror', 'mirror/f', 'mirror/g', 'raid', 'raid/f', 'raid/g']);
  t.equal(await readFile(join(raid, 'g'), 'utf8'), 'someone else');
});

t.test('injected target faults map to their codes and leave nothing', async (t) => {
  // The fs seam: these errors cannot be produced on demand by a healthy local disk.
  const cases = [
    { fail: { op: 'write', code: 'EIO', nth: 2 }, code: 'DURABLE_IO_ERROR', retryable: true },
    { fail: { op: 'sync', code: 'EIO' }, code: 'DURABLE_IO_ERROR', retryable: true },
    { fail: { op: 'write', code: 'EDQUOT' }, code: 'DURABLE_NO_SPACE', retryable: false },
    { fail: { op: 'link', code: 'EACCES' }, code: 'DURABLE_ACCESS_DENIED', retryable: false },
    { fail: { op: 'open-wx', code: 'ENODEV' }, code: 'DURABLE_TARGET_MISSING', retryable: true },
  ] as const;
  for (const c of cases) {
    const dir = newDir(t);
    await t.rejects(
      durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name: 'x' }], fs: faultFs({ fail: c.fail }) }),
      { code: c.code, retryable: c.retryable },
      `${c.fail.op} ${c.fail.code}`,
    );
    t.same(await tree(dir), [], `nothing left after ${c.fail.op} ${c.fail.code}`);
  }
});

t.test('no hard links (exFAT-like EPERM on link): renames onto a free name only', async (t) => {
  const dir = newDir(t);
  const fs = faultFs({ fail: { op: 'link', code: 'EPERM' } });
  const r = await durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name: 'x' }], fs });
  t.equal(fs.calls.rename, 1);
  t.equal(r.copies[0]!.reused, false);
  t.same(await tree(dir), ['x']);
  await writeFile(join(dir, 'y'), 'other');
  await t.rejects(
    durableWrite(lyingSource({ data: DATA }), {
      targets: [{ dir, name: 'y' }],
      fs: faultFs({ fail: { op: 'link', code: 'EPERM' } }),
    }),
    { code: 'DURABLE_NAME_TAKEN' },
  );
  t.equal(await readFile(join(dir, 'y'), 'utf8'), 'other');
  t.same(await tree(dir), ['x', 'y']);
});

t.test('bytes that rot between write and read-back: DURABLE_READBACK_MISMATCH', async (t) => {
  const dir = newDir(t);
  const fs = faultFs({ rotOnRead: /\.s321tmp$/ });
  await t.rejects(durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name: 'x' }], fs }), {
    code: 'DURABLE_READBACK_MISMATCH',
    retryable: false,
  });
  t.ok(fs.calls.read > 0, 'the read-back ran');
  t.same(await tree(dir), []);
});

t.test('abort mid-stream (a stalled source): DURABLE_ABORTED, temps removed', async (t) => {
  const dir = newDir(t);
  const ac = new AbortController();
  const p = durableWrite(lyingSource({ data: DATA, hangAfterChunk: 2 }), {
    targets: [
      { dir, name: 'x' },
      { dir: join(dir, 'b'), name: 'x' },
    ],
    signal: ac.signal,
    onProgress: (n) => {
      if (n >= 3 * 65536) ac.abort(new Error('card removed'));
    },
  });
  await t.rejects(p, { code: 'DURABLE_ABORTED', retryable: true });
  t.same(await tree(dir), ['b']);
  const pre = new AbortController();
  pre.abort();
  await t.rejects(durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name: 'y' }], signal: pre.signal }), {
    code: 'DURABLE_ABORTED',
  });
  t.same(await tree(dir), ['b']);
});

t.test('hostile names are refused before anything is created', async (t) => {
  const root = newDir(t);
  const dir = join(root, 'store');
  const names = ['', '.', '..', 'a/b', '../../etc/passwd', '/abs', 'a\0b', 'a\\b', 'x.s321tmp', 'n'.repeat(256)];
  for (const name of names) {
    await t.rejects(
      durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name }] }),
      { code: 'DURABLE_BAD_NAME', retryable: false },
      JSON.stringify(name.slice(0, 20)),
    );
  }
  t.same(await tree(root), [], 'not even the target dir was created');
  // The longest legal name works (its temp name is shortened).
  const long = 'é'.repeat(127); // 254 bytes
  const r = await durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name: long }] });
  t.equal(r.copies[0]!.name, long);
  t.same(await readdir(dir), [long]);
});

t.test('stale temps are swept, finals are kept', async (t) => {
  const dir = newDir(t);
  await mkdir(join(dir, 'DCIM', '100CANON'), { recursive: true });
  await writeFile(join(dir, '.IMG_0001.CR3.0123456789ab.s321tmp'), 'half');
  await writeFile(join(dir, 'DCIM', '100CANON', '.IMG_0002.CR3.ba9876543210.s321tmp'), 'half');
  await writeFile(join(dir, 'IMG_0001.CR3'), 'final');
  t.equal(await sweepStaleTemps(dir), 1, 'non-recursive sweeps the top dir only');
  t.equal(await sweepStaleTemps(dir, { recursive: true }), 1);
  t.same(await tree(dir), ['DCIM', 'DCIM/100CANON', 'IMG_0001.CR3']);
  t.equal(await sweepStaleTemps(join(dir, 'no-such-dir')), 0);
});

t.test('a throwing onProgress is a programmer error: rethrown as is, temps removed', async (t) => {
  const dir = newDir(t);
  await t.rejects(
    durableWrite(lyingSource({ data: DATA }), {
      targets: [{ dir, name: 'x' }],
      onProgress: () => {
        throw new TypeError('bad callback');
      },
    }),
    TypeError,
  );
  t.same(await tree(dir), []);
  await t.rejects(durableWrite(lyingSource({ data: DATA }), { targets: [] }), TypeError, 'no targets');
  await t.rejects(
    durableWrite(lyingSource({ data: DATA }), {
      targets: [
        { dir, name: 'a' },
        { dir, name: 'a' },
      ],
    }),
    TypeError,
    'a target twice',
  );
  await t.rejects(
    durableWrite(lyingSource({ data: DATA }), { targets: [{ dir, name: 'a' }], expected: { size: 1, blake3: 'AB' } }),
    TypeError,
    'bad expected hash',
  );
  t.same(await tree(dir), []);
});

t.test(
  'syncEveryMax: the fdatasync interval grows with the file (half of what is synced), bounded both ways',
  async (t) => {
    const KiB = 1024;
    t.equal(syncInterval(0, 64 * KiB, 1024 * KiB), 64 * KiB, 'starts at syncEvery');
    t.equal(syncInterval(100 * KiB, 64 * KiB, 1024 * KiB), 64 * KiB, 'never under syncEvery');
    t.equal(syncInterval(512 * KiB, 64 * KiB, 1024 * KiB), 256 * KiB, 'half of what is synced');
    t.equal(syncInterval(10_000 * KiB, 64 * KiB, 1024 * KiB), 1024 * KiB, 'never over syncEveryMax');
    t.equal(syncInterval(10_000 * KiB, 64 * KiB, 64 * KiB), 64 * KiB, 'max = every: a fixed interval');

    // 4 MiB in 64 KiB chunks: a fixed 64 KiB interval allows up to 63 fdatasyncs before the final
    // fsync; growing to 1 MiB, at most the boundaries of the schedule (fewer when one is still running).
    const data = testBytes(4 * 1024 * KiB, 11);
    const ref = { size: data.byteLength, blake3: hashBytes(data) };
    /** The fdatasyncs the schedule starts after each 64 KiB chunk, the last one included. */
    const boundaries = (max: number): number => {
      let n = 0;
      for (let pos = 64 * KiB, synced = 0; pos <= data.byteLength; pos += 64 * KiB)
        if (pos - synced >= syncInterval(synced, 64 * KiB, max)) {
          n++;
          synced = pos;
        }
      return n;
    };
    t.equal(boundaries(64 * KiB), 64, 'a fixed 64 KiB interval: one after every chunk');
    t.ok(boundaries(1024 * KiB) <= 12, `growing to 1 MiB: ${boundaries(1024 * KiB)} in 4 MiB`);
    /**
     * The real files, with each step-4 fdatasync counted and answered at once (the step-6 fsync stays
     * real): none is still running when the next chunk asks, so the count is the schedule's, and a
     * write that ignored `syncEveryMax` would make 64.
     */
    const counting = (): { fs: DurableFs; datasyncs: () => number } => {
      let n = 0;
      const fs: DurableFs = {
        ...nodeFs,
        open: async (path, flags, mode) => {
          const fh = await nodeFs.open(path, flags, mode);
          return Object.assign(Object.create(fh) as DurableFileHandle, {
            datasync: async () => {
              n++;
            },
          });
        },
      };
      return { fs, datasyncs: () => n };
    };
    for (const max of [1024 * KiB, 64 * KiB]) {
      const want = boundaries(max);
      const dir = newDir(t);
      const c = counting();
      const r = await durableWrite(lyingSource({ data }), {
        targets: [{ dir, name: 'grown.bin' }],
        expected: ref,
        syncEvery: 64 * KiB,
        syncEveryMax: max,
        fs: c.fs,
      });
      t.equal(r.blake3, ref.blake3);
      t.equal(r.copies[0]?.method, 'readback-blake3', 'every byte read back after an fsync covered it');
      t.equal(c.datasyncs(), want, `syncEveryMax ${max / KiB} KiB: ${want} fdatasyncs before the final fsync`);
      t.same(await readFile(join(dir, 'grown.bin')), Buffer.from(data), 'the copy holds the bytes');
      t.same(await tree(dir), ['grown.bin'], 'no temp left');
    }

    for (const bad of [{ syncEvery: 1024, syncEveryMax: 512 }, { syncEveryMax: 1.5 }, { syncEveryMax: 4096 }]) {
      const d = newDir(t);
      await t.rejects(
        durableWrite(lyingSource({ data: DATA }), { targets: [{ dir: d, name: 'x' }], ...bad }),
        TypeError,
        `refused: ${JSON.stringify(bad)}`,
      );
      t.same(await tree(d), [], 'nothing created for refused options');
    }
  },
);
