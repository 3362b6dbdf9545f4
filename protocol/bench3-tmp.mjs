import { readFileChunks } from '@studio321/protocol';
import { readdirSync, rmSync, mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { execSync } from 'node:child_process';
const src = '/tmp/bench/src';
const files = readdirSync(src);
const conc = Number(process.argv[2] ?? 1);
rmSync('/tmp/bench/o1', { recursive: true, force: true }); mkdirSync('/tmp/bench/o1');
execSync('sync');
let t = performance.now();
let i = 0;
async function worker() {
  while (i < files.length) {
    const f = files[i++];
    const fh = await open(`/tmp/bench/o1/${f}`, 'wx');
    let pos = 0;
    for await (const c of readFileChunks(`${src}/${f}`)) { await fh.write(c, 0, c.byteLength, pos); pos += c.byteLength; }
    await fh.sync(); await fh.close();
  }
}
await Promise.all(Array.from({ length: conc }, worker));
execSync('sync');
console.log('copy conc', conc, ((performance.now() - t) / 1000).toFixed(2));
