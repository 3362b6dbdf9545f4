/**
 * Several agents at once, and a dead link: two agents sync different cards
 * concurrently; a third agent's link goes silent (a proxy that stops forwarding
 * but keeps the sockets open) — its heartbeat notices, it reconnects, the
 * studio supersedes the half-open session and the sync completes.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CutProxy,
  dcfFiles,
  ingest,
  listFiles,
  makeAgent,
  makeCard,
  pairAgent,
  startStudiod,
  tempDir,
} from '../../lib/studio-harness.js';

t.test('two agents at once; a dead link is detected and resumed', async (t) => {
  const studio = await startStudiod(t);
  const base = await tempDir(t, 'cards-');
  const agents = await Promise.all([makeAgent(t), makeAgent(t), makeAgent(t)]);
  const proxy = new CutProxy(() => studio.port);
  await proxy.start();
  t.teardown(() => proxy.close());
  for (const [i, a] of agents.entries())
    await pairAgent(studio, a, i === 2 ? `wss://127.0.0.1:${proxy.port}/v1` : studio.url);
  const cards = agents.map((_, i) => join(base, `CARD${i}`));
  for (const [i, dir] of cards.entries()) {
    await makeCard(
      dir,
      dcfFiles(6, (k) => 200_000 + k * 150_000 + i),
    );
    await ingest(agents[i]!, dir, 'multi', `CARD${i}`);
  }
  proxy.blackholeAfter = () => (proxy.blackholes === 0 ? 1_500_000 : undefined);
  const runs = await Promise.all([
    agents[0]!.cli(['sync', '--json']),
    agents[1]!.cli(['sync', '--json']),
    agents[2]!.cli(['sync', '--json', '--ping-ms', '100', '--dead-link-ms', '600', '--backoff-ms', '20']),
  ]);
  for (const [i, r] of runs.entries()) t.equal(r.code, 0, `agent ${i} sync completes (${r.stderr.slice(0, 300)})`);
  t.equal(proxy.blackholes, 1, 'the third link went dead once');
  t.ok(proxy.connections >= 2, 'the third agent reconnected after its heartbeat noticed');
  const mirror = await listFiles(studio.dirs.mirror);
  t.equal(mirror.length, 18, 'all files of the three cards stored');
  t.same(await listFiles(studio.dirs.raid), mirror, 'raid has the same');
  for (const [i, dir] of cards.entries()) {
    for (const f of dcfFiles(6, () => 0)) {
      const rel = mirror.find((p) => p.includes(`/CARD${i}`) && p.endsWith(f.path));
      t.ok(
        rel !== undefined && (await readFile(join(dir, f.path))).equals(await readFile(join(studio.dirs.raid, rel))),
        `card ${i} ${f.path} identical`,
      );
    }
  }
});
