/**
 * `node scripts/dist/lib/offload-floor.js --card C --out D [--kernel-copy]`, run by bench:ingest
 * (scripts/bench-ingest.ts): the verified offload's floor, a verified copy of the card and nothing
 * else, made as plainly as Node allows: each file read and hashed (BLAKE3, the native
 * engine), written to a temp in D, fsync'd, read back and hashed, compared, renamed into place; D
 * fsync'd at the end. FLOOR_CONCURRENCY files at once through reused 4 MiB buffers. None of what the
 * offload adds (its state and records, sidecar groups, dedup, the ASC MHL and its XXH3, EXIF,
 * progress), and it loads the protocol package only (0.16 s on an empty card here, Node 0.10 s).
 * Two ways to write a copy:
 *   - by default from the buffer the chunk was read and hashed in, in pwrites of at most
 *     BUFFERED_WRITE_MAX, as the offload writes;
 *   - `--kernel-copy`: the kernel copies the file (fs.copyFile, copy_file_range), then the card's
 *     file and the copy are each read and hashed: no copy from a buffer into the page cache, but
 *     the card is read twice.
 * The hashes run on this thread while the copies' I/O runs on libuv's threads.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createHasher } from '@studio321/protocol';
import { BUFFERED_WRITE_MAX } from '@studio321/protocol/durable';

/** Files the floor copies at once: as many as the offload's sidecar groups in flight (DEFAULT_OFFLOAD_CONCURRENCY). */
const FLOOR_CONCURRENCY = 8;
const FLOOR_CHUNK = 4 * 1024 * 1024;

/** Every regular file under `dir`. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The floor's verified copy of every file under `card` into `out` (see the header). */
export async function floorCopy(card: string, out: string, kernelCopy: boolean): Promise<void> {
  const files = await listFiles(card);
  await mkdir(out, { recursive: true });
  const free: Buffer[] = [];
  const take = (): Buffer => free.pop() ?? Buffer.allocUnsafeSlow(FLOOR_CHUNK);
  /** The BLAKE3 of the file at `path`, read through a pooled buffer; `also` gets each chunk (and where it starts) first. */
  const hashOf = async (path: string, also?: (chunk: Buffer, pos: number) => Promise<void>): Promise<string> => {
    const fh = await open(path, 'r');
    const buf = take();
    const h = createHasher();
    try {
      for (let pos = 0; ; ) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        h.update(chunk);
        await also?.(chunk, pos);
        pos += bytesRead;
      }
      return h.digest();
    } finally {
      free.push(buf);
      await fh.close();
    }
  };
  const copyOne = async (src: string, i: number): Promise<void> => {
    const name = `${i}-${src.slice(card.length + 1).replaceAll('/', '_')}`;
    const temp = join(out, `.${name}.tmp`);
    let source: string;
    if (kernelCopy) {
      await copyFile(src, temp, constants.COPYFILE_EXCL);
      const fh = await open(temp, 'r+');
      await fh.sync();
      await fh.close();
      source = await hashOf(src);
    } else {
      const to = await open(temp, 'wx');
      try {
        source = await hashOf(src, async (chunk, pos) => {
          for (let o = 0; o < chunk.byteLength; o += BUFFERED_WRITE_MAX)
            await to.write(chunk, o, Math.min(BUFFERED_WRITE_MAX, chunk.byteLength - o), pos + o);
        });
        await to.sync();
      } finally {
        await to.close();
      }
    }
    if ((await hashOf(temp)) !== source) throw new Error(`floor: ${temp} read back other bytes than ${src}`);
    await rename(temp, join(out, name));
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: FLOOR_CONCURRENCY }, async () => {
      for (let i = next++; i < files.length; i = next++) await copyOne(files[i] as string, i);
    }),
  );
  const dir = await open(out, 'r');
  await dir.sync();
  await dir.close();
}

const { values } = parseArgs({
  options: {
    card: { type: 'string' },
    out: { type: 'string' },
    'kernel-copy': { type: 'boolean', default: false },
  },
});
if (values.card === undefined || values.out === undefined)
  throw new Error('offload-floor: --card and --out are required');
await floorCopy(values.card, values.out, values['kernel-copy'] === true);
