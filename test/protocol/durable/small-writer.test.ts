/**
 * Small files written in groups (SmallWriter, small-write-worker.ts), on real files:
 *  - through the real worker: every file of a group lands under its final name with the bytes
 *    and BLAKE3 it was given (and its XXH3-64), while one whose name holds other content fails
 *    alone with DURABLE_NAME_TAKEN and one given a wrong expected hash with
 *    DURABLE_HASH_MISMATCH: neither leaves a temp, and the foreign file is untouched;
 *  - a read-back that differs from what was written is caught (DURABLE_READBACK_MISMATCH) for
 *    that file only, with no temp and no final name. The bytes are rotted by a file-system facade
 *    wrapping the worker's synchronous one, so this group is written on the calling thread
 *    (writeSmallGroup, the code the worker runs): a worker thread cannot be handed a facade.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { DURABLE_CODES, SmallWriter } from '@studio321/protocol/durable';
import { rottingReadBack } from '../../lib/rotting-fs.js';

t.test('a group through the worker: each file its own outcome, the failed ones leave nothing', async (t) => {
  const dir = t.testdir();
  const writer = new SmallWriter();
  t.teardown(() => writer.close());
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'TAKEN.JPG'), 'someone else');
  const files = Array.from({ length: 12 }, (_, i) => ({ name: `IMG_${i}.JPG`, bytes: randomBytes(2000 + i * 500) }));
  files[3] = { name: 'TAKEN.JPG', bytes: randomBytes(3000) };
  const results = await Promise.allSettled(
    files.map((f, i) =>
      writer.write({
        bytes: f.bytes,
        targets: [{ dir: join(dir, 'sub'), name: f.name }],
        xxh3: true,
        ...(i === 5 ? { expected: { size: f.bytes.length, blake3: '0'.repeat(64) } } : {}),
      }),
    ),
  );
  t.ok(writer.groups < files.length, `grouped (${writer.groups} groups for ${files.length} files)`);
  for (const [i, r] of results.entries()) {
    const f = files[i]!;
    if (i === 3 || i === 5) {
      t.equal(r.status, 'rejected', `${f.name} failed`);
      t.match((r as PromiseRejectedResult).reason, {
        name: 'DurableWriteError',
        code: i === 3 ? DURABLE_CODES.nameTaken : DURABLE_CODES.hashMismatch,
      });
      continue;
    }
    t.equal(r.status, 'fulfilled', `${f.name} written`);
    const v = (r as PromiseFulfilledResult<{ blake3: string; xxh3?: string; size: number }>).value;
    t.equal(v.blake3, hashBytes(f.bytes));
    t.equal(v.size, f.bytes.length);
    t.match(v.xxh3, /^[0-9a-f]{16}$/);
    t.same(await readFile(join(dir, 'sub', f.name)), f.bytes, `${f.name}: the bytes given`);
  }
  t.equal(await readFile(join(dir, 'sub', 'TAKEN.JPG'), 'utf8'), 'someone else', 'the foreign file untouched');
  const names = await readdir(join(dir, 'sub'));
  t.notOk(
    names.some((n) => n.endsWith('.s321tmp')),
    'no temp left',
  );
  t.notOk(names.includes('IMG_5.JPG'), 'no final name for the file with the wrong hash');
});

t.test('a name taken in the same folder: that file fails alone, the other content untouched', async (t) => {
  const dir = t.testdir();
  const writer = new SmallWriter();
  t.teardown(() => writer.close());
  await writeFile(join(dir, 'B.JPG'), 'foreign');
  const a = randomBytes(4000);
  const b = randomBytes(4000);
  const [ra, rb] = await Promise.allSettled([
    writer.write({ bytes: a, targets: [{ dir, name: 'A.JPG' }] }),
    writer.write({ bytes: b, targets: [{ dir, name: 'B.JPG' }] }),
  ]);
  t.equal(ra?.status, 'fulfilled');
  t.match((rb as PromiseRejectedResult).reason, { code: DURABLE_CODES.nameTaken, retryable: false });
  t.equal(await readFile(join(dir, 'B.JPG'), 'utf8'), 'foreign');
  t.same((await readdir(dir)).sort(), ['A.JPG', 'B.JPG'], 'no temp left');
});

t.test('a read-back that differs from what was written fails that file only', async (t) => {
  const dir = t.testdir();
  // The temps of ROT files read back with one byte flipped (the disk, its cable or RAM).
  const rotting = rottingReadBack('ROT');
  const writer = new SmallWriter({ fs: rotting });
  const names = ['A.JPG', 'ROT.JPG', 'C.JPG'];
  const bytes = names.map(() => randomBytes(5000));
  const results = await Promise.allSettled(
    names.map((name, i) => writer.write({ bytes: bytes[i]!, targets: [{ dir, name }] })),
  );
  t.equal(results[0]?.status, 'fulfilled');
  t.equal(results[2]?.status, 'fulfilled');
  t.match((results[1] as PromiseRejectedResult).reason, {
    code: DURABLE_CODES.readbackMismatch,
    retryable: false,
  });
  t.same((await readdir(dir)).sort(), ['A.JPG', 'C.JPG'], 'no final name and no temp for the rotten copy');
  t.same(await readFile(join(dir, 'C.JPG')), bytes[2]);
});
