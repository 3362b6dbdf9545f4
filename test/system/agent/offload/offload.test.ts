/**
 * Verified offload of generated cards through the real CLI (child process, real
 * files, real LevelDB): every file stored with the right BLAKE3, sidecars next to
 * their image, the 9999→0001 wrap, two bodies with clashing names, dual-slot dedup,
 * and a re-ingest that copies nothing again.
 */
import t from 'tap';
import { join } from 'node:path';
import { writeFile, readFile } from 'node:fs/promises';
import { makeTestCard, makeTwoBodyCards, makeDualSlotPair } from '../../../../scripts/dist/make-test-card.js';
import { AgentState } from '@studio321/agent/state';
import { offloadCard } from '@studio321/agent/offload';
import { scanCard } from '@studio321/agent/card';
import { resolveTargets } from '@studio321/agent';
import { runAgentCli, jsonLines, hashTree, listFiles } from '../../../lib/agent-harness.js';

t.test('a generated card is offloaded: every file, right BLAKE3, layout kept', async (t) => {
  const dir = t.testdir();
  const card = join(dir, 'EOS_DIGITAL');
  const files = await makeTestCard(card, { rawSize: 64 * 1024 });
  const data = join(dir, 'data');
  const r = await runAgentCli(['ingest', card, '--data-dir', data, '--shoot', 'wedding', '--json']);
  t.equal(r.code, 0, r.stderr);
  const done = jsonLines(r.stdout).find((e) => e['event'] === 'done') as Record<string, unknown>;
  t.equal(done['copied'], files.length);
  t.match(r.stderr, /MB\/s\s+ETA/, 'progress line with speed and ETA on stderr');
  const cardId = String(done['card']);
  t.match(cardId, /^EOS_DIGITAL-[0-9a-f]{8}$/);
  const src = await hashTree(card);
  const dst = await hashTree(join(data, 'store', 'wedding', cardId));
  t.same([...dst.entries()].sort(), [...src.entries()].sort(), 'store holds exactly the card, same paths, same BLAKE3');
  // sidecars stay next to their image, wrap folders both present
  t.ok(dst.has('DCIM/100CANON/IMG_9999.XMP') && dst.has('DCIM/101CANON/IMG_0001.CR3'));
  t.ok(dst.has('PRIVATE/M4ROOT/CLIP/C0001M01.XML') && dst.has('DCIM/100GOPRO/GL010001.LRV'));
  t.same(
    (await listFiles(join(data, 'store'))).filter((f) => f.endsWith('.s321tmp')),
    [],
  );

  // ingest again: nothing copied again
  const again = await runAgentCli(['ingest', card, '--data-dir', data, '--shoot', 'wedding', '--json']);
  t.equal(again.code, 0, again.stderr);
  const d2 = jsonLines(again.stdout).find((e) => e['event'] === 'done') as Record<string, unknown>;
  t.equal(d2['copied'], 0);
  t.equal(d2['alreadyVerified'], files.length);

  const st = await runAgentCli(['status', '--json', '--data-dir', data]);
  const status = JSON.parse(st.stdout) as {
    cards: Array<{ id: string; files: number; verifiedFiles: number; queuedFiles: number }>;
    queue: { files: number };
  };
  t.equal(status.cards.length, 1);
  t.equal(status.cards[0]?.verifiedFiles, files.length, 'each file counted once');
  t.equal(status.queue.files, files.length);
});

t.test('two bodies, one label, same names: both kept, nothing overwritten', async (t) => {
  const dir = t.testdir();
  const a = join(dir, 'a', 'EOS_DIGITAL');
  const b = join(dir, 'b', 'EOS_DIGITAL');
  await makeTwoBodyCards(a, b);
  const data = join(dir, 'data');
  const ra = await runAgentCli(['ingest', a, '--data-dir', data, '--shoot', 's', '--json']);
  const rb = await runAgentCli(['ingest', b, '--data-dir', data, '--shoot', 's', '--json']);
  t.equal(ra.code, 0, ra.stderr);
  t.equal(rb.code, 0, rb.stderr);
  const ida = String(jsonLines(ra.stdout).find((e) => e['event'] === 'done')?.['card']);
  const idb = String(jsonLines(rb.stdout).find((e) => e['event'] === 'done')?.['card']);
  t.not(ida, idb, 'two cards named EOS_DIGITAL are two cards');
  t.same(
    [...(await hashTree(join(data, 'store', 's', ida))).entries()].sort(),
    [...(await hashTree(a)).entries()].sort(),
  );
  t.same(
    [...(await hashTree(join(data, 'store', 's', idb))).entries()].sort(),
    [...(await hashTree(b)).entries()].sort(),
  );
});

t.test('dual-slot pair: the same content is stored once, the second card maps to it', async (t) => {
  const dir = t.testdir();
  const a = join(dir, 'slot1', 'NO NAME');
  const b = join(dir, 'slot2', 'NO NAME');
  const [fa] = await makeDualSlotPair(a, b);
  const data = join(dir, 'data');
  const ra = await runAgentCli(['ingest', a, '--data-dir', data, '--shoot', 's', '--json']);
  const rb = await runAgentCli(['ingest', b, '--data-dir', data, '--shoot', 's', '--json']);
  t.equal(ra.code, 0, ra.stderr);
  t.equal(rb.code, 0, rb.stderr);
  const db = jsonLines(rb.stdout).find((e) => e['event'] === 'done') as Record<string, unknown>;
  t.equal(db['copied'], 0, 'nothing written for the second slot');
  t.equal(db['duplicates'], fa.length);
  const stored = await hashTree(join(data, 'store'));
  t.equal(stored.size, fa.length, 'one stored copy per asset');
  t.equal(new Set(stored.values()).size, fa.length);
  const st = JSON.parse((await runAgentCli(['status', '--json', '--data-dir', data])).stdout) as {
    cards: Array<{ verifiedFiles: number }>;
    queue: { files: number };
  };
  t.same(
    st.cards.map((c) => c.verifiedFiles),
    [fa.length, fa.length],
    'both cards fully verified',
  );
  t.equal(st.queue.files, fa.length, 'each asset queued for the studio once');
});

t.test('same card, same name, new content: distinct name ~2, sidecar follows', async (t) => {
  const dir = t.testdir();
  const card = join(dir, 'card');
  await makeTestCard(card, { rawSize: 16 * 1024 });
  const data = join(dir, 'data');
  const state = await AgentState.open(data);
  t.teardown(() => state.close());
  const { targets } = await resolveTargets(join(data, 'store'), []);
  const cardInput = {
    id: 'EOS_DIGITAL-00000001',
    label: 'EOS_DIGITAL',
    kind: 'card' as const,
    source: card,
    shoot: 's',
  };
  const r1 = await offloadCard({ state, targets }, { root: card, card: cardInput, scan: await scanCard(card) });
  t.equal(r1.failed.length, 0);
  // The camera rewrote IMG_0001 and its sidecar (same names, new bytes); the card keeps its identity.
  await writeFile(join(card, 'DCIM/101CANON/IMG_0001.CR3'), 'new raw bytes');
  await writeFile(join(card, 'DCIM/101CANON/IMG_0001.XMP'), 'new xmp');
  const oldRaw = await readFile(join(data, 'store/s/EOS_DIGITAL-00000001/DCIM/101CANON/IMG_0001.CR3'));
  const r2 = await offloadCard({ state, targets }, { root: card, card: cardInput, scan: await scanCard(card) });
  t.equal(r2.copied, 2);
  const base = join(data, 'store/s/EOS_DIGITAL-00000001/DCIM/101CANON');
  t.same(await readFile(join(base, 'IMG_0001.CR3')), oldRaw, 'the first version is never overwritten');
  t.equal(await readFile(join(base, 'IMG_0001~2.CR3'), 'utf8'), 'new raw bytes');
  t.equal(await readFile(join(base, 'IMG_0001~2.XMP'), 'utf8'), 'new xmp', 'the sidecar moved with its image');
});
