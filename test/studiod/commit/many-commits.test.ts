/**
 * Many commits at once on one studio signal (20 agents syncing small files): every
 * commit completes with both copies, and no MaxListenersExceededWarning is emitted
 * (each commit waits on its own signal, aborted from one listener on the studio's).
 * An abort of the studio's signal still stops the commits in flight. Real Committer,
 * real targets and catalogue; the staged files are written here into the mirror's
 * staging folder (what Staging would have left), verified by hashing them. Files of 512 KiB so
 * the commits' read-backs overlap: before the fix the warning showed in about half the runs.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes, hashFile } from '@studio321/protocol';
import { committerFixture } from '../../lib/committer-fixture.js';
import { STAGING_DIR, type CommitInput } from '@studio321/studiod/commit';

t.test('24 concurrent commits on one signal: all committed, no listener warning', async (t) => {
  const studio = new AbortController();
  const { targets, catalogue, committer } = await committerFixture(t, { signal: studio.signal });
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(`${w.name}: ${w.message}`);
  };
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const staging = join(targets.mirror.root, STAGING_DIR);
  await mkdir(staging, { recursive: true });
  const input = async (i: number): Promise<CommitInput> => {
    const bytes = randomBytes(512 * 1024 + i);
    const hash = hashBytes(bytes);
    const path = join(staging, `f${i}`);
    await writeFile(path, bytes);
    return {
      hash,
      size: bytes.length,
      staged: { path, verify: () => hashFile(path) },
      names: [{ shoot: 's', card: 'c', path: `DCIM/IMG_${i}.JPG`, mtime: Date.UTC(2026, 10, 26) }],
      agentCopies: [],
      agentId: 'agt_test',
    };
  };
  const inputs = await Promise.all(Array.from({ length: 24 }, (_, i) => input(i)));
  const receipts = await Promise.all(inputs.map((x) => committer.commit(x)));
  t.equal(receipts.length, 24);
  t.ok(
    receipts.every((r) => r.copies.length === 2),
    'each with its mirror and RAID copy',
  );
  // Warnings are emitted on the next tick.
  await new Promise((r) => setImmediate(r));
  t.same(
    warnings.filter((w) => w.includes('MaxListeners')),
    [],
    'no MaxListenersExceededWarning',
  );
  // Still abortable from the studio's signal.
  const late = await input(99);
  studio.abort(new Error('shutdown'));
  await t.rejects(committer.commit(late), 'a commit after the abort is stopped');
  t.equal(await catalogue.getAsset(late.hash), undefined, 'and nothing of it is catalogued');
});
