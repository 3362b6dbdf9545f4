/**
 * studiod SIGKILLed while many small files commit together (the catalogue's group commit:
 * one fsync per folder and one synced batch for the commits ready at the same moment), at
 * random points in a loop: right after a random number of further "committing" or
 * "committed" lines, so some kills land between a group's folder fsyncs and its batch, some
 * after the batch and before the Receipts went out. After each kill, before the restart:
 * no partial file under a final name on either target. At the end: every file that studiod
 * logged "committed" (its Receipt may have reached the agent) before any kill is in the
 * catalogue with both copies, byte-identical on both targets; every file stored once.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Catalogue } from '@studio321/studiod';
import {
  AGENT_BIN,
  dcfFiles,
  ingest,
  listFiles,
  makeAgent,
  makeCard,
  pairAgent,
  spawnPersistentSync,
  partialFiles,
  run,
  sha256Hex,
  startStudiod,
  tempDir,
  waitFor,
} from '../../../lib/studio-harness.js';

const FILES = 120;
const KILLS = 4;

/** Hashes of the files studiod logged as committed (catalogue batch durable) in `log`. */
function committedIn(log: string): string[] {
  return [...log.matchAll(/"msg":"committed"[^\n]*"hash":"([0-9a-f]{64})"/g)].map((m) => m[1] as string);
}

t.test('studiod SIGKILLed in the middle of group commits of small files', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const card = join(await tempDir(t, 'card-'), 'CARD');
  const files = dcfFiles(FILES, (i) => 2048 + ((i * 7919) % (18 * 1024)));
  await makeCard(card, files);
  const t0 = performance.now();
  const at = (what: string): void => t.comment(`${what} at ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await ingest(agent, card, 'group', 'CARD1');
  at('ingested');
  const bySha = new Map<string, string>();
  for (const f of files) bySha.set(sha256Hex(await readFile(join(card, f.path))), f.path);

  const receipted = new Set<string>();
  const checked = new Set<string>();
  let kills = 0;
  const { child, exited } = spawnPersistentSync(t, agent);
  const count = (what: string): number => (studio.log.match(new RegExp(`"msg":"${what}"`, 'g')) ?? []).length;
  for (let i = 0; i < KILLS; i++) {
    const what = Math.random() < 0.5 ? 'committing' : 'committed';
    const target = count(what) + 1 + Math.floor(Math.random() * 30);
    const hit = await waitFor(
      () => {
        if (count(what) >= target) return 'kill';
        if (child.exitCode !== null) return 'done';
        return undefined;
      },
      'commits to go on',
      60_000,
    );
    if (hit === 'done') break;
    await studio.kill('SIGKILL');
    kills++;
    for (const h of committedIn(studio.log)) receipted.add(h);
    t.same(
      await partialFiles([studio.dirs.mirror, studio.dirs.raid], bySha, checked),
      [],
      `kill ${kills} (after a ${what} line): no partial file under a final name`,
    );
    await studio.restart();
    at(`restarted after kill ${kills}`);
  }
  await exited;
  at('sync done');
  t.ok(kills >= 2, `studiod killed during the group commits ${kills} times`);
  t.ok(receipted.size > 0, `${receipted.size} files committed before a kill`);

  const final = await run(AGENT_BIN, ['sync', '--json', '--data-dir', agent.dataDir, '--backoff-ms', '10']);
  t.equal(final.code, 0, `final sync completes (${final.stderr})`);
  const mirror = await listFiles(studio.dirs.mirror);
  t.same(await listFiles(studio.dirs.raid), mirror, 'same tree on both targets');
  t.notOk(
    mirror.some((p) => p.endsWith('.s321tmp')),
    'no temp files left',
  );
  t.equal(mirror.length, FILES, 'each file stored exactly once');
  at('final sync done');
  await studio.kill('SIGKILL'); // the catalogue is read as a crash leaves it

  const catalogue = new Catalogue(join(studio.dirs.state, 'catalogue'));
  await catalogue.open();
  t.teardown(() => catalogue.close());
  let missing = 0;
  for (const hash of receipted) {
    const copies = (await catalogue.copiesOf(hash)).filter((c) => c.kind === 'studio');
    const ok =
      (await catalogue.getAsset(hash)) !== undefined &&
      copies.length === 2 &&
      (await Promise.all(
        copies.map(async (c) => {
          const root = c.target === 'mirror' ? studio.dirs.mirror : studio.dirs.raid;
          return bySha.has(sha256Hex(await readFile(join(root, c.path))));
        }),
      ).then((r) => r.every(Boolean)));
    if (!ok) {
      missing++;
      t.comment(`committed before a kill, not intact in the catalogue and on both targets: ${hash}`);
    }
  }
  t.equal(missing, 0, 'nothing committed (and perhaps Receipted) before a kill is missing after the restarts');
  t.equal(catalogue.counters().assets, FILES, 'the catalogue counts each asset once');
});
