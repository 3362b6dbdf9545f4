import { durableWrite, readFileChunks } from '@studio321/protocol/durable';
import { readdirSync, rmSync, mkdirSync } from 'node:fs';
const src = '/tmp/bench/src';
const opts = JSON.parse(process.argv[2] ?? '{}');
const outs = (process.argv[3] ?? '/tmp/bench/o1').split(',');
for (const o of outs) { rmSync(o, { recursive: true, force: true }); mkdirSync(o); }
const t = performance.now();
for (const f of readdirSync(src)) await durableWrite(readFileChunks(`${src}/${f}`), { targets: outs.map((d) => ({ dir: d, name: f })), ...opts });
console.log(JSON.stringify(opts), 'wall', ((performance.now() - t) / 1000).toFixed(2));
