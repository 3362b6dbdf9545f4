/**
 * `field-agent run` paired with a real studiod: the continuous sync loop drains
 * the queue by itself, its link state reaches the status page, and pause/resume
 * from the page stop and restart it (a file offloaded while paused waits, and is
 * committed after resume).
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  dcfFiles,
  ingest,
  listFiles,
  makeAgent,
  makeCard,
  pairAgent,
  startAgentRun,
  startStudiod,
  tempDir,
  waitFor,
} from '../../lib/studio-harness.js';

interface PageStatus {
  link: { state: string };
  queue: { files: number };
}

t.test('run: sync loop drains the queue, reports link state, pauses and resumes', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const cards = await tempDir(t, 'cards-');
  await makeCard(
    join(cards, 'A'),
    dcfFiles(4, (i) => 20_000 + i),
  );
  await ingest(agent, join(cards, 'A'), 'run-shoot', 'CARD-A');

  const hot = await tempDir(t, 'hot-');
  const { origin, auth, child, exited } = await startAgentRun(t, agent, { hotFolders: [hot], hotFolderStableMs: 100 });

  const status = async (): Promise<PageStatus> =>
    (await (await fetch(`${origin}/api/status`, { headers: auth })).json()) as PageStatus;

  const first = await waitFor(
    async () => {
      const s = await status();
      return s.queue.files === 0 && s.link.state === 'connected' ? s : undefined;
    },
    'the queue to drain over the link',
    60_000,
  );
  t.equal(first.link.state, 'connected', 'the page shows the studio link connected');
  t.equal(
    (await listFiles(studio.dirs.mirror)).length,
    4,
    'the four files are committed at the studio without `field-agent sync`',
  );

  const pause = await fetch(`${origin}/api/pause`, { method: 'POST', headers: auth });
  t.equal(pause.status, 204, 'pause accepted');
  await waitFor(async () => (await status()).link.state === 'paused', 'the page to show paused');

  // A tethered shot lands in the hot folder while paused: offloaded and queued, not sent.
  await writeFile(join(hot, 'TETHER_0001.CR3'), Buffer.alloc(30_000, 7));
  await waitFor(
    async () => (await status()).queue.files === 1,
    'the hot-folder file to be queued while paused',
    30_000,
  );
  t.equal((await listFiles(studio.dirs.mirror)).length, 4, 'nothing new at the studio while paused');

  const resume = await fetch(`${origin}/api/resume`, { method: 'POST', headers: auth });
  t.equal(resume.status, 204, 'resume accepted');
  await waitFor(
    async () => {
      const s = await status();
      return s.link.state === 'connected' && s.queue.files === 0;
    },
    'the link to come back and drain after resume',
    60_000,
  );
  t.equal((await listFiles(studio.dirs.mirror)).length, 5, 'the shot taken while paused is committed after resume');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit on SIGTERM');
});
