// Test fixture for test/studiod/ledger/recount-slices.test.ts: a real LevelDB catalogue with its ledger.
// argv after the mode and DIR: the recount's slice size, then N or SEED.
//   seed DIR S N      — N assets (RAW + JPEG pairs; mirror + RAID everywhere, cloud-east on two of three,
//                     cloud-west on one of four), in one import; prints `done`.
//   run DIR S SEED    — the cloud-east target goes unavailable (`Ledger.setUnavailable`) and, from the end
//                     of the recount's first slice until its end, a seeded random mix of commits runs:
//                     new assets, copies recorded and removed, on hashes before and after the recount's
//                     cursor. Prints `slice <n>` after each slice, `commit <hash> <recounting 0|1>` after
//                     each acknowledged write, then `done`. The test runs it to the end or SIGKILLs it.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { nameKey } from '@studio321/protocol';
import { Catalogue } from '@studio321/studiod';
import { Ledger } from '@studio321/studiod/ledger';
import { copy } from './ledger-records.mjs';

export const TARGETS = ['mirror', 'raid', 'cloud-east', 'cloud-west'];
export const POLICY = { copies: 3, media: 2, offsite: 1 };

const hashOf = (tag) => createHash('sha256').update(tag).digest('hex');

function record(tag, i) {
  const hash = hashOf(tag);
  const size = 1000 + i;
  const file = `DCIM/100CANON/IMG_${String(Math.floor(i / 2)).padStart(5, '0')}.${i % 2 === 0 ? 'CR3' : 'JPG'}`;
  const stored = `d/s/c/${file}`;
  const copies = [copy(hash, 'mirror', size, stored), copy(hash, 'raid', size, stored)];
  if (i % 3 !== 0) copies.push(copy(hash, 'cloud-east', size));
  if (i % 4 === 0) copies.push(copy(hash, 'cloud-west', size));
  return {
    asset: { hash, size, committedAt: 1_000_000 + i },
    names: [
      {
        key: nameKey(`s/c/${file}`),
        value: { hash, shoot: 's', card: 'c', path: file, mtime: 0, agentId: 'a', seenAt: 0 },
      },
    ],
    copies,
    storedPaths: [{ key: nameKey(stored), value: { hash, path: stored } }],
  };
}

const [mode, dir, slice, arg] = process.argv.slice(2);
const cat = new Catalogue(join(dir, 'catalogue'));
await cat.open();
const ledger = new Ledger({ catalogue: cat, policy: POLICY, targets: TARGETS, recountSliceAssets: Number(slice) });
await ledger.open();

if (mode === 'seed') {
  const n = Number(arg);
  const recs = [];
  for (let i = 0; i < n; i++) recs.push(record(`a${i}`, i));
  await cat.importAssets(recs);
} else {
  let seed = Number(arg) >>> 0 || 1;
  const rnd = (n) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  const hashes = [];
  for await (const a of cat.assets()) hashes.push(a.hash);
  let slices = 0;
  let firstSlice;
  const sliced = new Promise((resolve) => {
    firstSlice = resolve;
  });
  const exclusive = cat.exclusive.bind(cat);
  cat.exclusive = (fn) =>
    exclusive(fn).then((v) => {
      process.stdout.write(`slice ${++slices}\n`);
      firstSlice();
      return v;
    });
  let ended = false;
  const recount = ledger.setUnavailable(['cloud-east']).finally(() => {
    ended = true;
  });
  await sliced;
  let k = 0;
  while (!ended) {
    const op = rnd(4);
    let hash;
    if (op === 0) {
      // A new asset (its hash falls anywhere: before or after the cursor).
      const i = 100_000 + k;
      const rec = record(`n${seed}-${k}`, i);
      hash = rec.asset.hash;
      await cat.commitAsset(rec);
      hashes.push(hash);
    } else {
      hash = hashes[rnd(hashes.length)];
      const asset = await cat.getAsset(hash);
      if (op === 1) await cat.recordCopy(copy(hash, 'cloud-west', asset.size));
      else if (op === 2) await cat.recordCopy(copy(hash, 'cloud-east', asset.size));
      else await cat.removeCopy({ hash, target: 'cloud-west', kind: 'cloud' });
    }
    process.stdout.write(`commit ${hash} ${op} ${ledger.recounting() === null ? 0 : 1}\n`);
    k++;
  }
  await recount;
}
await cat.close();
process.stdout.write('done\n');
