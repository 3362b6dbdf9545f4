/**
 * Groups choose their suffix and claim their names at the same time unless their names can clash
 * (clashKey, offloader.ts): a group moved to `~2` and a card file named with that very `~2` are
 * one key, so one of them sees the other's claim and takes the next free name. Real files, real
 * LevelDB, the card's other groups in flight around them.
 */
import t from 'tap';
import { join } from 'node:path';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { AgentState } from '@studio321/agent/state';
import { clashKey, offloadCard } from '@studio321/agent/offload';
import { scanCard } from '@studio321/agent/card';
import { resolveTargets } from '@studio321/agent';

t.test('clashKey: one key for every name a suffix can make of a stem', async (t) => {
  const key = clashKey('s/C/DCIM/100X/IMG_0001.JPG');
  for (const p of [
    's/C/DCIM/100X/IMG_0001.XMP',
    's/C/DCIM/100X/img_0001.jpg',
    's/C/DCIM/100X/IMG_0001~2.JPG',
    's/C/DCIM/100X/IMG_0001~3~2.JPG',
    's/C/DCIM/100X/IMG_0001~2.1.JPG',
  ])
    t.equal(clashKey(p), key, p);
  t.equal(clashKey('s/C/PRIVATE/C0001~2M01.XML'), clashKey('s/C/PRIVATE/C0001.MP4'), 'a Sony sidecar');
  t.not(clashKey('s/C/DCIM/100X/IMG_0002.JPG'), key, 'another stem');
  t.not(clashKey('s/C/DCIM/101X/IMG_0001.JPG'), key, 'another folder');
  t.not(clashKey('s/C/DCIM/100X/IMG_0001~x.JPG'), key, 'a tilde that is no suffix');
});

t.test(
  'a group moved to ~2 and a card file named ~2: both kept under distinct names, nothing overwritten',
  async (t) => {
    const dir = t.testdir();
    const card = join(dir, 'card');
    const folder = join(card, 'DCIM/100X');
    await mkdir(folder, { recursive: true });
    // Many other groups, so the two meet among groups in flight.
    for (let i = 2; i <= 60; i++) await writeFile(join(folder, `IMG_${String(i).padStart(4, '0')}.JPG`), `other ${i}`);
    await writeFile(join(folder, 'IMG_0001.JPG'), 'first');
    const data = join(dir, 'data');
    const state = await AgentState.open(data);
    t.teardown(() => state.close());
    const { targets } = await resolveTargets(join(data, 'store'), []);
    const cardInput = { id: 'CARD-00000001', label: 'CARD', kind: 'card' as const, source: card, shoot: 's' };
    const r1 = await offloadCard({ state, targets }, { root: card, card: cardInput, scan: await scanCard(card) });
    t.equal(r1.failed.length, 0);
    t.equal(r1.copied, 60);
    // The camera rewrote IMG_0001.JPG (it moves to ~2), and the card holds a file named IMG_0001~2.JPG.
    await writeFile(join(folder, 'IMG_0001.JPG'), 'second');
    await writeFile(join(folder, 'IMG_0001~2.JPG'), 'named ~2 on the card');
    const r2 = await offloadCard({ state, targets }, { root: card, card: cardInput, scan: await scanCard(card) });
    t.same(r2.failed, [], 'no file failed');
    t.equal(r2.copied, 2);
    const store = join(data, 'store/s/CARD-00000001/DCIM/100X');
    t.equal(await readFile(join(store, 'IMG_0001.JPG'), 'utf8'), 'first', 'the first version is never overwritten');
    const named = (await readdir(store)).filter((n) => n.startsWith('IMG_0001')).sort();
    t.equal(named.length, 3, `three names: ${named.join(', ')}`);
    t.same(
      (await readdir(store)).filter((n) => n.endsWith('.s321tmp')),
      [],
      'no temp left',
    );
    for (const [path, content] of [
      ['DCIM/100X/IMG_0001.JPG', 'second'],
      ['DCIM/100X/IMG_0001~2.JPG', 'named ~2 on the card'],
    ] as const) {
      const rec = await state.getFile(cardInput.id, path);
      t.equal(rec?.state, 'verified', `${path} verified`);
      const stored = rec?.storePath ?? '';
      t.not(stored, 's/CARD-00000001/DCIM/100X/IMG_0001.JPG', `${path} is not stored over the first version`);
      t.equal(await readFile(join(data, 'store', stored), 'utf8'), content, `${path} → ${stored} holds its bytes`);
    }
    const a = await state.getFile(cardInput.id, 'DCIM/100X/IMG_0001.JPG');
    const b = await state.getFile(cardInput.id, 'DCIM/100X/IMG_0001~2.JPG');
    t.not(a?.storePath, b?.storePath, 'two names');
  },
);
