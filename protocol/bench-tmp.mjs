import { durableWrite, readFileChunks } from '@studio321/protocol/durable';
import { readdirSync, rmSync, mkdirSync } from 'node:fs';
import { execSync } from 'node:child_process';
const src = '/tmp/bench/src';
const files = readdirSync(src);
const mode = process.argv[2] ?? 'one';
const opts = JSON.parse(process.argv[3] ?? '{}');
const outs = mode === 'two' ? ['/tmp/bench/o1', '/tmp/bench/o2'] : ['/tmp/bench/o1'];
for (const o of outs) { rmSync(o, { recursive: true, force: true }); mkdirSync(o); }
execSync('sync');
const t = performance.now();
for (const f of files) {
  await durableWrite(readFileChunks(`${src}/${f}`), { targets: outs.map((d) => ({ dir: d, name: f })), ...opts });
}
execSync('sync');
const dt = (performance.now() - t) / 1000;
console.log(mode, JSON.stringify(opts), dt.toFixed(2), 's', (1000 / dt).toFixed(0), 'MB/s', 'rss', (process.resourceUsage().maxRSS / 1024).toFixed(0), 'MB');
