/**
 * The malloc_trim addon (studiod/native/malloc-trim.c, built by `npm ci`) and its loader
 * (studiod/src/malloc-trim.ts): it loads here (glibc, a compiler at install), and one call right
 * after the idle reclaim's full GC (link/memory-budget.ts fullGc) gives back the pages of the holes
 * the dead Buffers left in malloc's arenas, measured in this process' RSS; a missing or
 * broken addon, or `off`, is a coded "unavailable" and never a throw.
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MallocTrim, mallocTrim, STUDIO_CODES } from '@studio321/studiod';
import { fullGc } from '@studio321/studiod/link';
import { tempDir } from '../lib/studio-harness.js';

const MiB = 2 ** 20;

t.test('the addon loads and malloc_trim gives the arenas’ holes back', async (t) => {
  const trim = mallocTrim();
  t.equal(trim.unavailable, undefined, `no reason it is unavailable (${trim.unavailable?.message})`);
  t.ok(trim.available);
  // 96 MiB in 2–30 KiB Buffers (malloc'd, under the mmap threshold), one in 16 kept: holes.
  let bufs: Buffer[] | undefined = [];
  const kept: Buffer[] = [];
  for (let i = 0, n = 0; n < 96 * MiB; i++) {
    const b = Buffer.allocUnsafeSlow(2048 + ((i * 7919) % 28_672));
    b.fill(i & 0xff);
    bufs.push(b);
    n += b.length;
  }
  for (let i = 0; i < bufs.length; i += 16) kept.push(bufs[i] as Buffer);
  bufs = undefined;
  const gc = fullGc();
  t.ok(gc, 'a full GC can be had');
  // The reclaim's GC frees the dead Buffers' memory before it returns (no concurrent ArrayBuffer
  // sweeping for it): the trim right after finds it free (with a background sweep: 1–3 MiB here).
  gc?.();
  const arenas = trim.arenas();
  t.ok(
    arenas !== undefined && arenas.freeBytes > 64 * MiB,
    `free in the arenas right after one GC: ${((arenas?.freeBytes ?? 0) / MiB).toFixed(0)} MiB`,
  );
  const r = trim.trim();
  t.ok(
    r !== undefined && r.releasedBytes > 48 * MiB,
    `RSS given back: ${((r?.releasedBytes ?? 0) / MiB).toFixed(0)} MiB in ${r?.ms.toFixed(1)} ms (CPU ${r?.cpuMs.toFixed(1)} ms)`,
  );
  const st = trim.status();
  t.ok(st.available && st.trims >= 1 && st.releasedBytes >= (r?.releasedBytes ?? 0), 'counted in its status');
  t.ok(kept.length > 0, 'the kept Buffers live to here');
});

t.test('missing, broken or turned off: unavailable with its code, never a throw', async (t) => {
  const dir = await tempDir(t, 'malloc-trim-');
  const broken = join(dir, 'malloc_trim.node');
  await writeFile(broken, 'not an ELF file');
  const notGlibc = join(dir, 'empty.js');
  await writeFile(notGlibc, 'module.exports = {};\n');
  for (const [file, why] of [
    [join(dir, 'absent.node'), /absent\.node did not load/],
    [broken, /malloc_trim\.node did not load/],
    [notGlibc, /has no malloc_trim: the C library is not glibc/],
    ['off', /STUDIOD_MALLOC_TRIM_ADDON=off/],
  ] as const) {
    const m = MallocTrim.load(file);
    t.notOk(m.available, `${file}: not available`);
    t.equal(m.unavailable?.code, STUDIO_CODES.mallocTrimUnavailable);
    t.match(m.unavailable?.message, why);
    t.match(m.unavailable?.message, /studiod works without it/);
    t.equal(m.trim(), undefined, 'trim() does nothing');
    t.equal(m.arenas(), undefined);
    t.same(m.status(), {
      available: false,
      unavailable: { code: STUDIO_CODES.mallocTrimUnavailable, message: m.unavailable?.message },
      trims: 0,
      releasedBytes: 0,
      ms: 0,
      cpuMs: 0,
    });
  }
});
