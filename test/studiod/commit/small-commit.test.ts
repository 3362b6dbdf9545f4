/**
 * Small files committed whole from memory, in groups (studiod/src/commit/small-commit.ts and its
 * worker; Committer.commitSmall), on real targets in temp dirs, a real LevelDB catalogue and the
 * real worker thread. Inside one group each file's outcome is its own: a name taken by other
 * bytes, a copy that does not read back as offered, a folder that cannot be made — that file
 * fails with its code and leaves no temp and no final name of its own; the others are committed
 * with both copies byte-identical and recorded. A target disk that returns other bytes than were
 * written cannot be made here without a test double in the worker: the same check (each copy's
 * read-back against the offered BLAKE3) is driven by an offer whose hash the bytes do not have.
 */
import t, { type Test } from 'tap';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes, type FileName } from '@studio321/protocol';
import { DURABLE_CODES } from '@studio321/protocol/durable';
import type { LocalTargetName } from '@studio321/studiod';
import { SmallGroupWriter, type SmallFileOutcome } from '@studio321/studiod/commit';
import { committerFixture } from '../../lib/committer-fixture.js';
import { testBytes } from '../../lib/lying-source.js';

const MTIME = Date.UTC(2026, 10, 26);
const DAY = '2026-11-26';

/** Every file under `root` but the target marker, relative (temps included). */
async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || e.name === '.studio321-target.json') continue;
    out.push(join(e.parentPath, e.name).slice(root.length + 1));
  }
  return out.sort();
}

/** A file for the group writer: `name` in `sub` of both targets under `dir`. */
function groupFile(dir: string, sub: string, name: string, bytes: Uint8Array) {
  return {
    bytes,
    size: bytes.byteLength,
    blake3: hashBytes(bytes),
    targets: { raid: { dir: join(dir, 'raid', sub), name }, mirror: { dir: join(dir, 'mirror', sub), name } },
  };
}

t.test('the group writer: each file of a group has its own outcome', async (t: Test) => {
  const dir = t.testdir({ raid: { d: { 'TAKEN.JPG': 'other bytes' } }, mirror: { d: {} } });
  const w = new SmallGroupWriter();
  t.teardown(() => w.close());
  const file = (i: number, name: string, blake3?: string) => {
    const bytes = testBytes(1000 + i * 97, i);
    return {
      bytes,
      size: bytes.byteLength,
      blake3: blake3 ?? hashBytes(bytes),
      targets: { raid: { dir: join(dir, 'raid', 'd'), name }, mirror: { dir: join(dir, 'mirror', 'd'), name } },
    };
  };
  const first = w.write(file(0, 'A0.JPG')); // goes alone: the next ones queue behind it, as one group
  const files = [
    file(1, 'A1.JPG'),
    file(2, 'TAKEN.JPG'),
    file(3, 'BAD.JPG', hashBytes(new Uint8Array([1, 2, 3]))),
    file(4, 'A4.JPG'),
  ];
  const outcomes: SmallFileOutcome[] = await Promise.all([first, ...files.map((f) => w.write(f))]);
  t.equal(w.groups, 2, 'two groups: the first file alone, the four queued behind it together');
  t.match(outcomes[2], { ok: false, target: 'raid', code: DURABLE_CODES.nameTaken }, 'a taken name: coded');
  t.match(outcomes[3], { ok: false, target: 'raid', code: DURABLE_CODES.readbackMismatch }, 'a mismatch: coded');
  for (const i of [0, 1, 4]) t.match(outcomes[i], { ok: true }, `file ${i} committed`);
  for (const root of ['raid', 'mirror']) {
    const want = root === 'raid' ? ['A0.JPG', 'A1.JPG', 'A4.JPG', 'TAKEN.JPG'] : ['A0.JPG', 'A1.JPG', 'A4.JPG'];
    t.same(
      await tree(join(dir, root)),
      want.map((n) => join('d', n)),
      `${root}: no temp, nothing of the failed`,
    );
  }
  t.equal(await readFile(join(dir, 'raid', 'd', 'TAKEN.JPG'), 'utf8'), 'other bytes', 'the taken name untouched');
  // Each copy's mtime, read by the worker for the folder's ASC MHL generation: the final name's.
  for (const [i, n] of [
    [0, 'A0.JPG'],
    [1, 'A1.JPG'],
    [4, 'A4.JPG'],
  ] as const) {
    const o = outcomes[i];
    if (o?.ok !== true) continue;
    for (const root of ['raid', 'mirror'] as const)
      t.equal(o[root].mtimeMs, (await stat(join(dir, root, 'd', n))).mtimeMs, `file ${i}: ${root} mtime`);
  }
  for (const i of [1, 4]) {
    const f = files[i === 1 ? 0 : 3]!;
    for (const root of ['raid', 'mirror'])
      t.equal(Buffer.compare(await readFile(join(dir, root, 'd', f.targets.raid.name)), f.bytes), 0);
  }
});

t.test(
  "the group writer: a session's first file goes in a group of its own, ahead of the files queued before it",
  async (t: Test) => {
    const dir = t.testdir({ raid: { d: {} }, mirror: { d: {} } });
    const w = new SmallGroupWriter();
    t.teardown(() => w.close());
    const file = (i: number) => groupFile(dir, 'd', `F${i}.JPG`, testBytes(2000 + i * 31, 100 + i));
    const done: number[] = [];
    const write = (i: number, first = false) =>
      w.write(file(i), first).then((o) => {
        done.push(i);
        return o;
      });
    const busy = write(0); // written alone; what follows queues behind it
    const others = Array.from({ length: 20 }, (_, k) => write(k + 1)); // another session's n-th files
    const newcomer = write(99, true); // a session's first file, queued last
    const outcomes = await Promise.all([busy, ...others, newcomer]);
    t.equal(w.groups, 3, 'three groups: the busy one, the first file alone, then the 20 queued before it');
    t.same(done.slice(0, 2), [0, 99], 'the first file is written right after the group in progress');
    t.same(
      done.slice(2),
      Array.from({ length: 20 }, (_, k) => k + 1),
      'the others after it, in their order',
    );
    for (const o of outcomes) t.match(o, { ok: true });
    for (const root of ['raid', 'mirror'])
      t.equal((await tree(join(dir, root))).length, 22, `${root}: every file, no temp`);
  },
);

t.test(
  'the group writer: a folder made once for the files of a group, and one that cannot be made',
  async (t: Test) => {
    // `blocked` is a file where the folder would go; `new/deep` does not exist yet on either target.
    const dir = t.testdir({ raid: { blocked: 'not a folder' }, mirror: {} });
    const w = new SmallGroupWriter();
    t.teardown(() => w.close());
    const file = (i: number, sub: string) => groupFile(dir, sub, `G${i}.JPG`, testBytes(1500 + i * 53, 200 + i));
    const busy = w.write(file(0, 'first')); // alone; the twelve below queue behind it as one group
    const queued = Array.from({ length: 12 }, (_, k) => w.write(file(k + 1, k % 3 === 0 ? 'blocked/x' : 'new/deep')));
    const outcomes = await Promise.all([busy, ...queued]);
    t.equal(w.groups, 2, 'the twelve files written as one group');
    for (const [i, o] of outcomes.entries()) {
      if (i > 0 && (i - 1) % 3 === 0)
        t.match(
          o,
          { ok: false, target: 'raid', code: DURABLE_CODES.targetMissing },
          `file ${i}: its folder cannot be made`,
        );
      else t.match(o, { ok: true }, `file ${i} committed`);
    }
    const wanted = outcomes.flatMap((o, i) => (o.ok ? [join(i === 0 ? 'first' : 'new/deep', `G${i}.JPG`)] : []));
    t.same(await tree(join(dir, 'raid')), ['blocked', ...wanted].sort(), 'RAID: the committed files, no temp');
    t.same(await tree(join(dir, 'mirror')), wanted.sort(), 'mirror: the committed files, nothing of the failed');
  },
);

const name = (path: string, card: string): FileName => ({ shoot: 'shoot', card, path, mtime: MTIME });

t.test('commitSmall: a failed file in a group leaves nothing; the others are committed', async (t: Test) => {
  const s = await committerFixture(t);
  // CARD2's folder cannot be made on the RAID: a file stands where it would go.
  await mkdir(join(s.targets.raid.root, DAY, 'shoot'), { recursive: true });
  await writeFile(join(s.targets.raid.root, DAY, 'shoot', 'CARD2'), 'not a folder');
  // A name already stored on the mirror with other bytes (no catalogue record): the next free name.
  await mkdir(join(s.targets.mirror.root, DAY, 'shoot', 'CARD1'), { recursive: true });
  await writeFile(join(s.targets.mirror.root, DAY, 'shoot', 'CARD1', 'IMG_3.JPG'), 'other bytes');
  const data = Array.from({ length: 8 }, (_, i) => testBytes(2000 + i * 1013, 100 + i));
  const input = (i: number, opts: { card?: string; hash?: string } = {}) => ({
    hash: opts.hash ?? hashBytes(data[i]!),
    size: data[i]!.byteLength,
    bytes: data[i]!,
    names: [name(`IMG_${i}.JPG`, opts.card ?? 'CARD1')],
    agentCopies: [],
    agentId: 'agt_test',
  });
  const wrongHash = hashBytes(new Uint8Array([9, 9, 9]));
  const results = await Promise.allSettled(
    data.map((_, i) =>
      s.committer.commitSmall(
        i === 5 ? input(i, { card: 'CARD2' }) : i === 6 ? input(i, { hash: wrongHash }) : input(i),
      ),
    ),
  );
  t.ok(s.committer.smallGroupStats.groups < data.length, `in groups (${s.committer.smallGroupStats.groups})`);
  t.match(results[5], { status: 'rejected', reason: { code: 'STUDIO_TARGET_MISSING', retryable: true } });
  t.match(results[6], { status: 'rejected', reason: { code: DURABLE_CODES.hashMismatch, retryable: true } });
  for (const [i, r] of results.entries()) {
    if (i === 5 || i === 6) continue;
    t.equal(r.status, 'fulfilled', `file ${i} committed`);
    if (r.status !== 'fulfilled') continue;
    const want = i === 3 ? `${DAY}/shoot/CARD1/IMG_3~2.JPG` : `${DAY}/shoot/CARD1/IMG_${i}.JPG`;
    for (const c of r.value.copies) {
      t.equal(c.path, want, `file ${i}: ${c.target} under its name`);
      const root = s.targets[c.target as LocalTargetName].root;
      t.equal(Buffer.compare(await readFile(join(root, c.path)), data[i]!), 0, `file ${i}: ${c.target} bytes`);
    }
    t.ok(await s.catalogue.getAsset(hashBytes(data[i]!)), `file ${i} in the catalogue`);
  }
  t.equal(await s.catalogue.getAsset(hashBytes(data[5]!)), undefined, 'the failed file is not in the catalogue');
  t.equal(await s.catalogue.getAsset(wrongHash), undefined, 'nor the mismatched one');
  const committed = [0, 1, 2, 3, 4, 7].map((i) => (i === 3 ? 'IMG_3~2.JPG' : `IMG_${i}.JPG`));
  const onMirror = [...committed, 'IMG_3.JPG'].map((n) => `${DAY}/shoot/CARD1/${n}`).sort();
  t.same(await tree(s.targets.mirror.root), onMirror, 'mirror: the committed files and the other bytes, no temp');
  t.same(
    await tree(s.targets.raid.root),
    [...committed.map((n) => `${DAY}/shoot/CARD1/${n}`), `${DAY}/shoot/CARD2`].sort(),
    'RAID: the committed files, no temp, nothing of the failed or mismatched',
  );
  t.same(await s.catalogue.intents(), [], 'no intent left behind');
});
