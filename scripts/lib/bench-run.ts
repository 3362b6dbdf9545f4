/**
 * What the recovery benchmarks (bench-refill, bench-restore, bench-rebuild) share: a
 * throwaway studio config, the measured work in a child process (this same script with
 * `--child …`, so its peak RSS and CPU are its own), the `cp -r` + `sync` baseline under
 * /usr/bin/time, and the median.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseStudiodConfig, type StudiodConfig } from '@studio321/studiod';

export interface Usage {
  ms: number;
  cpuSec: number;
  maxRssMiB: number;
}

/** A studio with mirror and RAID under `dir`; `extra` adds config (e.g. no scrub, no refill limit). */
export function benchConfig(dir: string, extra: Record<string, unknown> = {}): StudiodConfig {
  return parseStudiodConfig({
    stateDir: join(dir, 'state'),
    catalogue: join(dir, 'catalogue'),
    targets: {
      mirror: { root: join(dir, 'mirror'), media: 'hdd-mirror', location: 'calgary', device: 'mirror-1' },
      raid: { root: join(dir, 'raid'), media: 'hdd-raid', location: 'calgary', device: 'raid-1' },
    },
    ...extra,
  });
}

/**
 * Runs this script again with `--child` and `childArgs`; resolves with the JSON it prints.
 * BENCH_CPU_PROF=<dir> adds a CPU profile of the child.
 */
export function runBenchChild<T>(childArgs: string[], what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const prof = process.env['BENCH_CPU_PROF'];
    const p = spawn(
      process.execPath,
      [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), process.argv[1] as string, '--child', ...childArgs],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`${what} exited ${code}`))));
  });
}

/** `cp -r` + `sync` under /usr/bin/time: wall, CPU, peak RSS of the copy. */
export function runCp(from: string, to: string): Usage {
  const started = Date.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', 'sh', '-c', 'cp -r "$1" "$2" && sync', 'sh', from, to], {
    encoding: 'utf8',
  });
  const ms = Date.now() - started;
  if (r.status !== 0) throw new Error(`cp failed: ${r.stderr}`);
  const [user, sys, rssKiB] = (r.stderr.trim().split('\n').pop() ?? '0 0 0').split(' ').map(Number);
  return { ms, cpuSec: (user ?? 0) + (sys ?? 0), maxRssMiB: (rssKiB ?? 0) / 1024 };
}

export function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] ?? 0) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
}
