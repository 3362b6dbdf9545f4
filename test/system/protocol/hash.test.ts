/**
 * BLAKE3 of a large file with bounded memory, checked against Debian's b3sum
 * (a child process). The in-process hash tests are in test/protocol/hash.test.ts.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { hashFile, hashStream } from '@studio321/protocol';
import { readFileChunks } from '@studio321/protocol/durable';
import { testBytes } from '../../lib/lying-source.js';

const run = promisify(execFile);

t.test('a 64 MiB file is hashed with bounded memory and agrees with b3sum', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'C0001.MP4');
  const fh = await open(path, 'w');
  const block = testBytes(1024 * 1024, 3);
  for (let i = 0; i < 64; i++) {
    block[0] = i; // every MiB differs
    await fh.write(block, 0, block.byteLength, i * block.byteLength);
  }
  await fh.close();

  // Watch memory at every chunk the hasher sees: it never holds the whole file. What is measured is
  // what is still held after a full GC (V8's `gc`, exposed by a runtime flag in a new context, as
  // studiod's fullGc does): chunks already hashed and not yet collected are garbage, and counting
  // them made the peak depend on when V8 collected (36 MiB once on a fresh clone).
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  let peak = 0;
  const base = process.memoryUsage().arrayBuffers;
  async function* watched(): AsyncGenerator<Uint8Array> {
    for await (const c of readFileChunks(path)) {
      gc();
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
      yield c;
    }
  }
  const streamed = await hashStream(watched());
  t.ok(
    peak < 32 * 1024 * 1024,
    `extra buffer memory while hashing stays bounded (peak ${(peak / 1048576).toFixed(1)} MiB of a 64 MiB file)`,
  );
  const r = await hashFile(path);
  t.same(r, streamed);
  t.equal(r.size, 64 * 1024 * 1024);

  const b3 = await run('b3sum', ['--no-names', path]).then(
    (o) => o.stdout.trim(),
    () => undefined,
  );
  await t.test(
    'cross-check with b3sum',
    { skip: b3 === undefined ? 'b3sum is not installed (scripts/ensure-system-deps.sh installs it)' : false },
    async (t) => {
      t.equal(r.blake3, b3, 'b3sum agrees');
    },
  );
});
