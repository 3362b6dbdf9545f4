/**
 * The floor of a small-file commit at the studio: what studiod cannot avoid for each file,
 * whatever its code, done the cheapest way there is — synchronous calls in one thread, no
 * network, no frames, no catalogue beyond one batch a group. `bench:scale` runs it as a child
 * (`node scripts/dist/lib/small-floor.js CARD LIST OUT [GROUP]`) on the same card and disk as the
 * sync it compares with, and prints studiod's CPU a file as a multiple of it.
 *
 * Per file:
 *   - the BLAKE3 hash of the received bytes (studiod checks every file against its Offer);
 *   - on each of two targets (mirror, RAID): a temp file created (`O_CREAT|O_EXCL`, read-write),
 *     written and fsync'd, renamed to its final name (PRODUCT.md's promise 3 as written: one call,
 *     where studiod links and unlinks so that it never replaces a file someone put there), then
 *     read back through the same descriptor (no second open: the cheapest read-back of the file's
 *     own inode), hashed, and closed.
 * Per group of GROUP files (default 16; studiod's groups are whatever commits finished together):
 * one fsync of each target folder, and one synced LevelDB batch recording the group (a ~200-byte
 * record a file, as the catalogue's asset records are).
 *
 * The bytes are read from the card before each group's clock starts (studiod receives them from
 * its socket: that receive is not in the floor). CPU is this process's (all threads: LevelDB's
 * writes run on libuv's pool), counted only while a group is being committed. Prints one JSON line.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Level } from 'level';
import { hashBytes } from '@studio321/protocol';
import { readBackFdSync } from '@studio321/protocol/durable';

export interface SmallFloor {
  files: number;
  group: number;
  cpuMsPerFile: number;
  sysMsPerFile: number;
  /** Files a second, one thread committing one group after another (its fsyncs one at a time). */
  filesPerSec: number;
}

export async function smallFloor(card: string, paths: readonly string[], out: string, group = 16): Promise<SmallFloor> {
  const targets = [join(out, 'mirror'), join(out, 'raid')];
  const db = new Level<string, Buffer>(join(out, 'catalogue'), { valueEncoding: 'buffer' });
  await db.open();
  const record = Buffer.alloc(200, 1);
  const made = new Set<string>();
  let user = 0;
  let system = 0;
  let ms = 0;
  try {
    for (let g = 0; g < paths.length; g += group) {
      const rels = paths.slice(g, g + group);
      const bytes = rels.map((rel) => readFileSync(join(card, rel)));
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const hashes = bytes.map((b) => hashBytes(b));
      const folders = new Set<string>();
      for (const target of targets) {
        rels.forEach((rel, i) => {
          const final = join(target, rel);
          const folder = dirname(final);
          if (!made.has(folder)) {
            mkdirSync(folder, { recursive: true });
            made.add(folder);
          }
          folders.add(folder);
          const temp = `${final}.floor-${process.pid}.tmp`;
          const b = bytes[i] as Buffer;
          const fd = openSync(temp, 'wx+');
          writeSync(fd, b, 0, b.length, 0);
          fsyncSync(fd);
          renameSync(temp, final);
          const back = readBackFdSync(fd);
          closeSync(fd);
          if (back.blake3 !== hashes[i]) throw new Error(`floor: ${final} read back wrong`);
        });
      }
      for (const folder of folders) {
        const fd = openSync(folder, 'r');
        fsyncSync(fd);
        closeSync(fd);
      }
      await db.batch(
        hashes.map((h) => ({ type: 'put' as const, key: `a/${h}`, value: record })),
        { sync: true },
      );
      ms += performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      user += cpu.user;
      system += cpu.system;
    }
  } finally {
    await db.close();
  }
  const n = paths.length;
  return {
    files: n,
    group,
    cpuMsPerFile: +((user + system) / 1000 / n).toFixed(3),
    sysMsPerFile: +(system / 1000 / n).toFixed(3),
    filesPerSec: +(n / (ms / 1000)).toFixed(0),
  };
}

// As a child: CARD LIST OUT [GROUP] (LIST: a file of card-relative paths, one a line).
if (process.argv[1]?.endsWith('small-floor.js') === true) {
  const [card, list, out, group] = process.argv.slice(2);
  if (card === undefined || list === undefined || out === undefined)
    throw new Error('usage: small-floor.js CARD LIST OUT [GROUP]');
  const paths = readFileSync(list, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  const r = await smallFloor(card, paths, out, group === undefined ? 16 : Number(group));
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
