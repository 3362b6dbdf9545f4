/**
 * The link is cut at random points (a real TCP proxy between agent and studiod
 * destroys both sockets after a random number of agent bytes), at least 20
 * times; the agent reconnects and resumes from the studio's durable offset.
 * Afterwards everything is committed byte-identical, no temp or partial file
 * is under a final name, and the bytes re-sent after any cut stay below one window.
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

const WINDOW = 2 * 1024 * 1024; // studio-harness config windowBytes

t.test('resume after 20+ random link cuts', async (t) => {
  const studio = await startStudiod(t);
  const proxy = new CutProxy(() => studio.port);
  await proxy.start();
  t.teardown(() => proxy.close());
  const agent = await makeAgent(t);
  await pairAgent(studio, agent, `wss://127.0.0.1:${proxy.port}/v1`);

  const card = join(await tempDir(t, 'card-'), 'CARD');
  const files = dcfFiles(12, (i) => 300_000 + i * 300_000);
  await makeCard(card, files);
  await ingest(agent, card, 'cuts', 'CARD1');

  const CUTS = 22;
  // Cut points from inside the TLS handshake to several MB into the transfer.
  proxy.cutAfter = () => (proxy.cuts < CUTS ? 500 + Math.floor(Math.random() * 1200 * 1024) : undefined);
  let report:
    | {
        receipts: number;
        maxResentOnResume: number;
        bytesResent: number;
        connections: number;
        queue: { files: number };
      }
    | undefined;
  // Every run's figures count, not only the last run's (the cuts mostly land in the first runs).
  let maxResent = 0;
  let totalResent = 0;
  for (let attempt = 0; attempt < 10 && report?.queue.files !== 0; attempt++) {
    const r = await agent.cli(['sync', '--json', '--backoff-ms', '10', '--max-attempts', '100']);
    const last = r.stdout.trim().split('\n').pop() ?? '';
    if (last.startsWith('{"event":"sync"')) {
      report = JSON.parse(last) as typeof report;
      maxResent = Math.max(maxResent, report?.maxResentOnResume ?? 0);
      totalResent += report?.bytesResent ?? 0;
    }
    t.comment(`sync run ${attempt}: exit ${r.code}, cuts so far ${proxy.cuts}, re-sent so far ${totalResent} bytes`);
  }
  t.ok(proxy.cuts >= 20, `link cut ${proxy.cuts} times`);
  t.equal(report?.queue.files, 0, 'agent queue empty: every file receipted');
  // Only bytes in flight (at most one window, never acknowledged) can be lost in a cut.
  t.ok(
    report !== undefined && maxResent <= WINDOW,
    `bytes re-sent after any cut (max ${maxResent}, total ${totalResent}) within one window (${WINDOW})`,
  );

  const mirror = await listFiles(studio.dirs.mirror);
  t.same(await listFiles(studio.dirs.raid), mirror, 'same tree on both targets');
  t.equal(mirror.length, files.length, 'every file stored once, nothing extra');
  for (const f of files) {
    const rel = mirror.find((p) => p.endsWith(`/${f.path}`));
    t.ok(rel, `${f.path} stored`);
    if (rel === undefined) continue;
    const src = await readFile(join(card, f.path));
    t.ok(src.equals(await readFile(join(studio.dirs.mirror, rel))), `mirror ${f.path} identical`);
    t.ok(src.equals(await readFile(join(studio.dirs.raid, rel))), `raid ${f.path} identical`);
  }
  t.same(await listFiles(studio.stagingDir), [], 'staging empty after commit');
});
