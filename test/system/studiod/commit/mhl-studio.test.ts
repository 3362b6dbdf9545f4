/**
 * ASC MHL from card to archive (docs/design.md "ASC MHL"): a real field agent ingests a card and
 * syncs it to a real studiod. The card's folder on the mirror AND on the RAID then carries
 * `ascmhl/` with the agent's generation (its bytes as the agent wrote them: the same C4) followed
 * by studiod's own, every generation valid against the standard's schema and the chain against
 * its own (xmllint, test/lib/ascmhl-xsd), studiod's listing every file with the XXH3-64 that the
 * xxHash project's own `xxhsum -H3` computes of the committed file. More files of the same card
 * synced later append generations (the earlier ones unchanged), and one flipped byte of a photo
 * makes `studioctl mhl verify` exit 3 naming the file.
 *
 * The reference implementation's python tool (ascmitc/mhl) would be the independent ASC MHL
 * check; it is not a Debian package and PyPI is not reachable here, so the schemas, xxhsum and
 * the C4 of the chain stand in for it.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { c4Id, mhlCreatorTool, readMhlHistory, type MhlGenerationRecord } from '@studio321/protocol/durable';
import {
  dcfFiles,
  ingest,
  makeAgent,
  makeCard,
  pairAgent,
  run,
  startStudiod,
  STUDIOCTL_BIN,
  tempDir,
  waitFor,
} from '../../../lib/studio-harness.js';
import { xmllint } from '../../../lib/ascmhl.js';
import { missingTools } from '../../../lib/system-deps.js';

/** `xxhsum -H3` of the files under `dir` (one run for all): path → hex. */
function xxhsum(dir: string, paths: string[]): Map<string, string> {
  const out = execFileSync('xxhsum', ['-H3', ...paths], { cwd: dir }).toString();
  const m = new Map<string, string>();
  for (const line of out.trim().split('\n')) {
    // `XXH3 (path) = hex` (the BSD form xxhsum prints for -H3), or `hex  path`.
    const bsd = /^XXH3 \((.+)\) = ([0-9a-f]{16})$/.exec(line);
    const gnu = /^([0-9a-f]{16}) {2}(.+)$/.exec(line);
    if (bsd !== null) m.set(bsd[1] as string, bsd[2] as string);
    else if (gnu !== null) m.set(gnu[2] as string, gnu[1] as string);
  }
  return m;
}

t.test('studiod appends its ASC MHL generation after the agent’s, on both targets', async (t) => {
  const missing = missingTools(['xmllint', 'xxhsum']);
  if (missing !== undefined) return void t.skip(missing, () => undefined);
  const agent = await makeAgent(t);
  const card = join(await tempDir(t, 'card-'), 'CARD');
  // 32 files: the card's identity fingerprints its first 32, so files added later keep the card.
  await makeCard(
    card,
    dcfFiles(32, (i) => 1000 + i * 37),
  );
  await ingest(agent, card, 'wedding', 'CARD1');
  const studio = await startStudiod(t);
  await pairAgent(studio, agent);
  t.equal((await agent.cli(['sync', '--json'])).code, 0, 'sync exits 0');

  const [day] = await readdir(studio.dirs.mirror).then((n) => n.filter((x) => !x.startsWith('.')));
  const [cardId] = await readdir(join(studio.dirs.mirror, day ?? '', 'wedding'));
  const rel = join(day ?? '', 'wedding', cardId ?? '');
  const folders = { mirror: join(studio.dirs.mirror, rel), raid: join(studio.dirs.raid, rel) };
  const laptopGen = async (n: number): Promise<MhlGenerationRecord> => {
    const g = (await readMhlHistory(join(agent.dataDir, 'store', 'wedding', cardId ?? '')))[n - 1];
    if (g === undefined) throw new Error(`the agent has no generation ${n}`);
    return g;
  };
  const historyOf = (folder: string): Promise<MhlGenerationRecord[]> => readMhlHistory(folder);
  const generations = async (want: number): Promise<void> => {
    for (const f of Object.values(folders))
      await waitFor(async () => (await historyOf(f)).length >= want, `${want} generations in ${f}`, 15_000);
  };

  /** Every generation and the chain valid by the XSDs; studiod's hashes are xxhsum's of the files. */
  const check = async (tools: string[], agentGens: number[]): Promise<void> => {
    for (const [target, folder] of Object.entries(folders)) {
      const h = await historyOf(folder);
      t.same(
        h.map((g) => mhlCreatorTool(g.xml?.toString('utf8') ?? '')),
        tools,
        `${target}: generations by ${tools.join(', ')}`,
      );
      const chain = xmllint('ASCMHLDirectory.xsd', join(folder, 'ascmhl', 'ascmhl_chain.xml'));
      t.ok(chain.ok, `${target}: the chain validates against ASCMHLDirectory.xsd ${chain.out}`);
      for (const g of h) {
        const v = xmllint('ASCMHL.xsd', join(folder, 'ascmhl', g.name));
        t.ok(v.ok, `${target}: ${g.name} validates against ASCMHL.xsd ${v.out}`);
        t.equal(g.c4, c4Id(g.xml ?? Buffer.alloc(0)), `${target}: the chain holds the C4 of ${g.name}`);
      }
      for (const [i, n] of agentGens.entries())
        t.equal(h[n]?.c4, (await laptopGen(i + 1)).c4, `${target}: generation ${n + 1} is the agent's, byte for byte`);
      const last = (h[h.length - 1]?.xml ?? Buffer.alloc(0)).toString('utf8');
      const listed = [...last.matchAll(/<path[^>]*>([^<]+)<\/path>\s*<xxh3 action="(\w+)"[^>]*>([0-9a-f]{16})</g)].map(
        (m) => ({ path: m[1] as string, action: m[2] as string, hex: m[3] as string }),
      );
      const sums = xxhsum(
        folder,
        listed.map((l) => l.path),
      );
      t.ok(listed.length > 0, `${target}: studiod's generation lists files`);
      t.same(
        listed.map((l) => [l.path, l.hex]),
        listed.map((l) => [l.path, sums.get(l.path)]),
        `${target}: every file listed with the hash xxhsum -H3 computes of it`,
      );
      t.same(
        listed.filter((l) => l.action !== 'verified').map((l) => l.path),
        [],
        `${target}: every file verified against the agent's hash`,
      );
    }
  };

  await generations(2);
  await check(['field-agent', 'studiod'], [0]);
  const studiodGen = (await historyOf(folders.raid))[1];
  t.equal(
    [...(studiodGen?.xml?.toString('utf8') ?? '').matchAll(/<hash>/g)].length,
    32,
    'studiod lists the 32 files it committed',
  );
  for (const f of Object.values(folders)) {
    const r = await run(STUDIOCTL_BIN, ['mhl', 'verify', f]);
    t.equal(r.code, 0, `mhl verify ${f}: exit 0 (${r.stdout}${r.stderr})`);
  }

  // More files of the same card: the agent's second generation, then studiod's, appended.
  const before = await historyOf(folders.mirror);
  await makeCard(card, [
    { path: 'DCIM/101CANON/IMG_0001.CR3', size: 5000 },
    { path: 'DCIM/101CANON/IMG_0001.XMP', size: 400 },
  ]);
  await ingest(agent, card, 'wedding', 'CARD1');
  t.equal((await agent.cli(['sync', '--json'])).code, 0, 'second sync exits 0');
  await generations(4);
  await check(['field-agent', 'studiod', 'field-agent', 'studiod'], [0, 2]);
  const afterwards = await historyOf(folders.mirror);
  t.same(
    afterwards.slice(0, 2).map((g) => [g.name, g.c4]),
    before.map((g) => [g.name, g.c4]),
    'the earlier generations are left as they were',
  );
  t.match(
    afterwards[3]?.xml?.toString('utf8') ?? '',
    /DCIM\/101CANON\/IMG_0001\.XMP/,
    'the last generation lists the new files',
  );
  const r = await run(STUDIOCTL_BIN, ['mhl', 'verify', folders.mirror]);
  t.equal(r.code, 0, `mhl verify after the second sync: exit 0 (${r.stdout}${r.stderr})`);
  t.match(r.stdout, /4 generation\(s\), 34 file\(s\) checked — intact/);

  // One flipped byte of a photo on the mirror: verify fails and names it.
  const photo = join(folders.mirror, 'DCIM', '100CANON', 'IMG_0007.CR3');
  const fh = await open(photo, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, 100);
  b[0] = (b[0] ?? 0) ^ 0x01;
  await fh.write(b, 0, 1, 100);
  await fh.close();
  const bad = await run(STUDIOCTL_BIN, ['mhl', 'verify', folders.mirror]);
  t.equal(bad.code, 3, 'a flipped byte: exit 3 (not safe)');
  t.match(bad.stdout, /altered: DCIM\/100CANON\/IMG_0007\.CR3/, 'naming the file');
  const raid = await run(STUDIOCTL_BIN, ['mhl', 'verify', folders.raid]);
  t.equal(raid.code, 0, 'the RAID copy still verifies');
  t.equal(
    (await readFile(join(folders.raid, 'DCIM', '100CANON', 'IMG_0007.CR3'))).length,
    1000 + 6 * 37,
    'and is whole',
  );
});
