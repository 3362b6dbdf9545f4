/**
 * studiod is SIGKILLed mid-commit at least 20 times (right after it logs
 * "committing" for a random file) and restarted on the same port. After the
 * last restart one sync completes everything: every file byte-identical on both
 * targets, no temp file and no partial file under a final name, the catalogue
 * counts each asset once.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  dcfFiles,
  ingest,
  listFiles,
  makeAgent,
  makeCard,
  pairAgent,
  spawnPersistentSync,
  partialFiles,
  run,
  startStudiod,
  tempDir,
  waitFor,
  AGENT_BIN,
  sha256Hex,
} from '../../../lib/studio-harness.js';

const sha = sha256Hex;

t.test('studiod SIGKILLed mid-commit 20+ times', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const card = join(await tempDir(t, 'card-'), 'CARD');
  const files = dcfFiles(60, (i) => 150_000 + ((i * 7919) % 13) * 120_000);
  await makeCard(card, files);
  await ingest(agent, card, 'kills', 'CARD1');
  const bySha = new Map<string, string>();
  for (const f of files) bySha.set(sha(await readFile(join(card, f.path))), f.path);

  const KILLS = 21;
  const checked = new Set<string>();
  let kills = 0;
  // One agent sync runs through all the kills: it reconnects by itself while studiod restarts.
  const { child, exited } = spawnPersistentSync(t, agent);
  for (let i = 0; i < KILLS; i++) {
    const before = (studio.log.match(/"msg":"committing"/g) ?? []).length;
    const target = before + 1 + Math.floor(Math.random() * 2);
    const hit = await waitFor(
      () => {
        if ((studio.log.match(/"msg":"committing"/g) ?? []).length >= target) return 'kill';
        if (child.exitCode !== null) return 'done';
        return undefined;
      },
      'a commit to start',
      60_000,
    );
    if (hit === 'done') break;
    await studio.kill('SIGKILL');
    kills++;
    // Nothing half-written under a final name, even right after the kill.
    t.same(
      await partialFiles([studio.dirs.mirror, studio.dirs.raid], bySha, checked),
      [],
      `kill ${kills}: no partial file under a final name`,
    );
    await studio.restart();
  }
  await exited;
  t.ok(kills >= 20, `studiod killed mid-commit ${kills} times`);

  const final = await run(AGENT_BIN, ['sync', '--json', '--data-dir', agent.dataDir, '--backoff-ms', '10']);
  t.equal(final.code, 0, `final sync completes (${final.stderr})`);

  const mirror = await listFiles(studio.dirs.mirror);
  t.same(await listFiles(studio.dirs.raid), mirror, 'same tree on both targets');
  t.notOk(
    mirror.some((p) => p.endsWith('.s321tmp')),
    'no temp files left after restart',
  );
  t.equal(mirror.length, files.length, 'each file stored exactly once');
  for (const rel of mirror) {
    const m = sha(await readFile(join(studio.dirs.mirror, rel)));
    const r = sha(await readFile(join(studio.dirs.raid, rel)));
    t.ok(bySha.has(m) && m === r, `${rel} complete and identical on both targets`);
  }
  const st = JSON.parse((await studio.ctl(['--json', 'status'])).stdout) as {
    counters: { assets: number; copies: Record<string, { count: number }> };
  };
  t.equal(st.counters.assets, files.length, 'catalogue counts each asset once');
  t.equal(st.counters.copies['raid']?.count, files.length, 'raid copies counted once each');
});
