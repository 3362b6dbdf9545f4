// The state's LevelDB write buffer (agent-state.ts WRITE_BUFFER): a listing of 22,000 files, more
// than LevelDB's default 4 MiB buffer holds, stays in one memtable (no flush, so no compaction of it
// with older tables), and reads back whole after a reopen replays its log.
import t from 'tap';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentState } from '@studio321/agent/state';

const FILES = 22_000;

t.test('a listing larger than the default write buffer is not flushed while it is written', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'state-wbuf-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  let state = await AgentState.open(dataDir);
  const id = 'WBUF-0001';
  const input = { id, label: 'WBUF', kind: 'card' as const, source: '/synthetic', shoot: 'shoot' };
  await state.beginOffload({ ...input, dev: 1, disk: 'disk:wwid:wbuf' });
  const files = Array.from({ length: FILES }, (_, i) => ({
    path: `DCIM/${100 + Math.floor(i / 9999)}CANON/IMG_${String(i % 9999).padStart(4, '0')}.JPG`,
    size: 2048 + i,
    mtimeMs: 1_700_000_000_000 + i,
  }));
  const todo = await state.recordScan(id, { root: '/synthetic', dev: 1, disk: 'disk:wwid:wbuf', files, warnings: [] });
  t.equal(todo.length, FILES);

  const dir = join(dataDir, 'state');
  const logs = (await readdir(dir)).filter((n) => n.endsWith('.log'));
  const logBytes = (await Promise.all(logs.map(async (n) => (await stat(join(dir, n))).size))).reduce(
    (a, b) => a + b,
    0,
  );
  t.ok(logBytes > 4 * 2 ** 20, `the listing wrote ${logBytes} bytes of log: more than the default buffer`);
  const log = await readFile(join(dir, 'LOG'), 'utf8');
  t.notMatch(log, /Level-0 table/, 'no memtable was flushed');
  t.notMatch(log, /Compact/, 'nothing was compacted');

  await state.close();
  state = await AgentState.open(dataDir);
  t.teardown(() => state.close());
  const { card, sums } = await state.cardSums(id);
  t.equal(card.scanComplete, true);
  t.equal(sums.c['entries'], FILES, 'every listed file reads back after the log is replayed');
  t.equal((await state.getFile(id, files[FILES - 1]!.path))?.state, 'seen');
});
