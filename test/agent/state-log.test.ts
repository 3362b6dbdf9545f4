// The agent state's write-ahead log (AgentState.close): a process that wrote leaves its last writes
// in a table, not only in LevelDB's log, so the next open (`field-agent status`) has no log to
// replay; a state left with its records only in the log (a writer killed) still reads exactly right.
import t from 'tap';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { AGENT_CODES } from '@studio321/agent';
import { AgentState, buildStatus, type AgentStatus, type FileEntry } from '@studio321/agent/state';

const FILES = 3000;

/**
 * Bytes in the state's write-ahead logs (`*.log`), and how many memtable flushes a close asked
 * for in the last session, by LevelDB's own text log (`LOG`: each open starts a new one).
 */
async function files(dataDir: string): Promise<{ logBytes: number; flushes: number }> {
  const dir = join(dataDir, 'state');
  const names = await readdir(dir);
  let logBytes = 0;
  for (const n of names.filter((n) => n.endsWith('.log'))) logBytes += (await stat(join(dir, n))).size;
  const flushes = ((await readFile(join(dir, 'LOG'), 'utf8')).match(/Manual compaction at level-0/g) ?? []).length;
  return { logBytes, flushes };
}

/** One card of FILES verified files, a third of them receipted by the studio: an ingest's and a sync's batches. */
async function writeCard(state: AgentState): Promise<void> {
  const id = 'card-log';
  const input = { id, label: 'LOG', kind: 'card' as const, source: '/src', shoot: 'shoot', store: '/store' };
  const card = await state.beginOffload({ ...input, dev: 7, disk: 'disk:wwid:card' });
  const listed = Array.from({ length: FILES }, (_, i) => ({
    path: `DCIM/100TEST/IMG_${String(i).padStart(4, '0')}.JPG`,
    size: 2048 + i,
    mtimeMs: 1_700_000_000_000 + i,
  }));
  const todo = await state.recordScan(id, {
    root: '/src',
    dev: 7,
    disk: 'disk:wwid:card',
    files: listed,
    warnings: [],
  });
  const fact = { target: 'laptop', device: 'disk:wwid:laptop', media: 'ssd', location: 'field' };
  for (let i = 0; i < todo.length; i += 500) {
    const entries: FileEntry[] = todo.slice(i, i + 500).map((file, j) => ({
      kind: 'verified',
      card,
      file,
      blake3: hashBytes(Buffer.from(`log:${i + j}`)),
      size: file.size,
      storePath: `shoot/${file.path}`,
      paths: { laptop: `/store/shoot/${file.path}` },
      copies: [{ ...fact, offsite: false, verified: true }],
      verifiedAt: '2026-01-01T00:00:00.000Z',
    }));
    await state.recordFiles(entries);
  }
  await state.endOffload(id, { state: 'done' });
  const pending = await state.pendingForStudio(FILES / 3);
  await state.recordStudioReceipts(
    pending.map((p) => ({
      blake3: p.blake3,
      size: p.size,
      committedAt: '2026-01-01T00:00:00.000Z',
      copies: [
        {
          target: 'mirror',
          device: 'disk:wwid:mirror',
          path: `/mirror/${p.blake3}`,
          media: 'hdd',
          location: 'studio',
          verifiedAt: '2026-01-01T00:00:00.000Z',
          method: 'blake3',
        },
      ],
    })),
  );
}

async function statusOf(dataDir: string): Promise<{ st: AgentStatus; diffs: string[] }> {
  const state = await AgentState.open(dataDir);
  try {
    return { st: await buildStatus(state, 2), diffs: await state.verifySummary() };
  } finally {
    await state.close();
  }
}

t.test('a writer leaves no log to replay; a state left with its writes only in the log reads the same', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'state-log-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const data = join(base, 'data');
  const killed = join(base, 'killed');

  const state = await AgentState.open(data);
  let expected: AgentStatus;
  try {
    await writeCard(state);
    expected = await buildStatus(state, 2);
    // A copy taken while the writer holds the state: every batch is synced, so this is what a
    // kill -9 leaves — the last writes only in the log.
    await cp(join(data, 'state'), join(killed, 'state'), { recursive: true });
  } finally {
    await state.close();
  }
  t.equal(expected.cards[0]?.files, FILES, 'the card was written');
  t.equal(expected.cards[0]?.verifiedFiles, FILES);
  t.equal(expected.cards[0]?.atStudioFiles, FILES / 3);
  t.ok((await files(killed)).logBytes > 100_000, 'the killed image holds its last writes in the log');
  t.equal((await files(data)).logBytes, 0, "the writer's close wrote its log out: nothing to replay");

  t.equal((await files(data)).flushes, 1, 'by one flush');

  // The next open of the closed state: nothing lost, and a reader (its log empty) asks for no flush.
  const reread = await statusOf(data);
  t.same(reread.st, expected, 'the closed state reads the same');
  t.same(reread.diffs, [], 'its summary equals a scan');
  t.same(await files(data), { logBytes: 0, flushes: 0 }, "a reader's close flushed nothing");

  // The killed image: its log is replayed at open, and status reads exactly the same.
  const replayed = await statusOf(killed);
  t.same(replayed.st, expected, 'the state left with a large log reads the same');
  t.same(replayed.diffs, [], 'its summary equals a scan');
  t.equal((await files(killed)).logBytes, 0, 'and once opened, its log was written out');
});

t.test('a state LevelDB cannot open is a coded error, and is left as it was', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'state-log-bad-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const state = await AgentState.open(base);
  await state.close();
  // CURRENT names the manifest: one that does not exist is a state LevelDB cannot read.
  await writeFile(join(base, 'state', 'CURRENT'), 'MANIFEST-999999\n');
  // LevelDB's text log (LOG, LOG.old) aside, what is there.
  const dataFiles = async (): Promise<string[]> =>
    (await readdir(join(base, 'state'))).filter((n) => !n.startsWith('LOG')).sort();
  const before = await dataFiles();
  await t.rejects(AgentState.open(base), { code: AGENT_CODES.stateFailed });
  t.same(await dataFiles(), before, 'nothing written or removed');
  t.equal(await readFile(join(base, 'state', 'CURRENT'), 'utf8'), 'MANIFEST-999999\n');
});
