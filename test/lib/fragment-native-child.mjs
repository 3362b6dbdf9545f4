// Loaded into a studiod child with `--import` (test/system/studiod/link/idle-trim.test.ts): before
// studiod starts, leaves FRAGMENT_MIB (default 160) MiB of holes in glibc's malloc arenas, the way a
// burst of twenty agents does: Buffers of 2–30 KiB (malloc'd backing stores, under the mmap
// threshold), one in 16 kept, the rest collected. free() gives back only the top of an arena, so
// the holes stay in the RSS until malloc_trim walks them.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const total = Number(process.env.FRAGMENT_MIB ?? 160) * 2 ** 20;
const kept = [];
let bufs = [];
let n = 0;
for (let i = 0; n < total; i++) {
  const b = Buffer.allocUnsafeSlow(2048 + ((i * 7919) % 28_672));
  b.fill(i & 0xff); // touched: resident
  bufs.push(b);
  n += b.length;
}
for (let i = 0; i < bufs.length; i += 16) kept.push(bufs[i]);
bufs = undefined;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
gc();
gc();
globalThis.__fragmentKept = kept;
