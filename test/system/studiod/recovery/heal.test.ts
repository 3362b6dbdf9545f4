/**
 * Self-heal and unavailable targets with real processes: s3rver, studiod, a
 * paired field agent (the demo's steps on a smaller card set). Copies are
 * rotted and deleted behind studiod's back; `studioctl verify` makes them
 * again from the other target (b3sum of each healed file equals the other
 * target's), the rotted bytes stay in the quarantine; `--no-repair` only
 * reports; the RAID root replaced by an empty folder turns the verdict honest
 * at once; studiod SIGKILLed in the middle of a heal loop resumes, and nothing
 * is counted that is not verified.
 */
import t from 'tap';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DemoRun } from '../../../../scripts/dist/lib/demo-run.js';
import { b3sum } from '../../../lib/b3sum.js';
import { rotByte } from '../../../lib/bit-rot.js';

interface Copy {
  target: string;
  kind: string;
  path: string;
  where: string;
  healedFrom?: { target: string };
}
interface AssetView {
  hash: string;
  size: number;
  compliant: boolean;
  copies: Copy[];
}
interface Lost {
  hash: string;
  target: string;
  code: string;
  healed: boolean;
  healedFrom?: { target: string } | null;
  notHealed?: { code: string };
  quarantinedPath?: string;
}
interface Verify {
  lost: Lost[];
  healed: number;
  notHealed: number;
}
interface Status {
  ledger: { assets: number; compliant: number; notCompliant: number };
  unavailableTargets: string[];
  targetReport: Array<{
    target: string;
    available?: boolean;
    unavailable?: { since: string; code: string; reason: string } | null;
    quarantine?: { count: number; bytes: number };
  }>;
}

const b3 = async (path: string): Promise<string> => b3sum(path);

const dir = await mkdtemp(join(tmpdir(), 'heal-system-'));
const demo = new DemoRun({ dir, rawSize: 512 * 1024, say: () => undefined });
t.teardown(async () => {
  await demo.stop();
  await rm(dir, { recursive: true, force: true });
});
const { settled } = await demo.syncedStudio(60_000);

const status = (): Promise<Status> => demo.studioctlJson<Status>(['status']);
const list = async (): Promise<AssetView[]> =>
  (await demo.studioctlJson<{ items: AssetView[] }>(['assets', '--limit', '100000'])).items;
const copyOf = (a: AssetView, target: string): Copy => {
  const c = a.copies.find((x) => x.target === target);
  if (c === undefined) throw new Error(`${a.hash}: no ${target} copy`);
  return c;
};
async function verify(args: string[] = []): Promise<{ code: number; report: Verify }> {
  const r = await demo.studioctl(['--json', 'verify', ...args]);
  if (r.code !== 0 && r.code !== 3) throw new Error(`verify exit ${r.code}: ${r.stderr}`);
  return { code: r.code, report: JSON.parse(r.stdout) as Verify };
}
async function temps(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).filter((p) => String(p).endsWith('.s321tmp')).map(String);
}

t.test('verify heals a rotted mirror copy and a deleted RAID copy; the rotted bytes stay in quarantine', async (t) => {
  t.equal(settled.ledger.compliant, settled.ledger.assets, 'every asset compliant to begin with');
  const assets = (await list()).filter((a) => a.size > 64 * 1024);
  const [x, y] = assets;
  if (x === undefined || y === undefined) throw new Error('too few assets');
  const rottenPath = copyOf(x, 'mirror').where;
  await rotByte(rottenPath, 4096);
  const rotten = await readFile(rottenPath);
  await unlink(copyOf(y, 'raid').where);

  const { code, report } = await verify();
  t.equal(code, 0, 'verify exits 0: everything verified or healed');
  t.same(
    report.lost.map((l) => [l.hash, l.target, l.code, l.healed, l.healedFrom?.target]).sort(),
    [
      [x.hash, 'mirror', 'DURABLE_HASH_MISMATCH', true, 'raid'],
      [y.hash, 'raid', 'DURABLE_MISSING', true, 'mirror'],
    ].sort(),
    'per lost copy: healed, and from where',
  );
  t.equal(await b3(copyOf(x, 'mirror').where), await b3(copyOf(x, 'raid').where), 'b3sum: mirror equals raid');
  t.equal(await b3(copyOf(x, 'mirror').where), x.hash);
  t.equal(await b3(copyOf(y, 'raid').where), await b3(copyOf(y, 'mirror').where), 'b3sum: raid equals mirror');
  const q = report.lost.find((l) => l.target === 'mirror')?.quarantinedPath ?? '';
  t.match(q, /^\.s321-quarantine\/\d{4}-\d{2}-\d{2}\//);
  t.same(await readFile(join(demo.paths.mirror, q)), rotten, 'the rotted bytes are kept in the quarantine');
  const s = await status();
  t.match(s.targetReport.find((r) => r.target === 'mirror')?.quarantine, { count: 1, bytes: x.size });
  t.equal(s.ledger.compliant, s.ledger.assets, 'compliant again');
  const view = (await demo.studioctlJson<{ assets: AssetView[] }>(['asset', x.hash])).assets[0];
  t.match(
    view?.copies.find((c) => c.target === 'mirror'),
    { healedFrom: { target: 'raid' } },
  );
  t.match((await demo.studioctl(['status'])).stdout, /quarantine: 1 damaged file/);
});

t.test('--no-repair only reports (exit 3); a verify after it heals', async (t) => {
  const [, , z] = (await list()).filter((a) => a.size > 64 * 1024);
  if (z === undefined) throw new Error('too few assets');
  const path = copyOf(z, 'mirror').where;
  await rotByte(path, 10);
  const rotten = await readFile(path);
  const r = await verify(['--no-repair']);
  t.equal(r.code, 3, 'a copy is lost and not healed');
  t.same(
    r.report.lost.map((l) => [l.target, l.healed, l.notHealed?.code]),
    [['mirror', false, 'NOT_REPAIRED']],
  );
  t.same(await readFile(path), rotten, 'the file is left as it was');
  const r2 = await verify();
  t.equal(r2.code, 0);
  t.same(
    r2.report.lost.map((l) => [l.target, l.code, l.healed]),
    [['mirror', 'RECOVERY_COPY_NOT_RECORDED', true]],
  );
  t.equal(await b3(path), z.hash);
});

t.test('the RAID root replaced by an empty folder: status honest at once, with since and why', async (t) => {
  const raid = demo.paths.raid;
  await rename(raid, `${raid}.old-disk`);
  await mkdir(raid);
  try {
    const s = await status();
    const row = s.targetReport.find((r) => r.target === 'raid');
    t.equal(row?.available, false);
    t.match(row?.unavailable, { since: /^\d{4}-/, code: 'STUDIO_TARGET_MISSING', reason: /marker/ });
    t.same(s.unavailableTargets, ['raid']);
    const text = (await demo.studioctl(['status'])).stdout;
    t.notMatch(text, /compliant: [\d,]+ of [\d,]+/, 'no longer "N of N compliant"');
    t.match(text, /TARGET RAID UNAVAILABLE since/);
    const v = await verify(['--target', 'raid']);
    t.same(v.report.lost, [], 'an unavailable disk is not read as "every copy lost"');
  } finally {
    await rm(raid, { recursive: true, force: true });
    await rename(`${raid}.old-disk`, raid);
  }
  const back = await status();
  t.same(back.unavailableTargets, [], 'available again');
  t.equal(back.ledger.compliant, back.ledger.assets);
});

t.test(
  'kill -9 in the middle of a heal loop: after a restart verify heals the rest; nothing unverified counts',
  async (t) => {
    const assets = await list();
    const rounds = 3;
    // Every mirror file deleted behind studiod's back; each round's verify heals some and is cut by a kill.
    for (const a of assets) await rm(copyOf(a, 'mirror').where, { force: true });
    const started = Date.now();
    for (let round = 0; round < rounds; round++) {
      const killAt = 1 + Math.floor(Math.random() * 3);
      let healedLines = 0;
      const killed = new Promise<void>((resolve) => {
        demo.onStudiodLine((line) => {
          if (!line.includes('was made again')) return;
          healedLines++;
          if (healedLines === killAt) void demo.killStudiod().then(resolve);
        });
      });
      const run = demo.studioctl(['verify']);
      const first = await Promise.race([killed.then(() => 'killed'), run.then(() => 'verify ended')]);
      t.equal(first, 'killed', `round ${round}: studiod killed after ${killAt} heal(s), during the verify`);
      const r = await run;
      t.equal(r.code, 1, `round ${round}: studioctl says the verify was cut`);
      t.match(r.stderr, /STUDIO_NOT_RUNNING/);
      await demo.startStudiod();
      // Nothing counted that is not verified: every mirror copy recorded since the deletion (by a heal) hashes right.
      let healed = 0;
      for (const a of await list()) {
        const m = a.copies.find((c) => c.target === 'mirror') as (Copy & { verifiedAt: number }) | undefined;
        if (m === undefined || m.verifiedAt < started) continue;
        healed++;
        t.equal(await b3(m.where), a.hash, `round ${round}: a mirror copy counted after a heal verifies`);
      }
      t.ok(healed < assets.length, `round ${round}: cut mid-loop (${healed} of ${assets.length} healed so far)`);
    }
    const { code, report } = await verify();
    t.equal(code, 0, 'the verify after the restarts heals the rest');
    t.ok(report.healed > 0);
    const s = await status();
    t.equal(s.ledger.compliant, s.ledger.assets, 'every asset compliant');
    for (const a of await list())
      t.equal(await b3(copyOf(a, 'mirror').where), await b3(copyOf(a, 'raid').where), 'b3sum: mirror equals raid');
    t.same(await temps(demo.paths.mirror), [], 'no temp file left on the mirror');
  },
);
