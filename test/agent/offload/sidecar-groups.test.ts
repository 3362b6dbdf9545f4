/**
 * sidecarGroups (offloader.ts) gives the groups a Map from group key to files gives — same keys,
 * same order of first file, same members in path order — for listings where a group's files are
 * not next to each other in path order (stems in other cases, NFD names, GoPro chapters), without
 * a key and an array per group; with `release`, the same groups, each one's slots emptied as it is
 * yielded (the offloader lets a large card's records go as their groups are under way).
 */
import t from 'tap';
import { groupKey, sidecarGroups } from '@studio321/agent/offload';
import type { FileRecord } from '@studio321/agent/state';

function reference(files: readonly FileRecord[]): Array<[string, string[]]> {
  const m = new Map<string, string[]>();
  for (const f of files) {
    const k = groupKey(f.path);
    const g = m.get(k);
    if (g === undefined) m.set(k, [f.path]);
    else g.push(f.path);
  }
  return [...m];
}

t.test('the same groups as a Map by key, in the same order', async (t) => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const stems = [
    'IMG_0001',
    'img_0001',
    'IMG_0001-2',
    'Café',
    'Cafe\u0301',
    'GX010042',
    'GH010042',
    'GL010042',
    'DSC_9',
  ];
  const exts = ['.JPG', '.CR3', '.xmp', '.MP4', '.jpg.xmp', ''];
  for (let round = 0; round < 20; round++) {
    const paths = new Set<string>();
    for (let i = 0; i < 300; i++)
      paths.add(
        `DCIM/${100 + rnd(3)}CANON/${stems[rnd(stems.length)]}${rnd(4) === 0 ? String(rnd(50)) : ''}${exts[rnd(exts.length)]}`,
      );
    const files: FileRecord[] = [...paths]
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((path) => ({ card: 'c', path, size: 1, mtimeMs: 1, scan: 1, state: 'seen' }));
    const got = [...sidecarGroups(files)].map(([k, m]): [string, string[]] => [k, m.map((f) => f.path)]);
    t.same(got, reference(files), `round ${round}: ${files.length} files`);
    // Released: the same groups; as each is yielded, its files' slots (and only theirs) are empty.
    const taken = [...files];
    const left = new Set(files.map((f) => f.path));
    const released: Array<[string, string[]]> = [];
    let emptied = true;
    for (const [k, m] of sidecarGroups(taken, { release: true })) {
      released.push([k, m.map((f) => f.path)]);
      for (const f of m) left.delete(f.path);
      const held = new Set(taken.filter((f) => f !== undefined).map((f) => f.path));
      if (held.size !== left.size || [...left].some((p) => !held.has(p))) emptied = false;
    }
    t.same(released, got, `round ${round}: released, the same groups`);
    t.ok(
      emptied && taken.every((f) => f === undefined),
      `round ${round}: each group's slots emptied as it was yielded`,
    );
  }
  t.same([...sidecarGroups([])], [], 'no files, no groups');
});
