/**
 * `npm run bench:restore`: how fast does `studioctl restore` bring files back from
 * the mirror into an empty folder, against `cp -r` + `sync` of the same bytes in
 * the same run?
 *
 *   node scripts/dist/bench-restore.js [--files N] [--mib M] [--runs R] [--dir DIR] [--keep]
 *
 * 1. writes N files of M MiB (random bytes) to a mirror folder (with its target
 *    marker) and records them in a catalogue as committed to the mirror;
 * 2. per run, baseline: `cp -r <mirror tree> <empty folder> && sync`, under
 *    /usr/bin/time (wall, CPU seconds, peak RSS);
 * 3. per run, the restore, in a child process: the real LedgerService (name
 *    resolution) and RestoreService, as studiod wires them, `restore --card CARD1
 *    --from mirror --to <empty folder>` (select, plan, then per file: read the
 *    mirror, BLAKE3, temp + fsync, read back + BLAKE3, link, fsync dir; 4 files in
 *    flight); wall, CPU, peak RSS.
 * Both read the mirror from the page cache (written in step 1): the same
 * conditions for both, stated in the output. Every run is printed, then the medians.
 */
import { benchConfig, median, runBenchChild, runCp, type Usage } from './lib/bench-run.js';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, hashBytes, nameKey } from '@studio321/protocol';
import { durableWrite } from '@studio321/protocol/durable';
import { Catalogue } from '@studio321/studiod';
import { checkTarget } from '@studio321/studiod/commit';
import { LedgerService } from '@studio321/studiod/ledger';
import { RestoreService } from '@studio321/studiod/recovery';

interface RestoreUsage extends Usage {
  userSec: number;
  restored: number;
  failed: number;
}

const SHOOT_DATE = '2026-11-26';

async function restoreChild(dir: string, to: string): Promise<void> {
  const started = Date.now();
  const config = benchConfig(dir, { scrub: { periodDays: 0 } });
  const catalogue = new Catalogue(config.catalogue);
  await catalogue.open();
  const log = createLogger({ name: 'bench-restore', level: 'error' });
  const ledger = new LedgerService({ config, catalogue, log, availabilityIntervalMs: 0 });
  await ledger.open();
  const service = new RestoreService({
    config,
    catalogue,
    log,
    findAssets: (q) => ledger.findAssets(q),
    pendingPollMs: 0,
  });
  await service.open();
  const report = await service.restore({ queries: [], card: 'CARD1', from: 'mirror', to });
  await service.close();
  await ledger.close();
  await catalogue.close();
  const u = process.resourceUsage();
  process.stdout.write(
    JSON.stringify({
      ms: Date.now() - started,
      cpuSec: (u.userCPUTime + u.systemCPUTime) / 1e6,
      userSec: u.userCPUTime / 1e6,
      maxRssMiB: u.maxRSS / 1024,
      restored: report.restored,
      failed: report.failed + report.notFound.length,
    } satisfies RestoreUsage),
  );
}

function runRestore(dir: string, to: string): Promise<RestoreUsage> {
  return runBenchChild(['--dir', dir, '--to', to], 'restore');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '100' },
      mib: { type: 'string', default: '4' },
      runs: { type: 'string', default: '3' },
      dir: { type: 'string' },
      to: { type: 'string' },
      keep: { type: 'boolean', default: false },
      child: { type: 'boolean', default: false },
    },
  });
  if (values.child) return restoreChild(values.dir as string, values.to as string);
  const files = Number(values.files);
  const size = Number(values.mib) * 1024 * 1024;
  const runs = Math.max(1, Number(values.runs));
  const dir = values.dir ?? join(tmpdir(), `bench-restore-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  const config = benchConfig(dir, { scrub: { periodDays: 0 } });
  await mkdir(config.targets.mirror.root, { recursive: true });
  // The mirror's marker, as studiod writes it before its first commit: a restore reads only a marked target.
  await checkTarget('mirror', config.targets.mirror, false);
  const catalogue = new Catalogue(config.catalogue);
  await catalogue.open();
  const shootDir = posix.join(SHOOT_DATE, 'wedding', 'CARD1');
  for (let i = 0; i < files; i++) {
    const bytes = randomBytes(size);
    const hash = hashBytes(bytes);
    const path = `DCIM/100CANON/IMG_${String(i).padStart(4, '0')}.CR3`;
    const rel = posix.join(shootDir, path);
    await durableWrite(
      (async function* () {
        yield bytes;
      })(),
      {
        targets: [{ dir: join(config.targets.mirror.root, posix.dirname(rel)), name: posix.basename(rel) }],
        expected: { size, blake3: hash },
      },
    );
    await catalogue.commitAsset({
      asset: { hash, size, committedAt: 1_795_000_000_000 + i },
      names: [
        {
          key: nameKey(posix.join('wedding', 'CARD1', path)),
          value: { hash, shoot: 'wedding', card: 'CARD1', path, mtime: 1, agentId: 'agt_bench', seenAt: 1 },
        },
      ],
      copies: [
        {
          hash,
          target: 'mirror',
          kind: 'studio',
          path: rel,
          size,
          device: 'mirror-1',
          media: 'hdd-mirror',
          location: 'calgary',
          offsite: false,
          method: 'readback-blake3',
          verifiedAt: 1_795_000_000_000,
        },
      ],
      storedPaths: [{ key: nameKey(rel), value: { hash, path: rel } }],
    });
  }
  await catalogue.close();
  const mib = (files * size) / 1024 / 1024;
  process.stdout.write(
    `bench:restore — ${files} files × ${values.mib} MiB = ${mib.toFixed(0)} MiB, ${runs} runs (mirror in page cache)\n`,
  );

  const row = (name: string, u: Usage): string =>
    `  ${name.padEnd(16)} ${(u.ms / 1000).toFixed(2).padStart(7)} s  ${(mib / (u.ms / 1000)).toFixed(1).padStart(7)} MiB/s  ${u.cpuSec.toFixed(2).padStart(6)} CPU s  ${u.maxRssMiB.toFixed(0).padStart(5)} MiB peak RSS`;
  const results: { cp: Usage; restore: RestoreUsage; ratio: number }[] = [];
  const first = posix.join(shootDir, 'DCIM/100CANON/IMG_0000.CR3');
  for (let i = 0; i < runs; i++) {
    const cpTo = join(dir, `cp-${i}`);
    const restoreTo = join(dir, `restore-${i}`);
    const load = loadavg()[0] ?? 0;
    await mkdir(cpTo);
    // `cp` may copy in the kernel (copy_file_range) and leaves the write-back to `sync`; the restore reads every
    // byte into the process, hashes it, writes, fsyncs and reads it back to hash it again.
    const cp = runCp(join(config.targets.mirror.root, SHOOT_DATE), join(cpTo, SHOOT_DATE));
    const restore = await runRestore(dir, restoreTo);
    // The restored files must be the mirror's bytes (spot check of the first file).
    const same = (await readFile(join(restoreTo, first))).equals(
      await readFile(join(config.targets.mirror.root, first)),
    );
    // Restore throughput over `cp`'s, as the README's ratios are given (1× is as fast as `cp`).
    const ratio = cp.ms / restore.ms;
    results.push({ cp, restore, ratio });
    process.stdout.write(
      `run ${i + 1}/${runs} (load ${load.toFixed(2)}):\n${row('cp -r + sync', cp)}\n${row('restore', restore)}\n` +
        `  restore CPU: ${restore.userSec.toFixed(2)} s user, ${(restore.cpuSec - restore.userSec).toFixed(2)} s system\n` +
        `  restore/cp: ${ratio.toFixed(2)}× (wall time ${(restore.ms / cp.ms).toFixed(2)}× cp's); ${restore.restored} files restored, ${restore.failed} failed; first file equal: ${same}\n`,
    );
    if (!values.keep) {
      await rm(cpTo, { recursive: true, force: true });
      await rm(restoreTo, { recursive: true, force: true });
    }
  }
  const m = (pick: (u: Usage) => number, side: 'cp' | 'restore'): number => median(results.map((r) => pick(r[side])));
  const med = (side: 'cp' | 'restore'): Usage => ({
    ms: m((u) => u.ms, side),
    cpuSec: m((u) => u.cpuSec, side),
    maxRssMiB: m((u) => u.maxRssMiB, side),
  });
  process.stdout.write(
    `medians of ${runs} runs:\n${row('cp -r + sync', med('cp'))}\n${row('restore', med('restore'))}\n` +
      `  restore/cp: ${median(results.map((r) => r.ratio)).toFixed(2)}× (median of the per-run ratios); ` +
      `restore peak RSS max ${Math.max(...results.map((r) => r.restore.maxRssMiB)).toFixed(0)} MiB\n`,
  );
  if (!values.keep) await rm(dir, { recursive: true, force: true });
}

await main();
