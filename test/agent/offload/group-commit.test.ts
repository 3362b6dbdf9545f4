/**
 * The offload's group commit (protocol/src/durable/group-commit.ts with AgentState.recordFiles) in process, on a real
 * LevelDB and real directories: files committed together share one directory fsync and
 * one synced state batch, each is recorded exactly as alone (the same asset twice in one
 * batch keeps both names), and a directory that cannot be fsync'd fails only its files,
 * with the durable write's error code, leaving them unrecorded.
 */
import t from 'tap';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentState, type FileEntry } from '@studio321/agent/state';
import { DURABLE_CODES, GroupCommit } from '@studio321/protocol/durable';

t.test('files committed together share a batch; a bad directory fails only its files', async (t) => {
  const dir = t.testdir();
  const state = await AgentState.open(join(dir, 'data'));
  t.teardown(() => state.close());
  const store = join(dir, 'store', 's', 'c1');
  await mkdir(store, { recursive: true });
  const card = await state.beginOffload({ id: 'c1', label: 'C', kind: 'card', source: '/card', shoot: 's' });
  const n = 40;
  const todo = await state.recordScan(
    'c1',
    {
      root: '/card',
      dev: 1,
      disk: 'nodisk:1',
      files: Array.from({ length: n }, (_, i) => ({ path: `DCIM/IMG_${i}.JPG`, size: 100 + (i % 10), mtimeMs: 1 })),
      warnings: [],
    },
    new Date(),
  );
  const entry = (i: number): FileEntry => {
    const file = todo[i]!;
    // Files i and i+10 have the same content: one asset with two names.
    const blake3 = (i % 10).toString(16).padStart(64, '0');
    return {
      kind: 'verified',
      card,
      file,
      blake3,
      size: file.size,
      storePath: `s/c1/IMG_${i}.JPG`,
      paths: { laptop: join(store, `IMG_${i}.JPG`) },
      copies: [{ target: 'laptop', device: 'd', media: 'ssd', location: 'field', offsite: false, verified: true }],
      verifiedAt: new Date().toISOString(),
    };
  };
  const gc = new GroupCommit<FileEntry>(async (entries) => {
    await state.recordFiles(entries);
  });
  const missing = join(dir, 'no-such-dir');
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => gc.commit(entry(i), i === 7 ? [missing] : [store])),
  );
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [[i, r.reason]] : []));
  t.equal(failed.length, 1, 'only the file in the bad directory failed');
  t.equal(failed[0]?.[0], 7);
  t.equal(
    (failed[0]?.[1] as { code?: string } | undefined)?.code,
    DURABLE_CODES.targetMissing,
    'with the durable write code',
  );
  t.equal((await state.getFile('c1', todo[7]!.path))?.state, 'seen', 'and it is not recorded');
  t.equal(gc.items, n - 1, 'the others are recorded');
  t.ok(gc.groups < n / 2, `in few batches (${gc.groups} for ${n - 1} files)`);
  for (let i = 0; i < n; i++) {
    if (i === 7) continue;
    t.equal((await state.getFile('c1', todo[i]!.path))?.state, 'verified');
  }
  const asset = await state.getAsset((3).toString(16).padStart(64, '0'));
  t.same(
    asset?.names.map((x) => x.path).sort(),
    ['DCIM/IMG_13.JPG', 'DCIM/IMG_23.JPG', 'DCIM/IMG_3.JPG', 'DCIM/IMG_33.JPG'],
    'one asset keeps every name given in the same batch',
  );
  t.equal((await state.queueDepth()).files, 10, 'each content queued once');
});
