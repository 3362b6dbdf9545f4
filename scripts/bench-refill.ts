/**
 * `npm run bench:refill`: how fast does studiod refill an adopted disk, against
 * `cp -r` + `sync` of the same bytes in the same run?
 *
 *   node scripts/dist/bench-refill.js [--files N] [--mib M] [--dir DIR] [--keep]
 *
 * 1. writes N files of M MiB (random bytes) to a mirror folder and records them
 *    in a catalogue as committed to the mirror and the RAID (device raid-1); the
 *    RAID folder stays empty: its disk "died";
 * 2. baseline: `cp -r <mirror tree> <other folder> && sync`, under
 *    /usr/bin/time (wall, CPU seconds, peak RSS);
 * 3. the refill, in a child process: the real LedgerService, `adopt raid`
 *    (marker, old copies marked lost, then every file made again through
 *    remake-copy: read the mirror, BLAKE3, temp + fsync, read back + BLAKE3,
 *    link, fsync dir, one catalogue batch), no rate limit; wall, CPU, peak RSS.
 * Both read the mirror from the page cache (written in step 1): the same
 * conditions for both, stated in the output.
 */
import { benchConfig, runBenchChild, runCp, type Usage } from './lib/bench-run.js';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, hashBytes, nameKey } from '@studio321/protocol';
import { durableWrite } from '@studio321/protocol/durable';
import { Catalogue } from '@studio321/studiod';
import { LedgerService } from '@studio321/studiod/ledger';

async function refillChild(dir: string): Promise<void> {
  const started = Date.now();
  const config = benchConfig(dir, { refill: { bytesPerSecond: 0 }, scrub: { periodDays: 0 } });
  const catalogue = new Catalogue(config.catalogue);
  await catalogue.open();
  const log = createLogger({ name: 'bench-refill', level: 'error' });
  const service = new LedgerService({ config, catalogue, log, availabilityIntervalMs: 0 });
  await service.open();
  await service.adopter.adopt('raid');
  await service.adopter.whenIdle('raid');
  const rec = service.adopter.statuses()[0];
  await service.close();
  await catalogue.close();
  const u = process.resourceUsage();
  process.stdout.write(
    JSON.stringify({
      ms: Date.now() - started,
      cpuSec: (u.userCPUTime + u.systemCPUTime) / 1e6,
      userSec: u.userCPUTime / 1e6,
      maxRssMiB: u.maxRSS / 1024,
      files: rec?.filesDone,
      failed: rec?.failed,
    }),
  );
}

function runRefill(dir: string): Promise<Usage & { files: number; failed: number; userSec: number }> {
  return runBenchChild(['--dir', dir], 'refill');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '100' },
      mib: { type: 'string', default: '4' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      child: { type: 'boolean', default: false },
    },
  });
  if (values.child) return refillChild(values.dir as string);
  const files = Number(values.files);
  const size = Number(values.mib) * 1024 * 1024;
  const dir = values.dir ?? join(tmpdir(), `bench-refill-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  const config = benchConfig(dir, { refill: { bytesPerSecond: 0 }, scrub: { periodDays: 0 } });
  for (const t of ['mirror', 'raid'] as const) await mkdir(config.targets[t].root, { recursive: true });
  const catalogue = new Catalogue(config.catalogue);
  await catalogue.open();
  const shootDir = posix.join('2026-11-26', 'wedding', 'CARD1');
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
    const copy = (t: 'mirror' | 'raid') => ({
      hash,
      target: t,
      kind: 'studio' as const,
      path: rel,
      size,
      device: `${t}-1`,
      media: `hdd-${t}`,
      location: 'calgary',
      offsite: false,
      method: 'readback-blake3',
      verifiedAt: 1_795_000_000_000,
    });
    await catalogue.commitAsset({
      asset: { hash, size, committedAt: 1_795_000_000_000 + i },
      names: [
        {
          key: nameKey(posix.join('wedding', 'CARD1', path)),
          value: { hash, shoot: 'wedding', card: 'CARD1', path, mtime: 1, agentId: 'agt_bench', seenAt: 1 },
        },
      ],
      copies: [copy('mirror'), copy('raid')],
      storedPaths: [{ key: nameKey(rel), value: { hash, path: rel } }],
    });
  }
  await catalogue.close();
  const bytes = files * size;
  const mib = bytes / 1024 / 1024;
  process.stdout.write(
    `bench:refill — ${files} files × ${values.mib} MiB = ${mib.toFixed(0)} MiB (mirror in page cache)\n`,
  );

  // `cp` may copy in the kernel (copy_file_range) and leaves the write-back to `sync`; the refill reads every
  // byte into the process, hashes it, writes, fsyncs and reads it back to hash it again.
  const cp = runCp(join(config.targets.mirror.root, '2026-11-26'), join(dir, 'cp-copy'));
  const refill = await runRefill(dir);
  // The refilled copies must be the mirror's bytes (spot check of the first file).
  const first = posix.join(shootDir, 'DCIM/100CANON/IMG_0000.CR3');
  const same = (await readFile(join(config.targets.raid.root, first))).equals(
    await readFile(join(config.targets.mirror.root, first)),
  );
  const row = (name: string, u: Usage): string =>
    `  ${name.padEnd(16)} ${(u.ms / 1000).toFixed(2).padStart(7)} s  ${(mib / (u.ms / 1000)).toFixed(1).padStart(7)} MiB/s  ${u.cpuSec.toFixed(2).padStart(6)} CPU s  ${u.maxRssMiB.toFixed(0).padStart(5)} MiB peak RSS`;
  process.stdout.write(`${row('cp -r + sync', cp)}\n${row('refill (adopt)', refill)}\n`);
  process.stdout.write(
    `  refill CPU: ${refill.userSec.toFixed(2)} s user, ${(refill.cpuSec - refill.userSec).toFixed(2)} s system\n` +
      `  refill/cp wall time: ${(refill.ms / cp.ms).toFixed(2)}×; ${refill.files} files refilled, ${refill.failed} failed; first file equal: ${same}\n`,
  );
  if (!values.keep) await rm(dir, { recursive: true, force: true });
}

await main();
