/**
 * A dead RAID disk replaced, end to end with real processes (s3rver, studiod,
 * a paired field agent, studioctl): the RAID root is replaced by an empty
 * folder while studiod runs; status turns not compliant at once (the policy
 * here asks for 4 copies, so losing the RAID's shows in the totals, not only
 * in the "unavailable" line); `studioctl target adopt raid` returns at once;
 * studiod is killed with SIGKILL at random points of the refill (each point
 * chosen as a number of "refill progress" log events to wait for, never a
 * sleep) and started again, and after each kill every RAID copy the catalogue
 * counts is re-hashed; the refill completes; `b3sum` of every RAID file equals
 * the mirror's (the card folders' ASC MHL histories included); status is compliant again.
 */
import t, { type Test } from 'tap';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DemoRun } from '../../../../scripts/dist/lib/demo-run.js';
import { b3sum } from '../../../lib/b3sum.js';

interface Status {
  ledger: { assets: number; compliant: number; notCompliant: number };
  unavailableTargets: string[];
  adoptions: Array<{
    target: string;
    device: string;
    phase: string;
    filesDone: number;
    totalFiles: number;
    failed: number;
  }>;
}
interface AssetView {
  hash: string;
  copies: Array<{ kind: string; target: string; where: string; device: string }>;
}

const dir = await mkdtemp(join(tmpdir(), 'recovery-adopt-'));
const demo = new DemoRun({ dir, rawSize: 256 * 1024, say: () => undefined });
const base = demo.studiodConfig.bind(demo);
// 4 copies (mirror, RAID, two clouds); the refill slowed to 400 kB/s so the kills land inside it; no scrub.
demo.studiodConfig = () => ({
  ...base(),
  policy: { copies: 4, media: 2, offsite: 1 },
  refill: { bytesPerSecond: 400_000 },
  scrub: { periodDays: 0 },
  log: { level: 'debug' },
});
t.teardown(async () => {
  await demo.stop();
  await rm(dir, { recursive: true, force: true });
});

await demo.syncedStudio();

async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    const rel = relative(root, p);
    if (e.isFile() && !rel.split('/').some((part) => part.startsWith('.'))) out.push(rel);
  }
  return out.sort();
}

/** studiod's refill events, counted across restarts (its log lines, JSON). */
const refill = { events: 0, done: false, waiters: [] as Array<{ at: number; resolve: () => void }> };
let logBuf = '';
demo.onStudiodLog((chunk) => {
  logBuf += chunk;
  const lines = logBuf.split('\n');
  logBuf = lines.pop() ?? '';
  for (const l of lines) {
    if (l.includes('"msg":"refill progress"')) refill.events++;
    if (l.includes('"msg":"target raid: refill of raid-array-2 done')) refill.done = true;
  }
  refill.waiters = refill.waiters.filter((w) => {
    if (refill.events < w.at && !refill.done) return true;
    w.resolve();
    return false;
  });
});

/** Resolves after `n` more refill events from now (or when the refill is done). */
function afterRefillEvents(n: number): Promise<void> {
  if (refill.done) return Promise.resolve();
  return new Promise((resolve) => refill.waiters.push({ at: refill.events + n, resolve }));
}

/** Every RAID copy the catalogue counts has the asset's bytes. */
async function countedRaidCopiesVerify(t: Test): Promise<number> {
  const list = await demo.studioctlJson<{ items: AssetView[] }>(['assets', '--limit', '100000']);
  let n = 0;
  for (const a of list.items)
    for (const c of a.copies)
      if (c.kind === 'studio' && c.target === 'raid') {
        t.equal(b3sum(c.where), a.hash, `counted RAID copy ${c.where} verifies`);
        t.equal(c.device, 'raid-array-2', 'on the new disk');
        n++;
      }
  return n;
}

t.test(
  'RAID replaced by an empty disk: honest at once, adopted, refilled under SIGKILL, compliant again',
  async (t) => {
    // The demo's last commits, and the agents' own ASC MHL generations studiod adopts, get their
    // folders' generation MHL_DELAY_MS after them: a RAID replaced before that owes one, written
    // after the refill beside the mirror's copy. A clean stop writes every generation scheduled
    // (mhl-history.ts, close); a start after a kill writes only studiod's own pending ones (open).
    await demo.stopStudiod();
    await demo.startStudiod();
    const before = await demo.studioctlJson<Status>(['status']);
    t.ok(before.ledger.assets > 0 && before.ledger.compliant === before.ledger.assets, 'compliant before');

    await rm(demo.paths.raid, { recursive: true, force: true });
    await mkdir(demo.paths.raid);
    const down = await demo.studioctlJson<Status>(['status']);
    t.same(down.unavailableTargets, ['raid'], 'the RAID is unavailable at once');
    t.equal(down.ledger.compliant, 0, 'not compliant at once');
    const text = await demo.studioctl(['status']);
    t.match(text.stdout, /TARGET RAID UNAVAILABLE/);
    t.notMatch(text.stdout, /every asset is 3-2-1 safe/);

    const adopt = await demo.studioctl(['target', 'adopt', 'raid']);
    t.equal(adopt.code, 0, `adopt: ${adopt.stderr}`);
    t.match(adopt.stdout, /now raid-array-2 \(replacing raid-array\)/);

    let kills = 0;
    for (let i = 0; i < 3; i++) {
      const s = await demo.studioctlJson<Status>(['status']);
      const a = s.adoptions.find((x) => x.target === 'raid');
      if (a?.phase === 'done') break;
      const left = Math.max(1, (a?.totalFiles || before.ledger.assets) - (a?.filesDone ?? 0));
      const k = 1 + Math.floor(Math.random() * Math.max(1, left - 1));
      await afterRefillEvents(k);
      await demo.killStudiod();
      kills++;
      t.comment(`studiod killed after ${k} refill event(s)`);
      await demo.startStudiod();
      const counted = await countedRaidCopiesVerify(t);
      t.comment(`${counted} RAID copies counted after the restart, each re-hashed`);
    }
    t.ok(kills > 0, 'killed at least once inside the refill');

    // Wait for the end of the refill (its "done" log line, or already done).
    const now = await demo.studioctlJson<Status>(['status']);
    if (now.adoptions.find((x) => x.target === 'raid')?.phase !== 'done')
      await afterRefillEvents(Number.MAX_SAFE_INTEGER);
    await demo.waitForCloud(60_000);
    const after = await demo.studioctlJson<Status>(['status']);
    const done = after.adoptions.find((x) => x.target === 'raid');
    t.match(done, { device: 'raid-array-2', phase: 'done', failed: 0 });
    t.equal(done?.filesDone, before.ledger.assets, 'every asset refilled, counted once');
    t.same(after.unavailableTargets, [], 'the RAID is available');
    t.equal(after.ledger.compliant, before.ledger.assets, 'compliant again');

    const mirrorFiles = await filesUnder(demo.paths.mirror);
    t.same(await filesUnder(demo.paths.raid), mirrorFiles, 'the RAID holds the same files as the mirror');
    t.ok(
      mirrorFiles.some((f) => f.endsWith('/ascmhl/ascmhl_chain.xml')),
      'their ASC MHL histories too (copied from the mirror by the refill)',
    );
    for (const f of mirrorFiles)
      t.equal(b3sum(join(demo.paths.raid, f)), b3sum(join(demo.paths.mirror, f)), `b3sum ${f}`);
    await countedRaidCopiesVerify(t);
  },
);
