#!/usr/bin/env node
// Runs the tap suite, streams its output, and ends with one line:
//   N passed, N failed[, N skipped]
// which CI reads. Exit status is tap's, and 1 when a test was skipped: a case that could
// not run here must not pass for one that ran. Extra arguments go to tap.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const tapBin = join(dirname(require.resolve('tap')), '..', 'esm', 'run.mjs');
const child = spawn(process.execPath, [tapBin, '--reporter=tap', ...process.argv.slice(2)], {
  stdio: ['inherit', 'pipe', 'inherit'],
});
let totals = null;
let pending = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  pending += chunk.toString('utf8');
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    // tap's final summary: "# { total: 12, pass: 11, fail: 1, skip: 0 }"
    const m = /^# \{ total: (\d+)(.*)\}\s*$/.exec(line);
    if (m) {
      const field = (name) => Number((new RegExp(`${name}: (\\d+)`).exec(m[2] ?? '') ?? [])[1] ?? 0);
      totals = { pass: field('pass'), fail: field('fail'), skip: field('skip') + field('todo') };
    }
  }
});
child.on('close', (code, signal) => {
  if (totals === null) {
    console.log(`0 passed, 1 failed (tap printed no totals; exit ${code ?? signal})`);
    process.exit(code || 1);
  }
  const skipped = totals.skip > 0 ? `, ${totals.skip} skipped` : '';
  console.log(`${totals.pass} passed, ${totals.fail} failed${skipped}`);
  process.exit(totals.skip > 0 ? code || 1 : (code ?? 1));
});
