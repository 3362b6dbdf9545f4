/**
 * The b3sum helper shell (protocol/src/durable/native-hasher.ts): native hashes
 * without forking node, and nothing of it outlives a process killed with SIGKILL.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { durableWrite, hashFileFast, nativeHashAvailable, NATIVE_MIN_BYTES } from '@studio321/protocol/durable';
import { lyingSource, testBytes } from '../lib/lying-source.js';

const native = await nativeHashAvailable();
const skip = native ? false : 'b3sum is not installed (scripts/ensure-system-deps.sh installs it)';

t.test('several native writes at once through the helper: right digests, read back, nothing left', { skip }, async (t) => {
  const dir = t.testdir();
  const files = [0, 1, 2, 3].map((i) => testBytes(NATIVE_MIN_BYTES + 1000 * i + 7, 40 + i));
  const results = await Promise.all(files.map((data, i) => durableWrite(lyingSource({ data, chunkSize: 1024 * 1024 }), { targets: [{ dir, name: `f${i}` }], hashEngine: 'native' })));
  for (const [i, r] of results.entries()) {
    t.equal(r.blake3, hashBytes(files[i]!), `f${i}: source hash`);
    t.equal(r.copies[0]?.method, 'readback-blake3');
    t.equal((await hashFileFast(join(dir, `f${i}`))).blake3, hashBytes(files[i]!), `f${i}: independent re-hash`);
  }
  t.same((await readdir(dir)).sort(), ['f0', 'f1', 'f2', 'f3'], 'no temp left');
});

t.test('kill -9 mid-stream: the helper kills its b3sum jobs and removes its FIFO directory', { skip }, async (t) => {
  const root = t.testdir({ tmp: {}, out: {} });
  const tmp = join(root, 'tmp');
  const durableUrl = import.meta.resolve('@studio321/protocol/durable');
  // Two chunks above the native threshold, then a source that never ends: when the
  // third chunk is asked for, the first is through the FIFO (writes and hash in lock step).
  const script = `
    import { durableWrite } from ${JSON.stringify(durableUrl)};
    const chunk = new Uint8Array(${NATIVE_MIN_BYTES}).fill(7);
    async function* src() { yield chunk; yield chunk.slice(); process.stdout.write('streaming\\n'); await new Promise(() => setInterval(() => {}, 1 << 30)); }
    await durableWrite(src(), { targets: [{ dir: ${JSON.stringify(join(root, 'out'))}, name: 'x' }], hashEngine: 'native' });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('streaming')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before streaming`)));
  });
  const dirs = (await readdir(tmp)).filter((n) => n.startsWith('s321-b3-'));
  t.equal(dirs.length, 1, 'one helper directory');
  t.equal((await readdir(join(tmp, dirs[0]!))).length, 1, 'one FIFO in it');

  const gone = new Promise<void>((resolve) => {
    const w = watch(tmp, () => {
      void readdir(tmp).then((names) => {
        if (!names.some((n) => n.startsWith('s321-b3-'))) {
          w.close();
          resolve();
        }
      });
    });
  });
  child.kill('SIGKILL');
  await exited;
  await gone; // the helper saw its stdin close, killed its jobs (kill 0), then removed its directory
  t.same(await readdir(tmp), [], 'nothing of the helper is left');
});
