/**
 * The ledger's recount after a target's availability changed runs in slices (`RECOUNT_SLICE_ASSETS`
 * assets each, with the catalogue's writes held), so commits go on between slices instead of waiting
 * for the whole pass (a minute a million assets). Against a real LevelDB catalogue in a child process
 * (test/lib/recount-child.mjs): the commits that ran during the recount were acknowledged before it
 * ended; afterwards the counters, the not-compliant index and each target's lacking index equal a
 * full recount from the copy records, whatever the commits touched (assets the pass had passed or
 * not yet reached, new assets on either side of its cursor); and a SIGKILL at random slices loses
 * no acknowledged write and leaves a ledger the next open recounts to the same truth.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Catalogue } from '@studio321/studiod';
import { Ledger } from '@studio321/studiod/ledger';
import { recountLedger, stripCounters } from '../../lib/ledger-recount.js';

const CHILD = fileURLToPath(new URL('../../lib/recount-child.mjs', import.meta.url));
const TARGETS = ['mirror', 'raid', 'cloud-east', 'cloud-west'];
const POLICY = { copies: 3, media: 2, offsite: 1 };
/** Slices of 60 assets (studiod: RECOUNT_SLICE_ASSETS), six and a half of them: the commits run between. */
const SLICE = 60;
const ASSETS = Math.round(SLICE * 6.5);

interface Run {
  slices: number;
  /** Acknowledged writes: hash, op, whether a recount was still under way when it was acknowledged. */
  commits: Array<{ hash: string; op: number; during: boolean }>;
  done: boolean;
}

/** Runs the child; with `killAtSlice`, SIGKILLs it once it printed that slice. */
function child(args: string[], killAtSlice?: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const run: Run = { slices: 0, commits: [], done: false };
    createInterface({ input: c.stdout }).on('line', (line) => {
      const [what, a, b, d] = line.split(' ');
      if (what === 'done') run.done = true;
      else if (what === 'slice') {
        run.slices = Number(a);
        if (run.slices === killAtSlice) c.kill('SIGKILL');
      } else if (what === 'commit') run.commits.push({ hash: a as string, op: Number(b), during: d === '1' });
    });
    c.on('error', reject);
    c.on('close', () => resolve(run));
  });
}

/** The index entries a full recount gives: not compliant, and lacking each target. */
async function expectedIndex(
  cat: Catalogue,
  ledger: Ledger,
): Promise<{ unprot: string[]; lack: Record<string, string[]> }> {
  const unprot: string[] = [];
  const lack: Record<string, Array<{ hash: string; at: number }>> = {};
  for (const target of TARGETS) lack[target] = [];
  for await (const a of cat.assets()) {
    const copies = await cat.copiesOf(a.hash);
    if (!ledger.verdict(copies).compliant) unprot.push(a.hash);
    const have = new Set(ledger.counted(copies).map((c) => c.target));
    for (const target of TARGETS) if (!have.has(target)) lack[target]?.push({ hash: a.hash, at: a.committedAt });
  }
  const order = (xs: Array<{ hash: string; at: number }>): string[] =>
    xs.sort((x, y) => x.at - y.at || (x.hash < y.hash ? -1 : 1)).map((x) => x.hash);
  return { unprot, lack: Object.fromEntries(TARGETS.map((target) => [target, order(lack[target] ?? [])])) };
}

async function storedIndex(ledger: Ledger): Promise<{ unprot: string[]; lack: Record<string, string[]> }> {
  const unprot: string[] = [];
  for await (const h of ledger.unprotected()) unprot.push(h);
  const lack: Record<string, string[]> = {};
  for (const target of TARGETS) {
    const hs: string[] = [];
    for await (const h of ledger.lacking(target)) hs.push(h);
    lack[target] = hs;
  }
  return { unprot, lack };
}

const seeded = (async () => {
  const dir = await mkdtemp(join(tmpdir(), 'recount-seed-'));
  const run = await child(['seed', dir, String(SLICE), String(ASSETS)]);
  if (!run.done) throw new Error('seeding the catalogue failed');
  return dir;
})();
t.teardown(async () => rm(await seeded, { recursive: true, force: true }));

async function copyOfSeed(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'recount-slices-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp(await seeded, dir, { recursive: true });
  return dir;
}

async function check(t: Test, dir: string, run: Run): Promise<{ rebuilt: boolean }> {
  const cat = new Catalogue(join(dir, 'catalogue'));
  await cat.open();
  t.teardown(() => cat.close());
  const ledger = new Ledger({ catalogue: cat, policy: POLICY, targets: TARGETS, unavailable: ['cloud-east'] });
  const { rebuilt } = await ledger.open();
  t.same(stripCounters(ledger.counters()), await recountLedger(cat, ledger), 'the counters equal a full recount');
  t.same(await storedIndex(ledger), await expectedIndex(cat, ledger), 'the verdict index equals a full recount');
  // Nothing acknowledged is lost: every committed asset is there, with the copy its last write left.
  const last = new Map<string, number>();
  for (const c of run.commits) last.set(c.hash, c.op);
  let lost = 0;
  for (const [hash, op] of last) {
    const copies = await cat.copiesOf(hash);
    if ((await cat.getAsset(hash)) === undefined) lost++;
    else if (op === 1 && !copies.some((c) => c.target === 'cloud-west')) lost++;
    else if (op === 2 && !copies.some((c) => c.target === 'cloud-east')) lost++;
    else if (op === 3 && copies.some((c) => c.target === 'cloud-west')) lost++;
  }
  t.equal(lost, 0, `every acknowledged write of ${last.size} assets is in the catalogue`);
  return { rebuilt };
}

t.test('commits go on during a recount, and the ledger after it equals a full recount', async (t) => {
  const dir = await copyOfSeed(t);
  const run = await child(['run', dir, String(SLICE), '7']);
  t.ok(run.done, 'the child ran to the end');
  t.ok(run.slices >= 7, `the recount ran in ${run.slices} slices`);
  const during = run.commits.filter((c) => c.during);
  t.ok(during.length >= 3, `${during.length} writes were acknowledged while the recount was under way`);
  t.ok(new Set(during.map((c) => c.op)).size >= 3, 'new assets, copies recorded and copies removed among them');
  const { rebuilt } = await check(t, dir, run);
  t.notOk(rebuilt, 'the recount finished: its counters are signed for the targets now, no rebuild at open');
});

t.test(
  'SIGKILL at random slices of a recount: nothing acknowledged lost, the next open recounts to the truth',
  async (t) => {
    let seed = 0x5eed;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 5; i++) {
      const dir = await copyOfSeed(t);
      // Slices 1–5 of 7: a SIGKILL lands before the last one even if the child runs a slice on meanwhile.
      const at = 1 + rnd(5);
      const run = await child(['run', dir, String(SLICE), String(100 + i)], at);
      t.notOk(run.done, `killed at slice ${at} (of about 7)`);
      const { rebuilt } = await check(t, dir, run);
      t.ok(rebuilt, 'the part-recounted ledger is rebuilt at the next open');
    }
  },
);
