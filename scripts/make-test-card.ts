/**
 * Test-card generator: camera-card trees with realistic layouts, for tests, the
 * demo and `npm run bench:ingest`.
 *
 *   node scripts/dist/make-test-card.js <dir> [--preset full|bench|clash-a|clash-b] [--raw-size BYTES] [--total-bytes BYTES] [--seed N]
 *
 * Presets:
 *  - full:  DCF folders with RAW+JPEG pairs and .XMP sidecars, a 9999→0001 wrap
 *           (100CANON/IMG_9998…9999 then 101CANON/IMG_0001…), Sony PRIVATE/M4ROOT
 *           C0001.MP4 + C0001M01.XML, GoPro GX010001.MP4 + .THM + GL010001.LRV,
 *           and (zeroByte) one zero-byte file;
 *  - bench: RAW files of `rawSize` (+ JPEG + XMP) until `totalBytes` is reached;
 *  - two bodies: `makeTwoBodyCards` — two cards with the same label and the same
 *           names (DCIM/100CANON/IMG_0001.CR3…) but different content;
 *  - dual slot: `makeDualSlotPair` — two cards with identical content.
 * Content is deterministic per seed (AES-CTR keystream: fast, incompressible);
 * mtimes are fixed so a regenerated card has the same fingerprint.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, open, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

export interface CardFile {
  path: string;
  size: number;
}

export interface TestCardOptions {
  /** Bytes of each RAW file (JPEGs are a quarter, sidecars ~2 KB). Sizes get a small per-file jitter so they differ. */
  rawSize?: number;
  seed?: number;
  /** full: add a zero-byte file (default false). */
  zeroByte?: boolean;
  /** bench: stop once this many bytes were generated. */
  totalBytes?: number;
}

const BASE_TIME = new Date('2026-11-26T09:00:00Z').getTime() / 1000;
const CHUNK = 4 * 1024 * 1024;

/** Deterministic bytes for (seed, path): AES-128-CTR over zeros. */
async function writeContent(root: string, rel: string, size: number, seed: number, index: number): Promise<void> {
  const abs = join(root, ...rel.split('/'));
  await mkdir(dirname(abs), { recursive: true });
  const key = createHash('sha256').update(`${seed}\0${rel}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(Math.min(CHUNK, Math.max(size, 1)));
  const fh = await open(abs, 'w');
  try {
    let left = size;
    while (left > 0) {
      const n = Math.min(left, zeros.length);
      await fh.write(cipher.update(zeros.subarray(0, n)));
      left -= n;
    }
  } finally {
    await fh.close();
  }
  const t = BASE_TIME + index * 2;
  await utimes(abs, t, t);
}

function jitter(size: number, i: number): number {
  return size <= 1024 ? size : size + ((i * 7919) % 997) * 8;
}

class CardWriter {
  readonly root: string;
  readonly seed: number;
  readonly files: CardFile[] = [];
  #i = 0;
  constructor(root: string, seed: number) {
    this.root = root;
    this.seed = seed;
  }
  async add(rel: string, size: number, contentSeed = this.seed): Promise<void> {
    this.#i += 1;
    await writeContent(this.root, rel, size, contentSeed, this.#i);
    this.files.push({ path: rel, size });
  }
}

/** The `full` preset (see the file comment). */
export async function makeTestCard(root: string, opts: TestCardOptions = {}): Promise<CardFile[]> {
  const raw = opts.rawSize ?? 256 * 1024;
  const w = new CardWriter(root, opts.seed ?? 1);
  let i = 0;
  // DCF numbering wrap: 100CANON ends at 9999, 101CANON starts again at 0001.
  for (const [folder, nums] of [
    ['100CANON', [9998, 9999]],
    ['101CANON', [1, 2]],
  ] as const) {
    for (const n of nums) {
      const stem = `DCIM/${folder}/IMG_${String(n).padStart(4, '0')}`;
      await w.add(`${stem}.CR3`, jitter(raw, i++));
      await w.add(`${stem}.JPG`, jitter(Math.max(1, raw >> 2), i++));
      await w.add(`${stem}.XMP`, 2048 + i++);
    }
  }
  await w.add('PRIVATE/M4ROOT/CLIP/C0001.MP4', jitter(raw * 2, i++));
  await w.add('PRIVATE/M4ROOT/CLIP/C0001M01.XML', 1500 + i++);
  await w.add('DCIM/100GOPRO/GX010001.MP4', jitter(raw, i++));
  await w.add('DCIM/100GOPRO/GX010001.THM', 9000 + i++);
  await w.add('DCIM/100GOPRO/GL010001.LRV', jitter(Math.max(1, raw >> 3), i++));
  if (opts.zeroByte) await w.add('DCIM/101CANON/IMG_0003.CR3', 0);
  return w.files;
}

/** The `bench` preset: RAW+JPEG+XMP triples until totalBytes. */
export async function makeBenchCard(root: string, opts: TestCardOptions = {}): Promise<CardFile[]> {
  const raw = opts.rawSize ?? 30 * 1024 * 1024;
  const total = opts.totalBytes ?? 2 * 1024 ** 3;
  const w = new CardWriter(root, opts.seed ?? 1);
  let bytes = 0;
  for (let n = 1; bytes < total; n++) {
    const folder = `${100 + Math.floor((n - 1) / 9999)}CANON`;
    const stem = `DCIM/${folder}/IMG_${String(((n - 1) % 9999) + 1).padStart(4, '0')}`;
    const sizes = [jitter(raw, n), jitter(raw >> 3, n), 2048 + (n % 100)];
    await w.add(`${stem}.CR3`, sizes[0] ?? raw);
    await w.add(`${stem}.JPG`, sizes[1] ?? raw);
    await w.add(`${stem}.XMP`, sizes[2] ?? 2048);
    bytes += sizes.reduce((a, b) => a + b, 0);
  }
  return w.files;
}

/** Two bodies, one label: the same names on both cards, different content. */
export async function makeTwoBodyCards(
  rootA: string,
  rootB: string,
  opts: TestCardOptions = {},
): Promise<[CardFile[], CardFile[]]> {
  const raw = opts.rawSize ?? 128 * 1024;
  const make = async (root: string, seed: number, sizeShift: number): Promise<CardFile[]> => {
    const w = new CardWriter(root, seed);
    for (let n = 1; n <= 3; n++) {
      const stem = `DCIM/100CANON/IMG_${String(n).padStart(4, '0')}`;
      await w.add(`${stem}.CR3`, jitter(raw, n + sizeShift));
      await w.add(`${stem}.XMP`, 2048 + n + sizeShift);
    }
    return w.files;
  };
  return [await make(rootA, (opts.seed ?? 1) * 1000 + 1, 0), await make(rootB, (opts.seed ?? 1) * 1000 + 2, 0)];
}

/** Dual slot: both cards hold identical files (same names, same bytes). */
export async function makeDualSlotPair(
  rootA: string,
  rootB: string,
  opts: TestCardOptions = {},
): Promise<[CardFile[], CardFile[]]> {
  const raw = opts.rawSize ?? 128 * 1024;
  const make = async (root: string): Promise<CardFile[]> => {
    const w = new CardWriter(root, (opts.seed ?? 1) * 1000 + 7);
    for (let n = 1; n <= 3; n++) {
      await w.add(`DCIM/100MSDCF/DSC0000${n}.ARW`, jitter(raw, n + 50));
      await w.add(`DCIM/100MSDCF/DSC0000${n}.JPG`, jitter(raw >> 2, n + 50));
    }
    return w.files;
  };
  return [await make(rootA), await make(rootB)];
}

async function cli(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      preset: { type: 'string', default: 'full' },
      'raw-size': { type: 'string' },
      'total-bytes': { type: 'string' },
      seed: { type: 'string' },
      'zero-byte': { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  const dir = positionals[0];
  if (dir === undefined) {
    process.stderr.write(
      'usage: make-test-card <dir> [--preset full|bench] [--raw-size BYTES] [--total-bytes BYTES] [--seed N] [--zero-byte]\n',
    );
    process.exit(2);
  }
  const opts: TestCardOptions = {
    ...(values['raw-size'] === undefined ? {} : { rawSize: Number(values['raw-size']) }),
    ...(values['total-bytes'] === undefined ? {} : { totalBytes: Number(values['total-bytes']) }),
    ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
    zeroByte: values['zero-byte'] === true,
  };
  const files = values.preset === 'bench' ? await makeBenchCard(dir, opts) : await makeTestCard(dir, opts);
  const bytes = files.reduce((n, f) => n + f.size, 0);
  process.stdout.write(`${files.length} files, ${bytes} bytes in ${dir}\n`);
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) await cli();
