/**
 * Direct I/O on the studio's large-file path (protocol/src/durable/direct-io.ts): chunks in
 * aligned buffers at aligned offsets go to the disk with O_DIRECT, everything else (a short
 * chunk, the offsets after it, a foreign buffer) through the ordinary descriptor, and the
 * read-back reads the disk; the bytes, the hash and the cleanup are as without it.
 * Runs of chunks (`writeParts`, a source yielding arrays) go in one pwritev where all may go direct.
 * Real files in the test directory (ext4 here; a file system without O_DIRECT fails the
 * first case).
 */
import t, { type Test } from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { open } from 'node:fs/promises';
import {
  alignedBuffer,
  BUFFERED_WRITE_MAX,
  DIRECT_ALIGN,
  DirectWriter,
  directOk,
  durableWrite,
  nodeFs,
  openDirect,
  writeParts,
  type DurableFileHandle,
  type DurableFs,
} from '@studio321/protocol/durable';
import { systemError, testBytes } from '../../lib/lying-source.js';

const CHUNK = 256 * 1024; // whole 4 KiB blocks, small enough to keep the test quick

/** A chunk of `bytes` copied into a fresh aligned buffer (as the studio's chunk pool holds them). */
function pooled(bytes: Uint8Array): Buffer {
  const buf = alignedBuffer(Math.ceil(bytes.byteLength / (64 * 1024)) * 64 * 1024);
  buf.set(bytes);
  return buf.subarray(0, bytes.byteLength);
}

/** The file's content in chunks: aligned chunks, one short aligned-buffer chunk, aligned again, an ordinary tail. */
function chunksOf(data: Uint8Array): Uint8Array[] {
  return [
    pooled(data.subarray(0, CHUNK)),
    pooled(data.subarray(CHUNK, 2 * CHUNK)),
    pooled(data.subarray(2 * CHUNK, 3 * CHUNK - 100)), // short: every offset after it is unaligned
    pooled(data.subarray(3 * CHUNK - 100, 4 * CHUNK - 100)),
    Uint8Array.from(data.subarray(4 * CHUNK - 100)), // not from alignedBuffer
  ];
}

async function* source(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

t.test('alignedBuffer: direct writes accept it; directOk refuses what O_DIRECT would', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'f');
  await (await nodeFs.open(path, 'wx')).close();
  const fh = await openDirect(path, true);
  if (fh === undefined) {
    t.fail('this file system refuses O_DIRECT: the direct path cannot be tested here');
    return;
  }
  const buf = alignedBuffer(CHUNK);
  buf.fill(7);
  t.equal((await fh.write(buf, 0, CHUNK, 0)).bytesWritten, CHUNK, 'an O_DIRECT write from it succeeds');
  await t.rejects(fh.write(buf, 1, DIRECT_ALIGN, 0), { code: 'EINVAL' }, 'the kernel refuses an unaligned address');
  await fh.close();
  t.ok(directOk(buf, 0));
  t.notOk(directOk(buf, 100), 'unaligned offset');
  t.notOk(directOk(buf.subarray(0, 1000), 0), 'length not a whole block');
  t.notOk(directOk(buf.subarray(16), 0), 'address not on a block');
  t.notOk(directOk(Buffer.alloc(CHUNK), 0), 'a buffer not from alignedBuffer');
  t.equal((await readFile(path)).compare(buf), 0);
});

t.test('durableWrite directIo: aligned chunks go O_DIRECT, the rest buffered; bytes and hash exact', async (t) => {
  const dir = t.testdir();
  const data = testBytes(4 * CHUNK + 333, 3);
  const chunks = chunksOf(data);
  // nodeFs with its direct descriptors counted (a facade: the read-back is then the calling thread's lane).
  const directWrites: number[] = [];
  let opened = 0;
  const counting: DurableFs = {
    ...nodeFs,
    openDirect: async (p) => {
      opened++;
      const fh = await nodeFs.openDirect?.(p);
      if (fh === undefined) return undefined;
      const wrapped: DurableFileHandle = {
        write: (b, o, l, pos) => {
          directWrites.push(pos);
          return fh.write(b, o, l, pos);
        },
        read: (b, o, l, pos) => fh.read(b, o, l, pos),
        sync: () => fh.sync(),
        datasync: () => fh.datasync(),
        close: () => fh.close(),
      };
      return wrapped;
    },
  };
  const r = await durableWrite(source(chunks), {
    targets: [{ dir, name: 'a.bin' }],
    expected: { size: data.byteLength, blake3: hashBytes(data) },
    hashSource: false,
    directIo: true,
    syncEvery: CHUNK,
    fs: counting,
  });
  t.same(directWrites, [0, CHUNK], 'the two aligned chunks before the short one, no other');
  t.equal(r.blake3, hashBytes(data));
  t.equal(Buffer.compare(await readFile(join(dir, 'a.bin')), data), 0, 'the file holds the bytes');
  t.same(await readdir(dir), ['a.bin'], 'no temp left');
  t.equal(opened, 1);
  // A small file (one short chunk, from the pool or not) never opens a direct descriptor.
  const small = testBytes(10_000, 6);
  await durableWrite(source([pooled(small)]), {
    targets: [{ dir, name: 'small.bin' }],
    expected: { size: small.byteLength, blake3: hashBytes(small) },
    hashSource: false,
    directIo: true,
    fs: counting,
  });
  t.equal(opened, 1, 'no O_DIRECT open for a small file');
  t.equal(Buffer.compare(await readFile(join(dir, 'small.bin')), small), 0);
});

t.test(
  'durableWrite directIo with the worker reading back by O_DIRECT: exact, and a wrong hash leaves nothing',
  async (t) => {
    const dir = t.testdir();
    const data = testBytes(4 * CHUNK + 333, 4);
    const r = await durableWrite(source(chunksOf(data)), {
      targets: [{ dir, name: 'b.bin' }],
      expected: { size: data.byteLength, blake3: hashBytes(data) },
      hashSource: false,
      directIo: true,
      syncEvery: CHUNK,
    });
    t.equal(r.copies[0]?.method, 'readback-blake3');
    t.equal(Buffer.compare(await readFile(join(dir, 'b.bin')), data), 0);
    // The read-back is the check: other bytes than the expected hash fail as a read-back mismatch.
    const other = testBytes(2 * CHUNK, 5);
    await t.rejects(
      durableWrite(source([pooled(other.subarray(0, CHUNK)), pooled(other.subarray(CHUNK))]), {
        targets: [{ dir, name: 'c.bin' }],
        expected: { size: other.byteLength, blake3: hashBytes(data) },
        hashSource: false,
        directIo: true,
      }),
      { code: 'DURABLE_READBACK_MISMATCH' },
    );
    t.same(await readdir(dir), ['b.bin'], 'no temp and no final name for the refused copy');
  },
);

/** The calls a handle got: `v@pos:n` a pwritev of n buffers, `w@pos` a pwrite. */
type Calls = string[];

/** `fh` with its writes recorded in `calls`; `writev` replaced by `writev` when given. */
function recorded(
  fh: DurableFileHandle,
  calls: Calls,
  tag: string,
  writev?: (bufs: Uint8Array[], pos: number) => Promise<{ bytesWritten: number }>,
): DurableFileHandle {
  return {
    write: (b, o, l, pos) => {
      calls.push(`${tag}w@${pos}`);
      return fh.write(b, o, l, pos);
    },
    writev: (bufs, pos) => {
      calls.push(`${tag}v@${pos}:${bufs.length}`);
      if (writev !== undefined) return writev(bufs, pos);
      if (fh.writev === undefined) throw new TypeError('no writev');
      return fh.writev(bufs, pos);
    },
    read: (b, o, l, pos) => fh.read(b, o, l, pos),
    sync: () => fh.sync(),
    datasync: () => fh.datasync(),
    close: () => fh.close(),
  };
}

/** A new file in `dir` with its ordinary and its O_DIRECT descriptor, both recorded in `calls`. */
async function handles(
  t: Test,
  dir: string,
  calls: Calls,
  writev?: (direct: DurableFileHandle) => (bufs: Uint8Array[], pos: number) => Promise<{ bytesWritten: number }>,
): Promise<{ path: string; plain: DurableFileHandle; direct: DirectWriter<DurableFileHandle> }> {
  const path = join(dir, `f${calls.length}-${Math.random().toString(16).slice(2)}`);
  const plain = recorded(await open(path, 'wx'), calls, 'plain ');
  const raw = await openDirect(path, true);
  if (raw === undefined) throw new Error('this file system refuses O_DIRECT: the direct path cannot be tested here');
  const direct = new DirectWriter<DurableFileHandle>(
    async () => recorded(raw, calls, 'direct ', writev?.(raw)),
    () => undefined,
  );
  t.teardown(async () => {
    await plain.close().catch(() => undefined);
    await direct.close();
  });
  return { path, plain, direct };
}

t.test('writeParts: a run of direct chunks is one pwritev; the bytes are exact', async (t) => {
  const dir = t.testdir();
  const data = testBytes(4 * CHUNK + 100, 21);
  const calls: Calls = [];
  const { path, plain, direct } = await handles(t, dir, calls);
  const run = [0, 1, 2, 3].map((i) => pooled(data.subarray(i * CHUNK, (i + 1) * CHUNK)));
  await writeParts(direct, plain, run, 0);
  t.same(calls, ['direct v@0:4'], 'four aligned chunks: one pwritev on the direct descriptor');
  // A run with a chunk that may not go direct (the file's short tail): each chunk on its own.
  calls.length = 0;
  await writeParts(
    direct,
    plain,
    [pooled(data.subarray(0, CHUNK)), Uint8Array.from(data.subarray(4 * CHUNK))],
    4 * CHUNK,
  );
  t.same(calls, [`direct w@${4 * CHUNK}`, `plain w@${5 * CHUNK}`], 'no pwritev when one chunk may not go direct');
  const want = Buffer.concat([data.subarray(0, 4 * CHUNK), data.subarray(0, CHUNK), data.subarray(4 * CHUNK)]);
  t.equal(Buffer.compare(await readFile(path), want), 0, 'the file holds the bytes, in order');
});

t.test(
  'writeParts: after a short pwritev the rest goes part by part, unaligned bytes by the plain descriptor',
  async (t) => {
    const dir = t.testdir();
    const data = testBytes(3 * CHUNK, 22);
    const calls: Calls = [];
    // The direct descriptor's pwritev writes the first chunk and one block of the second, then stops.
    const { path, plain, direct } = await handles(t, dir, calls, (raw) => async (bufs, pos) => {
      const a = await raw.write(bufs[0] as Uint8Array, 0, CHUNK, pos);
      const b = await raw.write(bufs[1] as Uint8Array, 0, DIRECT_ALIGN, pos + CHUNK);
      return { bytesWritten: a.bytesWritten + b.bytesWritten };
    });
    const run = [0, 1, 2].map((i) => pooled(data.subarray(i * CHUNK, (i + 1) * CHUNK)));
    await writeParts(direct, plain, run, 0);
    t.same(
      calls,
      ['direct v@0:3', `plain w@${CHUNK + DIRECT_ALIGN}`, `direct w@${2 * CHUNK}`],
      'the rest of the second chunk by the plain descriptor, the third direct again',
    );
    t.equal(Buffer.compare(await readFile(path), data), 0, 'the file holds the bytes');
  },
);

t.test('writeParts: the ordinary descriptor writes a large chunk in pwrites of BUFFERED_WRITE_MAX', async (t) => {
  const dir = t.testdir();
  const size = 4 * 1024 * 1024 + 100; // a whole chunk of the agent's card reader and a short tail
  const data = testBytes(2 * size, 24);
  const calls: Calls = [];
  const { path, plain, direct } = await handles(t, dir, calls);
  // Buffers not from alignedBuffer: nothing may go direct, as in the agent's offload.
  await writeParts(direct, plain, [Uint8Array.from(data.subarray(0, size))], 0);
  await writeParts(
    direct,
    plain,
    [Uint8Array.from(data.subarray(size, size + 100)), Uint8Array.from(data.subarray(size + 100))],
    size,
  );
  const want = [
    ...Array.from({ length: Math.ceil(size / BUFFERED_WRITE_MAX) }, (_, i) => `plain w@${i * BUFFERED_WRITE_MAX}`),
    `plain w@${size}`,
    ...Array.from(
      { length: Math.ceil((size - 100) / BUFFERED_WRITE_MAX) },
      (_, i) => `plain w@${size + 100 + i * BUFFERED_WRITE_MAX}`,
    ),
  ];
  t.same(calls, want, `${want.length} pwrites, none over ${BUFFERED_WRITE_MAX} bytes, in order`);
  t.equal(Buffer.compare(await readFile(path), data), 0, 'the file holds the bytes');
});

t.test('writeParts: a failed pwritev rejects with its system error; a write of nothing is EIO', async (t) => {
  const dir = t.testdir();
  const data = testBytes(2 * CHUNK, 23);
  const run = [pooled(data.subarray(0, CHUNK)), pooled(data.subarray(CHUNK))];
  const full = await handles(t, dir, [], () => async () => {
    throw systemError('ENOSPC');
  });
  await t.rejects(writeParts(full.direct, full.plain, run, 0), { code: 'ENOSPC' });
  t.equal((await readFile(full.path)).byteLength, 0, 'nothing written');
  const stuck = await handles(t, dir, [], () => async () => ({ bytesWritten: 0 }));
  await t.rejects(
    writeParts(stuck.direct, stuck.plain, run, 0),
    { code: 'EIO' },
    'no endless loop on a write of 0 bytes',
  );
});

t.test('durableWrite: a source of runs (arrays of chunks) writes each run with one pwritev, exact bytes', async (t) => {
  const dir = t.testdir();
  const data = testBytes(5 * CHUNK + 333, 24);
  const calls: Calls = [];
  const counting: DurableFs = {
    ...nodeFs,
    openDirect: async (p) => {
      const fh = await nodeFs.openDirect?.(p);
      return fh === undefined ? undefined : recorded(fh, calls, '');
    },
  };
  const c = (i: number): Buffer => pooled(data.subarray(i * CHUNK, (i + 1) * CHUNK));
  async function* runs(): AsyncGenerator<Uint8Array | readonly Uint8Array[]> {
    yield [c(0), c(1), c(2)];
    yield c(3);
    yield [c(4), Uint8Array.from(data.subarray(5 * CHUNK))];
  }
  const r = await durableWrite(runs(), {
    targets: [
      { dir: join(dir, 'a'), name: 'r.bin' },
      { dir: join(dir, 'b'), name: 'r.bin' },
    ],
    expected: { size: data.byteLength, blake3: hashBytes(data) },
    hashSource: false,
    directIo: true,
    syncEvery: CHUNK,
    fs: counting,
  });
  t.equal(r.size, data.byteLength);
  t.same(
    calls.filter((x) => x.startsWith('v')),
    ['v@0:3', 'v@0:3'],
    'the first run: one pwritev on each target',
  );
  for (const d of ['a', 'b']) {
    t.equal(Buffer.compare(await readFile(join(dir, d, 'r.bin')), data), 0, `${d}: the file holds the bytes`);
    t.same(await readdir(join(dir, d)), ['r.bin'], `${d}: no temp left`);
  }
  // Something in a run that is not a chunk: the source failed, nothing is left.
  async function* bad(): AsyncGenerator<unknown> {
    yield [c(0), 'not bytes'];
  }
  await t.rejects(
    durableWrite(bad() as AsyncIterable<Uint8Array>, {
      targets: [{ dir: join(dir, 'a'), name: 'bad.bin' }],
      expected: { size: data.byteLength, blake3: hashBytes(data) },
      hashSource: false,
      directIo: true,
    }),
    { code: 'DURABLE_SOURCE_FAILED' },
  );
  t.same(await readdir(join(dir, 'a')), ['r.bin'], 'no temp, no final name for the bad source');
});
