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
import { mkdir, readdir, readFile } from 'node:fs/promises';
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
