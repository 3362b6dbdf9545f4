// kill -9 of the agent while it records the studio's Receipts many to a synced batch (they linger
// in the sync pass, then go to the state together: agent/src/link/sync-pass.ts) loses no Receipt
// that counted: a real studiod child, a real agent child (test/lib/receipt-sync-child.mjs: one
// sync pass over the real TLS link into a real LevelDB state), SIGKILLed after a random number of
// counted Receipts; then every one it counted is in the state (the studio's copies, off the queue),
// every other asset is still queued whole, and the next pass finishes the rest.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { AgentState } from '@studio321/agent/state';
import { dcfFiles, ingest, makeAgent, makeCard, pairAgent, startStudiod, tempDir } from '../../lib/studio-harness.js';

const CHILD = fileURLToPath(new URL('../../lib/receipt-sync-child.mjs', import.meta.url));
const FILES = 60;
/** Offers of 12 files: the pass goes on offering while earlier Receipts linger and are recorded. */
const BATCH = 12;

/** One pass in a child; SIGKILLed once it counted `killAfter` Receipts. Returns the hashes it counted. */
function passUntil(dataDir: string, killAfter?: number): Promise<{ counted: string[]; done: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dataDir, String(BATCH)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const counted: string[] = [];
    let done = false;
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('counted ')) counted.push(line.slice('counted '.length));
      if (line.startsWith('done ')) done = true;
      if (killAfter !== undefined && counted.length === killAfter && line.startsWith('counted ')) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL' || (code === 0 && done)) resolve({ counted, done });
      else reject(new Error(`sync child ended with ${code ?? signal}: ${stderr}`));
    });
  });
}

t.test('kill -9 while Receipts are recorded in batches loses none that counted', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const card = join(await tempDir(t, 'card-'), 'CARD');
  await makeCard(
    card,
    dcfFiles(FILES, (i) => 1000 + ((i * 997) % 3000)),
  );
  await ingest(agent, card, 'shoot', 'CARD1');

  const state0 = await AgentState.open(agent.dataDir);
  const all = (await state0.pendingForStudio(FILES + 1)).map((a) => a.blake3);
  await state0.close();
  t.equal(all.length, FILES, 'every file queued for the studio');

  const everCounted = new Set<string>();
  let seed = Number(process.env['SEED'] ?? Date.now()) >>> 0;
  t.comment(`seed ${seed}`);
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  for (let round = 0; round < 3; round++) {
    const state = await AgentState.open(agent.dataDir);
    const left = (await state.pendingForStudio(FILES + 1)).length;
    await state.close();
    if (left < 2) break;
    // At most half of what is left: every round leaves Receipts to come for the next.
    const killAfter = 1 + rnd(Math.ceil(left / 2));
    const { counted } = await passUntil(agent.dataDir, killAfter);
    t.ok(counted.length >= killAfter, `round ${round}: killed after ${counted.length} counted Receipts`);
    for (const h of counted) everCounted.add(h);

    const after = await AgentState.open(agent.dataDir);
    try {
      const queued = new Set((await after.pendingForStudio(FILES + 1)).map((a) => a.blake3));
      const assets = await after.getAssets(all);
      const lost = [...everCounted].filter((h) => queued.has(h) || assets.get(h)?.studio === undefined);
      t.same(lost, [], `round ${round}: every Receipt that counted is recorded and off the queue`);
      const torn = all.filter((h) => {
        const a = assets.get(h);
        const atStudio = a?.studio !== undefined;
        const targets = a?.studio?.copies.map((c) => c.target).sort() ?? [];
        // Each asset is either still queued with no studio record, or recorded whole and off the queue.
        return atStudio === queued.has(h) || (atStudio && targets.join() !== 'mirror,raid');
      });
      t.same(torn, [], `round ${round}: no asset half-recorded`);
    } finally {
      await after.close();
    }
  }

  const last = await passUntil(agent.dataDir);
  t.ok(last.done, 'a pass after the kills finishes');
  const end = await AgentState.open(agent.dataDir);
  t.same(await end.pendingForStudio(FILES + 1), [], 'the queue is empty: every asset receipted');
  await end.close();
});
