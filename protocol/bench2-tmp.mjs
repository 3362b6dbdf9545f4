import { readFileChunks, hashBytes } from '@studio321/protocol';
import { createHasher } from '@studio321/protocol';
import { readdirSync, rmSync, mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { execSync } from 'node:child_process';
const src = '/tmp/bench/src';
const files = readdirSync(src);
const hash = process.argv[2] === 'hash';
rmSync('/tmp/bench/o1', { recursive: true, force: true }); mkdirSync('/tmp/bench/o1');
execSync('sync');
let t = performance.now(); let th = 0;
for (const f of files) {
  const fh = await open(`/tmp/bench/o1/${f}`, 'wx');
  const h = createHasher();
  let pos = 0;
  for await (const c of readFileChunks(`${src}/${f}`)) {
    const w = fh.write(c, 0, c.byteLength, pos); pos += c.byteLength;
    if (hash) { const a = performance.now(); h.update(c); th += performance.now() - a; }
    await w;
  }
  const a = performance.now();
  await fh.sync(); await fh.close();
  th -= 0;
  h.dispose();
}
execSync('sync');
console.log('copy', hash ? '+hash' : '', ((performance.now() - t) / 1000).toFixed(2), 'hash time', (th/1000).toFixed(2));
