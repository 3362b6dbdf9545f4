/**
 * ASC MHL at offload: `field-agent ingest` leaves a `transfer` generation in the card's folder of
 * the laptop store, valid against the standard's own schemas (test/lib/ascmhl-xsd, checked with
 * xmllint), listing every copied file with the XXH3-64 that `xxhsum -H3` (the xxHash project's own
 * tool) computes; `studioctl mhl verify` passes on the intact folder and exits 3 naming the file
 * altered, removed or added. A second ingest that copies nothing adds no generation.
 *
 * The reference implementation's python tool (ascmitc/mhl) would be the independent check; the
 * test cannot install it (it is not a Debian package, and PyPI is not reachable here), so the
 * schema, xxhsum and the C4 of the chain stand in for it.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { appendFile, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { c4Id } from '@studio321/protocol/durable';
import { ingest, makeAgent, makeCard, pairAgent, run, startStudiod, tempDir } from '../../../lib/studio-harness.js';
import { xmllint } from '../../../lib/ascmhl.js';
import { missingTools } from '../../../lib/system-deps.js';

const STUDIOCTL = join(import.meta.dirname, '..', '..', '..', '..', 'studiod', 'dist', 'bin', 'studioctl.js');

t.test('an offload leaves a schema-valid ASC MHL generation that studioctl mhl verify checks', async (t) => {
  const missing = missingTools(['xmllint', 'xxhsum']);
  if (missing !== undefined) return void t.skip(missing, () => undefined);
  const agent = await makeAgent(t);
  const card = join(await tempDir(t, 'card-'), 'CARD');
  await makeCard(card, [
    { path: 'DCIM/100CANON/IMG_0001.CR3', size: 3 * 1024 * 1024 + 17 },
    { path: 'DCIM/100CANON/IMG_0001.XMP', size: 900 },
    { path: 'DCIM/100CANON/IMG_0002.JPG', size: 40_000 },
    { path: 'PRIVATE/M4ROOT/CLIP/C0001 & <b>.MP4', size: 70_000 },
  ]);
  await ingest(agent, card, 'wedding', 'CARD1');

  const shootDir = join(agent.dataDir, 'store', 'wedding');
  const [cardId] = await readdir(shootDir);
  if (cardId === undefined) throw new Error('no card folder in the store');
  const folder = join(shootDir, cardId);
  const mhlDir = join(folder, 'ascmhl');
  const names = (await readdir(mhlDir)).sort();
  t.equal(names.length, 2, `one generation and the chain (${names.join(', ')})`);
  const gen = names.find((n) => n.endsWith('.mhl')) as string;
  t.match(gen, new RegExp(`^0001_${cardId}_\\d{4}-\\d\\d-\\d\\d_\\d{6}Z\\.mhl$`), 'NNNN_<folder>_<date>Z.mhl');
  for (const [schema, file] of [
    ['ASCMHL.xsd', gen],
    ['ASCMHLDirectory.xsd', 'ascmhl_chain.xml'],
  ] as const) {
    const v = xmllint(schema, join(mhlDir, file));
    t.ok(v.ok, `${file} validates against ${schema} ${v.out}`);
  }
  const xml = await readFile(join(mhlDir, gen), 'utf8');
  t.match(xml, /<process>transfer<\/process>/, 'process transfer');
  t.match(xml, /<tool version="[^"]+">field-agent<\/tool>/, 'creator info names the tool');
  const chain = await readFile(join(mhlDir, 'ascmhl_chain.xml'), 'utf8');
  t.match(chain, `<c4>${c4Id(await readFile(join(mhlDir, gen)))}</c4>`, 'the chain holds the C4 of the generation');
  // Every file, with the XXH3-64 of the xxHash project's own tool.
  const stored = ['DCIM/100CANON/IMG_0001.CR3', 'DCIM/100CANON/IMG_0001.XMP', 'DCIM/100CANON/IMG_0002.JPG'];
  stored.push('PRIVATE/M4ROOT/CLIP/C0001 & <b>.MP4');
  for (const p of stored) {
    const sum = execFileSync('xxhsum', ['-H3', join(folder, p)])
      .toString()
      .trim();
    const hex = /([0-9a-f]{16})/.exec(sum)?.[1];
    const esc = p.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    t.match(
      xml,
      new RegExp(
        `>${esc.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}</path>\\s*<xxh3 action="original" [^>]*>${hex}</xxh3>`,
      ),
      `${p}: xxh3 ${hex}`,
    );
  }

  // The offload report a client is handed: CSV and a self-contained printable page.
  const csv = await agent.cli(['report', 'CARD1', '--csv']);
  t.equal(csv.code, 0, `report --csv exits 0 (${csv.stderr})`);
  const rows = csv.stdout.trimEnd().split('\r\n');
  t.equal(
    rows[0],
    'card,shoot,path,size,state,blake3,xxh3,verified_at,laptop,field-drive,studio mirror,studio raid,warning',
  );
  t.equal(rows.length, 5, 'a header and a line per file');
  const mp4 = rows.find((l) => l.includes('C0001')) ?? '';
  const mp4Hex = /([0-9a-f]{16})/.exec(
    execFileSync('xxhsum', ['-H3', join(folder, 'PRIVATE/M4ROOT/CLIP/C0001 & <b>.MP4')]).toString(),
  )?.[1];
  t.match(
    mp4,
    new RegExp(
      `^${cardId},wedding,PRIVATE/M4ROOT/CLIP/C0001 & <b>\\.MP4,70000,verified,[0-9a-f]{64},${mp4Hex},[^,]+,\\d{4}-[^,]+,,,,$`,
    ),
    'the file, its size, hashes and laptop copy',
  );
  const page = join(await tempDir(t, 'report-'), 'card1.html');
  const html = await agent.cli(['report', 'CARD1', '--html', '--out', page]);
  t.equal(html.code, 0, `report --html --out exits 0 (${html.stderr})`);
  const doc = await readFile(page, 'utf8');
  t.match(doc, 'C0001 &amp; &lt;b&gt;.MP4', 'names escaped');
  t.notMatch(doc, /<script|<link|\bsrc=|\bhref=|url\(/i, 'self-contained: no script, no external asset');
  const again = await agent.cli(['report', 'CARD1', '--html', '--out', page]);
  t.equal(again.code, 1, 'an existing report file is never replaced');
  t.match(again.stderr, /AGENT_REPORT_EXISTS/, 'with its code');
  t.equal(await readFile(page, 'utf8'), doc, 'and is left as it was');

  // Synced to a studio: the offered XXH3-64 is on its asset record, and the report lists the studio copies.
  const studio = await startStudiod(t);
  await pairAgent(studio, agent);
  t.equal((await agent.cli(['sync', '--json'])).code, 0, 'sync exits 0');
  const jpgHex = /([0-9a-f]{16})/.exec(
    execFileSync('xxhsum', ['-H3', join(folder, 'DCIM/100CANON/IMG_0002.JPG')]).toString(),
  )?.[1];
  const asset = JSON.parse((await studio.ctl(['--json', 'asset', 'IMG_0002.JPG'])).stdout) as {
    assets: Array<{ xxh3?: string }>;
  };
  t.equal(asset.assets[0]?.xxh3, jpgHex, 'studiod keeps the offered xxh3');
  const after = (await agent.cli(['report', 'CARD1', '--csv'])).stdout.split('\r\n');
  t.match(
    after.find((l) => l.includes('IMG_0002.JPG')) ?? '',
    /,\d{4}-[^,]+,,\d{4}-[^,]+,\d{4}-[^,]+,$/,
    'the report now names the studio mirror and raid copies',
  );
  await studio.kill('SIGTERM');

  const verify = () => run(STUDIOCTL, ['mhl', 'verify', folder]);
  let r = await verify();
  t.equal(r.code, 0, `intact folder: exit 0 (${r.stdout}${r.stderr})`);
  t.match(r.stdout, /1 generation\(s\), 4 file\(s\) checked — intact/);

  // The same card again copies nothing: no new generation.
  await ingest(agent, card, 'wedding', 'CARD1');
  t.equal((await readdir(mhlDir)).length, 2, 'a run that copied nothing adds no generation');

  // One bit flipped in a stored RAW: exit 3, naming it; so for a file removed or one added.
  const raw = join(folder, 'DCIM/100CANON/IMG_0001.CR3');
  const original = await readFile(raw);
  const flipped = Buffer.from(original);
  flipped[1000] = (flipped[1000] as number) ^ 1;
  await writeFile(raw, flipped);
  r = await verify();
  t.equal(r.code, 3, 'a tampered file: exit 3 (not safe)');
  t.match(r.stdout, /altered: DCIM\/100CANON\/IMG_0001\.CR3 \(xxh3 /, 'names the altered file');
  await writeFile(raw, original);
  await rm(join(folder, 'DCIM/100CANON/IMG_0001.XMP'));
  await writeFile(join(folder, 'DCIM/100CANON/IMG_0003.JPG'), 'not in any generation');
  r = await run(STUDIOCTL, ['--json', 'mhl', 'verify', folder]);
  t.equal(r.code, 3, 'a file missing and one new: exit 3');
  const rep = JSON.parse(r.stdout) as { missing: string[]; added: string[]; altered: unknown[]; ok: boolean };
  t.same(rep.missing, ['DCIM/100CANON/IMG_0001.XMP'], 'the missing file named');
  t.same(rep.added, ['DCIM/100CANON/IMG_0003.JPG'], 'the new file named');
  t.same(rep.altered, [], 'the restored RAW verifies again');

  // A generation altered after it was written no longer matches its C4 in the chain.
  await rm(join(folder, 'DCIM/100CANON/IMG_0003.JPG'));
  await writeFile(join(folder, 'DCIM/100CANON/IMG_0001.XMP'), 'x');
  await appendFile(join(mhlDir, gen), '<!-- edited -->\n');
  r = await verify();
  t.equal(r.code, 3, 'an edited generation: exit 3');
  t.match(r.stdout, /history: generation 1 \(.*\) was altered after it was written/);
});
