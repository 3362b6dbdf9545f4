/**
 * Every field-agent command works while `field-agent run` holds the state DB (the installed case):
 * status, ingest, report, sync, resolve and verify go through the running agent (its status page API) and
 * answer as they do without it, while the agent's own hot folder and sync loop work at the same
 * time; nothing is lost or counted twice. Then the studio goes away: offline is idle (the tray
 * logic says so, the error list does not fill with LINK_UNREACHABLE, one "not reachable since"
 * fact), and `sync` says the studio cannot be reached. Progress lines (human sizes, speed, ETA)
 * go to stderr, so `--json` stdout stays JSON lines.
 *
 * One studiod and one agent process for the whole file (it is the proof of one long-lived agent).
 */
import t from 'tap';
import { rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { summariseForTray, type LiveSnapshot } from '@studio321/agent/ui';
import {
  dcfFiles,
  listFiles,
  makeAgent,
  makeCard,
  pairAgent,
  startAgentRun,
  startStudiod,
  tempDir,
  waitFor,
} from '../../../lib/studio-harness.js';

/** A progress line: human sizes, files, speed, ETA (protocol formatProgressLine). */
const PROGRESS =
  /\d+(\.\d)? (B|KB|MB|GB) \/ \d+(\.\d)? (B|KB|MB|GB) {2}\d+\/\d+ files {2}\d+\.\d MB\/s {2}ETA \d\d:\d\d/;

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

t.test('status, ingest, sync, resolve and verify while the agent runs; then offline is idle', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const cards = await tempDir(t, 'cards-');
  const hot = await tempDir(t, 'hot-');

  // Without an agent running: ingest and sync directly, progress with human sizes on stderr.
  await makeCard(
    join(cards, 'A'),
    dcfFiles(3, (i) => 400_000 + i),
  );
  const direct = await agent.cli(['ingest', join(cards, 'A'), '--shoot', 's1', '--card-label', 'CARD-A', '--json']);
  t.equal(direct.code, 0, `direct ingest exits 0 ${direct.stderr}`);
  const directSync = await agent.cli(['sync']);
  t.equal(directSync.code, 0, `direct sync exits 0 ${directSync.stderr}`);
  t.match(directSync.stderr, PROGRESS, 'direct sync shows progress: sizes, files, speed, ETA');
  t.match(directSync.stderr, /1\.2 MB \/ 1\.2 MB {2}3\/3 files/, 'its last line: every byte and file of the queue');
  t.match(directSync.stdout, /3 file\(s\) sent \(1\.2 MB\)/, 'the summary says 1.2 MB, not a raw byte count');

  const running = await startAgentRun(t, agent, { hotFolders: [hot], hotFolderStableMs: 100 });
  const { child, exited, auth } = running;
  const { origin } = running;
  const page = async (): Promise<LiveSnapshot> =>
    (await (await fetch(`${origin}/api/status`, { headers: auth })).json()) as LiveSnapshot;

  const status = await agent.cli(['status', '--json']);
  t.equal(status.code, 0, `status works while the agent runs ${status.stderr}`);
  t.notMatch(status.stderr, /AGENT_STATE_LOCKED/, 'no lock error');
  const listed = jsonLines(status.stdout)[0] as { cards: Array<{ label: string }>; queue: { files: number } };
  t.match(
    listed.cards.find((c) => c.label === 'CARD-A'),
    { files: 3, atStudioFiles: 3 },
    'the card, as without the agent',
  );
  t.equal(listed.queue.files, 0, 'nothing queued');

  // Ingest through the running agent while its hot folder offloads tethered shots.
  // A zero-byte file is kept with a warning to review (resolved below).
  await makeCard(join(cards, 'B'), [
    ...dcfFiles(4, (i) => 300_000 + i),
    { path: 'DCIM/100CANON/IMG_9999.CR3', size: 0 },
  ]);
  const shots = 2;
  // Each shot appears whole (written as .part, then renamed, as tether software does): a shot seen
  // at 0 bytes for the 100 ms stability window of this test (a loaded host) would be taken as an
  // empty file, and card B's empty file then counted a duplicate of it.
  const tethered = Promise.all(
    Array.from({ length: shots }, async (_, i) => {
      const final = join(hot, `TETHER_${i}.CR3`);
      await writeFile(`${final}.part`, Buffer.alloc(50_000 + i, i + 1));
      await rename(`${final}.part`, final);
    }),
  );
  const ing = await agent.cli(['ingest', join(cards, 'B'), '--shoot', 's1', '--card-label', 'CARD-B', '--json']);
  await tethered;
  t.equal(ing.code, 0, `ingest through the running agent exits 0 ${ing.stderr}`);
  const events = jsonLines(ing.stdout);
  t.equal(events.filter((e) => e['event'] === 'file').length, 5, 'one file event per file, as the direct ingest');
  t.match(events.at(-1), {
    event: 'done',
    ok: true,
    label: 'CARD-B',
    files: 5,
    copied: 5,
    safeToFormat: { safe: false, unresolvedWarnings: 1 },
  });
  t.match(ing.stderr, PROGRESS, 'its progress is streamed back: sizes, files, speed, ETA');
  t.match(running.log(), /"event":"ingest"/, 'the agent did the offload');

  // The offload report, built by the running agent (it holds the state DB), formatted by the CLI.
  const report = await agent.cli(['report', 'CARD-B', '--csv']);
  t.equal(report.code, 0, `report works while the agent runs ${report.stderr}`);
  t.equal(report.stdout.trim().split('\n').length, 1 + 5, 'the CSV: a header and one row per file');
  t.match(report.stdout, /DCIM\/100CANON\/IMG_9999\.CR3/, 'names the files of the card');
  const noCard = await agent.cli(['report', 'CARD-Z']);
  t.match(noCard.stderr, /AGENT_UNKNOWN_CARD/, 'an unknown card: the coded error from the running agent');

  // Resolve by label, through the agent; an unknown or ambiguous label is a coded error.
  const resolved = await agent.cli(['resolve', 'CARD-B', '--json']);
  t.equal(resolved.code, 0, `resolve by label works while the agent runs ${resolved.stderr}`);
  t.match(jsonLines(resolved.stdout)[0], { label: 'CARD-B', resolved: 1 });
  const unknown = await agent.cli(['resolve', 'CARD-Z']);
  t.equal(unknown.code, 1, 'unknown label: exit 1');
  t.match(unknown.stderr, /AGENT_UNKNOWN_CARD/, 'unknown label: AGENT_UNKNOWN_CARD');
  await makeCard(
    join(cards, 'B2'),
    dcfFiles(1, () => 1000),
  );
  const second = await agent.cli(['ingest', join(cards, 'B2'), '--shoot', 's1', '--card-label', 'CARD-B']);
  t.equal(second.code, 0, 'a second card labelled CARD-B');
  const ambiguous = await agent.cli(['resolve', 'CARD-B']);
  t.equal(ambiguous.code, 1, 'ambiguous label: exit 1');
  t.match(ambiguous.stderr, /AGENT_CARD_AMBIGUOUS/, 'ambiguous label: AGENT_CARD_AMBIGUOUS');

  // Sync through the agent while its own loop syncs: everything at the studio once.
  await waitFor(
    async () => (await page()).cards.find((c) => c.label === basename(hot))?.verifiedFiles === shots,
    'the tethered shots to be offloaded',
  );
  const sync = await agent.cli(['sync', '--json']);
  t.equal(sync.code, 0, `sync through the running agent exits 0 ${sync.stderr}`);
  t.match(jsonLines(sync.stdout)[0], { event: 'sync', failed: [], queue: { files: 0 } });
  t.match(sync.stderr, PROGRESS, 'sync progress is streamed back');
  const total = 3 + 5 + 1 + shots;
  t.equal((await listFiles(studio.dirs.mirror)).length, total, 'every file at the studio once (mirror)');
  t.equal((await listFiles(studio.dirs.raid)).length, total, 'every file at the studio once (raid)');
  const verify = await agent.cli(['verify', '--json']);
  t.equal(verify.code, 0, `verify through the running agent exits 0 ${verify.stderr}`);
  t.match(jsonLines(verify.stdout)[0], { event: 'verify', assets: total, copiesOk: total, lost: [] });
  t.match(verify.stderr, PROGRESS, 'verify progress is streamed back');

  // The studio goes away: offline is idle, not an error.
  await studio.kill();
  await makeCard(
    join(cards, 'C'),
    dcfFiles(2, (i) => 2000 + i),
  );
  // Renamed at ingest by the running agent (the template travels with the request).
  const renamed = await agent.cli(['ingest', join(cards, 'C'), '--card-label', 'CARD-C', '--rename', '{card}_{seq:3}']);
  t.equal(renamed.code, 0, `offload goes on ${renamed.stderr}`);
  t.same(
    (await listFiles(join(agent.dataDir, 'store')))
      .filter((p) => p.includes('/CARD-C_'))
      .map((p) => basename(p))
      .sort(),
    ['CARD-C_001.CR3', 'CARD-C_002.CR3'],
    'renamed by the template given on the command line',
  );
  for (let i = 0; i < 2; i++) {
    const off = await agent.cli(['sync']);
    t.equal(off.code, 1, `sync with the studio down exits 1 (attempt ${i + 1})`);
    t.match(off.stderr, /LINK_UNREACHABLE: The studio is not reachable \(since /, 'says since when');
  }
  const snap = await waitFor(async () => {
    const s = await page();
    return s.link.state === 'offline' && s.link.offlineSince !== undefined ? s : undefined;
  }, 'the page to show the studio offline');
  t.equal(snap.queue.files, 2, 'the new card waits for the studio');
  t.same(
    snap.errors.filter((e) => e.code.startsWith('LINK_')),
    [],
    'the error list does not fill with LINK_ errors',
  );
  const tray = summariseForTray(snap);
  t.equal(tray.state, 'idle', `the tray is idle, not "Needs attention": ${tray.summary}`);
  t.equal(
    running.log().match(/"event":"studio-offline"/g)?.length,
    1,
    'one "studio not reachable since" line in the log',
  );

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit on SIGTERM');
  const after = await agent.cli(['status', '--json']);
  const st = jsonLines(after.stdout)[0] as { cards: Array<{ files: number; atStudioFiles: number }> };
  t.equal(
    st.cards.reduce((n, c) => n + c.atStudioFiles, 0),
    total,
    'the state counts each file at the studio once',
  );
  t.equal((await listFiles(join(agent.dataDir, 'store'))).length, total + 2, 'the laptop store holds each file once');
});
