/**
 * A whole generated card goes agent → studiod over real TLS WebSocket and is
 * committed byte-identical to both targets; the agent records the receipts;
 * a second agent with the same card sends no bytes (content already there).
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
  startStudiod,
  tempDir,
  sha256Hex,
} from '../../lib/studio-harness.js';

const sha = sha256Hex;

t.test('a whole card is synced and byte-identical on mirror and raid', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);

  const card = join(await tempDir(t, 'card-'), 'CARD');
  // 24 RAWs from 0 bytes to 5 MiB (above the 2 MiB window), sidecars, and a dual-slot duplicate.
  const files = dcfFiles(24, (i) => (i === 0 ? 0 : i % 6 === 0 ? 5 * 1024 * 1024 + i : 1000 * (i + 1) * 37));
  files.push({ path: 'DCIM/100CANON/IMG_0002.XMP', size: 900 });
  await makeCard(card, files);
  const dup = await readFile(join(card, 'DCIM/100CANON/IMG_0003.CR3'));
  await makeCard(card, [{ path: 'DCIM/100CANON/IMG_9003.CR3', size: dup.length, data: dup }]);
  await ingest(agent, card, 'wedding', 'CARD1');

  const r = await agent.cli(['sync', '--json']);
  t.equal(r.code, 0, `sync exits 0 (${r.stderr})`);
  const report = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
    receipts: number;
    queue: { files: number };
    failed: unknown[];
  };
  t.equal(report.queue.files, 0, 'agent queue is empty: every receipt recorded');
  t.same(report.failed, [], 'nothing failed');

  const mirror = await listFiles(studio.dirs.mirror);
  const raid = await listFiles(studio.dirs.raid);
  t.same(mirror, raid, 'same tree on both targets');
  t.equal(mirror.length, files.length, 'one stored file per unique content (the dual-slot duplicate is stored once)');
  t.notOk(
    mirror.some((p) => p.includes('.s321tmp')),
    'no temp files left',
  );
  for (const f of files) {
    const src = await readFile(join(card, f.path));
    const rel = mirror.find((p) => p.endsWith(`/${f.path}`));
    t.ok(rel, `${f.path} stored`);
    if (rel === undefined) continue;
    t.ok(/^\d{4}-\d\d-\d\d\/wedding\/CARD1[^/]*\/DCIM\/100CANON\//.test(rel), `layout date/shoot/card/path: ${rel}`);
    for (const root of [studio.dirs.mirror, studio.dirs.raid]) {
      const got = await readFile(join(root, rel));
      t.equal(sha(got), sha(src), `${root === studio.dirs.mirror ? 'mirror' : 'raid'} ${f.path} byte-identical`);
    }
  }

  const st = await studio.ctl(['--json', 'status']);
  const status = JSON.parse(st.stdout) as { counters: { assets: number; copies: Record<string, { count: number }> } };
  t.equal(status.counters.assets, files.length, 'catalogue counts every asset');
  t.equal(status.counters.copies['mirror']?.count, files.length, 'mirror copies counted');
  t.equal(status.counters.copies['raid']?.count, files.length, 'raid copies counted');

  // A second laptop with the same card: the studio has the content, nothing is sent again.
  const agent2 = await makeAgent(t);
  await pairAgent(studio, agent2);
  await ingest(agent2, card, 'wedding', 'CARD1');
  const r2 = await agent2.cli(['sync', '--json']);
  t.equal(r2.code, 0, 'second agent sync exits 0');
  const rep2 = JSON.parse(r2.stdout.trim().split('\n').pop() ?? '{}') as {
    bytesSent: number;
    have: number;
    queue: { files: number };
  };
  t.equal(rep2.bytesSent, 0, 'no bytes sent for content the studio has');
  t.equal(rep2.have, files.length, 'every file answered as "have"');
  t.equal(rep2.queue.files, 0, 'second agent got its receipts');
  t.same(await listFiles(studio.dirs.mirror), mirror, 'targets unchanged');
});
