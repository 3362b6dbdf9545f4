/**
 * durableWriteBytes (protocol/src/durable/durable-write.ts), the durable write of bytes already in
 * memory that studiod's small-commit worker runs, on real files in a temp dir: a copy lands under
 * its final name with exactly the bytes, read back through the temp's descriptor after its fsync;
 * every refusal and failure has durableWrite's code and leaves no temp and no final name of its own
 * (a taken name keeps its bytes); an identical final is reused as it is.
 */
import t from 'tap';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { DURABLE_CODES, durableWriteBytes } from '@studio321/protocol/durable';
import { testBytes } from '../../lib/lying-source.js';

const bytes = testBytes(12_345, 7);
const ref = { size: bytes.byteLength, blake3: hashBytes(bytes) };

t.test('a copy: the bytes under the final name, read back, no temp left', async (t) => {
  const dir = t.testdir();
  const c = await durableWriteBytes(bytes, { dir, name: 'IMG_0001.CR3' }, ref);
  t.match(c, {
    path: join(dir, 'IMG_0001.CR3'),
    name: 'IMG_0001.CR3',
    ...ref,
    method: 'readback-blake3',
    reused: false,
  });
  t.ok(Number.isFinite(Date.parse(c.verifiedAt)), 'verifiedAt is a date');
  t.equal(Buffer.compare(await readFile(c.path), bytes), 0, 'the bytes written');
  t.same(await readdir(dir), ['IMG_0001.CR3'], 'no temp');
  t.equal((await stat(c.path)).mode & 0o777, 0o644, 'mode 0644');
  // A file larger than the read-back buffer (64 KiB) is read back whole too.
  const big = testBytes(200_000, 8);
  const b = await durableWriteBytes(big, { dir, name: 'BIG.CR3' }, { size: big.byteLength, blake3: hashBytes(big) });
  t.equal(Buffer.compare(await readFile(b.path), big), 0, 'a 200 KB file');
  const empty = new Uint8Array(0);
  await durableWriteBytes(empty, { dir, name: 'EMPTY' }, { size: 0, blake3: hashBytes(empty) });
  t.equal((await stat(join(dir, 'EMPTY'))).size, 0, 'an empty file');
  t.same((await readdir(dir)).sort(), ['BIG.CR3', 'EMPTY', 'IMG_0001.CR3'], 'no temp');
});

t.test('a final name holding the same bytes is reused, untouched', async (t) => {
  const dir = t.testdir();
  await writeFile(join(dir, 'A.JPG'), bytes);
  const before = await stat(join(dir, 'A.JPG'));
  const c = await durableWriteBytes(bytes, { dir, name: 'A.JPG' }, ref);
  t.equal(c.reused, true, 'reused');
  const after = await stat(join(dir, 'A.JPG'));
  t.equal(after.ino, before.ino, 'the same file');
  t.equal(after.mtimeMs, before.mtimeMs, 'not written');
  t.same(await readdir(dir), ['A.JPG'], 'no temp');
});

t.test('failures: durableWrite codes, nothing left of the write', async (t) => {
  const dir = t.testdir({ 'TAKEN.JPG': 'other bytes', file: 'not a folder' });
  const cases: Array<{
    what: string;
    name: string;
    in?: string;
    expected?: typeof ref;
    code: string;
    retryable: boolean;
  }> = [
    { what: 'a name holding other bytes', name: 'TAKEN.JPG', code: DURABLE_CODES.nameTaken, retryable: false },
    {
      what: 'a read-back that is not the reference',
      name: 'BAD.JPG',
      expected: { size: ref.size, blake3: hashBytes(new Uint8Array([1, 2, 3])) },
      code: DURABLE_CODES.readbackMismatch,
      retryable: false,
    },
    {
      what: 'more bytes than expected',
      name: 'LONG.JPG',
      expected: { size: ref.size - 1, blake3: ref.blake3 },
      code: DURABLE_CODES.sizeMismatch,
      retryable: false,
    },
    {
      what: 'fewer bytes than expected',
      name: 'SHORT.JPG',
      expected: { size: ref.size + 1, blake3: ref.blake3 },
      code: DURABLE_CODES.sizeMismatch,
      retryable: false,
    },
    { what: 'a missing folder', name: 'A.JPG', in: 'gone', code: DURABLE_CODES.targetMissing, retryable: true },
    {
      what: 'a file where the folder is',
      name: 'A.JPG',
      in: 'file',
      code: DURABLE_CODES.targetMissing,
      retryable: true,
    },
    { what: 'a name that is not one segment', name: 'a/b.JPG', code: DURABLE_CODES.badName, retryable: false },
  ];
  for (const c of cases) {
    await t.rejects(
      durableWriteBytes(bytes, { dir: c.in === undefined ? dir : join(dir, c.in), name: c.name }, c.expected ?? ref),
      { code: c.code, retryable: c.retryable },
      c.what,
    );
    t.same((await readdir(dir)).sort(), ['TAKEN.JPG', 'file'], `${c.what}: no temp, no final name`);
  }
  t.equal(await readFile(join(dir, 'TAKEN.JPG'), 'utf8'), 'other bytes', 'the taken name untouched');
  await mkdir(join(dir, 'sub'));
  await t.rejects(
    durableWriteBytes(bytes, { dir: join(dir, 'sub'), name: 'X' }, { size: -1, blake3: ref.blake3 }),
    TypeError,
    'a bad reference is a TypeError (a misuse), before anything is created',
  );
  t.same(await readdir(join(dir, 'sub')), [], 'nothing created');
});
