/**
 * A sidecar group is filed under one date at the studio, through real processes
 * (field-agent ingest and sync, studiod): the JPEG's EXIF capture day for the whole
 * group (a real Canon S40 file, test/fixtures/camera), even for its XMP written after
 * midnight; a group with no EXIF under the UTC day of its oldest mtime, said so
 * (`dateSource: 'mtime'`). The agent state and the studio catalogue keep what was read.
 * The group is one asset in `studioctl asset`/`assets`/`status`: safe when every member is. A card
 * renamed at ingest by a template is filed under its new names; the ledger keeps the names on the card.
 */
import t from 'tap';
import { readFile, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentState } from '@studio321/agent/state';
import { listFiles, makeAgent, makeCard, pairAgent, startStudiod, tempDir, waitFor } from '../../lib/studio-harness.js';
import { REPO } from '../../lib/agent-harness.js';

// Two local copies make an asset safe here, so one lost copy shows in the group verdict.
const studio = await startStudiod(t, { policy: { copies: 2, media: 1, offsite: 0 } });
const base = await tempDir(t, 'capture-group-');
const card = join(base, 'card');
const canon = await readFile(join(REPO, 'test', 'fixtures', 'camera', 'canon-s40.jpg'));
const files = [
  { path: 'DCIM/100CANON/IMG_1771.JPG', size: canon.length, data: canon },
  { path: 'DCIM/100CANON/IMG_1771.XMP', size: 300 },
  { path: 'DCIM/100CANON/IMG_1772.CR3', size: 5000 },
  { path: 'DCIM/100CANON/IMG_1772.XMP', size: 310 },
];
await makeCard(card, files);
// Each group's files written a minute apart around midnight UTC.
const mtimes: Record<string, string> = {
  'IMG_1771.JPG': '2026-11-26T23:59:30Z',
  'IMG_1771.XMP': '2026-11-27T00:00:30Z',
  'IMG_1772.CR3': '2026-11-26T23:59:50Z',
  'IMG_1772.XMP': '2026-11-27T00:00:50Z',
};
for (const f of files) {
  const at = new Date(mtimes[f.path.split('/').pop() ?? ''] ?? 0);
  await utimes(join(card, f.path), at, at);
}

const agent = await makeAgent(t);
await pairAgent(studio, agent);
const ingest = await agent.cli(['ingest', card, '--shoot', 'wedding', '--card-label', 'CARD1', '--json']);

t.test('the agent state keeps each name with its group date and what the file says', async (t) => {
  t.equal(ingest.code, 0, `ingest exit 0 (${ingest.stderr})`);
  const state = await AgentState.open(agent.dataDir);
  t.teardown(() => state.close());
  const byPath = new Map<string, unknown>();
  for (const a of await state.listAssets())
    for (const n of a.names) byPath.set(n.path.split('/').pop() ?? '', n.capture);
  t.same(byPath.get('IMG_1771.JPG'), {
    day: '2003-12-14',
    dateSource: 'exif',
    takenAt: '2003-12-14T12:01:44',
    camera: 'Canon S40',
    imageNumber: 1171771,
  });
  t.same(byPath.get('IMG_1771.XMP'), { day: '2003-12-14', dateSource: 'exif' }, 'the XMP takes its JPEG’s day');
  t.same(byPath.get('IMG_1772.CR3'), { day: '2026-11-26', dateSource: 'mtime' }, 'no EXIF: the oldest mtime');
  t.same(byPath.get('IMG_1772.XMP'), { day: '2026-11-26', dateSource: 'mtime' });
});

t.test('the studio files each group in one date folder and keeps the capture metadata', async (t) => {
  const sync = await agent.cli(['sync'], 120_000);
  t.equal(sync.code, 0, `sync exit 0 (${sync.stderr})`);
  const expected = (day: string, name: string): RegExp => new RegExp(`^${day}/wedding/[^/]+/DCIM/100CANON/${name}$`);
  for (const root of [studio.dirs.mirror, studio.dirs.raid]) {
    await waitFor(async () => (await listFiles(root)).length === files.length, 'the four files committed');
    const stored = await listFiles(root);
    for (const [day, name] of [
      ['2003-12-14', 'IMG_1771\\.JPG'],
      ['2003-12-14', 'IMG_1771\\.XMP'],
      ['2026-11-26', 'IMG_1772\\.CR3'],
      ['2026-11-26', 'IMG_1772\\.XMP'],
    ] as const) {
      t.ok(
        stored.some((p) => expected(day, name).test(p)),
        `${root === studio.dirs.mirror ? 'mirror' : 'raid'}: ${name} under ${day} (${stored.join(', ')})`,
      );
    }
  }
  const r = await studio.ctl(['--json', 'asset', 'IMG_1771.JPG']);
  t.equal(r.code, 0, r.stderr);
  const view = JSON.parse(r.stdout) as { assets: Array<{ names: Array<{ capture?: unknown }> }> };
  t.same(
    view.assets[0]?.names[0]?.capture,
    {
      day: '2003-12-14',
      dateSource: 'exif',
      takenAt: '2003-12-14T12:01:44',
      camera: 'Canon S40',
      imageNumber: 1171771,
    },
    'the catalogue keeps what the agent read',
  );
  const text = await studio.ctl(['asset', 'IMG_1772.XMP']);
  t.match(
    text.stdout,
    /filed under 2026-11-26 \(no capture time found: the file date\)/,
    'asset says the date is a file date',
  );
});

t.test('one group verdict: the group is 3-2-1 safe only while every member is', async (t) => {
  interface View {
    assets: Array<{
      compliant: boolean;
      group?: { compliant: boolean; members: Array<{ path: string; compliant: boolean }> };
    }>;
  }
  const view = async (name: string): Promise<View['assets'][number] | undefined> =>
    (JSON.parse((await studio.ctl(['--json', 'asset', name])).stdout) as View).assets[0];
  const groups = async (): Promise<{ groups: number; groupsCompliant: number }> =>
    (
      JSON.parse((await studio.ctl(['--json', 'status'])).stdout) as {
        ledger: { groups: number; groupsCompliant: number };
      }
    ).ledger;
  t.match(await groups(), { groups: 2, groupsCompliant: 2 }, 'status: two groups, both safe');
  const before = await view('IMG_1771.JPG');
  t.equal(before?.group?.compliant, true, 'both members safe: the group is');
  t.same(
    before?.group?.members.map((m) => [m.path.split('/').pop(), m.compliant]),
    [
      ['IMG_1771.JPG', true],
      ['IMG_1771.XMP', true],
    ],
  );
  const stored = (await listFiles(studio.dirs.mirror)).find((p) => p.endsWith('IMG_1771.XMP')) ?? '';
  await unlink(join(studio.dirs.mirror, stored));
  const verify = await studio.ctl(['--json', 'verify', '--target', 'mirror', '--no-repair']);
  t.equal(verify.code, 3, `verify finds the lost copy (${verify.stderr})`);
  const after = await view('IMG_1771.JPG');
  t.equal(after?.compliant, true, 'the JPEG itself is still safe');
  t.equal(after?.group?.compliant, false, 'but its group is not: its XMP lost a copy');
  const text = await studio.ctl(['asset', 'IMG_1771.JPG']);
  t.match(
    text.stdout,
    /group \(2 files\): NOT SAFE\n\s+compliant\s+\S+IMG_1771\.JPG {2}\(this file\)\n\s+NOT SAFE\s+\S+IMG_1771\.XMP/,
  );
  const list = await studio.ctl(['assets']);
  t.match(list.stdout, /group of 2 files: NOT SAFE \(1 not safe\)/, 'assets shows the group verdict');
  t.match(await groups(), { groups: 2, groupsCompliant: 1 }, 'status counts the same group verdict');
  t.match(
    (await studio.ctl(['status'])).stdout,
    /in 2 groups \(RAW \+ JPEG \+ sidecars\), 1 3-2-1 safe \(a group is safe when every member is\)/,
    'and says it in words',
  );
});

t.test('renamed at ingest: the studio files the new names and its ledger keeps the name on the card', async (t) => {
  const card2 = join(base, 'card2');
  await makeCard(card2, [
    { path: 'DCIM/100CANON/IMG_1771.JPG', size: canon.length, data: Buffer.concat([canon, Buffer.from('2')]) },
    { path: 'DCIM/100CANON/IMG_1771.XMP', size: 320 },
  ]);
  const typo = await agent.cli(['ingest', card2, '--shoot', 'wedding', '--rename', '{date:YYYYMMDD}_{sequence}']);
  t.equal(typo.code, 2, 'a template typo: exit 2');
  t.match(typo.stderr, /AGENT_RENAME_TEMPLATE: .* at \{sequence\}: unknown token/, 'naming the token');
  const ing = await agent.cli(['ingest', card2, '--shoot', 'wedding', '--rename', '{date:YYYYMMDD}_{body}_{seq:4}']);
  t.equal(ing.code, 0, `renamed ingest exit 0 (${ing.stderr})`);
  t.equal((await agent.cli(['sync'], 120_000)).code, 0, 'sync');
  const named = await waitFor(async () => {
    const stored = await listFiles(studio.dirs.raid);
    const ours = stored.filter((p) => /\/20031214_Canon-S40_1771\.(JPG|XMP)$/.test(p));
    return ours.length === 2 ? ours : undefined;
  }, 'the renamed group at the studio');
  t.match(named[0], /^2003-12-14\/wedding\/[^/]+\/DCIM\/100CANON\//, 'under its capture day, in its card folder');
  const r = await studio.ctl(['asset', '20031214_Canon-S40_1771.XMP']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /renamed at ingest; on the card: IMG_1771\.XMP/, 'asset shows the name on the card');
  const byOriginal = JSON.parse((await studio.ctl(['--json', 'asset', 'IMG_1771.XMP'])).stdout) as {
    assets: Array<{ names: Array<{ path: string; capture?: { originalName?: string } }> }>;
  };
  t.ok(
    byOriginal.assets.some((a) =>
      a.names.some((n) => n.path.endsWith('20031214_Canon-S40_1771.XMP') && n.capture?.originalName === 'IMG_1771.XMP'),
    ),
    'found by its name on the card too; the ledger keeps it with the name',
  );
});
