/**
 * The scheduled scrub with real processes (s3rver, studiod, a paired field
 * agent): a mirror copy rotted and a RAID copy deleted behind studiod's back
 * are found and healed by the scrub alone (no `studioctl verify`); studiod is
 * SIGKILLed at random steps of the scrub, three times, and each time resumes
 * where its saved cursor says, not from the first asset; at the end every
 * target has a last full pass in `status`, every copy the catalogue counts
 * hashes right (b3sum), and the rotted bytes are in the quarantine.
 *
 * The scrub is slowed (2 assets a step, 1 MB/s) so the kills land inside it;
 * it is off while the cards are synced, so it starts on a settled studio.
 */
import t from 'tap';
import { mkdtemp, readFile, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DemoRun } from '../../../../scripts/dist/lib/demo-run.js';
import { b3sum } from '../../../lib/b3sum.js';
import { rotByte } from '../../../lib/bit-rot.js';

interface Copy {
  target: string;
  where: string;
}
interface AssetView {
  hash: string;
  size: number;
  copies: Copy[];
}
interface ScrubLast {
  target: string;
  assets: number;
  ok: number;
  healed: number;
  lost: number;
  finishedAt: number;
}
interface Status {
  ledger: { assets: number; compliant: number };
  targetReport: Array<{ target: string; quarantine?: { count: number; bytes: number } }>;
  scrub: Array<{ target: string; last: ScrubLast | null; current: { assets: number } | null }>;
}
interface StepLine {
  msg: string;
  target: string;
  assets: number;
}

const b3 = async (path: string): Promise<string> => b3sum(path);

const dir = await mkdtemp(join(tmpdir(), 'scrub-kill-'));
const demo = new DemoRun({ dir, rawSize: 96 * 1024, say: () => undefined });
const base = demo.studiodConfig.bind(demo);
let scrubOn = false;
demo.studiodConfig = () => ({
  ...base(),
  scrub: scrubOn
    ? { periodDays: 30, bytesPerSecond: 1_000_000, cloudDownloadPercent: 100, assetsPerStep: 2 }
    : { periodDays: 0 },
  log: { level: 'debug' },
});
t.teardown(async () => {
  await demo.stop();
  await rm(dir, { recursive: true, force: true });
});
await demo.syncedStudio();

const list = async (): Promise<AssetView[]> =>
  (await demo.studioctlJson<{ items: AssetView[] }>(['assets', '--limit', '100000'])).items;
const whereOn = (a: AssetView, target: string): string | undefined => a.copies.find((c) => c.target === target)?.where;

/** Every JSON line studiod logs from now on, across restarts. */
const lines: Array<Record<string, unknown>> = [];
const waiters = new Set<() => void>();
let rest = '';
demo.onStudiodLog((chunk) => {
  const parts = (rest + chunk).split('\n');
  rest = parts.pop() ?? '';
  for (const p of parts) {
    try {
      lines.push(JSON.parse(p) as Record<string, unknown>);
    } catch {
      continue;
    }
    for (const w of waiters) w();
  }
});
/** Resolves once `pred` holds for the lines logged since index `from`. */
function waitFor(from: number, pred: (ls: Array<Record<string, unknown>>) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (!pred(lines.slice(from))) return;
      waiters.delete(check);
      resolve();
    };
    waiters.add(check);
    check();
  });
}
const steps = (ls: Array<Record<string, unknown>>): StepLine[] =>
  ls.filter((l) => l.msg === 'scrub step saved') as unknown as StepLine[];
const doneTargets = (ls: Array<Record<string, unknown>>): string[] =>
  ls.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('scrub of ')).map((l) => String(l.target));

const assets = await list();
const big = assets.filter((a) => a.size > 32 * 1024);
const [x, y] = big;
if (x === undefined || y === undefined) throw new Error('too few assets');
const rottenPath = whereOn(x, 'mirror') as string;
const deletedPath = whereOn(y, 'raid') as string;

t.test('scrub killed three times at random steps resumes from its cursor and heals what it finds', async (t) => {
  const targets = ['mirror', 'raid', 'cloud-east', 'cloud-west'];
  await demo.stopStudiod();
  await rotByte(rottenPath, 4096);
  const rotten = await readFile(rottenPath);
  await unlink(deletedPath);
  scrubOn = true;
  await demo.startStudiod();

  for (let round = 0; round < 3; round++) {
    const from = lines.length;
    const killAt = 1 + Math.floor(Math.random() * 4);
    await waitFor(from, (ls) => steps(ls).length >= killAt);
    await demo.killStudiod();
    // What the scrub had saved by the kill, per target (the log line follows the synced put).
    const saved = new Map<string, number>();
    for (const s of steps(lines.slice(from))) saved.set(s.target, s.assets);
    const done = new Set(doneTargets(lines.slice(from)));
    const restart = lines.length;
    await demo.startStudiod();
    const resumed = [...saved.keys()].filter((tg) => !done.has(tg));
    t.ok(resumed.length > 0, `round ${round}: killed after ${killAt} step(s), inside a pass`);
    // Each cut pass resumes: its first step after the restart starts past what was saved (or the pass ends).
    await waitFor(restart, (ls) =>
      resumed.every((tg) => steps(ls).some((s) => s.target === tg) || doneTargets(ls).includes(tg)),
    );
    for (const tg of resumed) {
      const first = steps(lines.slice(restart)).find((s) => s.target === tg);
      if (first === undefined) continue; // that pass ended with its next step
      t.ok(
        first.assets > (saved.get(tg) ?? 0),
        `round ${round}: ${tg} resumed at ${first.assets} assets, past the ${saved.get(tg)} saved before the kill`,
      );
    }
  }

  await waitFor(0, (ls) => targets.every((tg) => doneTargets(ls).includes(tg)));
  const s = await demo.studioctlJson<Status>(['status']);
  for (const tg of targets) {
    const row = s.scrub.find((r) => r.target === tg);
    t.ok(row?.last, `${tg}: a last full scrub in status`);
    t.equal(row?.last?.assets, assets.length, `${tg}: the pass covered every asset once, kills or not`);
    t.equal(row?.current, null, `${tg}: no pass under way`);
  }
  // A kill between a heal and the save of its step makes the redone step find the copy fine: the pass counts
  // the heal at most once; the copy record says where it was made from either way.
  t.ok((s.scrub.find((r) => r.target === 'mirror')?.last?.healed ?? 0) <= 1, 'the mirror pass counts a heal once');
  t.ok((s.scrub.find((r) => r.target === 'raid')?.last?.healed ?? 0) <= 1, 'the RAID pass counts a heal once');
  const viewOf = async (hash: string): Promise<Array<Copy & { healedFrom?: { target: string } }>> =>
    (
      await demo.studioctlJson<{ assets: Array<{ copies: Array<Copy & { healedFrom?: { target: string } }> }> }>([
        'asset',
        hash,
      ])
    ).assets[0]?.copies ?? [];
  t.match(
    (await viewOf(x.hash)).find((c) => c.target === 'mirror'),
    { healedFrom: { target: 'raid' } },
  );
  t.match(
    (await viewOf(y.hash)).find((c) => c.target === 'raid'),
    { healedFrom: { target: 'mirror' } },
  );
  t.equal(s.ledger.compliant, s.ledger.assets, 'every asset compliant');
  t.equal(await b3(rottenPath), x.hash, 'b3sum: the healed mirror copy');
  t.equal(await b3(deletedPath), y.hash, 'b3sum: the remade RAID copy');
  t.match(s.targetReport.find((r) => r.target === 'mirror')?.quarantine, { count: 1, bytes: x.size });
  const qdir = join(demo.paths.mirror, '.s321-quarantine');
  const kept = (await readdir(qdir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  t.equal(kept.length, 1);
  t.same(await readFile(join(kept[0]?.parentPath ?? '', kept[0]?.name ?? '')), rotten, 'the rotted bytes are kept');
  // Nothing counted that is not verified: every local copy the catalogue holds hashes right.
  for (const a of await list())
    for (const tg of ['mirror', 'raid']) t.equal(await b3(whereOn(a, tg) as string), a.hash, `b3sum: ${tg} copy`);
});
