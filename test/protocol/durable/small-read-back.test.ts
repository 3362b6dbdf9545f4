/**
 * verifyFile of small files (studiod's verify of an archive of small files) reads each back
 * through one small buffer taken from a few kept for reuse, never two fresh 4 MiB ones:
 * many verifies, 8 at a time, leave at most 8 buffers kept; every verdict is right (an
 * intact copy ok, a damaged one DURABLE_HASH_MISMATCH), and a file at the limit size is
 * read to its end like any other.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { DURABLE_CODES, keptReadBackBuffers, SMALL_READ_BACK, verifyFile } from '@studio321/protocol/durable';

t.test('small files verified through a few reused buffers, every verdict right', async (t) => {
  const dir = t.testdir();
  const files = await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const bytes = randomBytes(i === 0 ? SMALL_READ_BACK - 1 : 2048 + i * 37);
      const path = join(dir, `f${i}`);
      const expected = { size: bytes.length, blake3: hashBytes(bytes) };
      // Every tenth copy rots: one byte flipped, same size.
      if (i % 10 === 9) bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
      await writeFile(path, bytes);
      return { path, expected, damaged: i % 10 === 9 };
    }),
  );
  const wrong: string[] = [];
  for (let i = 0; i < files.length; i += 8) {
    const slice = files.slice(i, i + 8);
    const verdicts = await Promise.all(slice.map((f) => verifyFile(f.path, f.expected)));
    verdicts.forEach((v, j) => {
      const f = slice[j]!;
      const want = f.damaged ? DURABLE_CODES.hashMismatch : undefined;
      if (v.ok === f.damaged || v.code !== want) wrong.push(`${f.path}: ${JSON.stringify(v)}`);
    });
  }
  t.same(wrong, [], '200 verdicts, 20 damaged copies found');
  t.ok(keptReadBackBuffers() <= 8, `at most 8 buffers kept (${keptReadBackBuffers()})`);
  t.ok(keptReadBackBuffers() >= 1, 'and they are kept for the next read-back');
});
