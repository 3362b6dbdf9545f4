/**
 * appendMhlGenerationStream writes the bytes appendMhlGeneration writes for the same files (a
 * generation larger than one 64 KiB chunk), and its chain entry's C4 is that of the bytes on disk.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  appendMhlGeneration,
  appendMhlGenerationStream,
  c4Id,
  MHL_CHAIN_FILE,
  MHL_FOLDER,
  type MhlFile,
} from '@studio321/protocol/durable';

const files: MhlFile[] = Array.from({ length: 1500 }, (_, i) => ({
  path: `DCIM/100CANON/IMG_${String(i).padStart(4, '0')}${i % 7 === 0 ? ' & <x>' : ''}.JPG`,
  size: 2048 + i,
  mtimeMs: 1_700_000_000_123 + i * 1000,
  xxh3: (0x1234_5678_9abc + i).toString(16).padStart(16, '0'),
  action: 'original',
  hashDate: new Date(1_700_000_100_000 + i).toISOString(),
}));

async function* oneByOne<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const x of items) yield x;
}

t.test('streamed generation: same bytes as the whole one, chained with its C4', async (t) => {
  const dir = t.testdir({ whole: {}, stream: {}, empty: {}, emptyStream: {} });
  const now = new Date('2026-12-05T20:00:00.000Z');
  const common = { process: 'transfer' as const, tool: { name: 't', version: '1' }, hostname: 'h', comment: 'c', now };
  for (const [whole, stream, list] of [
    ['whole', 'stream', files],
    ['empty', 'emptyStream', []],
  ] as const) {
    const a = await appendMhlGeneration({ ...common, root: join(dir, whole), files: list });
    const b = await appendMhlGenerationStream({ ...common, root: join(dir, stream), files: oneByOne(list) });
    const bytes = await readFile(b.path);
    t.ok(bytes.equals(await readFile(a.path)), `${list.length} files: the same bytes`);
    const chain = await readFile(join(dir, stream, MHL_FOLDER, MHL_CHAIN_FILE), 'utf8');
    t.match(chain, `<c4>${c4Id(bytes)}</c4>`, 'the chain holds the C4 of the bytes written');
  }
});
