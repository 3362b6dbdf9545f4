/**
 * A card with no group record and no claimed name when its offload starts, and no other offloader
 * of it running, has its groups and names known without reading them (CardOffloader's fresh run):
 * only a group or clash key this run already claimed is read again. Real files, real LevelDB; the
 * state's reads are counted on the instance.
 */
import t from 'tap';
import { join } from 'node:path';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { AgentState } from '@studio321/agent/state';
import { CardOffloader, offloadCard } from '@studio321/agent/offload';
import { scanCard } from '@studio321/agent/card';
import { resolveTargets } from '@studio321/agent';

/** Counts the state's group and claim reads (point reads of records an offload may skip). */
function countReads(state: AgentState): { groups: number; claims: number } {
  const n = { groups: 0, claims: 0 };
  const getGroup = state.getGroup.bind(state);
  const getClaims = state.getClaims.bind(state);
  state.getGroup = (card, group) => {
    n.groups += 1;
    return getGroup(card, group);
  };
  state.getClaims = (paths) => {
    n.claims += 1;
    return getClaims(paths);
  };
  return n;
}

const cardInput = (source: string) => ({
  id: 'CARD-00000001',
  label: 'CARD',
  kind: 'card' as const,
  source,
  shoot: 's',
});

t.test('a fresh card: no group or claim read but for names this run claimed; clashes still resolved', async (t) => {
  const dir = t.testdir();
  const card = join(dir, 'card');
  const folder = join(card, 'DCIM/100X');
  await mkdir(folder, { recursive: true });
  for (let i = 2; i <= 60; i++) await writeFile(join(folder, `IMG_${String(i).padStart(4, '0')}.JPG`), `other ${i}`);
  // One store name for two card names (NFC and NFD): the second layer reads what the first claimed.
  await writeFile(join(folder, 'Caf\u00e9.JPG'), 'nfc');
  await writeFile(join(folder, 'Cafe\u0301.JPG'), 'nfd');
  // A name held in the store by a file the state does not know, and the card's own `~2` of it.
  await writeFile(join(folder, 'IMG_0001.JPG'), 'card one');
  await writeFile(join(folder, 'IMG_0001~2.JPG'), 'card one ~2');
  const data = join(dir, 'data');
  const storeDir = join(data, 'store/s/CARD-00000001/DCIM/100X');
  await mkdir(storeDir, { recursive: true });
  await writeFile(join(storeDir, 'IMG_0001.JPG'), 'put here by hand');
  const state = await AgentState.open(data);
  t.teardown(() => state.close());
  const reads = countReads(state);
  const { targets } = await resolveTargets(join(data, 'store'), []);
  const input = cardInput(card);
  const r = await offloadCard({ state, targets }, { root: card, card: input, scan: await scanCard(card) });
  t.same(r.failed, [], 'no file failed');
  t.equal(r.copied, 63);
  t.ok(reads.groups <= 3, `group records read only for groups claimed before (${reads.groups})`);
  // Per suffix tried: Café's second layer (1–2), IMG_0001 moved past the foreign name and its own ~2 (up to 3 each).
  t.ok(reads.claims <= 10, `claims read only for clash keys claimed before (${reads.claims} for 63 groups)`);
  t.equal(await readFile(join(storeDir, 'IMG_0001.JPG'), 'utf8'), 'put here by hand', 'the foreign file untouched');
  const stored = new Set<string>();
  for (const [path, content] of [
    ['DCIM/100X/IMG_0001.JPG', 'card one'],
    ['DCIM/100X/IMG_0001~2.JPG', 'card one ~2'],
    ['DCIM/100X/Caf\u00e9.JPG', 'nfc'],
    ['DCIM/100X/Cafe\u0301.JPG', 'nfd'],
    ['DCIM/100X/IMG_0033.JPG', 'other 33'],
  ] as const) {
    const rec = await state.getFile(input.id, path);
    t.equal(rec?.state, 'verified', `${path} verified`);
    const at = rec?.storePath ?? '';
    t.equal(await readFile(join(data, 'store', at), 'utf8'), content, `${path} → ${at} holds its bytes`);
    stored.add(at);
  }
  t.equal(stored.size, 5, 'five distinct store names');
  t.same(
    (await readdir(storeDir)).filter((n) => n.endsWith('.s321tmp')),
    [],
    'no temp left',
  );

  // The same card again with one new file: it has records now, so every group and name is read.
  await writeFile(join(folder, 'IMG_0099.JPG'), 'new');
  const before = { ...reads };
  const r2 = await offloadCard({ state, targets }, { root: card, card: input, scan: await scanCard(card) });
  t.equal(r2.copied, 1);
  t.equal(reads.groups - before.groups, 1, 'the new group read');
  t.equal(reads.claims - before.claims, 1, 'its names read');
});

t.test('two offloaders of one card at once: names are read, none claimed twice', async (t) => {
  const dir = t.testdir();
  const card = join(dir, 'card');
  const folder = join(card, 'DCIM/100X');
  await mkdir(folder, { recursive: true });
  for (let i = 1; i <= 40; i++) await writeFile(join(folder, `IMG_${String(i).padStart(4, '0')}.JPG`), `file ${i}`);
  const data = join(dir, 'data');
  const state = await AgentState.open(data);
  t.teardown(() => state.close());
  const { targets } = await resolveTargets(join(data, 'store'), []);
  const input = cardInput(card);
  await state.beginOffload(input);
  const files = await state.recordScan(input.id, await scanCard(card));
  const rec = await state.getCard(input.id);
  if (rec === undefined) throw new Error('no card record');
  const reads = countReads(state);
  // The first half and the whole card: the second offloader starts while the first runs.
  const a = new CardOffloader({ state, targets }, rec, card);
  const b = new CardOffloader({ state, targets }, rec, card);
  const [ra, rb] = await Promise.allSettled([a.run(files.slice(0, 20)), b.run(files)]);
  t.equal(ra.status, 'fulfilled');
  t.equal(rb.status, 'fulfilled');
  t.ok(reads.groups >= 20, `the second offloader reads every group it copies (${reads.groups})`);
  for (let i = 1; i <= 40; i++) {
    const path = `DCIM/100X/IMG_${String(i).padStart(4, '0')}.JPG`;
    const f = await state.getFile(input.id, path);
    t.equal(f?.state, 'verified', `${path} verified`);
    t.equal(await readFile(join(data, 'store', f?.storePath ?? ''), 'utf8'), `file ${i}`, `${path} holds its bytes`);
  }
});
