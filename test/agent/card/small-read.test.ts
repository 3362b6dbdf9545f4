/**
 * Small card files read on the small card reader's thread (small-read.ts), on real files:
 *  - the exact bytes, in a buffer of their own (moved from the worker), an empty file as no bytes;
 *  - the same refusals as readCardFile, with the same codes: a size or time that differ from the
 *    listing (AGENT_SOURCE_CHANGED, with the path), a link swapped in (ELOOP), a file gone (ENOENT);
 *  - the check after the read (unchangedAfter) refuses a replaced inode and a changed ctime;
 *  - a file of SMALL_FILE or more is read by readCardFile; an aborted read throws the signal's reason;
 *  - many reads at once come back in groups, each with its own file's bytes, also after close().
 */
import t from 'tap';
import { mkdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  mtimeMsOf,
  openedAsListed,
  SMALL_FILE,
  SmallCardReader,
  unchangedAfter,
  readSmallCardFileSync,
} from '@studio321/agent/card';
import { AGENT_CODES } from '@studio321/agent';

async function listed(path: string): Promise<{ size: number; mtimeMs: number }> {
  const st = await stat(path, { bigint: true });
  return { size: Number(st.size), mtimeMs: mtimeMsOf(st) };
}

t.test('bytes, refusals and codes as readCardFile gives them', async (t) => {
  const dir = t.testdir();
  const reader = new SmallCardReader();
  t.teardown(() => reader.close());
  const file = join(dir, 'IMG_0001.JPG');
  const bytes = randomBytes(10_000);
  await writeFile(file, bytes);
  const expect = await listed(file);
  const got = await reader.read(file, expect);
  t.ok(got instanceof Uint8Array, 'a Uint8Array');
  t.equal(got.byteOffset, 0, 'a buffer of its own');
  t.equal(got.buffer.byteLength, bytes.length, 'of the file size');
  t.same(Buffer.from(got), bytes, 'the exact bytes');

  const empty = join(dir, 'EMPTY.JPG');
  await writeFile(empty, '');
  t.equal((await reader.read(empty, await listed(empty))).byteLength, 0, 'an empty file: no bytes');

  const longer = await reader.read(file, { ...expect, size: expect.size + 1 }).catch((e: unknown) => e);
  t.match(longer, { name: 'AgentError', code: AGENT_CODES.sourceChanged, retryable: true, detail: { path: file } });
  t.match((longer as Error).message, /differ from the listing/);

  await writeFile(file, randomBytes(10_000));
  await utimes(file, new Date(1_700_000_000_000), new Date(1_700_000_000_000));
  t.match(await reader.read(file, expect).catch((e: unknown) => e), { code: AGENT_CODES.sourceChanged });

  const link = join(dir, 'LINK.JPG');
  await symlink(file, link);
  t.match(await reader.read(link, await listed(file)).catch((e: unknown) => e), {
    code: 'ELOOP',
    syscall: 'open',
    path: link,
  });
  await rm(file);
  t.match(await reader.read(file, expect).catch((e: unknown) => e), { code: 'ENOENT', syscall: 'open' });
});

t.test('the check after the read: a replaced inode, a changed ctime', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'A.JPG');
  await writeFile(file, 'abc');
  const st = await stat(file, { bigint: true });
  const before = openedAsListed(file, st, { size: 3, mtimeMs: mtimeMsOf(st) });
  t.doesNotThrow(() => unchangedAfter(file, before, st), 'the same stat passes');
  t.throws(() => unchangedAfter(file, before, Object.assign(Object.create(st), { ino: st.ino + 1n })), {
    code: AGENT_CODES.sourceChanged,
    message: /was replaced/,
  });
  t.throws(() => unchangedAfter(file, before, Object.assign(Object.create(st), { ctimeNs: st.ctimeNs + 1n })), {
    code: AGENT_CODES.sourceChanged,
    message: /size or times changed/,
  });
  t.throws(() => openedAsListed(file, st, { size: 3, mtimeMs: mtimeMsOf(st) + 1 }), {
    code: AGENT_CODES.sourceChanged,
  });
  const sub = join(dir, 'DIR.JPG');
  await mkdir(sub);
  const subMtime = mtimeMsOf(await stat(sub, { bigint: true }));
  t.throws(() => readSmallCardFileSync(sub, { size: 0, mtimeMs: subMtime }), {
    code: AGENT_CODES.sourceChanged,
    message: /no longer a regular file/,
  });
  t.throws(() => readSmallCardFileSync(file, { size: SMALL_FILE, mtimeMs: 0 }), TypeError);
});

t.test('a large file goes through readCardFile; an aborted read throws the reason', async (t) => {
  const dir = t.testdir();
  const reader = new SmallCardReader();
  t.teardown(() => reader.close());
  const big = join(dir, 'BIG.CR3');
  const bytes = randomBytes(SMALL_FILE + 5);
  await writeFile(big, bytes);
  t.same(Buffer.from(await reader.read(big, await listed(big))), bytes);
  const ac = new AbortController();
  const reason = new Error('stop');
  ac.abort(reason);
  t.equal(await reader.read(big, await listed(big), { signal: ac.signal }).catch((e: unknown) => e), reason);
});

t.test('many reads at once: grouped, each its own bytes, also after close()', async (t) => {
  const dir = t.testdir();
  const reader = new SmallCardReader();
  t.teardown(() => reader.close());
  const files = await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      const path = join(dir, `IMG_${i}.JPG`);
      const bytes = randomBytes(2_000 + i * 100);
      await writeFile(path, bytes);
      return { path, bytes, expect: await listed(path) };
    }),
  );
  const got = await Promise.all(files.map((f) => reader.read(f.path, f.expect)));
  t.same(
    got.map((g) => Buffer.from(g)),
    files.map((f) => f.bytes),
    'each its own bytes',
  );
  t.equal(reader.files, 40, 'all read by the worker');
  t.ok(reader.groups < 40, `in groups (${reader.groups})`);
  await reader.close();
  const again = await reader.read(files[3]!.path, files[3]!.expect);
  t.same(Buffer.from(again), files[3]!.bytes, 'read again after close');
});
