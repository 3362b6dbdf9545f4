/**
 * The field drive back-fill: a card offloaded while the field drive was not
 * connected gets its drive copies once the drive is back, verified against the
 * ledger's BLAKE3, and only then becomes safe to format. Real CLI processes,
 * real LevelDB; the laptop store and the field drive on two loop devices (ext4,
 * test/lib/loop-disk.ts; the card folders on this disk), so each is a physical disk of its own. The runner test drives `field-agent run`'s code
 * (AgentRunner) with a listed-volume stub, since no drive can be plugged in here.
 */
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTestCard, type CardFile } from '../../../../scripts/dist/make-test-card.js';
import { AgentState } from '@studio321/agent/state';
import { AgentRunner } from '@studio321/agent';
import { summariseCard } from '@studio321/agent/state';
import { suffixedPath } from '@studio321/agent/offload';
import { backfillFieldDrive } from '@studio321/agent/offload';
import { offloadCard } from '@studio321/agent/offload';
import { scanCard } from '@studio321/agent/card';
import { resolveTargets } from '@studio321/agent';
import { createLogger } from '@studio321/protocol';
import { resolvePaths } from '@studio321/agent';
import { loadAgentConfig } from '@studio321/agent';
import { AGENT_BIN, runAgentCli, jsonLines, listFiles, diskDirs, waitFor } from '../../../lib/agent-harness.js';
import { rotByte } from '../../../lib/bit-rot.js';
import type { Volume, VolumeSource } from '@studio321/agent/card';

const b3 = (path: string): string => execFileSync('b3sum', ['--no-names', path]).toString().trim();

interface Setup {
  base: string;
  drive: string;
  data: string;
  store: string;
  config: string;
  cardA: string;
  cardB: string;
  filesA: CardFile[];
  filesB: CardFile[];
}

/** The setup, or why it cannot be made here (no loop devices). */
async function setup(t: { teardown: (fn: () => unknown) => void }): Promise<Setup | string> {
  // Card folder, laptop store and field drive on three disks (a copy on the card's own disk does not count).
  const m = await diskDirs(t, { fd: 64, laptop: 64 });
  if ('reason' in m) return m.reason;
  const base = m.base;
  const drive = join(m.dirs['fd'] as string, 'studio321');
  const store = join(m.dirs['laptop'] as string, 'store');
  const data = join(base, 'data');
  const config = join(base, 'agent.json');
  await writeFile(config, JSON.stringify({ store, fieldDrive: drive, watchVolumes: false }));
  const cardA = join(base, 'cardA');
  const cardB = join(base, 'cardB');
  const filesA = await makeTestCard(cardA, { rawSize: 96 * 1024, seed: 11 });
  const filesB = await makeTestCard(cardB, { rawSize: 64 * 1024, seed: 12 });
  return { base, drive, data, store, config, cardA, cardB, filesA, filesB };
}

async function cardSafe(data: string, label: string): Promise<{ safe: boolean; reason: string }> {
  const r = await runAgentCli(['status', '--json', '--data-dir', data]);
  const st = JSON.parse(r.stdout) as { cards: Array<{ id: string; safeToFormat: { safe: boolean; reason: string } }> };
  const c = st.cards.find((x) => x.id.startsWith(label));
  if (c === undefined) throw new Error(`no card ${label} in status`);
  return c.safeToFormat;
}

t.test(
  'a card offloaded without the field drive gets its drive copies when the drive is back, then is safe to format',
  async (t) => {
    const s = await setup(t);
    if (typeof s === 'string')
      return void t.skip(`no loop devices here (${s}): this case did not run`, () => undefined);
    // 1. The drive is not connected (its folder is missing): laptop only, not safe.
    const first = await runAgentCli([
      'ingest',
      s.cardA,
      '--data-dir',
      s.data,
      '--config',
      s.config,
      '--shoot',
      'w',
      '--json',
    ]);
    t.equal(first.code, 0, first.stderr);
    t.match(first.stderr, /AGENT_FIELD_DRIVE_MISSING/);
    const a = jsonLines(first.stdout).find((l) => l['event'] === 'done') as { card: string; copied: number };
    t.equal(a.copied, s.filesA.length);
    t.notOk(
      jsonLines(first.stdout).some((l) => l['event'] === 'backfill'),
      'nothing to back-fill without the drive',
    );
    t.equal((await cardSafe(s.data, 'cardA')).safe, false, 'one device only');
    const fieldDriveStatus = async (): Promise<{
      json: { connected: boolean; waitingFiles: number; waitingBytes: number };
      text: string;
    }> => {
      const j = await runAgentCli(['status', '--json', '--data-dir', s.data, '--config', s.config]);
      const txt = await runAgentCli(['status', '--data-dir', s.data, '--config', s.config]);
      return {
        json: (
          JSON.parse(j.stdout) as { fieldDrive: { connected: boolean; waitingFiles: number; waitingBytes: number } }
        ).fieldDrive,
        text: txt.stdout,
      };
    };
    const before = await fieldDriveStatus();
    t.same(
      before.json,
      {
        target: 'field-drive',
        path: s.drive,
        connected: false,
        waitingFiles: s.filesA.length,
        waitingBytes: s.filesA.reduce((n, f) => n + f.size, 0),
      },
      'status: not connected, every file waits',
    );
    t.match(
      before.text,
      new RegExp(
        `Field drive .*: NOT connected; ${s.filesA.length} files \\(.*\\) wait for their copy there, made when it is connected`,
      ),
    );

    // 2. The drive is back: the next ingest (another card) copies card A's files onto it.
    await mkdir(s.drive);
    const second = await runAgentCli([
      'ingest',
      s.cardB,
      '--data-dir',
      s.data,
      '--config',
      s.config,
      '--shoot',
      'w',
      '--json',
    ]);
    t.equal(second.code, 0, second.stderr);
    const bf = jsonLines(second.stdout).find((l) => l['event'] === 'backfill') as
      | { missing: number; copied: number; failed: unknown[] }
      | undefined;
    t.ok(bf, 'a backfill event');
    t.equal(bf?.missing, s.filesA.length, 'card B went to both targets directly; only card A was missing');
    t.equal(bf?.copied, s.filesA.length);
    t.same(bf?.failed, []);
    // Every card-A file is on the drive, under the same store path as on the laptop, with the source's BLAKE3.
    const onDrive = new Set(await listFiles(s.drive));
    for (const f of s.filesA) {
      const rel = join('w', a.card, f.path);
      t.ok(onDrive.has(rel), `${rel} on the drive`);
      t.equal(b3(join(s.drive, rel)), b3(join(s.cardA, f.path)), `${f.path}: drive copy has the card's BLAKE3`);
    }
    t.notOk(
      [...onDrive].some((p) => p.endsWith('.s321tmp')),
      'no temp left on the drive',
    );
    const safeA = await cardSafe(s.data, 'cardA');
    t.equal(safeA.safe, true, safeA.reason);
    t.equal((await cardSafe(s.data, 'cardB')).safe, true);

    const after = await fieldDriveStatus();
    t.same(
      { connected: after.json.connected, waitingFiles: after.json.waitingFiles },
      { connected: true, waitingFiles: 0 },
    );
    t.match(after.text, /Field drive .*: connected; every file has its copy there/);

    // 3. Nothing more to do the next time.
    const third = await runAgentCli([
      'ingest',
      s.cardB,
      '--data-dir',
      s.data,
      '--config',
      s.config,
      '--shoot',
      'w',
      '--json',
    ]);
    t.equal(third.code, 0, third.stderr);
    t.notOk(jsonLines(third.stdout).some((l) => l['event'] === 'backfill'));
  },
);

t.test(
  'a damaged laptop copy is not copied onward and stops counting; a different file on the drive is never overwritten',
  async (t) => {
    const s = await setup(t);
    if (typeof s === 'string')
      return void t.skip(`no loop devices here (${s}): this case did not run`, () => undefined);
    const first = await runAgentCli([
      'ingest',
      s.cardA,
      '--data-dir',
      s.data,
      '--config',
      s.config,
      '--shoot',
      'w',
      '--json',
    ]);
    t.equal(first.code, 0, first.stderr);
    const a = jsonLines(first.stdout).find((l) => l['event'] === 'done') as { card: string };
    const [rotted, squatted] = s.filesA.filter((f) => f.size > 0);
    if (rotted === undefined || squatted === undefined) throw new Error('test card too small');
    // The laptop copy of one file rots (one byte flipped in place).
    const rottedLaptop = join(s.store, 'w', a.card, rotted.path);
    await rotByte(rottedLaptop, 0, 0xff);
    const bytes = await readFile(rottedLaptop);
    // Someone put another file where the drive copy of a second one goes.
    await mkdir(s.drive);
    const squatPath = join(s.drive, 'w', a.card, squatted.path);
    await mkdir(join(squatPath, '..'), { recursive: true });
    await writeFile(squatPath, 'not the photo');

    const second = await runAgentCli([
      'ingest',
      s.cardB,
      '--data-dir',
      s.data,
      '--config',
      s.config,
      '--shoot',
      'w',
      '--json',
    ]);
    t.equal(second.code, 0, 'the card being ingested is fine; the back-fill problems are reported');
    const bf = jsonLines(second.stdout).find((l) => l['event'] === 'backfill') as {
      missing: number;
      copied: number;
      failed: Array<{ code: string; storePath: string }>;
    };
    t.equal(bf.missing, s.filesA.length);
    t.equal(bf.copied, s.filesA.length - 2);
    t.same(bf.failed.map((f) => f.code).sort(), ['AGENT_COPY_FAILED', 'AGENT_STORE_COPY_DAMAGED']);
    t.match(second.stderr, /AGENT_STORE_COPY_DAMAGED: The laptop copy .* no longer counts as a copy/);
    t.match(second.stderr, /AGENT_COPY_FAILED: .* already holds a different file; it was left untouched/);
    // Nothing wrong or partial on the drive.
    const onDrive = await listFiles(s.drive);
    t.notOk(onDrive.includes(join('w', a.card, rotted.path)), 'the rotted bytes were not copied');
    t.notOk(
      onDrive.some((p) => p.endsWith('.s321tmp')),
      'no temp left',
    );
    t.equal(await readFile(squatPath, 'utf8'), 'not the photo', 'the other file is untouched');
    // The ledger no longer counts the rotted laptop copy: the card is not safe.
    let state = await AgentState.open(s.data);
    const assets = await state.assetsMissingCopy('laptop');
    t.equal(assets.length, 1, 'exactly the rotted asset has no verified laptop copy');
    t.equal(assets[0]?.storePath, join('w', a.card, rotted.path));
    let card = (await state.listCards()).find((c) => c.id === a.card);
    let sum = await summariseCard(state, card!, 2);
    t.equal(sum.safeToFormat.safe, false);
    t.equal(sum.safeToFormat.short, 2, 'the rotted file (no copy left) and the squatted one (laptop only)');
    await state.close();

    // The card was not formatted (it was not safe): ingesting it again copies the rotted file
    // again from the card, under a new name; the damaged file is left as it is.
    const again = await runAgentCli([
      'ingest',
      s.cardA,
      '--data-dir',
      s.data,
      '--config',
      s.config,
      '--shoot',
      'w',
      '--json',
    ]);
    t.equal(again.code, 0, again.stderr);
    const done = jsonLines(again.stdout).find((l) => l['event'] === 'done') as {
      copied: number;
      alreadyVerified: number;
    };
    t.same(
      { copied: done.copied, alreadyVerified: done.alreadyVerified },
      { copied: 1, alreadyVerified: s.filesA.length - 1 },
    );
    const repaired = join('w', a.card, suffixedPath(rotted.path, 2));
    t.equal(b3(join(s.store, repaired)), b3(join(s.cardA, rotted.path)), "the new laptop copy has the card's BLAKE3");
    t.equal(b3(join(s.drive, repaired)), b3(join(s.cardA, rotted.path)), 'and so has the drive copy made with it');
    t.same(await readFile(rottedLaptop), bytes, 'the damaged file is never overwritten');
    state = await AgentState.open(s.data);
    t.teardown(() => state.close());
    t.same(await state.assetsMissingCopy('laptop'), [], 'every asset has a verified laptop copy again');
    const fixed = await state.getAsset(assets[0]!.blake3);
    t.equal(fixed?.storePath, repaired, 'the asset points at the new copy');
    t.equal(fixed?.copies.filter((c) => c.target === 'laptop').length, 1, 'one laptop copy fact, verified');
    card = (await state.listCards()).find((c) => c.id === a.card);
    sum = await summariseCard(state, card!, 2);
    t.equal(sum.safeToFormat.short, 1, 'only the squatted file is short now (laptop only)');
  },
);

t.test('field-agent run back-fills when the drive appears (a mount event)', async (t) => {
  const s = await setup(t);
  if (typeof s === 'string') return void t.skip(`no loop devices here (${s}): this case did not run`, () => undefined);
  const first = await runAgentCli([
    'ingest',
    s.cardA,
    '--data-dir',
    s.data,
    '--config',
    s.config,
    '--shoot',
    'w',
    '--json',
  ]);
  t.equal(first.code, 0, first.stderr);
  // A volume list the test controls stands in for plugging in a USB drive.
  let volumes: Volume[] = [];
  const source: VolumeSource = { list: async () => volumes };
  const runConfig = join(s.base, 'run.json');
  await writeFile(
    runConfig,
    JSON.stringify({ store: s.store, fieldDrive: s.drive, pollIntervalMs: 100, hotFolders: [] }),
  );
  const paths = resolvePaths({ dataDir: s.data, config: runConfig });
  const runner = new AgentRunner({
    paths,
    config: await loadAgentConfig(paths),
    log: createLogger({ name: 'test', level: 'silent' }),
    volumeSource: source,
  });
  const reports: Array<{ copied: number }> = [];
  runner.on('backfill', (r) => reports.push(r));
  await runner.open();
  t.teardown(() => runner.close());
  await runner.idle();
  t.equal(reports.length, 0, 'no drive yet: nothing copied');
  await mkdir(s.drive);
  volumes = [{ mountPoint: s.drive, device: '/dev/sdz1', fsType: 'exfat' }];
  await waitFor(() => reports.length > 0, 10_000, 'a back-fill after the mount');
  await runner.idle();
  t.equal(reports[0]?.copied, s.filesA.length);
  const card = (await runner.state.listCards())[0]!;
  t.equal((await summariseCard(runner.state, card, 2)).safeToFormat.safe, true);
});

/** Ingest `card` and SIGKILL the process `delayMs` after its last card-file event (so during the back-fill that follows). */
function ingestAndKillInBackfill(
  card: string,
  cardFiles: number,
  data: string,
  config: string,
  delayMs: number,
): Promise<{ killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [AGENT_BIN, 'ingest', card, '--data-dir', data, '--config', config, '--shoot', 'w', '--json'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let files = 0;
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines)
        if (l.includes('"event":"file"') && ++files === cardFiles) setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve({ killed: signal === 'SIGKILL' }));
  });
}

const CRASH_ITERATIONS = Number(process.env['AGENT_CRASH_ITERATIONS'] ?? 20) >= 20 ? 8 : 3;

t.test(
  `kill -9 during the back-fill (${CRASH_ITERATIONS} random points), then again: every drive copy right, once, nothing partial`,
  async (t) => {
    const s = await setup(t);
    if (typeof s === 'string')
      return void t.skip(`no loop devices here (${s}): this case did not run`, () => undefined);
    const filesB = s.filesB.length;
    let killed = 0;
    let tempsLeft = 0;
    for (let i = 0; i < CRASH_ITERATIONS; i++) {
      const data = join(s.base, `data-${i}`);
      const drive = join(s.drive, '..', `drive-${i}`);
      const config = join(s.base, `agent-${i}.json`);
      await writeFile(
        config,
        JSON.stringify({ store: join(s.store, '..', `store-${i}`), fieldDrive: drive, watchVolumes: false }),
      );
      const first = await runAgentCli([
        'ingest',
        s.cardA,
        '--data-dir',
        data,
        '--config',
        config,
        '--shoot',
        'w',
        '--json',
      ]);
      t.equal(first.code, 0, first.stderr);
      const cardA = (jsonLines(first.stdout).find((l) => l['event'] === 'done') as { card: string }).card;
      await mkdir(drive);
      if ((await ingestAndKillInBackfill(s.cardB, filesB, data, config, Math.floor(Math.random() * 120))).killed)
        killed += 1;
      tempsLeft += (await listFiles(drive)).filter((p) => p.endsWith('.s321tmp')).length;
      const again = await runAgentCli([
        'ingest',
        s.cardB,
        '--data-dir',
        data,
        '--config',
        config,
        '--shoot',
        'w',
        '--json',
      ]);
      t.equal(again.code, 0, `iteration ${i}: ${again.stderr.slice(-300)}`);
      const onDrive = await listFiles(drive);
      t.notOk(
        onDrive.some((p) => p.endsWith('.s321tmp')),
        `iteration ${i}: no temp left on the drive`,
      );
      t.notOk(
        onDrive.some((p) => /~\d+\./.test(p)),
        `iteration ${i}: no second copy under another name`,
      );
      let right = 0;
      for (const f of s.filesA) if (b3(join(drive, 'w', cardA, f.path)) === b3(join(s.cardA, f.path))) right += 1;
      t.equal(right, s.filesA.length, `iteration ${i}: every card-A file on the drive with the card's BLAKE3`);
      t.equal((await cardSafe(data, 'cardA')).safe, true, `iteration ${i}: card A safe to format`);
    }
    t.ok(killed > 0, `the agent was killed during ${killed} of ${CRASH_ITERATIONS} back-fills`);
    t.comment(`${tempsLeft} temp(s) left on the drive by the kills, all removed by the next back-fill`);
  },
);

t.test(
  'assets the studio already holds are not back-filled: a fresh drive is not filled with the history',
  async (t) => {
    const dir = t.testdir();
    const card = join(dir, 'card');
    const files = await makeTestCard(card, { rawSize: 32 * 1024, seed: 5 });
    const state = await AgentState.open(join(dir, 'data'));
    t.teardown(() => state.close());
    const laptopOnly = await resolveTargets(join(dir, 'store'), []);
    await offloadCard(
      { state, targets: laptopOnly.targets },
      {
        root: card,
        card: { id: 'C-1', label: 'C', kind: 'card', source: card, shoot: 's' },
        scan: await scanCard(card),
      },
    );
    const pending = await state.pendingForStudio(1000);
    t.equal(pending.length, files.length);
    const atStudio = pending[0]!;
    await state.recordStudioReceipt({
      blake3: atStudio.blake3,
      size: atStudio.size,
      committedAt: new Date().toISOString(),
      copies: [
        {
          target: 'mirror',
          device: 'm',
          path: 'x',
          media: 'hdd',
          location: 'studio',
          verifiedAt: new Date().toISOString(),
          method: 'readback-blake3',
        },
      ],
    });
    await mkdir(join(dir, 'drive'));
    const withDrive = await resolveTargets(join(dir, 'store'), [join(dir, 'drive')]);
    const report = await backfillFieldDrive({ state, targets: withDrive.targets });
    t.same(
      { missing: report.missing, copied: report.copied, failed: report.failed },
      { missing: files.length - 1, copied: files.length - 1, failed: [] },
    );
    t.notOk(
      (await state.getAsset(atStudio.blake3))?.copies.some((c) => c.target === 'field-drive'),
      'the studio-held asset was left alone',
    );
    t.equal((await listFiles(join(dir, 'drive'))).length, files.length - 1);
  },
);

t.test(
  'a repair writes only to the targets without a verified copy: a drive copy that is fine is not written twice',
  async (t) => {
    const dir = t.testdir();
    const card = join(dir, 'card');
    await makeTestCard(card, { rawSize: 32 * 1024, seed: 6 });
    const state = await AgentState.open(join(dir, 'data'));
    t.teardown(() => state.close());
    await mkdir(join(dir, 'drive'));
    const { targets } = await resolveTargets(join(dir, 'store'), [join(dir, 'drive')]);
    const input = { root: card, card: { id: 'C-1', label: 'C', kind: 'card' as const, source: card, shoot: 's' } };
    await offloadCard({ state, targets }, { ...input, scan: await scanCard(card) });
    const driveBefore = (await listFiles(join(dir, 'drive'))).sort();
    // Its laptop copy is found damaged (what the back-fill records); the drive copy is fine.
    const victim = (await state.pendingForStudio(1))[0]!;
    const fact = victim.copies.find((c) => c.target === 'laptop')!;
    await state.recordCopies(victim.blake3, {}, [{ ...fact, verified: false }]);
    const again = await offloadCard({ state, targets }, { ...input, scan: await scanCard(card) });
    t.equal(again.copied, 1, 'the damaged file is copied again');
    t.same((await listFiles(join(dir, 'drive'))).sort(), driveBefore, 'nothing new on the drive');
    const fixed = await state.getAsset(victim.blake3);
    t.equal(fixed?.copies.filter((c) => c.target === 'laptop' && c.verified).length, 1);
    t.equal(fixed?.copies.filter((c) => c.target === 'field-drive').length, 1, 'the drive fact is the old one, once');
    t.match(fixed?.paths['laptop'], /~2\./, 'the laptop path is the new copy');
    t.equal(b3(fixed!.paths['laptop']!), victim.blake3);
    t.notMatch(fixed?.paths['field-drive'], /~2\./, 'the drive path is unchanged');
  },
);
