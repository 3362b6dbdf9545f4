/**
 * Restore with real processes: a studiod child with two cloud targets on a real
 * s3rver, a paired field agent that ingests and syncs real card folders, and
 * `studioctl restore`. An image deleted from the mirror AND the RAID comes back
 * from the cloud with the card's bytes (checked with b3sum); exit codes 0/3/2;
 * studiod SIGKILLed at random points of a larger restore leaves nothing partial
 * under a final name, its temps are swept at restart, and the restore run again
 * completes.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '@studio321/protocol';
import { b3sum } from '../../../lib/b3sum.js';
import { target } from '../../../lib/cloud-fixture.js';
import { S3rverProcess } from '../../../lib/s3rver.js';
import {
  STUDIOCTL_BIN,
  dcfFiles,
  ingest,
  makeAgent,
  makeCard,
  pairAgent,
  startStudiod,
  tempDir,
  waitFor,
} from '../../../lib/studio-harness.js';

const b3 = async (path: string): Promise<string> => b3sum(path);

async function files(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(join(dir, rel), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await files(dir, r)));
    else out.push(r);
  }
  return out.sort();
}

interface Report {
  complete: boolean;
  restored: number;
  present: number;
  files: Array<{
    path: string;
    status: string;
    source?: string;
    dest?: string;
    attempts: Array<{ target: string; code: string }>;
  }>;
  notFound: Array<{ query: string; code: string }>;
}

const s3 = new S3rverProcess({ buckets: ['cloud-east', 'cloud-west'] });
await s3.start();
t.teardown(() => s3.kill());
const extra = {
  cloud: [
    target('cloud-east', s3.endpoint, 'cloud-east'),
    target('cloud-west', s3.endpoint, 'cloud-west', {
      storageClass: 'DEEP_ARCHIVE',
      media: 'tape',
      location: 'cloud-west',
    }),
  ],
};
const studio = await startStudiod(t, extra);
const base = await tempDir(t, 'restore-sys-');
const cardA = join(base, 'card-a');
const cardB = join(base, 'card-b');
await makeCard(cardA, [
  { path: 'DCIM/100CANON/IMG_0001.CR3', size: 400_000 },
  { path: 'DCIM/100CANON/IMG_0001.JPG', size: 60_000 },
  { path: 'DCIM/100CANON/IMG_0002.CR3', size: 300_000 },
]);
const BIG = 30;
/** The larger card: other file names than card A's, so a name query finds one asset. */
const bigFiles = dcfFiles(BIG, (i) => 2_000_000 + i * 1000).map((f) => ({
  ...f,
  path: f.path.replace('IMG_', 'DSC_'),
}));
await makeCard(cardB, bigFiles);
const agent = await makeAgent(t);
await pairAgent(studio, agent);
await ingest(agent, cardA, 'shoot1', 'CARDA');
await ingest(agent, cardB, 'shoot1', 'CARDB');
const sync = await agent.cli(['sync'], 300_000);
if (sync.code !== 0) throw new Error(`sync failed: ${sync.stderr}`);

const json = async <T>(args: string[]): Promise<T> => {
  const r = await studio.ctl(['--json', ...args]);
  if (r.code !== 0) throw new Error(`studioctl ${args.join(' ')}: ${r.code} ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};
await waitFor(
  async () => {
    const s = await json<{ ledger: { assets: number; compliant: number } }>(['status']);
    return s.ledger.assets === BIG + 3 && s.ledger.compliant === s.ledger.assets;
  },
  'every asset uploaded to both clouds',
  240_000,
  250,
);

t.test(
  'an image deleted from mirror and RAID comes back from the cloud, with its group, b3sum equal to the card',
  async (t) => {
    const view = await json<{ assets: Array<{ copies: Array<{ target: string; where: string }> }> }>([
      'asset',
      'IMG_0001.CR3',
    ]);
    for (const c of view.assets[0]?.copies ?? [])
      if (c.target === 'mirror' || c.target === 'raid') await unlink(c.where);
    const to = join(base, 'restored');
    const r = await studio.ctl(['--json', 'restore', 'IMG_0001.CR3', '--to', to]);
    t.equal(r.code, 0, `exit 0 (${r.stderr})`);
    const rep = JSON.parse(r.stdout) as Report;
    t.same(
      rep.files.map((f) => [f.path.split('/').pop(), f.status]).sort(),
      [
        ['IMG_0001.CR3', 'restored'],
        ['IMG_0001.JPG', 'restored'],
      ],
      'the RAW and its JPEG',
    );
    const raw = rep.files.find((f) => f.path.endsWith('.CR3'));
    t.equal(raw?.source, 'cloud-east', 'from the hot cloud copy');
    t.same(
      raw?.attempts.map((a) => [a.target, a.code]),
      [
        ['mirror', 'DURABLE_SOURCE_FAILED'],
        ['raid', 'DURABLE_SOURCE_FAILED'],
      ],
      'the missing local copies are reported',
    );
    for (const f of rep.files) {
      const card = join(cardA, 'DCIM', '100CANON', f.path.split('/').pop() ?? '');
      t.equal(await b3(f.dest ?? ''), await b3(card), `b3sum: ${f.path} equals the card's`);
    }
    const human = await studio.ctl(['restore', 'IMG_0001.CR3', '--to', to]);
    t.equal(human.code, 0, 'again: already present, exit 0');
    t.match(human.stdout, /2 already present/);
  },
);

t.test('exit codes: 3 when something matched nothing, 2 on usage', async (t) => {
  const to = join(base, 'codes');
  const r3 = await studio.ctl(['--json', 'restore', 'IMG_0002.CR3', 'NO_SUCH_IMAGE.CR3', '--to', to]);
  t.equal(r3.code, 3);
  const rep = JSON.parse(r3.stdout) as Report;
  t.same(
    rep.notFound.map((n) => [n.query, n.code]),
    [['NO_SUCH_IMAGE.CR3', 'RECOVERY_NOT_FOUND']],
  );
  t.equal(rep.restored, 1, 'the other one was restored');
  t.equal((await studio.ctl(['restore', 'IMG_0002.CR3'])).code, 2, 'missing --to');
  t.equal((await studio.ctl(['restore', 'IMG_0002.CR3', '--to', to, '--bogus'])).code, 2, 'unknown flag');
  t.equal((await studio.ctl(['restore', '--to', to])).code, 2, 'nothing named');
  t.equal(
    (await studio.ctl(['restore', 'IMG_0002.CR3', '--to', to, '--from', 'tape-drawer'])).code,
    2,
    'unknown --from',
  );
  const pending = await studio.ctl(['restore', '--pending']);
  t.same([pending.code, pending.stdout], [0, 'no archive restore pending\n']);
});

t.test(
  'kill -9 studiod during a restore, at random points: nothing partial, the restore completes after a restart',
  async (t) => {
    const cardHash = new Map<string, string>();
    for (const f of bigFiles) cardHash.set(f.path.split('/').pop() ?? '', (await hashFile(join(cardB, f.path))).blake3);
    for (let round = 0; round < 2; round++) {
      const to = join(base, `kill-${round}`);
      await mkdir(to);
      const killAt = 1 + Math.floor(Math.random() * (BIG - 10));
      const child = spawn(
        process.execPath,
        [STUDIOCTL_BIN, '--socket', studio.controlSocket, 'restore', '--card', 'CARDB', '--to', to, '--progress'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
      });
      child.stdout.resume();
      const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
      await waitFor(
        () => {
          const done = [...err.matchAll(/(\d+)\/\d+ files/g)].map((m) => Number(m[1]));
          return (done.at(-1) ?? 0) >= killAt;
        },
        `progress past ${killAt} files`,
        120_000,
      );
      await studio.kill('SIGKILL');
      t.equal(await exited, 1, `round ${round}: studioctl says studiod went away (killed after ${killAt} files)`);
      t.match(err, /STUDIO_NOT_RUNNING/);
      const finals = (await files(to)).filter((p) => !p.endsWith('.s321tmp'));
      for (const p of finals)
        t.equal(
          (await hashFile(join(to, p))).blake3,
          cardHash.get(p.split('/').pop() ?? ''),
          `complete under its final name: ${p}`,
        );
      await studio.writeConfig(studio.port, extra);
      await studio.start();
      t.same(
        (await files(to)).filter((p) => p.endsWith('.s321tmp')),
        [],
        'the temps were swept at restart',
      );
      const again = await studio.ctl(['--json', 'restore', '--card', 'CARDB', '--to', to]);
      t.equal(again.code, 0, `the restore run again completes (${again.stderr})`);
      const rep = JSON.parse(again.stdout) as Report;
      t.equal(rep.restored + rep.present, BIG);
      t.ok(rep.present >= finals.length, `${finals.length} files already there are kept, not written again`);
      const all = await files(to);
      t.equal(all.length, BIG, 'exactly the card, no ~2 duplicates, no temps');
      for (const p of all) t.equal(await b3(join(to, p)), cardHash.get(p.split('/').pop() ?? ''), `${p} verified`);
    }
  },
);
