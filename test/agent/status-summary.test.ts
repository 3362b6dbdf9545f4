// The status summary (agent/src/state/summary.ts) equals a fresh scan exactly: after a seeded random
// mix of every write that changes what status counts, run by a real child process to the end or
// SIGKILLed between (or inside) batches, and after a rebuild of a state that has none.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { createLogger } from '@studio321/protocol';
import {
  AgentState,
  backfillCandidates,
  evaluateSafeToFormat,
  summariseCard,
  tallyOfFiles,
  type CardSummary,
} from '@studio321/agent/state';

const CHILD = fileURLToPath(new URL('../lib/summary-ops-child.mjs', import.meta.url));

/** Run the op mix; with `killAfter`, SIGKILL the child once it printed that many ops. Returns ops printed. */
function runOps(dataDir: string, seed: number, ops: number, killAfter?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dataDir, String(seed), String(ops)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let printed = 0;
    let done = false;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'done') done = true;
      else if (line.startsWith('op ')) printed += 1;
      if (killAfter !== undefined && printed === killAfter) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (killAfter !== undefined ? signal === 'SIGKILL' || done : code === 0 && done) resolve(printed);
      else reject(new Error(`op child ended with ${code ?? signal} after ${printed} ops`));
    });
  });
}

/** Status of every card as a scan of its files and assets counts it (independent of the summary). */
async function recount(t: Test, state: AgentState, copies: number): Promise<Record<string, CardSummary>> {
  const out: Record<string, CardSummary> = {};
  for (const card of await state.listCards()) {
    const s = await summariseCard(state, card, copies);
    out[card.id] = s;
    const files = await state.cardFiles(card, { current: true });
    const assets = await state.getAssets(files.flatMap((f) => (f.blake3 === undefined ? [] : [f.blake3])));
    const counted = files.filter((f) => f.state !== 'skipped');
    const verified = counted.filter((f) => f.state === 'verified' && f.blake3 !== undefined);
    const at = verified.filter((f) => assets.get(f.blake3 as string)?.studio !== undefined);
    t.same(
      {
        files: s.files,
        bytes: s.bytes,
        verifiedFiles: s.verifiedFiles,
        skippedEntries: s.skippedEntries,
        failedFiles: s.failedFiles,
        atStudioFiles: s.atStudioFiles,
        queuedFiles: s.queuedFiles,
        freedFiles: s.freedFiles,
        offsiteFiles: s.offsiteFiles,
        studioCompliantFiles: s.studioCompliantFiles,
        warnings: s.warnings.length + s.moreWarnings,
      },
      {
        files: counted.length,
        bytes: counted.reduce((n, f) => n + f.size, 0),
        verifiedFiles: verified.length,
        skippedEntries: files.length - counted.length,
        failedFiles: counted.filter((f) => f.state === 'failed').length,
        atStudioFiles: at.length,
        queuedFiles: verified.length - at.length,
        freedFiles: verified.filter((f) => assets.get(f.blake3 as string)?.freed !== undefined).length,
        offsiteFiles: at.filter((f) => assets.get(f.blake3 as string)?.verdict?.copies.some((c) => c.offsite)).length,
        studioCompliantFiles: at.filter((f) => assets.get(f.blake3 as string)?.verdict?.compliant).length,
        warnings: files.filter((f) => f.warning !== undefined && f.warning.resolvedAt === undefined).length,
      },
      `${card.id}: counts as a scan gives them`,
    );
    const scanned = evaluateSafeToFormat(card, tallyOfFiles(card, files, assets, copies), copies);
    t.same(
      { ...s.safeToFormat, examples: s.safeToFormat.examples.length },
      { ...scanned, examples: scanned.examples.length },
      `${card.id}: safe to format as a scan judges it`,
    );
  }
  const queue = await state.pendingForStudio(1_000_000);
  t.same(
    await state.queueDepth(),
    { files: queue.length, bytes: queue.reduce((n, q) => n + q.size, 0) },
    'queue as listed',
  );
  const waiting = await backfillCandidates(state);
  t.same(
    await state.backfillWaiting('field-drive'),
    { files: waiting.length, bytes: waiting.reduce((n, a) => n + a.size, 0) },
    'back-fill waiting as listed',
  );
  return out;
}

async function check(t: Test, dataDir: string, what: string): Promise<Record<string, CardSummary>> {
  const state = await AgentState.open(dataDir);
  try {
    t.same(await state.verifySummary(), [], `${what}: the stored summary equals a fresh scan`);
    return await recount(t, state, 2);
  } finally {
    await state.close();
  }
}

t.test('a random mix of writes run to the end, then the summary rebuilt from nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'status-summary-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.equal(await runOps(dir, 11, 80), 80);
  const before = await check(t, dir, 'after 80 ops');
  t.ok(
    Object.values(before).some((c) => c.atStudioFiles > 0 && c.verifiedFiles < c.files),
    'the mix reached receipts',
  );

  // A state written before the summary: the same records, no summary keys.
  const db = new Level<string, unknown>(join(dir, 'state'), { valueEncoding: 'json' });
  await db.del('meta:summary');
  await db.clear({ gte: 'sum:', lt: 'sum;' });
  await db.clear({ gte: 'ix:', lt: 'ix;' });
  await db.close();
  const lines: string[] = [];
  const log = createLogger({ name: 'test', stream: { write: (l: string) => lines.push(l) } });
  const state = await AgentState.open(dir, { log });
  const rebuilt = lines.map((l) => JSON.parse(l) as { event?: string; files?: number });
  t.equal(rebuilt.filter((l) => l.event === 'state-summary-rebuilt').length, 1, 'rebuilt once, said in a log line');
  t.ok((rebuilt[0]?.files ?? 0) > 4000, `by a scan of every file (${rebuilt[0]?.files})`);
  t.same(await state.verifySummary(), []);
  for (const card of await state.listCards())
    t.same(await summariseCard(state, card, 2), before[card.id], `${card.id}: the same status after the rebuild`);
  await state.close();
  lines.length = 0;
  await (await AgentState.open(dir, { log })).close();
  t.same(lines, [], 'not rebuilt again');
});

t.test('SIGKILL between and inside batches: the summary still equals a fresh scan, and stays so', async (t) => {
  // Kill after op 5: the child is inside op 6, the listing written in parts.
  for (const [seed, killAfter] of [
    [21, 5],
    [22, 7 + (Date.now() % 50)],
  ] as const) {
    const dir = await mkdtemp(join(tmpdir(), 'status-summary-kill-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await runOps(dir, seed, 200, killAfter);
    await check(t, dir, `seed ${seed}, killed after op ${killAfter}`);
    t.equal(await runOps(dir, seed + 100, 15), 15, 'the agent carries on with the state');
    await check(t, dir, `seed ${seed}, after 15 more ops`);
  }
});
