/**
 * The steps of the durable write are named and numbered the same way in the code
 * and in docs/design.md ("Durable write"): the list in the doc and the list in
 * durable-write.ts's header must be the same, every `// N. name` mark in the
 * code must name a step of that list, and every step must be marked.
 * This reads the two files as text, like test/structure/layers.test.ts.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function numbered(text: string, re: RegExp): string[] {
  return [...text.matchAll(re)].map((m) => `${m[1]}. ${m[2]}`);
}

t.test('docs/design.md, the header of durable-write.ts and its step marks list the same steps', async (t) => {
  const design = await readFile(`${ROOT}docs/design.md`, 'utf8');
  const start = design.indexOf('## Durable write (protocol/src/durable)');
  const end = design.indexOf('\n## ', start + 1);
  t.ok(start >= 0 && end > start, 'docs/design.md has the Durable write section');
  const inDoc = numbered(design.slice(start, end), /^(\d+)\. \*\*(\w+)\*\* — /gm);

  const code = await readFile(`${ROOT}protocol/src/durable/durable-write.ts`, 'utf8');
  const header = code.slice(0, code.indexOf('*/'));
  const inHeader = numbered(header, /^ \* {3}(\d+)\. (\w+) /gm);
  const marks = new Set(numbered(code, /^ *\/\/ (\d+)\. (\w+)/gm));

  t.same(
    inDoc.map((s, i) => s.startsWith(`${i + 1}. `)),
    inDoc.map(() => true),
    'the doc numbers its steps 1..N',
  );
  t.ok(inDoc.length >= 2, `the doc lists the steps (${inDoc.join(', ')})`);
  t.same(inHeader, inDoc, 'the header of durable-write.ts lists the same steps');
  t.same(
    [...marks].filter((m) => !inDoc.includes(m)),
    [],
    'every `// N. name` mark in durable-write.ts names a step as the doc does',
  );
  t.same(
    inDoc.filter((s) => !marks.has(s)),
    [],
    'every step is marked `// N. name` in durable-write.ts',
  );
});
