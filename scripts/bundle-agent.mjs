#!/usr/bin/env node
// After `tsc -b`: the agent's commands whose start-up counts, each as one CommonJS file in
// agent/dist/bin/ made from agent/dist/src/cli/<command>-entry.js (the agent's and protocol's own
// modules inlined, their npm dependencies left to `require`), and beside each <file>.inputs.json: the
// files it was made from, relative to it. The bin runs a command from its file only while none of them
// is newer than it (a `tsc -b` without this step leaves it stale: the bin then loads the ES modules).
//  - status.cjs: what status never runs stays an ES module, imported only if it ever is (the protocol
//    barrel, the durable write);
//  - sync.cjs: everything `field-agent sync` runs, the durable write and the wire code included. A module
//    that finds a file by `import.meta.url` (a worker's script, `createRequire` of an npm package) gets
//    the URL of its own file in dist/, so the workers still run their ES modules from there.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'agent', 'dist', 'bin');
const deps = new Set();
for (const ws of ['agent', 'protocol']) {
  const pkg = JSON.parse(await readFile(join(root, ws, 'package.json'), 'utf8'));
  for (const name of Object.keys(pkg.dependencies ?? {})) if (!name.startsWith('@studio321/')) deps.add(name);
}

/** `import.meta.url` of each inlined module: its own file's URL in dist/, from the bundle's __dirname. */
const META_URL = '__studioModuleUrl';
const ownModuleUrls = {
  name: 'own-module-urls',
  setup: (b) =>
    b.onLoad({ filter: /\/(agent|protocol)\/dist\/.*\.js$/ }, async (a) => {
      const source = await readFile(a.path, 'utf8');
      if (!source.includes('import.meta')) return undefined;
      return {
        contents: source.replaceAll('import.meta.url', `${META_URL}(${JSON.stringify(relative(bin, a.path))})`),
        loader: 'js',
      };
    }),
};
const esModulesLeftOut = {
  name: 'es-modules-left-out',
  setup: (b) =>
    b.onResolve({ filter: /^@studio321\/protocol(\/durable)?$/ }, (a) => ({ path: a.path, external: true })),
};

async function bundle(command, plugins, banner) {
  const outfile = join(bin, `${command}.cjs`);
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(root, 'agent', 'dist', 'src', 'cli', `${command}-entry.js`)],
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    external: [...deps],
    plugins,
    ...(banner === undefined ? {} : { banner: { js: banner } }),
    metafile: true,
    logLevel: 'warning',
  });
  // A warning (import.meta left in code that made it in, say) would be an error at run time: refuse it here.
  if (result.warnings.length > 0) throw new Error(`bundle-agent: ${result.warnings.length} warning(s), see above`);
  const inputs = Object.keys(result.metafile.inputs).map((p) => relative(bin, join(root, p)));
  await writeFile(`${outfile}.inputs.json`, `${JSON.stringify(inputs)}\n`);
}

await bundle('status', [esModulesLeftOut]);
await bundle(
  'sync',
  [ownModuleUrls],
  `const ${META_URL} = (rel) => require('node:url').pathToFileURL(require('node:path').join(__dirname, rel)).href;`,
);
