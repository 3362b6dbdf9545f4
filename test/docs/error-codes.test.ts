/**
 * Every stable error code the programs can raise is documented in
 * docs/errors.md (STYLE: "every code listed in the docs"). Scans the sources
 * for code literals, so a new code without a line in the docs fails here.
 */
import t from 'tap';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CODE = /'((?:PROTO|DURABLE|AGENT|STUDIO|LINK|CLOUD|CONFIG|LEDGER|RECOVERY)_[A-Z0-9_]+)'/g;

async function* sources(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'dist' && e.name !== 'node_modules') yield* sources(p);
    else if (e.isFile() && p.endsWith('.ts') && !p.endsWith('.d.ts')) yield p;
  }
}

t.test('every error code in the sources is in docs/errors.md', async (t) => {
  const docs = await readFile(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const codes = new Map<string, string>();
  for (const dir of ['protocol/src', 'agent/src', 'agent/bin', 'studiod/src', 'studiod/bin']) {
    for await (const file of sources(join(ROOT, dir))) {
      for (const m of (await readFile(file, 'utf8')).matchAll(CODE)) codes.set(m[1]!, file.slice(ROOT.length));
    }
  }
  t.ok(codes.size > 50, `found ${codes.size} codes in the sources`);
  const missing = [...codes].filter(([code]) => !docs.includes(`\`${code}\``));
  t.same(missing, [], 'no undocumented code');
});
