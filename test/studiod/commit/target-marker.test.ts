/**
 * The target marker under concurrency: a new studio's first commits all check the
 * target at once (commit.ts checks both targets per commit). Exactly one marker is
 * written per root, every first commit sees the target as healthy, and no temp
 * file is left at the root. Looped over fresh roots: the race this guards against
 * (a second writer's stale-temp sweep deleting the first writer's live temp, or the
 * second link finding the name taken) shows within a few rounds.
 */
import t from 'tap';
import { watch } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkTarget, TARGET_MARKER } from '@studio321/studiod/commit';

t.test('many concurrent first checks of new roots: one marker each, no error, no temp left', async (t) => {
  const base = t.testdir();
  const ROUNDS = 40;
  const WRITERS = 8;
  const failures: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const root = join(base, `r${round}`);
    await mkdir(root);
    const cfg = { root, media: 'hdd-raid', location: 'calgary', device: `raid-${round}`, requireExistingRoot: true };
    const check = (): Promise<void> => checkTarget('raid', cfg, false, () => 1000 + round);
    // Half start together; the other half start the moment the first temp appears at the
    // root (a live marker write), which is when a second writer's sweep used to strike.
    const later = new Promise<Array<Promise<void>>>((resolve) => {
      const w = watch(root, (_event, name) => {
        if (typeof name === 'string' && name.endsWith('.s321tmp')) {
          w.close();
          resolve(Array.from({ length: WRITERS / 2 }, check));
        }
      });
    });
    const first = Array.from({ length: WRITERS / 2 }, check);
    await Promise.allSettled(first);
    const results = await Promise.allSettled([...first, ...(await later)]);
    for (const r of results)
      if (r.status === 'rejected')
        failures.push(`round ${round}: ${(r.reason as { code?: string }).code ?? ''} ${(r.reason as Error).message}`);
    const left = await readdir(root);
    if (left.join() !== TARGET_MARKER) failures.push(`round ${round}: root holds ${left.join(', ')}`);
    const marker = JSON.parse(await readFile(join(root, TARGET_MARKER), 'utf8')) as Record<string, unknown>;
    if (marker['target'] !== 'raid' || marker['device'] !== `raid-${round}`)
      failures.push(`round ${round}: marker ${JSON.stringify(marker)}`);
  }
  t.same(failures, [], `${ROUNDS} rounds of ${WRITERS} concurrent first commits`);
});

t.test('the marker read once is trusted while its file is the same; a marker replaced or gone is seen', async (t) => {
  const root = t.testdir();
  const cfg = { root, media: 'hdd-raid', location: 'calgary', device: 'raid-1', requireExistingRoot: true };
  await checkTarget('raid', cfg, false, () => 1000);
  await checkTarget('raid', cfg, true);
  // Another disk's marker in its place (a new file: another inode).
  const marker = join(root, TARGET_MARKER);
  const good = await readFile(marker, 'utf8');
  await writeFile(`${marker}.new`, JSON.stringify({ target: 'mirror', device: 'mirror-1', createdAt: 1 }));
  await rename(`${marker}.new`, marker);
  await t.rejects(checkTarget('raid', cfg, true), { code: 'STUDIO_TARGET_MISSING' }, 'another target is seen');
  await rm(marker);
  await t.rejects(
    checkTarget('raid', cfg, true),
    { code: 'STUDIO_TARGET_MISSING' },
    'a marker gone (empty mount point) is seen',
  );
  await writeFile(marker, good);
  await checkTarget('raid', cfg, true);
  t.same(await readdir(root), [TARGET_MARKER], 'nothing else written at the root');
});
