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
import { StagedFile, Staging, STAGING_DIR } from '@studio321/studiod/commit';
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
  'limits: held per session, open partials in all (STUDIO_STAGING_LIMIT, retryable); an empty partial is removed at close',
  async (t) => {
    const root = t.testdir();
    const staging = new Staging(root, async () => undefined, { perSession: 2, total: 2 });
    const dir = join(root, STAGING_DIR);
    const h = (i: number): string => hashBytes(new Uint8Array([9, i]));
    const a1 = await staging.acquire(h(1), 10, 'a');
    const a2 = await staging.acquire(h(2), 10, 'a');
    await t.rejects(
      staging.acquire(h(3), 10, 'a'),
      { code: 'STUDIO_STAGING_LIMIT', retryable: true },
      'over the session',
    );
    t.equal(staging.holder(h(3)), undefined, 'a refused hash is not held');
    const b1 = await staging.acquire(h(4), 10, 'b');
    const b2 = await staging.acquire(h(5), 10, 'b');
    t.equal(staging.heldCount(), 4, 'holds not created do not count against the total');
    t.same(await readdir(dir), [], 'held files are created by their first write, refused ones never');
    await a1.write(0, new Uint8Array(4));
    await b1.write(0, new Uint8Array(4));
    t.equal(staging.openCount, 2, 'two partials open: the total');
    await t.rejects(
      b2.write(0, new Uint8Array(4)),
      { code: 'STUDIO_STAGING_LIMIT', retryable: true },
      'a third partial is not created',
    );
    t.match(b2.failed, { code: 'STUDIO_STAGING_LIMIT' }, 'the file is failed (the receiver Nacks it mid-transfer)');
    t.same((await readdir(dir)).sort(), [`${h(1)}.part`, `${h(4)}.part`].sort(), 'nothing created for it');
    await b2.close();
    await a1.close();
    t.equal(staging.openCount, 1, 'a closed partial gives its place back');
    await a2.write(0, new Uint8Array(4));
    t.equal(staging.openCount, 2, 'taken by the next one created');
    await a2.discard();
    await b1.close();
    t.equal(staging.openCount, 0, 'none open');
    t.equal(staging.heldCount(), 0, 'nothing held');
    t.same((await readdir(dir)).sort(), [`${h(1)}.part`, `${h(4)}.part`].sort(), 'the written partials stay');
    const [r1, r4] = await staging.acquireAll(
      [
        { hash: h(1), size: 10 },
        { hash: h(4), size: 10 },
      ],
      'c',
    );
    const r5 = await staging.acquire(h(5), 10, 'c2');
    t.equal((r1 as StagedFile).durable, 4, 'an existing partial is opened at the Offer, from its durable size');
    t.equal((r4 as StagedFile).durable, 4, 'and the second');
    t.equal(staging.openCount, 2, 'both count');
    t.ok(r5 instanceof StagedFile, 'a new one is still held (not created)');
    for (const r of [r1, r4, r5]) await (r as StagedFile).close();
    await a1.close(); // twice: a no-op, the place is not given back twice
    t.equal(staging.openCount, 0);
    const c = await staging.acquire(h(1), 10, 'd');
    const d = await staging.acquire(h(4), 10, 'd');
    t.equal(staging.openCount, 2);
    await t.rejects(staging.acquire(h(9), 0, 'e'), { code: 'STUDIO_STAGING_LIMIT' }, 'an empty file is opened at once');
    await c.close();
    await d.close();
  },
);

t.test('acquireAll: one call for many files; refusals per file; busy and the session limit', async (t) => {
  const root = t.testdir();
  const staging = new Staging(root, async () => undefined, { perSession: 3, total: 1 });
  const h = (i: number): string => hashBytes(new Uint8Array([5, i]));
  const other = await staging.acquire(h(2), 10, 'x');
  const out = await staging.acquireAll(
    [1, 2, 3, 4, 5].map((i) => ({ hash: h(i), size: 10 })),
    's',
  );
  t.ok(out[0] instanceof StagedFile, 'held');
  t.match(out[1], { code: 'STUDIO_BUSY', retryable: true }, 'held by another session');
  t.ok(out[2] instanceof StagedFile && out[3] instanceof StagedFile, 'held');
  t.match(out[4], { code: 'STUDIO_STAGING_LIMIT', retryable: true }, 'past the session limit');
  t.equal(staging.heldCount('s'), 3);
  t.equal(staging.holder(h(5)), undefined, 'a refused hash is not held');
  await t.rejects(staging.acquireAll([{ hash: h(1), size: 10 }], 's'), TypeError, 'a hash it already holds: a bug');
  for (const r of [...out, other]) if (r instanceof StagedFile) await r.close();
  t.equal(staging.heldCount(), 0);
});

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
