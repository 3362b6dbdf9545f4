// Throwaway: durableWrite of /tmp/bench/src (40 x 25 MB) vs cp -r + sync, interleaved.
import { durableWrite, readFileChunks } from '@studio321/protocol/durable';
import { readdirSync, rmSync, mkdirSync } from 'node:fs';
import { execSync } from 'node:child_process';
const src = process.env.SRC ?? '/tmp/bench/src';
const files = readdirSync(src);
const mode = process.argv[2] ?? 'one';
const opts = JSON.parse(process.argv[3] ?? '{}');
const conc = Number(process.argv[4] ?? 1);
const outs = mode === 'two' ? ['/tmp/bench/o1', '/tmp/bench/o2'] : ['/tmp/bench/o1'];
const clean = () => { for (const o of outs) rmSync(o, { recursive: true, force: true }); execSync('sync'); };
const bytes = Number(execSync(`du -sb ${src}`).toString().split('\t')[0]);
function cp() { clean(); const t = performance.now(); for (const o of outs) execSync(`cp -r ${src} ${o}`); execSync('sync'); return (performance.now() - t) / 1000; }
async function dw() {
  clean(); for (const o of outs) mkdirSync(o);
  const t = performance.now(); let i = 0;
  const worker = async () => { while (i < files.length) { const f = files[i++]; await durableWrite(readFileChunks(`${src}/${f}`), { targets: outs.map((d) => ({ dir: d, name: f })), ...opts }); } };
  await Promise.all(Array.from({ length: conc }, worker));
  execSync('sync'); return (performance.now() - t) / 1000;
}
const r = [];
for (let k = 0; k < 2; k++) { const a = cp(); const b = await dw(); r.push([a, b]); }
for (const [a, b] of r) console.log(mode, JSON.stringify(opts), 'conc', conc, `cp ${(bytes / 1e6 / a).toFixed(0)} MB/s`, `durable ${(bytes / 1e6 / b).toFixed(0)} MB/s`, 'ratio', (a / b).toFixed(2));
console.log('peak rss', (process.resourceUsage().maxRSS / 1024).toFixed(0), 'MB');
clean();
