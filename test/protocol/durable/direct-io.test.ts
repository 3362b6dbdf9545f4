/**
 * Direct I/O on the studio's large-file path (protocol/src/durable/direct-io.ts): chunks in
 * aligned buffers at aligned offsets go to the disk with O_DIRECT, everything else (a short
 * chunk, the offsets after it, a foreign buffer) through the ordinary descriptor, and the
 * read-back reads the disk; the bytes, the hash and the cleanup are as without it.
 * Real files in the test directory (ext4 here; a file system without O_DIRECT fails the
 * first case).
 */
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import {
  alignedBuffer,
  DIRECT_ALIGN,
  directOk,
  durableWrite,
  nodeFs,
  openDirect,
  type DurableFileHandle,
  type DurableFs,
} from '@studio321/protocol/durable';
import { testBytes } from '../../lib/lying-source.js';

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
