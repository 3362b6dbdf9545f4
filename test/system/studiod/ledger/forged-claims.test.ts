/**
 * A paired laptop cannot falsify the ledger (PRODUCT.md promise 7), with real
 * processes: a real studiod with a cloud target on a real s3rver, agent A (the
 * real field-agent) ingests and syncs a card, agent B (really paired, then
 * speaking the real protocol over a real TLS socket) declares copies named
 * `mirror`, `raid` and `cloud-east` — on A's assets it knows only by hash
 * (the `have` path) and on a file of its own (the commit path). Then the real
 * mirror and RAID files of A's assets are deleted and `studioctl verify
 * --no-repair` drops them: status, the verdict and `asset` must not report them
 * on the mirror or the RAID; B's claims appear only as B's field claims.
 */
import t from 'tap';
import { EXIT } from '@studio321/protocol';
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes, type AgentCopy } from '@studio321/protocol';
import { S3rverProcess } from '../../../lib/s3rver.js';
import { target } from '../../../lib/cloud-fixture.js';
import {
  dcfFiles,
  ingest,
  makeAgent,
  makeCard,
  pairAgent,
  startStudiod,
  tempDir,
  waitFor,
} from '../../../lib/studio-harness.js';
import { authedClient } from '../../../lib/studio-wire.js';

interface Copy {
  target: string;
  kind: string;
  agentId?: string;
  path: string;
}
interface AssetView {
  hash: string;
  compliant: boolean;
  copies: Copy[];
  fieldCopies: Copy[];
}
interface Status {
  counters: { copies: Record<string, { count: number }>; field: Record<string, Record<string, { count: number }>> };
  ledger: { assets: number; compliant: number; notCompliant: number };
  targetReport: Array<{ target: string; copies: number; missing: { count: number } | null }>;
  fieldCopies: Array<{ agentId: string; target: string; copies: number }>;
}

const s3 = new S3rverProcess({ buckets: ['east'] });
await s3.start();
t.teardown(() => s3.close());

const studio = await startStudiod(t, { cloud: [target('cloud-east', s3.endpoint, 'east')] });
const ctlJson = async <T>(args: string[], code = 0): Promise<T> => {
  const r = await studio.ctl(['--json', ...args]);
  if (r.code !== code) throw new Error(`studioctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};
const status = (): Promise<Status> => ctlJson<Status>(['status']);
const asset = async (hash: string): Promise<AssetView> =>
  (await ctlJson<{ assets: AssetView[] }>(['asset', hash])).assets[0] as AssetView;
const row = (s: Status, name: string) => s.targetReport.find((r) => r.target === name);

// Agent A: a real card, ingested and synced by the real field-agent; every asset reaches the cloud.
const agentA = await makeAgent(t);
const idA = await pairAgent(studio, agentA);
const card = join(await tempDir(t, 'card-'), 'card');
await makeCard(
  card,
  dcfFiles(3, () => 48 * 1024),
);
await ingest(agentA, card, 'wedding', 'A1');
const synced = await agentA.cli(['sync', '--json']);
if (synced.code !== 0) throw new Error(`sync failed: ${synced.stderr}`);
await waitFor(async () => ((await status()).ledger.compliant === 3 ? true : undefined), 'A’s assets 3-2-1 compliant');
const ofA = (await ctlJson<{ items: Array<{ hash: string; size: number }> }>(['assets'])).items;

// Agent B: really paired; it then speaks for itself only through its authenticated session.
const agentB = await makeAgent(t);
const idB = await pairAgent(studio, agentB);
const forged = (when: number): AgentCopy[] => [
  {
    target: 'mirror',
    device: 'mirror-1',
    media: 'hdd-mirror',
    location: 'calgary',
    verifiedAt: when,
    method: 'readback-blake3',
  },
  {
    target: 'raid',
    device: 'raid-1',
    media: 'hdd-raid',
    location: 'calgary',
    verifiedAt: when,
    method: 'readback-blake3',
  },
  {
    target: 'cloud-east',
    device: 'cloud:cloud-east',
    media: 'cloud-ssd',
    location: 'cloud-east',
    verifiedAt: when,
    method: 'head-size-sha256-meta',
  },
];

t.test('B attaches forged mirror/RAID/cloud claims to A’s assets by hash and to its own upload', async (t) => {
  const b = await authedClient(studio.url, agentB.dataDir);
  t.teardown(() => b.close());
  const own = randomBytes(40 * 1024);
  const ownHash = hashBytes(own);
  const now = Date.now();
  b.send({
    t: 'offer',
    batchId: 'forge-1',
    files: [
      ...ofA.map((a, i) => ({
        hash: a.hash,
        size: a.size + 1, // a lying size too: the claim takes the asset's size
        names: [{ shoot: 'heist', card: 'B1', path: `DCIM/100CANON/STOLEN_${i}.CR3`, mtime: now }],
        copies: forged(now),
      })),
      {
        hash: ownHash,
        size: own.length,
        names: [{ shoot: 'heist', card: 'B1', path: 'DCIM/100CANON/OWN.CR3', mtime: now }],
        copies: forged(now),
      },
    ],
  });
  const want = await b.next('want');
  t.same(want.have.sort(), ofA.map((a) => a.hash).sort(), 'A’s assets are had: the studio holds them');
  t.same(
    want.wants.map((w) => w.hash),
    [ownHash],
  );
  b.send({ t: 'chunk', hash: ownHash, offset: 0, data: own });
  b.send({ t: 'file-end', hash: ownHash, size: own.length });
  const receipts = new Map<string, { copies: Array<{ target: string }> }>();
  for (let i = 0; i < ofA.length + 1; i++) {
    const r = await b.next('receipt');
    receipts.set(r.hash, r);
  }
  t.same(
    receipts.get(ownHash)?.copies.map((c) => c.target),
    ['mirror', 'raid'],
    'the receipt of B’s own file lists only the studio’s copies',
  );
  await waitFor(async () => ((await status()).ledger.compliant === 4 ? true : undefined), 'B’s own file uploaded');

  const s = await status();
  t.equal(row(s, 'mirror')?.copies, 4, 'status: 4 mirror copies, the studio’s own, none of B’s claims');
  t.equal(row(s, 'raid')?.copies, 4);
  t.equal(row(s, 'cloud-east')?.copies, 4);
  t.same(
    Object.keys(s.counters.copies).sort(),
    ['cloud-east', 'mirror', 'raid'],
    'archive counters name only the studio’s targets',
  );
  const bClaims = s.fieldCopies.filter((f) => f.agentId === idB);
  t.same(
    bClaims.map((f) => [f.target, f.copies]).sort(),
    [
      ['cloud-east', 4],
      ['mirror', 4],
      ['raid', 4],
    ],
    'B’s claims are listed as B’s field claims',
  );
  t.ok(
    s.fieldCopies.every((f) => f.agentId === idA || f.agentId === idB),
    'every field claim is under the agent that made it',
  );
  t.ok(
    s.fieldCopies.filter((f) => f.agentId === idA).every((f) => !['mirror', 'raid', 'cloud-east'].includes(f.target)),
    'A’s own claims stay A’s (B cannot speak for A)',
  );
  const view = await asset(ofA[0]?.hash ?? '');
  t.same(
    view.copies.map((c) => [c.target, c.kind]).sort(),
    [
      ['cloud-east', 'cloud'],
      ['mirror', 'studio'],
      ['raid', 'studio'],
    ],
    'asset: one archive copy per target, the studio’s',
  );
  t.same(
    view.fieldCopies
      .filter((c) => c.agentId === idB)
      .map((c) => c.target)
      .sort(),
    ['cloud-east', 'mirror', 'raid'],
    'asset: B’s claims are field copies under B',
  );
});

t.test('the real mirror and RAID files deleted: verify drops them, status and the verdict say so', async (t) => {
  for (const a of ofA) {
    const view = await asset(a.hash);
    for (const c of view.copies)
      if (c.kind === 'studio')
        await unlink(join(c.target === 'mirror' ? studio.dirs.mirror : studio.dirs.raid, c.path));
  }
  const v = await studio.ctl(['--json', 'verify', '--no-repair']);
  t.equal(v.code, 3, 'verify exits 3: copies were lost');
  const lost = (JSON.parse(v.stdout) as { lost: Array<{ hash: string; target: string }> }).lost;
  t.equal(lost.length, 6, 'A’s 3 mirror and 3 RAID copies lost, nothing else');

  const s = await status();
  t.equal(row(s, 'mirror')?.copies, 1, 'status: the mirror holds only B’s own file');
  t.equal(row(s, 'raid')?.copies, 1);
  t.equal(row(s, 'mirror')?.missing?.count, 3, 'status: the mirror is missing A’s 3 assets');
  t.equal(row(s, 'raid')?.missing?.count, 3, 'status: the RAID is missing A’s 3 assets');
  t.equal(s.ledger.compliant, 1, 'only B’s own file (mirror + RAID + cloud) is compliant');
  t.equal(s.ledger.notCompliant, 3, 'A’s assets are not compliant, whatever B claims');
  // Exit 3: unprotected assets found (the one exit-status scheme).
  const unprot = await ctlJson<{ items: Array<{ hash: string }> }>(['assets', '--unprotected'], EXIT.notSafe);
  t.same(
    unprot.items.map((x) => x.hash).sort(),
    ofA.map((a) => a.hash).sort(),
    'assets --unprotected lists A’s assets',
  );
  for (const a of ofA) {
    const view = await asset(a.hash);
    t.notOk(view.compliant, `${a.hash.slice(0, 12)} is not compliant`);
    t.same(
      view.copies.map((c) => c.target),
      ['cloud-east'],
      'only the real cloud copy is an archive copy',
    );
    t.ok(
      view.fieldCopies.filter((c) => c.target === 'mirror' || c.target === 'raid').every((c) => c.agentId === idB),
      'the forged mirror/RAID copies remain only as B’s claims',
    );
  }
  const human = await studio.ctl(['status']);
  t.match(human.stdout, new RegExp(`mirror .*claimed by .*\\(${idB}\\)`), 'human status names the claimant');
});
