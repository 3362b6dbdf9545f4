/**
 * A card's listing written in parts (more than SCAN_BATCH entries: recordScan reads its earlier
 * records page by page) under kill -9: a child re-lists a card whose every other file is verified
 * and is SIGKILLed as the state's log grows (the first kill right after the first part, the
 * second at a random one). Every file verified before stays verified with its hash (nothing
 * copied is lost, nothing verified is to be copied again), the card reads "not fully listed"
 * until a listing completes, and the next listing completes with exactly the unverified files
 * to copy and a status summary equal to a fresh count. Real LevelDB, real process, real SIGKILL.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentState } from '@studio321/agent/state';

const CHILD = fileURLToPath(new URL('../../lib/relist-child.mjs', import.meta.url));

/** Runs the child; in `relist` mode SIGKILLs it at the `killAt`-th change of the state's files after it said `listing`. */
function child(
  dataDir: string,
  mode: 'build' | 'relist',
  killAt?: number,
): Promise<{ killed: boolean; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CHILD, dataDir, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let changes = 0;
    let watcher: ReturnType<typeof watch> | undefined;
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      lines.push(...d.split('\n').filter((l) => l !== ''));
      if (killAt !== undefined && watcher === undefined && lines.includes('listing'))
        watcher = watch(join(dataDir, 'state'), (_event, name) => {
          if (name?.endsWith('.log') === true && ++changes === killAt) c.kill('SIGKILL');
        });
    });
    c.on('error', reject);
    c.on('close', (code, signal) => {
      watcher?.close();
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child ${mode} exited ${code}`));
      else resolve({ killed: signal === 'SIGKILL', lines });
    });
  });
}

t.test('kill -9 while a listing is written in parts loses nothing verified', async (t) => {
  const dir = t.testdir();
  const built = join(dir, 'built');
  await child(built, 'build');
  const before = await AgentState.open(built);
  const card = (await before.getCard('c1'))!;
  const files = await before.cardFiles(card);
  await before.close();
  const verified = new Map(files.filter((f) => f.state === 'verified').map((f) => [f.path, f.blake3]));
  t.ok(verified.size > 0 && verified.size < files.length, 'some files verified, some not');

  let midListing = 0;
  for (const [i, killAt] of [1, 1 + Math.floor(Math.random() * 3)].entries()) {
    const data = join(dir, `run-${i}`);
    await cp(built, data, { recursive: true });
    const { killed } = await child(data, 'relist', killAt);
    const state = await AgentState.open(data);
    const after = (await state.getCard('c1'))!;
    if (killed && after.scanComplete === false) midListing += 1;
    const now = new Map((await state.cardFiles(after)).map((f) => [f.path, f]));
    t.equal(now.size, files.length, `run ${i}: every file still recorded`);
    const lost = [...verified].filter(([p, b]) => now.get(p)?.state !== 'verified' || now.get(p)?.blake3 !== b);
    t.same(lost, [], `run ${i} (killed: ${killed}): every verified file still verified, same hash`);
    // The next listing completes: exactly the unverified files are to copy.
    const todo = await state.recordScan(
      'c1',
      {
        root: '/card',
        dev: 1,
        disk: 'nodisk:1',
        files: files.map((f) => ({ path: f.path, size: f.size, mtimeMs: f.mtimeMs })),
        warnings: [],
      },
      new Date(),
      '/store',
    );
    t.same(
      todo.map((f) => f.path).sort(),
      files
        .filter((f) => !verified.has(f.path))
        .map((f) => f.path)
        .sort(),
      `run ${i}: the unverified files, and only they, to copy`,
    );
    t.match(await state.getCard('c1'), { scanComplete: true }, `run ${i}: fully listed again`);
    t.same(await state.verifySummary(), [], `run ${i}: the status summary equals a fresh count`);
    await state.close();
  }
  t.ok(midListing >= 1, `killed while "not fully listed" at least once (${midListing} of 2)`);
});
