/**
 * The small-file path of the offload, in process on real files and a real LevelDB:
 *  - readCardFile gives a file under 256 KiB whole, in one chunk, and still refuses one whose
 *    size or time differ from the listing (AGENT_SOURCE_CHANGED);
 *  - AgentState remembers which sizes have an asset: a size looked up as "none" becomes
 *    "some" once a batch records an asset of it (the dedup check never misses a twin), and
 *    after a restart the sizes read once answer for every size;
 *  - claimNames with the group and claims its caller just read keeps a name bound to
 *    content bound, as when it reads them itself;
 *  - an offload of small files records the same bytes and hashes as the card has, with a capture
 *    day, and a file swapped for a link after the listing fails alone, with no temp left;
 *  - files read whole are written by the small writer (its groups: small-writer.test.ts); one whose read-back differs
 *    fails alone (AGENT_COPY_FAILED), with no final name and no temp, and the others count;
 *  - a store folder removed by hand during the offload is made again for the next file (the
 *    offload makes each folder once, not for every file);
 *  - a listing longer than SCAN_BATCH, written in parts, ends complete and current; listed again,
 *    its earlier records (read page by page) keep verified files verified across the pages' edges.
 */
import t from 'tap';
import { mkdir, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { SmallWriter } from '@studio321/protocol/durable';
import { readCardFile, scanCard, mtimeMsOf } from '@studio321/agent/card';
import { AgentState, SCAN_BATCH, type FileEntry } from '@studio321/agent/state';
import { offloadCard } from '@studio321/agent/offload';
import { AGENT_CODES, resolveTargets } from '@studio321/agent';
import { rottingReadBack } from '../../lib/rotting-fs.js';

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return out;
}

t.test('a small card file is read whole, once, and still checked against the listing', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'IMG_0001.JPG');
  const bytes = Buffer.alloc(10_000, 7);
  await writeFile(file, bytes);
  const st = await stat(file, { bigint: true });
  const chunks = await collect(readCardFile(file, { size: bytes.length, mtimeMs: mtimeMsOf(st) }));
  t.equal(chunks.length, 1, 'one chunk');
  t.same(Buffer.concat(chunks), bytes, 'the exact bytes');
  t.match(await collect(readCardFile(file, { size: 10_001, mtimeMs: mtimeMsOf(st) })).catch((e: unknown) => e), {
    code: AGENT_CODES.sourceChanged,
  });
  await writeFile(file, Buffer.alloc(10_000, 8));
  await utimes(file, new Date(1_700_000_000_000), new Date(1_700_000_000_000));
  t.match(await collect(readCardFile(file, { size: 10_000, mtimeMs: mtimeMsOf(st) })).catch((e: unknown) => e), {
    code: AGENT_CODES.sourceChanged,
  });
  const empty = join(dir, 'EMPTY.JPG');
  await writeFile(empty, '');
  const est = await stat(empty, { bigint: true });
  t.same(await collect(readCardFile(empty, { size: 0, mtimeMs: mtimeMsOf(est) })), [], 'an empty file gives nothing');
});

t.test('sizes with an asset: "none" turns "some" once a batch records one; claims handed in are kept', async (t) => {
  const dir = t.testdir();
  const state = await AgentState.open(join(dir, 'data'));
  t.teardown(() => state.close());
  const card = await state.beginOffload({ id: 'c1', label: 'C', kind: 'card', source: '/card', shoot: 's' });
  const [file] = await state.recordScan('c1', {
    root: '/card',
    dev: 1,
    disk: 'nodisk:1',
    files: [{ path: 'DCIM/IMG_1.JPG', size: 1234, mtimeMs: 1 }],
    warnings: [],
  });
  t.equal(await state.hasAssetOfSize(1234), false, 'none yet');
  const entry: FileEntry = {
    kind: 'verified',
    card,
    file: file!,
    blake3: 'ab'.repeat(32),
    size: 1234,
    storePath: 's/c1/DCIM/IMG_1.JPG',
    paths: { laptop: join(dir, 'IMG_1.JPG') },
    copies: [{ target: 'laptop', device: 'd', media: 'ssd', location: 'field', offsite: false, verified: true }],
    verifiedAt: new Date().toISOString(),
  };
  await state.recordFiles([entry]);
  t.equal(await state.hasAssetOfSize(1234), true, 'some, right after the batch');
  t.equal(await state.hasAssetOfSize(1235), false);

  // The name is now bound to the content; handing its claim in keeps it bound.
  const claims = await state.getClaims(['s/c1/DCIM/IMG_1.JPG', 's/c1/DCIM/IMG_2.JPG']);
  t.same(claims.get('s/c1/DCIM/IMG_1.JPG'), { card: 'c1', path: 'DCIM/IMG_1.JPG', blake3: 'ab'.repeat(32) });
  t.equal(claims.get('s/c1/DCIM/IMG_2.JPG'), undefined);
  await state.claimNames(
    'c1',
    'DCIM/IMG_1',
    1,
    [
      { storePath: 's/c1/DCIM/IMG_1.JPG', path: 'DCIM/IMG_1.JPG', blake3: 'ab'.repeat(32) },
      { storePath: 's/c1/DCIM/IMG_2.JPG', path: 'DCIM/IMG_2.JPG' },
    ],
    { day: '2026-12-05', dateSource: 'mtime' },
    { group: { record: undefined }, claims },
  );
  t.same((await state.getClaims(['s/c1/DCIM/IMG_1.JPG'])).get('s/c1/DCIM/IMG_1.JPG')?.blake3, 'ab'.repeat(32));
  t.same((await state.getClaims(['s/c1/DCIM/IMG_2.JPG'])).get('s/c1/DCIM/IMG_2.JPG'), {
    card: 'c1',
    path: 'DCIM/IMG_2.JPG',
  });
  t.same(await state.getGroup('c1', 'DCIM/IMG_1'), { k: 1, day: '2026-12-05', dateSource: 'mtime' });
  await state.close();
  const again = await AgentState.open(join(dir, 'data'));
  t.equal(await again.hasAssetOfSize(1234), true, 'and from the database after a restart');
  t.equal(await again.hasAssetOfSize(1235), false, 'a size with none, from the sizes read at the first question');
  await again.close();
});

t.test('an offload of small files: same bytes and hashes, one unreadable file fails alone', async (t) => {
  const dir = t.testdir();
  const card = join(dir, 'card');
  await mkdir(join(card, 'DCIM', '100TEST'), { recursive: true });
  const want = new Map<string, string>();
  for (let i = 1; i <= 30; i++) {
    const b = Buffer.alloc(2000 + i * 300, i);
    const rel = `DCIM/100TEST/IMG_${String(i).padStart(4, '0')}.JPG`;
    await writeFile(join(card, rel), b);
    want.set(rel, hashBytes(b));
  }
  const bad = 'DCIM/100TEST/IMG_0007.JPG';
  const scan = await scanCard(card);
  // Swapped for a link after the listing: the reader opens without following links (ELOOP).
  await rm(join(card, bad));
  await symlink(join(card, 'DCIM/100TEST/IMG_0001.JPG'), join(card, bad));
  const state = await AgentState.open(join(dir, 'data'));
  t.teardown(() => state.close());
  const { targets } = await resolveTargets(join(dir, 'data', 'store'), []);
  const r = await offloadCard(
    { state, targets },
    { root: card, card: { id: 'C-1', label: 'C', kind: 'card', source: card, shoot: 's' }, scan },
  );
  t.equal(r.copied, 29);
  t.same(
    r.failed.map((f) => f.code),
    [AGENT_CODES.unreadableFile],
  );
  for (const [rel, blake3] of want) {
    const f = await state.getFile('C-1', rel);
    if (rel === bad) {
      t.equal(f?.state, 'failed', 'the unreadable file is not verified');
      continue;
    }
    t.equal(f?.blake3, blake3, `${rel} recorded with the card's hash`);
    const a = await state.getAsset(blake3);
    t.ok(a?.names[0]?.capture?.day, 'with its date folder');
  }
  const stored = await readdir(join(dir, 'data', 'store', 's', 'C-1', 'DCIM', '100TEST'));
  t.notOk(
    stored.some((n) => n.endsWith('.s321tmp')),
    'no temp left',
  );
});

t.test('small files written in groups by the small writer: a damaged read-back fails that file alone', async (t) => {
  const dir = t.testdir();
  const card = join(dir, 'card');
  await mkdir(join(card, 'DCIM', '100TEST'), { recursive: true });
  const want = new Map<string, string>();
  for (let i = 1; i <= 20; i++) {
    const b = randomBytes(2000 + i * 300);
    const rel = `DCIM/100TEST/IMG_${String(i).padStart(4, '0')}.JPG`;
    await writeFile(join(card, rel), b);
    want.set(rel, hashBytes(b));
  }
  const bad = 'DCIM/100TEST/IMG_0007.JPG';
  // The temp of IMG_0007 reads back with one byte flipped (the disk, its cable or RAM). A facade
  // cannot be handed to the worker thread: this writer runs the worker's group code on this thread.
  const rotting = rottingReadBack('IMG_0007');
  const writer = new SmallWriter({ fs: rotting });
  const scan = await scanCard(card);
  const state = await AgentState.open(join(dir, 'data'));
  t.teardown(() => state.close());
  const { targets } = await resolveTargets(join(dir, 'data', 'store'), []);
  const r = await offloadCard(
    { state, targets, smallWriter: writer },
    { root: card, card: { id: 'C-4', label: 'C', kind: 'card', source: card, shoot: 's' }, scan },
  );
  // How many groups they formed depends on how fast the card is read against the writes (the
  // grouping itself is proven where it is deterministic: small-writer and group-worker tests).
  t.equal(writer.files, 20, 'every file went through the small writer');
  t.equal(r.copied, 19, 'the others count');
  t.same(
    r.failed.map((f) => [f.path, f.code]),
    [[bad, AGENT_CODES.copyFailed]],
  );
  for (const [rel, blake3] of want) {
    const f = await state.getFile('C-4', rel);
    if (rel === bad) t.equal(f?.state, 'failed', 'the damaged copy is not verified');
    else t.equal(f?.blake3, blake3, `${rel} recorded with the card's hash`);
  }
  const stored = await readdir(join(dir, 'data', 'store', 's', 'C-4', 'DCIM', '100TEST'));
  t.notOk(stored.includes('IMG_0007.JPG'), 'no final name for the damaged copy');
  t.notOk(
    stored.some((n) => n.endsWith('.s321tmp')),
    'no temp left',
  );
  t.equal(stored.length, 19);
});

t.test('a store folder removed by hand during the offload is made again for the next file', async (t) => {
  const dir = t.testdir();
  const card = join(dir, 'card');
  await mkdir(join(card, 'DCIM', '100TEST'), { recursive: true });
  // Over 1 MiB each, one group in flight: the files are copied one after the other.
  for (let i = 1; i <= 5; i++) await writeFile(join(card, `DCIM/100TEST/IMG_${i}.JPG`), Buffer.alloc(1_100_000, i));
  const scan = await scanCard(card);
  const state = await AgentState.open(join(dir, 'data'));
  t.teardown(() => state.close());
  const { targets } = await resolveTargets(join(dir, 'data', 'store'), []);
  const folder = join(dir, 'data', 'store', 's', 'C-3', 'DCIM', '100TEST');
  let removed = false;
  const r = await offloadCard(
    {
      state,
      targets,
      concurrency: 1,
      // The fourth file's temp is open when its source is first read: the folder goes then.
      openSource: async function* (path, expect, opts) {
        if (!removed && path.endsWith('IMG_4.JPG')) {
          removed = true;
          await rm(folder, { recursive: true });
        }
        yield* readCardFile(path, expect, opts);
      },
    },
    { root: card, card: { id: 'C-3', label: 'C', kind: 'card', source: card, shoot: 's' }, scan },
  );
  t.ok(removed);
  t.equal(r.copied, 5, 'every file copied');
  t.same(r.failed, []);
  t.same(
    (await readdir(folder)).sort(),
    ['IMG_4.JPG', 'IMG_5.JPG'],
    'the later files in the folder made again, no temp',
  );
});

t.test('a listing longer than SCAN_BATCH is recorded in parts and ends complete', async (t) => {
  const dir = t.testdir();
  const state = await AgentState.open(join(dir, 'data'));
  t.teardown(() => state.close());
  await state.beginOffload({ id: 'c2', label: 'C', kind: 'card', source: '/card', shoot: 's' });
  const n = SCAN_BATCH * 2 + 3;
  const files = Array.from({ length: n }, (_, i) => ({
    path: `DCIM/IMG_${String(i).padStart(6, '0')}.JPG`,
    size: 10,
    mtimeMs: 1,
  }));
  const todo = await state.recordScan('c2', {
    root: '/card',
    dev: 1,
    disk: 'nodisk:1',
    files,
    warnings: [{ path: 'DCIM/LINK.JPG', code: AGENT_CODES.symlinkSkipped, message: 'a link' }],
  });
  t.equal(todo.length, n, 'every file to copy');
  const card = await state.getCard('c2');
  t.match(card, { scan: 1, scanComplete: true, scanEntries: n + 1 });
  t.equal((await state.cardFiles(card!, { current: true })).length, n + 1, 'every entry in the current listing');

  // Listed again (the card re-inserted): its earlier records are read page by page. Files verified
  // on both sides of a page's edge stay verified and are not copied again; one changed since is;
  // one whose laptop copy lies in another store is copied again.
  const verify = async (i: number, laptop: string): Promise<void> => {
    const file = todo[i]!;
    await state.recordFiles([
      {
        kind: 'verified',
        card: card!,
        file,
        blake3: i.toString(16).padStart(64, '0'),
        size: file.size,
        storePath: `s/c2/${file.path}`,
        paths: { laptop: join(laptop, 's', 'c2', file.path) },
        copies: [{ target: 'laptop', device: 'd', media: 'ssd', location: 'field', offsite: false, verified: true }],
        verifiedAt: new Date().toISOString(),
      },
    ]);
  };
  const edge = [0, SCAN_BATCH - 1, SCAN_BATCH, SCAN_BATCH + 1, n - 1];
  for (const i of edge) await verify(i, '/store');
  await verify(7, '/old-store');
  const changed = files.map((f, i) => (i === SCAN_BATCH ? { ...f, size: 11 } : f));
  const again = await state.recordScan(
    'c2',
    { root: '/card', dev: 1, disk: 'nodisk:1', files: changed, warnings: [] },
    new Date(),
    '/store',
  );
  const againPaths = new Set(again.map((f) => f.path));
  t.equal(again.length, n - edge.length + 1, 'the verified files are not to copy, but the changed one is');
  for (const i of edge) t.equal(againPaths.has(files[i]!.path), i === SCAN_BATCH, `file ${i}`);
  t.ok(againPaths.has(files[7]!.path), 'a file whose laptop copy is in another store is copied again');
  t.match(await state.getFile('c2', files[SCAN_BATCH - 1]!.path), { state: 'verified', scan: 2 });
  t.match(await state.getFile('c2', files[SCAN_BATCH]!.path), { state: 'seen', scan: 2, size: 11 });
  t.match(await state.getCard('c2'), { scan: 2, scanComplete: true, scanEntries: n });
  t.same(await state.verifySummary(), [], 'the status summary equals a fresh count');
});
