/**
 * Rename templates at ingest, in process (real files, the real state LevelDB, the real
 * offload): real camera files (test/fixtures/camera) give each sidecar group one new stem,
 * every file keeping its extension as written; a value the files do not have falls back as
 * documented (`unknown`, the DCF number, the oldest mtime); names that clash within a card go
 * to `~2` with their sidecars, two cards with the same names both keep every file, nothing is
 * overwritten; the state keeps the name on the card. A template with a typo is
 * AGENT_RENAME_TEMPLATE naming the token, and nothing was read or copied.
 */
import t, { type Test } from 'tap';
import { readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createLogger } from '@studio321/protocol';
import { AgentState } from '@studio321/agent/state';
import { ingestFolder, parseRenameTemplate, type IngestRequest } from '@studio321/agent/offload';
import { REPO } from '../../lib/agent-harness.js';
import { listFiles, makeCard, tempDir } from '../../lib/studio-harness.js';

const FIXTURES = join(REPO, 'test', 'fixtures', 'camera');
const sony = await readFile(join(FIXTURES, 'sony-ilce6000-head.jpg')); // 2014-04-18 20:33:53, serial fefef80c, shutter 885
const canon = await readFile(join(FIXTURES, 'canon-s40.jpg')); // 2003-12-14 12:01:44, Canon S40, FileNumber 117-1771
const tail = (n: number): Buffer => Buffer.concat([sony, Buffer.alloc(1000 + n, n)]); // same EXIF, other content
const BODIES = { fefef80c: 'A' };

async function setup(t: Test): Promise<{ base: string; store: string; state: AgentState }> {
  const base = await tempDir(t, 'rename-');
  const state = await AgentState.open(join(base, 'data'));
  t.teardown(() => state.close());
  return { base, store: join(base, 'store'), state };
}

function ingest(state: AgentState, store: string, req: IngestRequest): ReturnType<typeof ingestFolder> {
  return ingestFolder(
    {
      state,
      store,
      fieldDrives: [],
      copiesNeeded: 1,
      renaming: { bodies: BODIES },
      log: createLogger({ name: 'test', level: 'silent' }),
      signal: new AbortController().signal,
      sweepTemps: true,
    },
    req,
  );
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every stored file of a card folder and the card file it must equal, byte for byte. */
async function sameBytes(t: Test, stored: string, source: string): Promise<void> {
  t.equal(sha(await readFile(stored)), sha(await readFile(source)), `${stored} holds ${source}`);
}

t.test(
  'a group is renamed as one; missing values fall back as documented; the state keeps the card name',
  async (t) => {
    const { base, store, state } = await setup(t);
    const card = join(base, 'card');
    await makeCard(card, [
      { path: 'DCIM/100MSDCF/DSC00885.JPG', size: sony.length, data: sony },
      { path: 'DCIM/100MSDCF/DSC00885.ARW', size: 4000 },
      { path: 'DCIM/100MSDCF/DSC00885.xmp', size: 300 },
      { path: 'DCIM/100CANON/IMG_1771.JPG', size: canon.length, data: canon },
      { path: 'DCIM/100CANON/IMG_1771.XMP', size: 310 },
      { path: 'DCIM/100CANON/IMG_0005.CR3', size: 5000 },
    ]);
    const noExif = new Date('2026-11-26T23:59:50Z');
    await utimes(join(card, 'DCIM/100CANON/IMG_0005.CR3'), noExif, noExif);
    const out = await ingest(state, store, {
      root: card,
      shoot: 'wedding',
      rename: '{date:YYYYMMDD}-{time:HHmmss}_{body}_{seq:4}',
    });
    t.equal(out.ok, true, JSON.stringify(out.failed));
    t.equal(out.copied, 6);
    const names = (await listFiles(join(store, 'wedding', out.card))).sort();
    t.same(names, [
      'DCIM/100CANON/20031214-120144_Canon-S40_1771.JPG', // no serial: the model; FileNumber 117-1771 → 1771
      'DCIM/100CANON/20031214-120144_Canon-S40_1771.XMP', // the XMP takes its JPEG's values
      'DCIM/100CANON/20261126-235950_unknown_0005.CR3', // no EXIF: the mtime (UTC), `unknown`, the DCF number
      'DCIM/100MSDCF/20140418-203353_A_0885.ARW', // the body's nickname by serial, the shutter count
      'DCIM/100MSDCF/20140418-203353_A_0885.JPG',
      'DCIM/100MSDCF/20140418-203353_A_0885.xmp', // the extension as the camera wrote it
    ]);
    await sameBytes(
      t,
      join(store, 'wedding', out.card, 'DCIM/100MSDCF/20140418-203353_A_0885.xmp'),
      join(card, 'DCIM/100MSDCF/DSC00885.xmp'),
    );
    await sameBytes(
      t,
      join(store, 'wedding', out.card, 'DCIM/100CANON/20031214-120144_Canon-S40_1771.JPG'),
      join(card, 'DCIM/100CANON/IMG_1771.JPG'),
    );
    const recorded = new Map<string, string | undefined>();
    for (const a of await state.listAssets()) for (const n of a.names) recorded.set(n.path, n.renamed);
    t.equal(recorded.get('DCIM/100MSDCF/DSC00885.ARW'), 'DCIM/100MSDCF/20140418-203353_A_0885.ARW', 'card name kept');
    t.equal(recorded.get('DCIM/100CANON/IMG_0005.CR3'), 'DCIM/100CANON/20261126-235950_unknown_0005.CR3');

    // Again: every file verified earlier, nothing renamed twice.
    const again = await ingest(state, store, { root: card, shoot: 'wedding', rename: '{name}_{serial}' });
    t.match(again, { ok: true, copied: 0, alreadyVerified: 6 });
    t.same((await listFiles(join(store, 'wedding', out.card))).sort(), names, 'the store is as it was');
  },
);

t.test('names that clash go to ~2 with their sidecars; two cards keep every file; nothing overwritten', async (t) => {
  const { base, store, state } = await setup(t);
  const cards = [join(base, 'card1'), join(base, 'card2')];
  for (const [c, dir] of cards.entries())
    await makeCard(dir, [
      { path: 'DCIM/100MSDCF/DSC00885.JPG', size: 0, data: tail(4 * c) },
      { path: 'DCIM/100MSDCF/DSC00885.XMP', size: 200 + c },
      { path: 'DCIM/100MSDCF/DSC00886.JPG', size: 0, data: tail(4 * c + 1) },
      { path: 'DCIM/100MSDCF/DSC00886.XMP', size: 210 + c },
    ]);
  const stored: string[][] = [];
  for (const [c, dir] of cards.entries()) {
    // Both groups of a card render the same name (no {seq}); both cards too.
    const out = await ingest(state, store, {
      root: dir,
      shoot: 's',
      cardLabel: `CARD${c + 1}`,
      rename: '{date:YYYY-MM-DD}_{body}',
    });
    t.match(out, { ok: true, copied: 4 });
    const files = (await listFiles(join(store, 's', out.card))).sort();
    stored.push(files);
    t.same(files, [
      'DCIM/100MSDCF/2014-04-18_A.JPG',
      'DCIM/100MSDCF/2014-04-18_A.XMP',
      'DCIM/100MSDCF/2014-04-18_A~2.JPG',
      'DCIM/100MSDCF/2014-04-18_A~2.XMP',
    ]);
    // Each ~N keeps its group: the JPEG and the XMP next to it came from one card group.
    const byName = new Map<string, string>();
    for (const a of await state.listAssets())
      for (const n of a.names) if (n.card === out.card && n.renamed !== undefined) byName.set(n.renamed, n.path);
    const jpg = byName.get('DCIM/100MSDCF/2014-04-18_A~2.JPG') ?? '';
    t.equal(
      byName.get('DCIM/100MSDCF/2014-04-18_A~2.XMP'),
      jpg.replace(/\.JPG$/, '.XMP'),
      `card ${c + 1}: ~2 holds one group`,
    );
    for (const [renamed, original] of byName)
      await sameBytes(t, join(store, 's', out.card, renamed), join(dir, original));
  }
  t.equal((await readdir(join(store, 's'))).length, 2, 'one folder per card: nothing of card 1 overwritten');
});

t.test('a template with a typo is refused naming the token; nothing is read or copied', async (t) => {
  const { base, store, state } = await setup(t);
  const card = join(base, 'card');
  await writeFile(join(base, 'x'), ''); // the base exists; the card folder is never even listed
  const cases: Array<[string, RegExp]> = [
    ['{dat:YYYYMMDD}_{seq:4}', /at \{dat:YYYYMMDD\}: unknown token \(did you mean date\?\)/],
    ['{seq:0}', /at \{seq:0\}: the width must be a digit from 1 to 9/],
    ['{seq:10}', /at \{seq:10\}/],
    ['{date:YYYYQQ}', /at \{date:YYYYQQ\}: "QQ" is not a date or time part/],
    ['{body:x}', /at \{body:x\}: \{body\} takes no ":x"/],
    ['shoot/{name}', /at "shoot\/": names are one file name/],
    ['..{name}', /at "\.\.": names are one file name/],
    ['.{name}', /at "\.": a name starting with "\." is hidden/],
    ['{name', /at \{name: a "\{" without its "\}"/],
    ['name}', /at "name\}": a "\}" without its "\{"/],
    ['', /at \(empty\)/],
  ];
  for (const [template, message] of cases) {
    t.throws(() => parseRenameTemplate(template), { code: 'AGENT_RENAME_TEMPLATE', message }, template);
    await t.rejects(
      ingest(state, store, { root: card, shoot: 's', rename: template }),
      { code: 'AGENT_RENAME_TEMPLATE', message },
      `ingest refuses ${JSON.stringify(template)}`,
    );
  }
  t.same(await state.listCards(), [], 'no card recorded');
  t.same(await listFiles(store), [], 'nothing copied');
});
