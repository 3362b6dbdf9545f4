/**
 * The offload's group commit (protocol/src/durable/group-commit.ts with AgentState.recordFiles) under kill -9: the real
 * agent ingests a card of many small files (so files finish together and share a state
 * batch) and is killed right after a random file was reported copied, while other files
 * are in the middle of their batch. Every file reported copied before the kill is then
 * recorded verified in the state with its BLAKE3, and its store copy holds those bytes;
 * nothing reported is lost, and (last iteration) the resumed ingest completes with every file exactly once.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '@studio321/protocol';
import { AgentState } from '@studio321/agent/state';
import { AGENT_BIN, hashTree, runAgentCli } from '../../../lib/agent-harness.js';

const ITERATIONS = Number(process.env['AGENT_CRASH_ITERATIONS'] ?? 4);
const FILES = 80;

interface Reported {
  card: string;
  path: string;
  blake3: string;
  storePath: string;
}

/** Ingest and SIGKILL the agent as soon as its `afterFiles`-th file was reported copied. */
function ingestAndKill(
  card: string,
  data: string,
  afterFiles: number,
): Promise<{ killed: boolean; copied: Reported[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT_BIN, 'ingest', card, '--data-dir', data, '--shoot', 's', '--json'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const copied: Reported[] = [];
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.includes('"event":"file"')) continue;
        const e = JSON.parse(l) as Reported & { result: string };
        if (e.result === 'copied') copied.push(e);
        if (copied.length === afterFiles) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve({ killed: signal === 'SIGKILL', copied }));
  });
}

t.test(`kill -9 mid-batch (${ITERATIONS} random kill points) loses nothing reported copied`, async (t) => {
  const dir = t.testdir();
  const card = join(dir, 'TIMELAPSE');
  await mkdir(join(card, 'DCIM', '100TLAPS'), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    await writeFile(
      join(card, 'DCIM', '100TLAPS', `IMG_${String(i + 1).padStart(4, '0')}.JPG`),
      randomBytes(2048 + i * 16),
    );
  }
  const source = await hashTree(card);
  let midway = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const data = join(dir, `data-${i}`);
    const r = await ingestAndKill(card, data, 1 + Math.floor(Math.random() * (FILES - 20)));
    if (r.killed) midway += 1;
    const state = await AgentState.open(data);
    const lost: string[] = [];
    for (const f of r.copied) {
      const rec = await state.getFile(f.card, f.path);
      const asset = await state.getAsset(f.blake3);
      const onDisk = asset?.paths['laptop'] === undefined ? undefined : await hashFile(asset.paths['laptop']);
      if (rec?.state !== 'verified' || rec.blake3 !== f.blake3 || onDisk?.blake3 !== f.blake3) lost.push(f.path);
    }
    await state.close();
    t.same(
      lost,
      [],
      `iteration ${i}: all ${r.copied.length} files reported copied before the kill are recorded and stored`,
    );
    if (i < ITERATIONS - 1) continue;
    const done = await runAgentCli(['ingest', card, '--data-dir', data, '--shoot', 's', '--json']);
    t.equal(done.code, 0, `iteration ${i}: the resumed ingest completes`);
    const stored = await hashTree(join(data, 'store'));
    t.same(
      [...stored.entries()].map(([p, h]) => [p.split('/').slice(2).join('/'), h]).sort(),
      [...source.entries()].sort(),
      `iteration ${i}: every file exactly once, no temp left`,
    );
  }
  t.ok(midway >= Math.ceil(ITERATIONS / 2), `most kills landed mid-ingest (${midway} of ${ITERATIONS})`);
});
