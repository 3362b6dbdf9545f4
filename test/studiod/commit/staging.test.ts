/**
 * Staging in the mirror's file system (studiod/src/staging.ts): nothing is
 * staged on a mirror that fails its check, a part that already has a second
 * name is never written to again, a part resumes from its durable size, and
 * verify() reads the staged file back from the disk.
 */
import t from 'tap';
import { link, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { Staging, STAGING_DIR } from '@studio321/studiod/commit';
import { StudioError } from '@studio321/studiod';
import { testBytes } from '../../lib/lying-source.js';

const HASH = hashBytes(new Uint8Array([1, 2, 3]));
const MiB = 1024 * 1024;

t.test('a mirror that fails its check: acquire refuses with that error, creates nothing', async (t) => {
  const root = t.testdir();
  const missing = new StudioError('STUDIO_TARGET_MISSING', 'Target "mirror" is not available.', { retryable: true });
  const staging = new Staging(root, async () => {
    throw missing;
  });
  await t.rejects(staging.acquire(HASH, 10, 's1'), { code: 'STUDIO_TARGET_MISSING' });
  t.same(await readdir(root), [], 'no staging directory on an unchecked disk');
  t.equal(staging.holder(HASH), undefined, 'the hash is not left held');
});

t.test('resume from the durable size; a second session gets STUDIO_BUSY', async (t) => {
  const root = t.testdir();
  const staging = new Staging(root, async () => undefined);
  const data = testBytes(3000, 1);
  const a = await staging.acquire(HASH, data.byteLength, 's1');
  t.equal(a.durable, 0);
  await a.write(0, data.subarray(0, 1000));
  t.equal(await a.sync(), 1000);
  await t.rejects(staging.acquire(HASH, data.byteLength, 's2'), { code: 'STUDIO_BUSY' });
  await a.close();
  const b = await staging.acquire(HASH, data.byteLength, 's2');
  t.equal(b.durable, 1000, 'resumes after the durable bytes');
  await b.close();
  t.equal((await stat(join(root, STAGING_DIR))).mode & 0o777, 0o700);
});

t.test('a part that already has a second name (killed after link, before unlink) is never written to', async (t) => {
  const root = t.testdir({ final: {} });
  const staging = new Staging(root, async () => undefined);
  const data = testBytes(2000, 2);
  const a = await staging.acquire(HASH, data.byteLength, 's1');
  await a.write(0, data);
  await a.sync();
  await a.close();
  // studiod linked the complete part into place as the mirror copy, then died.
  const finalPath = join(root, 'final', 'IMG_0001.CR3');
  await link(staging.pathOf(HASH), finalPath);
  const b = await staging.acquire(HASH, data.byteLength, 's2');
  t.equal(b.durable, 0, 'received again from 0');
  await b.write(0, testBytes(500, 9));
  await b.close();
  t.same(Buffer.compare(await readFile(finalPath), data), 0, 'the final copy is untouched');
  t.equal((await stat(finalPath)).nlink, 1, 'the part is no longer a name of the final copy');
});

t.test('verify() reads the staged file back from the disk, to its end', async (t) => {
  const root = t.testdir();
  const staging = new Staging(root, async () => undefined);
  const data = testBytes(2 * MiB + 77, 3);
  const s = await staging.acquire(HASH, data.byteLength, 's1');
  await s.write(0, data.subarray(0, MiB));
  await s.sync(); // the read-back may go up to 1 MiB now
  await s.write(MiB, data.subarray(MiB));
  // Another writer changes a byte after the mark: verify() must see what the disk holds.
  const fh = await open(s.path, 'r+');
  await fh.write(Buffer.from([data[MiB + 10]! ^ 0xff]), 0, 1, MiB + 10);
  await fh.close();
  const changed = Uint8Array.from(data);
  changed[MiB + 10] = changed[MiB + 10]! ^ 0xff;
  t.same(await s.verify(), { size: changed.byteLength, blake3: hashBytes(changed) });
  await s.discard();
  t.same(await readdir(join(root, STAGING_DIR)), [], 'discard removes the part');
  await writeFile(join(root, 'x'), ''); // the root stays usable
});

t.test(
  'limits: per session and in all (STUDIO_STAGING_LIMIT, retryable); an empty partial is removed at close',
  async (t) => {
    const root = t.testdir();
    const staging = new Staging(root, async () => undefined, { perSession: 2, total: 3 });
    const h = (i: number): string => hashBytes(new Uint8Array([9, i]));
    const a1 = await staging.acquire(h(1), 10, 'a');
    const a2 = await staging.acquire(h(2), 10, 'a');
    await t.rejects(
      staging.acquire(h(3), 10, 'a'),
      { code: 'STUDIO_STAGING_LIMIT', retryable: true },
      'over the session',
    );
    const b1 = await staging.acquire(h(4), 10, 'b');
    await t.rejects(staging.acquire(h(5), 10, 'b'), { code: 'STUDIO_STAGING_LIMIT', retryable: true }, 'over all');
    t.equal(staging.holder(h(3)), undefined, 'a refused hash is not held');
    t.same(
      await readdir(join(root, STAGING_DIR)),
      [],
      'held files are created by their first write, refused ones never',
    );
    await a1.write(0, new Uint8Array(4));
    t.same(await readdir(join(root, STAGING_DIR)), [`${h(1)}.part`], 'the written one is there');
    await a1.close();
    await a2.close();
    await b1.close();
    t.same(await readdir(join(root, STAGING_DIR)), [`${h(1)}.part`], 'the partials with no byte are gone at close');
    t.equal(staging.heldCount(), 0, 'nothing held');
    t.ok(await staging.acquire(h(5), 10, 'b'), 'room again');
  },
);

t.test('sweepExpired removes unheld partials older than the age, never a held one', async (t) => {
  const root = t.testdir();
  const staging = new Staging(root, async () => undefined);
  const h = (i: number): string => hashBytes(new Uint8Array([7, i]));
  for (const i of [1, 2]) {
    const s = await staging.acquire(h(i), 10, 'x');
    await s.write(0, new Uint8Array(5));
    await s.close();
  }
  const held = await staging.acquire(h(3), 10, 'y');
  await held.write(0, new Uint8Array(5));
  await held.sync();
  const day = 24 * 3_600_000;
  const past = new Date(Date.now() - 2 * day);
  const { utimes } = await import('node:fs/promises');
  for (const i of [1, 3]) await utimes(staging.pathOf(h(i)), past, past);
  t.equal(await staging.sweepExpired(day, Date.now()), 1, 'one removed');
  t.same(
    (await readdir(join(root, STAGING_DIR))).sort(),
    [`${h(2)}.part`, `${h(3)}.part`].sort(),
    'the old unheld one is gone; the fresh one and the held one stay',
  );
  await held.close();
});

t.test('queued writes: close() lets them end first (a new partial keeps them), no append after it', async (t) => {
  const root = t.testdir();
  const staging = new Staging(root, async () => undefined);
  const data = testBytes(3 * 64 * 1024, 7);
  const a = await staging.acquire(HASH, data.byteLength, 's1');
  // Two writes queued on a partial not created yet (its first write creates it), then close at once.
  const writes = [a.append(0, data.subarray(0, 65536)), a.append(65536, data.subarray(65536, 131072))];
  t.equal(a.end, 131072, 'the next chunk starts after the queued ones');
  const closed = a.close();
  t.throws(() => a.append(131072, data.subarray(131072)), TypeError, 'no append once close began');
  await closed;
  await Promise.all(writes);
  t.equal(a.durable, 131072, 'both queued writes were written and fsynced by close');
  t.equal(await staging.offsetOf(HASH), 131072, 'the partial stays for a resume');
  const b = await staging.acquire(HASH, data.byteLength, 's2');
  t.equal(b.durable, 131072, 'a resume starts after them');
  await b.discard();
});
