/**
 * kill -9 of the real agent process at random points, then restart: every card
 * file ends up in the store exactly once with the right BLAKE3, nothing partial
 * (*.s321tmp) is left, nothing is counted twice.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { makeTestCard } from '../../../../scripts/dist/make-test-card.js';
import { AGENT_BIN, runAgentCli, hashTree, listFiles } from '../../../lib/agent-harness.js';
import { AgentState } from '@studio321/agent/state';
import { buildStatus } from '@studio321/agent/state';

const ITERATIONS = Number(process.env['AGENT_CRASH_ITERATIONS'] ?? 20);

/** Start an ingest and SIGKILL it after its `afterFiles`-th file event plus `delayMs`. */
function ingestAndKill(
  card: string,
  data: string,
  afterFiles: number,
  delayMs: number,
): Promise<{ killed: boolean; files: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT_BIN, 'ingest', card, '--data-dir', data, '--shoot', 's', '--json'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let files = 0;
    let armed = false;
    let buf = '';
    const arm = (): void => {
      if (armed) return;
      armed = true;
      setTimeout(() => child.kill('SIGKILL'), delayMs);
    };
    if (afterFiles === 0) arm();
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (l.includes('"event":"file"')) files += 1;
        if (files >= afterFiles) arm();
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve({ killed: signal === 'SIGKILL', files }));
  });
}

t.test(`kill -9 at random points (${ITERATIONS} iterations), then resume`, async (t) => {
  const dir = t.testdir();
  const card = join(dir, 'EOS_DIGITAL');
  const files = await makeTestCard(card, { rawSize: 256 * 1024, seed: 42 });
  const source = await hashTree(card);
  t.equal(source.size, files.length);
  let killedMidway = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const data = join(dir, `data-${i}`);
    const kills = i % 3 === 2 ? 2 : 1;
    for (let k = 0; k < kills; k++) {
      const r = await ingestAndKill(
        card,
        data,
        Math.floor(Math.random() * files.length),
        Math.floor(Math.random() * 25),
      );
      if (r.killed) killedMidway += 1;
    }
    const done = await runAgentCli(['ingest', card, '--data-dir', data, '--shoot', 's', '--json']);
    t.equal(done.code, 0, `iteration ${i}: the resumed ingest completes (${done.stderr.slice(-300)})`);
    const storeRoot = join(data, 'store');
    const all = await listFiles(storeRoot);
    t.same(
      all.filter((f) => f.endsWith('.s321tmp')),
      [],
      `iteration ${i}: no temp file left`,
    );
    const stored = await hashTree(storeRoot);
    // exactly once: one stored file per source file, same relative path, same BLAKE3
    const cardDirs = new Set([...stored.keys()].map((p) => p.split('/').slice(0, 2).join('/')));
    t.equal(cardDirs.size, 1, `iteration ${i}: one card folder`);
    const rel = new Map([...stored.entries()].map(([p, h]) => [p.split('/').slice(2).join('/'), h]));
    t.same(
      [...rel.entries()].sort(),
      [...source.entries()].sort(),
      `iteration ${i}: every file exactly once with the right BLAKE3`,
    );
    const state = await AgentState.open(data);
    const st = await buildStatus(state, 2);
    await state.close();
    t.equal(st.cards.length, 1);
    t.equal(st.cards[0]?.verifiedFiles, files.length, `iteration ${i}: counted once`);
    t.equal(st.queue.files, files.length, `iteration ${i}: queued once`);
  }
  t.ok(killedMidway >= ITERATIONS / 2, `most kills landed before the end (${killedMidway})`);
});
