/**
 * studiod's ASC MHL generations (commit/mhl-history.ts) on real folders and a real catalogue
 * LevelDB: a pending file (written in the commit's batch) becomes studiod's generation on both
 * targets; an agent generation whose files are all in the folder with the studio's XXH3 goes
 * first, byte for byte; one that lists a file the folder lacks is not copied there (other ASC
 * MHL tools would report it missing); a target whose folder is gone keeps its pending record and
 * gets its generation once the folder is back, listing nothing twice.
 */
import t, { type Test } from 'tap';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createXxh3, nameKey } from '@studio321/protocol';
import {
  c4Id,
  mhlCreatorTool,
  mhlHashlistXml,
  parseMhlHashes,
  readMhlHistory,
  verifyMhlFolder,
} from '@studio321/protocol/durable';
import { Catalogue } from '@studio321/studiod';
import { StudioMhl } from '@studio321/studiod/commit';

const FOLDER = '2026-11-26/wedding/CARD1-c375e040';

function xxh3(data: string): string {
  const h = createXxh3();
  h.update(Buffer.from(data));
  return h.digest();
}

/** A field agent's generation listing every file of the folder with its XXH3: it fits the folder. */
function fittingGeneration(files: Record<string, string>): Buffer {
  return Buffer.from(
    mhlHashlistXml({
      root: '',
      process: 'transfer',
      tool: { name: 'field-agent', version: '1' },
      hostname: 'laptop',
      files: Object.entries(files).map(([p, d]) => ({
        path: p,
        size: d.length,
        mtimeMs: 0,
        xxh3: xxh3(d),
        action: 'original' as const,
        hashDate: new Date().toISOString(),
      })),
      now: new Date('2026-11-26T10:00:00Z'),
    }),
  );
}

/** The card's agent generation (it fits the folder) received by `mhl`: its bytes. */
async function receiveFitting(mhl: StudioMhl, files: Record<string, string>): Promise<Buffer> {
  const data = fittingGeneration(files);
  await mhl.receiveAgentGeneration('agt_1', { shoot: 'wedding', card: 'CARD1-c375e040', name: '0001_a.mhl', data });
  return data;
}

/** The tool that wrote each generation of the folder on the target at `root`, in order. */
async function creatorsOf(root: string): Promise<Array<string | undefined>> {
  return (await readMhlHistory(join(root, FOLDER))).map((g) => mhlCreatorTool(g.xml?.toString('utf8') ?? ''));
}

/**
 * Each file committed as a commit does it (its pending record in its asset's batch), then, with
 * `schedule`, reported committed (its generation is then due after the delay). The extra ops of
 * each commit, counted.
 */
async function commitFiles(
  catalogue: Catalogue,
  mhl: StudioMhl,
  files: Record<string, string>,
  schedule: boolean,
): Promise<number[]> {
  const counts: number[] = [];
  for (const [p, data] of Object.entries(files)) {
    const hash = xxh3(`blake3 of ${p}`).padEnd(64, '0');
    const extra = mhl.commitOps(`${FOLDER}/${p}`, { size: data.length, xxh3: xxh3(data), hashDate: Date.now() });
    counts.push(extra.length);
    await catalogue.commitAsset({
      asset: { hash, size: data.length, committedAt: Date.now() },
      names: [],
      copies: [],
      storedPaths: [{ key: nameKey(`${FOLDER}/${p}`), value: { hash, path: `${FOLDER}/${p}` } }],
      extra,
    });
    if (schedule) mhl.committed(`${FOLDER}/${p}`);
  }
  return counts;
}

/** Both targets holding the card folder's two files, and a catalogue (closed at teardown). */
async function folderFixture(t: Test) {
  const dir = t.testdir();
  const targets = {
    mirror: { root: join(dir, 'mirror'), media: 'hdd', location: 'studio', device: 'm-1', requireExistingRoot: true },
    raid: { root: join(dir, 'raid'), media: 'hdd', location: 'studio', device: 'r-1', requireExistingRoot: true },
  };
  const files = { 'DCIM/IMG_0001.CR3': 'raw bytes', 'DCIM/IMG_0001.XMP': 'sidecar' };
  for (const t0 of Object.values(targets))
    for (const [p, data] of Object.entries(files)) {
      await mkdir(join(t0.root, FOLDER, 'DCIM'), { recursive: true });
      await writeFile(join(t0.root, FOLDER, p), data);
    }
  const catalogue = new Catalogue(join(dir, 'catalogue'));
  await catalogue.open();
  t.teardown(() => catalogue.close());
  return { targets, files, catalogue };
}

t.test('pending files, agent generations that fit and that do not, a target away', async (t) => {
  const { targets, files, catalogue } = await folderFixture(t);
  const mhl = new StudioMhl({ catalogue, targets: targets as never, delayMs: 60_000 });

  const agentGen = (paths: string[], host: string): Buffer =>
    Buffer.from(
      mhlHashlistXml({
        root: '',
        process: 'transfer',
        tool: { name: 'field-agent', version: '1' },
        hostname: host,
        files: paths.map((p) => ({
          path: p,
          size: 1,
          mtimeMs: 0,
          xxh3: xxh3(files[p as keyof typeof files] ?? p),
          action: 'original' as const,
          hashDate: new Date().toISOString(),
        })),
        now: new Date('2026-11-26T10:00:00Z'),
      }),
    );
  const fits = agentGen(Object.keys(files), 'laptop');
  const lacks = agentGen([...Object.keys(files), 'DCIM/IMG_0002.CR3'], 'laptop2');
  await mhl.receiveAgentGeneration('agt_1', {
    shoot: 'wedding',
    card: 'CARD1-c375e040',
    name: '0001_a.mhl',
    data: fits,
  });
  await mhl.receiveAgentGeneration('agt_1', {
    shoot: 'wedding',
    card: 'CARD1-c375e040',
    name: '0002_b.mhl',
    data: lacks,
  });
  await t.rejects(
    mhl.receiveAgentGeneration('agt_1', { shoot: 'wedding', card: '../x', name: '0003.mhl', data: fits }),
    { code: 'PROTO_BAD_NAME' },
    'a name that is not one safe segment is refused',
  );

  // The commits' batches: each file's pending record (the commit writes it with its asset).
  await commitFiles(catalogue, mhl, files, false);
  // The RAID's folder away (its disk being replaced): the mirror still gets its generations.
  await rm(join(targets.raid.root, FOLDER), { recursive: true });
  await mhl.flush(FOLDER); // the RAID's failure is logged, not thrown: the commits are done
  const mirror = await readMhlHistory(join(targets.mirror.root, FOLDER));
  t.same(
    mirror.map((g) => mhlCreatorTool(g.xml?.toString('utf8') ?? '')),
    ['field-agent', 'studiod'],
    'the mirror: the agent generation that fits, then studiod’s',
  );
  t.equal(mirror[0]?.c4, c4Id(fits), 'the agent’s bytes as they are');
  t.notOk(
    mirror.some((g) => g.c4 === c4Id(lacks)),
    'the agent generation listing a file the folder lacks is not copied',
  );
  t.same(
    parseMhlHashes(mirror[1]?.xml?.toString('utf8') ?? '', 2).map((h) => [h.path, h.hashes.xxh3, h.action]),
    Object.entries(files).map(([p, d]) => [p, xxh3(d), 'verified']),
    'studiod lists each file with its XXH3, verified against the agent’s',
  );
  t.ok((await verifyMhlFolder(join(targets.mirror.root, FOLDER))).ok, 'the mirror folder verifies');
  t.same(await readMhlHistory(join(targets.raid.root, FOLDER)), [], 'nothing on the RAID yet');

  // The RAID's folder back: its generations follow; the mirror's are not written again.
  for (const [p, data] of Object.entries(files)) {
    await mkdir(join(targets.raid.root, FOLDER, 'DCIM'), { recursive: true });
    await writeFile(join(targets.raid.root, FOLDER, p), data);
  }
  await mhl.flush(FOLDER);
  const raid = await readMhlHistory(join(targets.raid.root, FOLDER));
  t.same(
    raid.map((g) => mhlCreatorTool(g.xml?.toString('utf8') ?? '')),
    ['field-agent', 'studiod'],
    'the RAID: the same two',
  );
  t.ok((await verifyMhlFolder(join(targets.raid.root, FOLDER))).ok, 'the RAID folder verifies');
  t.equal((await readMhlHistory(join(targets.mirror.root, FOLDER))).length, 2, 'the mirror: still two');
  await mhl.flush(FOLDER);
  t.equal((await readMhlHistory(join(targets.raid.root, FOLDER))).length, 2, 'nothing pending: no new generation');
  await mhl.close();
});

t.test(
  'a folder record is put by the first commit into it; an agent generation that comes after a restart still finds the folder',
  async (t) => {
    const { targets, files, catalogue } = await folderFixture(t);
    const mhl = new StudioMhl({ catalogue, targets: targets as never, delayMs: 60_000 });
    const opCounts = await commitFiles(catalogue, mhl, files, true);
    t.same(opCounts, [2, 1], 'the first commit puts the pending and the folder record, the next only its pending one');
    // As after a restart: the folder is found by its record when the card's agent generation comes.
    const after = new StudioMhl({ catalogue, targets: targets as never, delayMs: 60_000 });
    await receiveFitting(after, files);
    await after.close(); // writes the folder it scheduled
    t.same(await creatorsOf(targets.mirror.root), ['field-agent', 'studiod'], 'the agent generation, then studiod’s');
    await mhl.close();
    t.equal((await readMhlHistory(join(targets.raid.root, FOLDER))).length, 2, 'nothing written twice');
  },
);

t.test(
  'an agent generation received but not adopted before studiod dies is adopted at the next start, on both targets',
  async (t) => {
    const { targets, files, catalogue } = await folderFixture(t);
    const mhl = new StudioMhl({ catalogue, targets: targets as never, delayMs: 60_000 });
    await commitFiles(catalogue, mhl, files, true);
    await mhl.close(); // studiod's generation on both targets: nothing is pending any more
    const creators = (target: 'mirror' | 'raid'): Promise<Array<string | undefined>> =>
      creatorsOf(targets[target].root);
    t.same(await creators('raid'), ['studiod']);

    // The card's agent generation arrives; studiod dies before the delay is up (this instance is
    // abandoned, never closed: its timer is 60 s away and unref'd, as a SIGKILL leaves it).
    const dying = new StudioMhl({ catalogue, targets: targets as never, delayMs: 60_000 });
    const fits = await receiveFitting(dying, files);
    t.same(await creators('mirror'), ['studiod'], 'not adopted yet (the delay is not up)');

    const next = new StudioMhl({ catalogue, targets: targets as never, delayMs: 60_000 });
    await next.open();
    for (const target of ['mirror', 'raid'] as const) {
      t.same(await creators(target), ['studiod', 'field-agent'], `${target}: adopted at the start`);
      const gens = await readMhlHistory(join(targets[target].root, FOLDER));
      t.equal(gens[1]?.c4, c4Id(fits), `${target}: byte for byte`);
      t.ok((await verifyMhlFolder(join(targets[target].root, FOLDER))).ok, `${target}: the history verifies`);
    }
    await next.close();
    const again = new StudioMhl({ catalogue, targets: targets as never, delayMs: 60_000 });
    await again.open();
    await again.close();
    t.equal((await readMhlHistory(join(targets.raid.root, FOLDER))).length, 2, 'done once: a later start adds nothing');
  },
);

t.test(
  'a copy whose mtime the writer read (a small commit) is listed with it, without a stat; a copy without one is stat’d',
  async (t) => {
    const { targets, files, catalogue } = await folderFixture(t);
    const mhl = new StudioMhl({ catalogue, targets: targets as never, delayMs: 60_000 });
    // The mirror copies' mtimes as the small-commit worker read them (here: a day no file has);
    // none for the RAID copies (a staged commit's): those are stat'd at the flush.
    const read = Date.UTC(2026, 0, 2, 3, 4, 5);
    for (const [p, data] of Object.entries(files)) {
      const hash = xxh3(`blake3 of ${p}`).padEnd(64, '0');
      await catalogue.commitAsset({
        asset: { hash, size: data.length, committedAt: Date.now() },
        names: [],
        copies: [],
        storedPaths: [{ key: nameKey(`${FOLDER}/${p}`), value: { hash, path: `${FOLDER}/${p}` } }],
        extra: mhl.commitOps(`${FOLDER}/${p}`, {
          size: data.length,
          xxh3: xxh3(data),
          hashDate: Date.now(),
          mtimeMs: { mirror: read },
        }),
      });
    }
    await mhl.flush(FOLDER);
    const dates = async (target: 'mirror' | 'raid'): Promise<string[]> => {
      const [g] = await readMhlHistory(join(targets[target].root, FOLDER));
      return [...(g?.xml?.toString('utf8') ?? '').matchAll(/lastmodificationdate="([^"]+)"/g)].map((m) => m[1] ?? '');
    };
    t.same(await dates('mirror'), ['2026-01-02T03:04:05Z', '2026-01-02T03:04:05Z'], 'the mirror: the mtimes read');
    const onDisk = await Promise.all(
      Object.keys(files).map(async (p) =>
        new Date((await stat(join(targets.raid.root, FOLDER, p))).mtimeMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      ),
    );
    t.same(await dates('raid'), onDisk, 'the RAID: each copy’s mtime on disk');
    t.ok((await verifyMhlFolder(join(targets.mirror.root, FOLDER))).ok, 'the mirror folder verifies');
    await mhl.close();
  },
);
