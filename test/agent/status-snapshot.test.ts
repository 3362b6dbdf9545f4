// The status snapshot (agent/src/state/status-snapshot.ts): `field-agent status` with no agent running
// answers from what the last process to close the state read, without opening the state, only while
// the state is still what was read. Any other writer (a command that keeps no snapshot, an older
// field-agent, a writer killed with SIGKILL at any point) leaves it stale, and status then opens the
// state and says what it holds: a card made unsafe to format is never shown safe from a snapshot.
import t, { type Test } from 'tap';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { scanCard } from '@studio321/agent/card';
import {
  AgentState,
  readStatusSnapshot,
  stateMark,
  STATUS_SNAPSHOT_FILE,
  type AgentStatus,
} from '@studio321/agent/state';
import { AGENT_BIN, dcfFiles, makeAgent, makeCard, tempDir, type Agent } from '../lib/studio-harness.js';

type Status = AgentStatus & { dataDir: string };

async function status(t: Test, agent: Agent): Promise<Status> {
  const r = await agent.cli(['status', '--json']);
  t.equal(r.code, 0, `status exits 0 ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

/** Status as the state holds it: the snapshot removed first, so status opens the state. */
async function opened(t: Test, agent: Agent): Promise<Status> {
  await rm(join(agent.dataDir, STATUS_SNAPSHOT_FILE), { force: true });
  return status(t, agent);
}

const mark = (agent: Agent): Promise<string> => stateMark(join(agent.dataDir, 'state'));

/** An agent (copies before format: 1) and a card of `n` small files. */
async function setup(t: Test, n: number): Promise<{ agent: Agent; card: string }> {
  const agent = await makeAgent(t);
  await writeFile(join(agent.dataDir, 'field-agent.json'), JSON.stringify({ policy: { copiesBeforeFormat: 1 } }));
  const card = join(await tempDir(t, 'card-'), 'CARD');
  await makeCard(
    card,
    dcfFiles(n, (i) => 1000 + i),
  );
  return { agent, card };
}

t.test(
  'status answers from the snapshot while it is the state, and from the state after any other writer',
  async (t) => {
    const { agent, card } = await setup(t, 40);
    const ing = await agent.cli(['ingest', card, '--shoot', 's1', '--card-label', 'SNAP']);
    t.equal(ing.code, 0, `ingest exits 0 ${ing.stderr}`);
    t.ok(await readStatusSnapshot(agent.dataDir), 'the ingest left a valid snapshot');

    const before = await mark(agent);
    const fromSnapshot = await status(t, agent);
    t.equal(await mark(agent), before, 'status did not open the state (an open rolls its log and CURRENT)');
    t.equal(fromSnapshot.cards[0]?.verifiedFiles, 40, 'the 40 files verified');
    t.same(fromSnapshot, await opened(t, agent), 'the snapshot says what the state says');
    t.not(await mark(agent), before, 'without a snapshot status opened the state');
    t.ok(await readStatusSnapshot(agent.dataDir), 'and left a new snapshot');

    // A file appears on the card and is listed, not copied: no longer safe to format. The writer
    // keeps no snapshot (as an older field-agent would not).
    await writeFile(join(card, 'DCIM', '100CANON', 'IMG_9999.CR3'), Buffer.alloc(500, 7));
    const state = await AgentState.open(agent.dataDir);
    const id = (await state.listCards())[0]?.id as string;
    await state.recordScan(id, await scanCard(card));
    await state.close();
    t.equal(await readStatusSnapshot(agent.dataDir), undefined, 'the snapshot is stale once something wrote');
    const after = await status(t, agent);
    t.equal(after.cards[0]?.safeToFormat.safe, false, 'status says NOT safe to format, as the state does');
    t.match(after.cards[0]?.safeToFormat.examples, [/IMG_9999\.CR3: not copied yet/], 'the new file is not copied');
    t.equal(after.cards[0]?.files, 41, 'and counts the new file');
    t.same(after, await opened(t, agent), 'what the state holds');

    // An open that writes nothing (another build's status) makes it stale too.
    t.ok(await readStatusSnapshot(agent.dataDir), 'status kept a snapshot again');
    await (await AgentState.open(agent.dataDir)).close();
    t.equal(await readStatusSnapshot(agent.dataDir), undefined, 'an open alone makes it stale');

    // A forgotten card: the command keeps no snapshot; status lists the card no more.
    await status(t, agent);
    const forget = await agent.cli(['forget', id, '--force']);
    t.equal(forget.code, 0, `forget exits 0 ${forget.stderr}`);
    t.same((await status(t, agent)).cards, [], 'the forgotten card is gone from status');
  },
);

t.test('a snapshot of other reads, torn or of another version is not an answer', async (t) => {
  const { agent, card } = await setup(t, 5);
  t.equal((await agent.cli(['ingest', card, '--shoot', 's1'])).code, 0, 'ingest');
  const file = join(agent.dataDir, STATUS_SNAPSHOT_FILE);
  const good = await readFile(file, 'utf8');

  // Another config: a field drive, whose back-fill the snapshot (made without one) did not read:
  // status opens the state.
  const drive = await tempDir(t, 'drive-');
  await writeFile(join(agent.dataDir, 'field-agent.json'), JSON.stringify({ fieldDrives: [drive] }));
  const before = await mark(agent);
  const withDrive = await status(t, agent);
  t.equal(withDrive.fieldDrives?.[0]?.waitingFiles, 5, 'the 5 files wait for their field-drive copy');
  t.not(await mark(agent), before, 'the state was opened');
  t.same(withDrive, await opened(t, agent), 'what the state holds');

  for (const [what, text] of [
    ['torn', good.slice(0, good.length / 2)],
    ['another version', good.replace('"version":1', '"version":99')],
    ['not JSON', 'garbage'],
  ] as const) {
    const st = await status(t, agent); // a fresh snapshot of this config
    t.ok(await readStatusSnapshot(agent.dataDir), `${what}: valid before`);
    await writeFile(file, text);
    t.equal(await readStatusSnapshot(agent.dataDir), undefined, `${what}: not an answer`);
    const m = await mark(agent);
    t.same(await status(t, agent), st, `${what}: status the same, from the state`);
    t.not(await mark(agent), m, `${what}: the state was opened`);
  }
});

/** `field-agent ingest --json` of `card`, SIGKILLed once it reported `killAfter` files: the files it reported. */
function killedIngest(agent: Agent, card: string, killAfter: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT_BIN, 'ingest', card, '--data-dir', agent.dataDir, '--json'], {
      env: { ...process.env, FIELD_AGENT_HOME: agent.dataDir },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let files = 0;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      files += d.split('"event":"file"').length - 1;
      if (files >= killAfter) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', () => resolve(files));
  });
}

t.test('a writer SIGKILLed at a random point leaves no snapshot that answers for the state', async (t) => {
  const { agent, card } = await setup(t, 30);
  t.equal((await agent.cli(['ingest', card, '--shoot', 's1'])).code, 0, 'a first ingest leaves a snapshot');
  for (let round = 0; round < 6; round++) {
    // More files on the card, then an ingest of them killed after a random number.
    await makeCard(
      join(card, 'DCIM', `${101 + round}CANON`),
      Array.from({ length: 25 }, (_, i) => ({ path: `IMG_${String(i + 1).padStart(4, '0')}.CR3`, size: 700 + i })),
    );
    await status(t, agent); // a valid snapshot before the writer starts
    const killAfter = 1 + Math.floor(Math.random() * 24);
    const reported = await killedIngest(agent, card, killAfter);
    const snap = await readStatusSnapshot(agent.dataDir);
    const st = await status(t, agent);
    t.same(
      st,
      await opened(t, agent),
      `round ${round} (killed after ${reported} files): status says what the state holds`,
    );
    // A snapshot answers only if the killed ingest had got to its end (it keeps one as it closes).
    if (snap !== undefined) t.equal(reported, 25, `round ${round}: a valid snapshot only from an ingest that finished`);
    else t.pass(`round ${round}: the killed writer left the snapshot stale`);
    if (reported < 25)
      t.equal(st.cards[0]?.safeToFormat.safe, false, `round ${round}: not safe to format, files are left`);
  }
});
