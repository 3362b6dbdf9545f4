/**
 * A full target: the commit fails with STUDIO_TARGET_FULL (retryable), no
 * receipt, the other target holds no final file of it, staging is kept; when
 * space returns the re-offer resumes from staging and commits. The raid root
 * is a real small tmpfs (root only; skipped with the reason elsewhere).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdir } from 'node:fs/promises';
import { hashBytes } from '@studio321/protocol';
import { listFiles, makeAgent, pairAgent, startStudiod } from '../../../lib/studio-harness.js';
import { authedClient } from '../../../lib/studio-wire.js';
import { mountTmpfs } from '../../../lib/tmpfs.js';

const run = promisify(execFile);

t.test('a full target: no receipt, resumes when space returns', async (t) => {
  const studio = await startStudiod(t);
  const m = await mountTmpfs(t, studio.dirs.raid, 'size=1m,mode=0755');
  if (!m.mounted)
    return void t.skip(
      `needs a real small file system (tmpfs, root): ${m.reason}; this case did not run`,
      () => undefined,
    );
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const c = await authedClient(studio.url, agent.dataDir);
  t.teardown(() => c.close());
  const data = randomBytes(3 * 1024 * 1024);
  const hash = hashBytes(data);
  const names = [{ shoot: 'full', card: 'CARD', path: 'DCIM/BIG.MOV', mtime: Date.UTC(2026, 10, 26) }];
  const offer = async (batchId: string): Promise<number> => {
    c.send({ t: 'offer', batchId, files: [{ hash, size: data.length, names, copies: [] }] });
    const want = await c.next('want');
    const w = want.wants[0];
    if (w === undefined) return -1;
    // Within the 2 MiB window: one 1 MiB chunk, then wait for its Ack.
    for (let off = w.offset; off < data.length; off += 1024 * 1024) {
      const end = Math.min(data.length, off + 1024 * 1024);
      c.send({ t: 'chunk', hash, offset: off, data: data.subarray(off, end) });
      while ((await c.next('ack')).offset < end) {
        /* earlier acks */
      }
    }
    c.send({ t: 'file-end', hash, size: data.length });
    return w.offset;
  };
  await offer('b1');
  const nack = await c.next('nack');
  t.match(
    nack,
    { hash, code: 'STUDIO_TARGET_FULL', retryable: true, resumeOffset: data.length },
    'full raid: Nack STUDIO_TARGET_FULL, staging kept',
  );
  t.same(await listFiles(studio.dirs.mirror), [], 'mirror holds no final file on its own');
  t.same(
    (await readdir(studio.dirs.raid)).filter((n) => n.endsWith('.s321tmp')),
    [],
    'no temp left on the full target',
  );
  t.same(await listFiles(studio.dirs.raid), [], 'nothing under a final name on the full target');

  await run('mount', ['-o', 'remount,size=16m', studio.dirs.raid]);
  t.equal(await offer('b2'), data.length, 'space back: the re-offer resumes from staging (nothing re-sent)');
  const receipt = await c.next('receipt');
  t.equal(receipt.hash, hash, 'committed');
  t.equal((await listFiles(studio.dirs.raid)).length, 1, 'raid copy present');
  t.equal((await listFiles(studio.dirs.mirror)).length, 1, 'mirror copy present');
});
