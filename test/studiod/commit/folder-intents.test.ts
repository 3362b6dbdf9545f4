/**
 * The commit intents of folders (studiod/src/commit/folder-intents.ts) on a real LevelDB
 * catalogue: the first commit into a folder writes its `intent!<folder>` record, the others
 * find it durable and write nothing; it stays while any commit holds the folder and goes with
 * the batch of the commit that leaves it idle; a commit that takes the folder again while that
 * delete is queued puts it back after it (the record is there once both are written); a commit
 * that fails or whose batch fails leaves no record behind; a closed catalogue leaks no hold.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Catalogue } from '@studio321/studiod';
import { FolderIntents } from '@studio321/studiod/commit';

async function open(t: Test): Promise<Catalogue> {
  const cat = new Catalogue(join(t.testdir(), 'catalogue'));
  await cat.open();
  t.teardown(() => cat.close());
  return cat;
}

const ids = async (cat: Catalogue): Promise<string[]> => (await cat.intents()).map((i) => i.id).sort();

t.test('a folder record: written once, kept while held, deleted by the last commit out', async (t) => {
  const cat = await open(t);
  const fi = new FolderIntents(cat, () => 5);
  const folders = ['/srv/mirror/d', '/srv/raid/d'];
  const b0 = cat.groupStats.batches;
  await Promise.all([fi.acquire(folders), fi.acquire(folders)]);
  t.same(await ids(cat), folders, 'one record per folder');
  t.same((await cat.intents())[0], { id: '/srv/mirror/d', dirs: ['/srv/mirror/d'], startedAt: 5 }, 'naming its folder');
  t.equal(cat.groupStats.batches - b0, 1, 'one synced batch for both commits');
  const b1 = cat.groupStats.batches;
  await fi.acquire(folders);
  t.equal(cat.groupStats.batches, b1, 'a folder already durable: no write');
  t.same(fi.release(folders), [], 'still held by two');
  t.same(fi.release(folders), [], 'still held by one');
  const idle = fi.release(folders);
  t.same(idle, folders, 'the last commit out leaves both idle');
  await cat.clearIntents(idle);
  t.same(await ids(cat), [], 'deleted with its batch');
});

t.test('taken again while its delete is queued: the put comes after it and wins', async (t) => {
  const cat = await open(t);
  const fi = new FolderIntents(cat);
  const folders = ['/m/a', '/r/a'];
  await fi.acquire(folders);
  const idle = fi.release(folders);
  // The delete and the next commit's put queued in the same turn, in that order.
  const cleared = cat.clearIntents(idle);
  const again = fi.acquire(folders);
  await Promise.all([cleared, again]);
  t.same(await ids(cat), folders, 'the record is there for the commit holding the folder');
  await fi.releaseAndClear(folders);
  t.same(await ids(cat), [], 'and goes when it is released');
});

t.test('released after a failure: a folder still held by another commit keeps its record', async (t) => {
  const cat = await open(t);
  const fi = new FolderIntents(cat);
  await fi.acquire(['/m/x', '/r/x']);
  await fi.acquire(['/m/x', '/r/y']);
  await fi.releaseAndClear(['/m/x', '/r/x']);
  t.same(await ids(cat), ['/m/x', '/r/y'], 'only the idle folder lost its record');
  await fi.clearIdle(['/m/x']);
  t.same(await ids(cat), ['/m/x', '/r/y'], 'clearIdle leaves a held folder alone');
  await fi.releaseAndClear(['/m/x', '/r/y']);
  t.same(await ids(cat), [], 'none left');
});

t.test('a closed catalogue: the acquire fails and holds nothing', async (t) => {
  const cat = new Catalogue(join(t.testdir(), 'catalogue'));
  await cat.open();
  await cat.close();
  const fi = new FolderIntents(cat);
  await t.rejects(fi.acquire(['/m/z']), TypeError, 'refused');
  t.same(fi.release(['/m/z']), [], 'no hold was left to release');
});

t.test('released while the catalogue closes: the commit keeps its own error', async (t) => {
  const cat = new Catalogue(join(t.testdir(), 'catalogue'));
  await cat.open();
  const fi = new FolderIntents(cat);
  await fi.acquire(['/m/w']);
  await cat.close();
  await t.resolves(fi.releaseAndClear(['/m/w']), 'no error of its own (the record is swept at the next start)');
  t.same(fi.release(['/m/w']), [], 'released');
});

t.test('a folder record does not wait behind the group: written while the write chain is held', async (t) => {
  const cat = await open(t);
  const fi = new FolderIntents(cat);
  let release!: () => void;
  const held = cat.exclusive(
    () =>
      new Promise<void>((r) => {
        release = r;
      }),
  );
  // A commit's record queued in the group behind the held chain, then a first commit into new folders.
  let clearedDone = false;
  const cleared = cat.clearIntents(['/m/old']).then(() => {
    clearedDone = true;
  });
  await fi.acquire(['/m/new', '/r/new']);
  t.same(await ids(cat), ['/m/new', '/r/new'], 'durable while the chain is held');
  t.notOk(clearedDone, 'the group still waits for the chain');
  // A folder whose delete is queued in the held group: its put goes after that delete, in the group.
  const idle = fi.release(['/m/new', '/r/new']);
  t.same(idle, ['/m/new', '/r/new'], 'idle now');
  const deleted = cat.clearIntents(idle);
  let againDone = false;
  const again = fi.acquire(['/m/new', '/r/new']).then(() => {
    againDone = true;
  });
  await new Promise((r) => setImmediate(r));
  t.notOk(againDone, 'behind a queued delete: not written on its own');
  release();
  await Promise.all([held, cleared, deleted, again]);
  t.same(await ids(cat), ['/m/new', '/r/new'], 'the put came after the delete and won');
  await fi.releaseAndClear(['/m/new', '/r/new']);
  t.same(await ids(cat), [], 'and goes when it is released');
});
