/**
 * The durable write against what needs other processes: a real full and a
 * read-only disk (tmpfs mounted with mount(8)) and an independent BLAKE3 (b3sum).
 * The in-process cases are in test/protocol/durable/durable-write.test.ts.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { durableWrite, readFileChunks } from '@studio321/protocol/durable';
import { lyingSource, testBytes } from '../../../lib/lying-source.js';
import { faultFs } from '../../../lib/fault-fs.js';
import { mountTmpfs } from '../../../lib/tmpfs.js';

const run = promisify(execFile);
const DATA = testBytes(1024 * 1024 + 123, 7); // a bit over 1 MiB: several chunks, an odd tail

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

t.test('a real full disk (tmpfs size=1m) gives DURABLE_NO_SPACE; a read-only one DURABLE_ACCESS_DENIED', async (t) => {
  const full = await mkdtemp(join(tmpdir(), 's321-full-'));
  const ro = await mkdtemp(join(tmpdir(), 's321-ro-'));
  t.teardown(() => rm(full, { recursive: true, force: true }).then(() => rm(ro, { recursive: true, force: true })));
  const big = testBytes(2 * 1024 * 1024, 5);
  const m = await mountTmpfs(t, full, 'size=1m');
  if (m.mounted) {
    await t.rejects(
      durableWrite(lyingSource({ data: big, chunkSize: 256 * 1024 }), { targets: [{ dir: full, name: 'big.mp4' }] }),
      { code: 'DURABLE_NO_SPACE', retryable: false },
    );
    t.same(await tree(full), [], 'the temp was removed from the full disk');
    const small = testBytes(1000, 6);
    const r = await durableWrite(lyingSource({ data: small }), { targets: [{ dir: full, name: 'small.xmp' }] });
    t.equal(r.size, 1000, 'space is back after the cleanup');
  } else {
    t.comment(`real full disk not available (${m.reason}); injecting ENOSPC through the fs seam instead`);
    await t.rejects(
      durableWrite(lyingSource({ data: big }), {
        targets: [{ dir: full, name: 'big.mp4' }],
        fs: faultFs({ fail: { op: 'write', code: 'ENOSPC', nth: 3 } }),
      }),
      { code: 'DURABLE_NO_SPACE' },
    );
    t.same(await tree(full), []);
  }
  const m2 = await mountTmpfs(t, ro, 'size=1m,ro');
  if (m2.mounted) {
    await t.rejects(durableWrite(lyingSource({ data: DATA }), { targets: [{ dir: ro, name: 'x' }] }), {
      code: 'DURABLE_ACCESS_DENIED',
      retryable: false,
    });
    t.same(await tree(ro), []);
  } else {
    t.comment(`read-only mount not available (${m2.reason}); injecting EROFS through the fs seam instead`);
    await t.rejects(
      durableWrite(lyingSource({ data: DATA }), {
        targets: [{ dir: ro, name: 'x' }],
        fs: faultFs({ fail: { op: 'open-wx', code: 'EROFS' } }),
      }),
      { code: 'DURABLE_ACCESS_DENIED' },
    );
    t.same(await tree(ro), []);
  }
});

t.test('a real file source via readFileChunks, independently checked with b3sum', async (t) => {
  const dir = newDir(t);
  const src = join(dir, 'card.bin');
  await writeFile(src, DATA);
  const r = await durableWrite(readFileChunks(src, { chunkSize: 256 * 1024 }), {
    targets: [{ dir: join(dir, 'out'), name: 'card.bin' }],
  });
  const b3 = await run('b3sum', ['--no-names', r.copies[0]!.path]).then(
    (o) => o.stdout.trim(),
    () => undefined,
  );
  if (b3 === undefined) t.comment('b3sum not installed: independent check skipped');
  else t.equal(b3, r.blake3, 'b3sum agrees');
});
