#!/usr/bin/env node
// After `tsc -b`: `field-agent status` as one CommonJS file, agent/dist/bin/status.cjs, from
// agent/dist/src/cli/status-entry.js (the agent's and protocol's own modules inlined, their npm
// dependencies left to `require`), and beside it status.cjs.inputs.json: the files it was made
// from, relative to it. The bin runs status from it only while none of them is newer than it
// (a `tsc -b` without this step leaves it stale: the bin then loads the ES modules as before).
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'agent', 'dist', 'bin', 'status.cjs');
const deps = new Set();
for (const ws of ['agent', 'protocol']) {
  const pkg = JSON.parse(await readFile(join(root, ws, 'package.json'), 'utf8'));
  for (const name of Object.keys(pkg.dependencies ?? {})) if (!name.startsWith('@studio321/')) deps.add(name);
}
const result = await build({
  absWorkingDir: root,
  entryPoints: [join(root, 'agent', 'dist', 'src', 'cli', 'status-entry.js')],
  outfile,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // What status never runs stays an ES module, imported only if it ever is: the durable write
  // (creating a store) finds its workers by import.meta.url, which a CommonJS file has not.
  external: [...deps],
  plugins: [
    {
      name: 'es-modules-left-out',
      setup: (b) =>
        b.onResolve({ filter: /^@studio321\/protocol(\/durable)?$/ }, (a) => ({ path: a.path, external: true })),
    },
  ],
  metafile: true,
  logLevel: 'warning',
});
// A warning (import.meta in code that made it in, say) would be an error at run time: refuse it here.
if (result.warnings.length > 0) throw new Error(`bundle-status: ${result.warnings.length} warning(s), see above`);
const inputs = Object.keys(result.metafile.inputs).map((p) => relative(dirname(outfile), join(root, p)));
await writeFile(`${outfile}.inputs.json`, `${JSON.stringify(inputs)}\n`);
