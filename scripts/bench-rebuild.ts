/**
 * `npm run bench:rebuild`: how long does `studioctl catalogue rebuild` take to
 * recreate a catalogue of 1,000,000 assets from a snapshot?
 *
 *   node scripts/dist/bench-rebuild.js [--assets N] [--dir DIR] [--keep]
 *
 * 1. fills a catalogue with the catalogue API (each asset: its record, a name,
 *    mirror + RAID copies, the stored path: 5 records), and recounts it;
 * 2. takes a snapshot to the RAID folder (the durable write; timed);
 * 3. baseline, in a child process: only reading the snapshot (gunzip + parse
 *    every line, `decodeSnapshot`), the floor any rebuild pays;
 * 4. the rebuild, in a child process, into an empty catalogue (the targets carry no
 *    marker, so the steps that walk and hash them have nothing to do: this is
 *    the snapshot import, the counters and the report);
 * and prints wall time, CPU seconds and peak RSS of 3 and 4, and their ratio.
 */
import { benchConfig, runBenchChild } from './lib/bench-run.js';
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nameKey } from '@studio321/protocol';
import { Catalogue, type ExportedRecord } from '@studio321/studiod';
import { decodeSnapshot, rebuildCatalogue, takeSnapshot } from '@studio321/studiod/recovery';

const BATCH = 5000;

interface ChildResult {
  ms: number;
  cpuSec: number;
  maxRssMiB: number;
  detail: unknown;
}

function usage(started: number, detail: unknown): ChildResult {
  const u = process.resourceUsage();
  return {
    ms: Date.now() - started,
    cpuSec: (u.userCPUTime + u.systemCPUTime) / 1e6,
    maxRssMiB: u.maxRSS / 1024,
    detail,
  };
}

async function child(mode: string, dir: string, file: string): Promise<void> {
  const started = Date.now();
  if (mode === 'decode') {
    let n = 0;
    for await (const _ of decodeSnapshot(createReadStream(file), file)) n++;
    process.stdout.write(JSON.stringify(usage(started, { records: n })));
    return;
  }
  const config = benchConfig(dir);
  const catalogue = new Catalogue(config.catalogue);
  await catalogue.open();
  const r = await rebuildCatalogue(catalogue, { config, sinks: [] });
  await catalogue.close();
  process.stdout.write(JSON.stringify(usage(started, { assets: r.counters.assets, unaccounted: r.unaccounted.count })));
}

function runChild(mode: string, dir: string, file: string): Promise<ChildResult> {
  return runBenchChild([mode, '--dir', dir, '--file', file], mode);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      assets: { type: 'string', default: '1000000' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      child: { type: 'string' },
      file: { type: 'string' },
    },
  });
  if (values.child !== undefined) return child(values.child, values.dir!, values.file!);
  const total = Number(values.assets);
  const dir = values.dir ?? join(tmpdir(), `bench-rebuild-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  const src = join(dir, 'source');
  const config = { ...benchConfig(src), catalogue: join(src, 'catalogue') };
  for (const t of ['mirror', 'raid'] as const) await mkdir(config.targets[t].root, { recursive: true });
  const marker = join(config.targets.raid.root, '.studio321-target.json');
  await writeFile(marker, JSON.stringify({ target: 'raid', device: 'raid-1', createdAt: 1 }));
  const cat = new Catalogue(config.catalogue);
  await cat.open();
  let t0 = Date.now();
  for (let i = 0; i < total; i += BATCH) {
    const recs: ExportedRecord[] = [];
    for (let j = i; j < Math.min(total, i + BATCH); j++) {
      const hash = j.toString(16).padStart(64, '0');
      const card = `CARD${Math.floor(j / 1000)}`;
      const path = `DCIM/100CANON/IMG_${String(j % 10000).padStart(4, '0')}.CR3`;
      const rel = `2026-11-26/wedding/${card}/${path}`;
      const size = 25_000_000 + j;
      recs.push({ t: 'asset', k: hash, v: { hash, size, committedAt: 1_795_000_000_000 + j } });
      recs.push({
        t: 'name',
        k: `${hash}!${nameKey(`wedding/${card}/${path}`)}`,
        v: {
          hash,
          shoot: 'wedding',
          card,
          path,
          mtime: 1_794_990_000_000,
          agentId: 'agt_38ad4f4a86b6ef48',
          seenAt: 1_795_000_000_000,
        },
      });
      for (const target of ['mirror', 'raid']) {
        recs.push({
          t: 'copy',
          k: `${hash}!${target}`,
          v: {
            hash,
            target,
            kind: 'studio',
            path: rel,
            size,
            device: `${target}-1`,
            media: `hdd-${target}`,
            location: 'calgary',
            offsite: false,
            method: 'readback-blake3',
            verifiedAt: 1_795_000_000_000,
          },
        });
      }
      recs.push({ t: 'stored', k: nameKey(rel), v: { hash, path: rel } });
    }
    await cat.importRecords(recs);
  }
  await cat.recountCounters();
  const fillMs = Date.now() - t0;
  t0 = Date.now();
  const snap = await takeSnapshot({ catalogue: cat, config, sinks: [], software: 'bench' });
  const snapMs = Date.now() - t0;
  await cat.close();
  const file = snap.destinations[0]!.where;
  // The rebuild's targets: the same RAID folder (it holds the snapshot), without its marker.
  await rm(marker);
  const target = join(dir, 'rebuilt');
  const rcfg = benchConfig(target);
  await mkdir(rcfg.targets.mirror.root, { recursive: true });
  await mkdir(join(target), { recursive: true });
  await rm(rcfg.targets.raid.root, { recursive: true, force: true });
  const { symlink } = await import('node:fs/promises');
  await symlink(config.targets.raid.root, rcfg.targets.raid.root);
  const decode = await runChild('decode', target, file);
  const rebuild = await runChild('rebuild', target, file);
  const size = (await stat(file)).size;
  const fmt = (r: ChildResult): string =>
    `${(r.ms / 1000).toFixed(1)} s wall, ${r.cpuSec.toFixed(1)} CPU s, peak RSS ${r.maxRssMiB.toFixed(0)} MiB`;
  process.stdout.write(
    [
      `assets: ${total.toLocaleString('en')} (${snap.records.toLocaleString('en')} records)`,
      `fill (importRecords + recount): ${(fillMs / 1000).toFixed(1)} s`,
      `snapshot: ${(snapMs / 1000).toFixed(1)} s, ${(size / 1048576).toFixed(1)} MiB gzip`,
      `baseline, read the snapshot only: ${fmt(decode)}`,
      `rebuild from the snapshot: ${fmt(rebuild)} -> ${JSON.stringify(rebuild.detail)}`,
      `ratio rebuild / read-only: ${(rebuild.ms / decode.ms).toFixed(2)}x`,
      '',
    ].join('\n'),
  );
  if (!values.keep) await rm(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-rebuild: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
