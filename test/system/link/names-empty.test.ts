/**
 * Files that must make it all the way, through real processes (field-agent CLI, studiod,
 * s3rver, studioctl): a zero-byte file, and names in every Unicode normalization form,
 * mixed in one folder, two pairs of them differing only by form.
 *
 * Card names are bytes on disk: the agent opens what readdir returned. Store and studio
 * names are NFC, so the second name of a pair gets a distinct name (`~2`) at the laptop,
 * at the mirror and the RAID; nothing overwrites anything, every asset gets its cloud
 * object (the empty one too), and restore gives back the bytes of each file.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '@studio321/protocol';
import { objectKey } from '@studio321/studiod/cloud';
import { headOrNull, independentClient, target } from '../../lib/cloud-fixture.js';
import { S3rverProcess } from '../../lib/s3rver.js';
import { listFiles, makeAgent, makeCard, pairAgent, startStudiod, tempDir, waitFor } from '../../lib/studio-harness.js';

/** One text whose four forms are four different strings: the ligature ﬁ (compatibility) and é (canonical). */
const TEXT = 'ﬁancé';
const FORMS = ['NFC', 'NFD', 'NFKC', 'NFKD'] as const;
const name = (form: (typeof FORMS)[number]): string => `DCIM/100CANON/${TEXT.normalize(form)}.CR3`;
t.equal(new Set(FORMS.map((f) => TEXT.normalize(f))).size, 4, 'the four forms differ on disk');

const s3 = new S3rverProcess({ buckets: ['cloud-east'] });
await s3.start();
t.teardown(() => s3.kill());
const cloud = target('cloud-east', s3.endpoint, 'cloud-east');
const studio = await startStudiod(t, { cloud: [cloud] });
const base = await tempDir(t, 'names-empty-');
const card = join(base, 'card');
const files = [
  { path: 'DCIM/100CANON/EMPTY.CR3', size: 0 },
  ...FORMS.map((f, i) => ({ path: name(f), size: 1000 + i })),
  // Alone in its folder: an NFD name with no NFC twin keeps its (NFC) name.
  { path: `DCIM/101CANON/${'Zoë'.normalize('NFD')}.CR3`, size: 2000 },
];
await makeCard(card, files);
const cardHash = new Map<string, string>();
for (const f of files) cardHash.set(f.path, (await hashFile(join(card, f.path))).blake3);
const hashes = (m: Iterable<string>): string[] => [...m].sort();

const agent = await makeAgent(t);
await pairAgent(studio, agent);
const ingest = await agent.cli(['ingest', card, '--shoot', 'shoot1', '--card-label', 'CARD1', '--json']);
const lines = ingest.stdout
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as Record<string, unknown>);
const done = lines.find((l) => l['event'] === 'done') as {
  copied: number;
  failed: unknown[];
  warnings: Array<{ path: string; code: string; message: string }>;
  storeDir: string;
  safeToFormat: { safe: boolean; reason: string };
};

t.test('ingest: every form is read from the card, the empty file is kept and its warning names it', async (t) => {
  t.equal(ingest.code, 0, `exit 0 (${ingest.stderr})`);
  t.equal(done.copied, files.length, 'every file copied');
  t.same(done.failed, []);
  t.same(
    done.warnings.map((w) => [w.path, w.code]),
    [['DCIM/100CANON/EMPTY.CR3', 'AGENT_ZERO_BYTE_FILE']],
    '--json names the file and the reason',
  );
  t.match(done.safeToFormat.reason, /1 warning to review: DCIM\/100CANON\/EMPTY\.CR3 \(AGENT_ZERO_BYTE_FILE\)/);
  const text = await agent.cli(['ingest', card, '--shoot', 'shoot1', '--card-label', 'CARD1']);
  t.match(text.stdout, /WARNING DCIM\/100CANON\/EMPTY\.CR3: AGENT_ZERO_BYTE_FILE: .*empty \(0 bytes\)/);
  const store = await listFiles(done.storeDir);
  const nfc = TEXT.normalize('NFC');
  const nfkc = TEXT.normalize('NFKC');
  t.same(
    store,
    [
      'DCIM/100CANON/EMPTY.CR3',
      `DCIM/100CANON/${nfkc}.CR3`,
      `DCIM/100CANON/${nfkc}~2.CR3`,
      `DCIM/100CANON/${nfc}.CR3`,
      `DCIM/100CANON/${nfc}~2.CR3`,
      `DCIM/101CANON/${'Zoë'.normalize('NFC')}.CR3`,
    ].sort(),
    'laptop store: NFC names, the second of each pair suffixed',
  );
  const stored = [];
  for (const p of store) stored.push((await hashFile(join(done.storeDir, p))).blake3);
  t.same(hashes(stored), hashes(cardHash.values()), 'the laptop holds the bytes of every card file');
});

t.test('studio: mirror, RAID and cloud hold every file, the empty one too; verify and restore', async (t) => {
  const sync = await agent.cli(['sync'], 120_000);
  t.equal(sync.code, 0, `sync exit 0 (${sync.stderr})`);
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await studio.ctl(['--json', ...args]);
    if (r.code !== 0 && r.code !== 3) throw new Error(`studioctl ${args.join(' ')}: ${r.code} ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  await waitFor(
    async () => {
      const s = await json<{ ledger: { assets: number; compliant: number } }>(['status']);
      return s.ledger.assets === files.length && s.ledger.compliant === files.length;
    },
    'every asset, the empty one too, 3-2-1 compliant (its cloud copy verified)',
    60_000,
    100,
  );
  for (const root of [studio.dirs.mirror, studio.dirs.raid]) {
    const on = await listFiles(root);
    t.equal(on.length, files.length, `${root}: one file per card file, none overwritten`);
    const got = [];
    for (const p of on) got.push((await hashFile(join(root, p))).blake3);
    t.same(hashes(got), hashes(cardHash.values()), `${root}: the bytes of every card file`);
  }
  const c = independentClient(s3.endpoint);
  t.teardown(() => c.destroy());
  for (const [path, h] of cardHash) {
    const head = await headOrNull(c, cloud.bucket, objectKey(cloud, h));
    t.equal(head?.size, files.find((f) => f.path === path)?.size, `cloud object of ${path}`);
  }
  const verify = await studio.ctl(['verify']);
  t.equal(verify.code, 0, `studioctl verify: every copy checks out (${verify.stdout}${verify.stderr})`);

  // The empty file's local copies gone: restore reads it from the cloud.
  const empty = cardHash.get('DCIM/100CANON/EMPTY.CR3') ?? '';
  const view = await json<{ assets: Array<{ hash: string; copies: Array<{ target: string; where: string }> }> }>([
    'asset',
    'EMPTY.CR3',
  ]);
  for (const copy of view.assets[0]?.copies ?? [])
    if (copy.target === 'mirror' || copy.target === 'raid') await unlink(copy.where);
  const to = join(base, 'restored');
  const r = await studio.ctl(['--json', 'restore', '--card', 'CARD1', '--to', to]);
  t.equal(r.code, 0, `restore exit 0 (${r.stderr})`);
  const rep = JSON.parse(r.stdout) as {
    files: Array<{ path: string; status: string; source?: string; dest?: string }>;
  };
  t.equal(rep.files.length, files.length, 'every file restored');
  t.equal(rep.files.find((f) => f.path.endsWith('EMPTY.CR3'))?.source, 'cloud-east', 'the empty file from the cloud');
  const restored = new Map<string, string>();
  for (const f of rep.files) {
    t.equal(f.status, 'restored', f.path);
    restored.set(f.path, (await hashFile(f.dest ?? '')).blake3);
  }
  t.same(hashes(restored.values()), hashes(cardHash.values()), 'restore gives back the bytes of every file');
  t.equal(restored.get(rep.files.find((f) => f.path.endsWith('EMPTY.CR3'))?.path ?? ''), empty);
  // Each restored name has the bytes its studio name holds (the pairs are not swapped).
  for (const f of rep.files.filter((x) => !x.path.endsWith('EMPTY.CR3'))) {
    const mirror = createHash('sha256')
      .update(await readFile(join(studio.dirs.mirror, f.path)))
      .digest('hex');
    const back = createHash('sha256')
      .update(await readFile(f.dest ?? ''))
      .digest('hex');
    t.equal(back, mirror, `${f.path}: restored bytes equal the mirror's under that name`);
  }
});
