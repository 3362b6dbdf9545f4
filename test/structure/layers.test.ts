/**
 * The layout is the architecture (docs/design.md, "Where things are"): imports run one way
 * along the data path, and no module can reach itself through its imports. This reads every
 * import of the three packages' sources, type-only imports included, and checks both.
 */
import t from 'tap';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Layers, lowest first. A module may import a module of a lower layer, or one of its own
 * group (the same folder, or the same group of root files); never upward, never sideways
 * into a sibling group of the same rank (offload and link do not know each other).
 */
const LAYERS: Record<string, Array<{ group: string; rank: number; match: (p: string) => boolean }>> = {
  'agent/src': [
    { group: 'base', rank: 0, match: (p) => /^(errors|paths|config|disk-identity|targets|instance-lock)\.ts$/.test(p) },
    { group: 'card', rank: 1, match: (p) => p.startsWith('card/') },
    { group: 'state', rank: 2, match: (p) => p.startsWith('state/') },
    { group: 'offload', rank: 3, match: (p) => p.startsWith('offload/') },
    { group: 'link', rank: 3, match: (p) => p.startsWith('link/') },
    { group: 'runner', rank: 4, match: (p) => p === 'runner.ts' },
    { group: 'ui', rank: 5, match: (p) => p.startsWith('ui/') },
    { group: 'cli', rank: 6, match: (p) => p.startsWith('cli/') },
    { group: 'index', rank: 7, match: (p) => p === 'index.ts' },
  ],
  'studiod/src': [
    { group: 'errors', rank: 0, match: (p) => p === 'errors.ts' },
    { group: 'cloud', rank: 1, match: (p) => p.startsWith('cloud/') },
    { group: 'base', rank: 2, match: (p) => /^(config|catalogue|control-socket|malloc-trim)\.ts$/.test(p) },
    { group: 'commit', rank: 3, match: (p) => p.startsWith('commit/') },
    { group: 'link', rank: 4, match: (p) => p.startsWith('link/') },
    { group: 'recovery', rank: 5, match: (p) => p.startsWith('recovery/') },
    { group: 'ledger', rank: 6, match: (p) => p.startsWith('ledger/') },
    { group: 'ops', rank: 7, match: (p) => p.startsWith('ops/') },
    { group: 'studio', rank: 8, match: (p) => p === 'studio.ts' },
    { group: 'index', rank: 9, match: (p) => p === 'index.ts' },
  ],
  'protocol/src': [
    { group: 'wire', rank: 0, match: (p) => !p.startsWith('durable/') },
    { group: 'durable', rank: 1, match: (p) => p.startsWith('durable/') },
  ],
};

async function* sources(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (e.isFile() && p.endsWith('.ts') && !p.endsWith('.d.ts')) yield p;
  }
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

async function importGraph(pkg: string): Promise<Map<string, string[]>> {
  const base = join(ROOT, pkg);
  const graph = new Map<string, string[]>();
  for await (const file of sources(base)) {
    const text = await readFile(file, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      if (spec === undefined) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (target.startsWith(`${base}/`)) deps.push(relative(base, target));
    }
    graph.set(relative(base, file), deps);
  }
  return graph;
}

/** Tarjan's strongly connected components with more than one module (or a self-import). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

for (const [pkg, layers] of Object.entries(LAYERS)) {
  t.test(`${pkg}: no import cycle, no import against the layers`, async (t) => {
    const graph = await importGraph(pkg);
    t.ok(graph.size > 5, `read ${graph.size} modules`);
    t.same(cycles(graph), [], 'no import cycle');
    const layerOf = (p: string) => layers.find((l) => l.match(p));
    const unplaced = [...graph.keys()].filter((p) => layerOf(p) === undefined);
    t.same(unplaced, [], 'every module belongs to a layer');
    const wrong: string[] = [];
    for (const [from, deps] of graph) {
      const a = layerOf(from);
      for (const to of deps) {
        const b = layerOf(to);
        if (a === undefined || b === undefined || a.group === b.group) continue;
        if (b.rank >= a.rank) wrong.push(`${from} (${a.group}) → ${to} (${b.group})`);
      }
    }
    t.same(wrong, [], 'imports run from higher layers to lower ones only');
  });
}

t.test('the checker sees a cycle and an upward import when there is one', async (t) => {
  t.same(
    cycles(
      new Map([
        ['a.ts', ['b.ts']],
        ['b.ts', ['a.ts']],
        ['c.ts', ['a.ts']],
      ]),
    ),
    [['a.ts', 'b.ts']],
  );
  t.same(cycles(new Map([['a.ts', ['a.ts']]])), [['a.ts']]);
  t.same(
    cycles(
      new Map([
        ['a.ts', ['b.ts']],
        ['b.ts', []],
      ]),
    ),
    [],
  );
});
