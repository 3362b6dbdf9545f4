/**
 * `npm run bench:ingest` — verified offload vs `cp -r` + `sync`, same card, same run.
 *
 *   node scripts/dist/bench-ingest.js [--size-gb 2] [--raw-mb 30] [--runs 4] [--dir /tmp/x] [--cache warm|cold|both] [--no-floor]
 *
 * Generates a card of >= size-gb (RAW + JPEG + XMP triples), then measures it in
 * one or both page-cache states:
 *   - warm: the card is read once first, so both sides read it from the page cache
 *     (the offload's CPU cost decides; the least favourable case for it);
 *   - cold: the page cache is dropped before each step (root, Linux), so both read
 *     the card from disk, as with a card just inserted.
 * Default: both where /proc/sys/vm/drop_caches is writable, else warm. Each run, back to back:
 *   - `cp -r card dst && sync` (timed);
 *   - `field-agent ingest card` into a fresh data dir (a child process; timed;
 *     its peak RSS is reported by the child: process.resourceUsage().maxRSS, i.e. VmHWM);
 *   - the floor (lib/offload-floor.ts, unless --no-floor): a verified copy of the card and nothing else,
 *     once through a buffer and once by the kernel's copy; the faster is the run's floor: what a
 *     plain copier in Node that hashes the card, fsyncs and reads back reaches on this machine;
 * even runs start with cp, odd runs with the floor and the offload, so neither side always
 * follows the other's writeback. Prints every run with the 1-minute load average,
 * and per cache state the medians, the median of the per-run ratios (cp+sync time /
 * offload time, target >= 0.8), the peak RSS (target < 200 MB) and the busy
 * CPU-seconds of the whole machine during each side (Linux, /proc/stat).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeBenchCard } from './make-test-card.js';
import { median } from './lib/bench-run.js';

const here = dirname(fileURLToPath(import.meta.url));
const FLOOR_BIN = join(here, 'lib', 'offload-floor.js');
const AGENT_BIN = join(here, '..', '..', 'agent', 'dist', 'bin', 'field-agent.js');

function run(
  cmd: string,
  args: string[],
  opts: { capture?: boolean } = {},
): Promise<{ code: number | null; stdout: string; ms: number }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', opts.capture ? 'pipe' : 'ignore', 'inherit'] });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, ms: performance.now() - start }));
  });
}

/**
 * CPU-seconds the whole machine spent busy (user, nice, system, irq, softirq) since boot,
 * from /proc/stat: counts the kernel's writeback threads too, which work for both sides.
 * Undefined off Linux.
 */
async function busyCpuSeconds(): Promise<number | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0)) / 100;
  } catch {
    return undefined;
  }
}

/** Runs `step` and returns its result with the machine's busy CPU-seconds meanwhile. */
async function withCpu<T>(step: () => Promise<T>): Promise<{ value: T; cpu: number | undefined }> {
  const a = await busyCpuSeconds();
  const value = await step();
  const b = await busyCpuSeconds();
  return { value, cpu: a === undefined || b === undefined ? undefined : b - a };
}

async function dropCaches(): Promise<void> {
  await run('sync', []);
  await writeFile('/proc/sys/vm/drop_caches', '3\n');
}

async function canDropCaches(): Promise<boolean> {
  try {
    await access('/proc/sys/vm/drop_caches', constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

type Cache = 'warm' | 'cold';

interface ModeResult {
  cache: Cache;
  loadAvg1m: number[];
  cpSyncSec: number[];
  offloadSec: number[];
  cpSyncMedianSec: number;
  offloadMedianSec: number;
  cpSyncMBps: number;
  offloadMBps: number;
  /** Median of the per-run ratios (each run's cp and offload measured back to back). */
  ratio: number;
  peakRssMiB: number;
  /** Busy CPU-seconds of the whole machine during each step (median), where /proc/stat exists. */
  cpSyncCpuSec: number | null;
  offloadCpuSec: number | null;
  /** The floor (lib/offload-floor.ts) per run: the faster of its two ways, and each way. Empty with --no-floor. */
  floorSec: number[];
  floorUserSec: number[];
  floorKernelSec: number[];
  floorMedianSec: number | null;
  /** Busy CPU-seconds during the faster way of each run (median). */
  floorCpuSec: number | null;
  /** Median per-run cp+sync time / floor time: how near cp a plain verified copy in Node gets here. */
  cpVsFloor: number | null;
  /** Median per-run offload time / floor time. */
  offloadVsFloor: number | null;
  met: boolean;
}

async function measure(
  card: string,
  base: string,
  files: number,
  bytes: number,
  runs: number,
  cache: Cache,
  withFloor: boolean,
): Promise<ModeResult> {
  const cpMs: number[] = [];
  const agentMs: number[] = [];
  const rss: number[] = [];
  const ratios: number[] = [];
  const loads: number[] = [];
  const cpCpu: number[] = [];
  const agentCpu: number[] = [];
  const floorMs: number[] = [];
  const floorUserMs: number[] = [];
  const floorKernelMs: number[] = [];
  const floorCpu: number[] = [];
  const prepare = async (): Promise<void> => {
    if (cache === 'cold') await dropCaches();
  };
  const cpOnce = async (i: number): Promise<number> => {
    const dst = join(base, `cp-${i}`);
    await prepare();
    const { value: cp, cpu } = await withCpu(() => run('sh', ['-c', 'cp -r "$0" "$1" && sync', card, dst]));
    if (cp.code !== 0) throw new Error(`cp failed (${cp.code})`);
    if (cpu !== undefined) cpCpu.push(cpu);
    await rm(dst, { recursive: true, force: true });
    await run('sync', []);
    return cp.ms;
  };
  const agentOnce = async (i: number): Promise<{ ms: number; rss: number }> => {
    const data = join(base, `agent-${i}`);
    await prepare();
    const { value: ag, cpu } = await withCpu(() =>
      run(process.execPath, [AGENT_BIN, 'ingest', card, '--data-dir', data, '--shoot', 'bench', '--json'], {
        capture: true,
      }),
    );
    if (ag.code !== 0) throw new Error(`field-agent ingest failed (${ag.code})`);
    if (cpu !== undefined) agentCpu.push(cpu);
    const done = ag.stdout
      .split('\n')
      .filter((l) => l.includes('"event":"done"'))
      .map((l) => JSON.parse(l) as { copied: number; peakRssBytes: number })[0];
    if (done === undefined || done.copied !== files) throw new Error('field-agent did not copy every file');
    await rm(data, { recursive: true, force: true });
    await run('sync', []);
    return { ms: ag.ms, rss: done.peakRssBytes };
  };
  const floorOnce = async (i: number, kernel: boolean): Promise<{ ms: number; cpu: number | undefined }> => {
    const out = join(base, `floor-${i}`);
    await prepare();
    const args = [FLOOR_BIN, '--card', card, '--out', out, ...(kernel ? ['--kernel-copy'] : [])];
    const { value: r, cpu } = await withCpu(() => run(process.execPath, args));
    if (r.code !== 0) throw new Error(`the floor (${kernel ? 'kernel copy' : 'user copy'}) failed (${r.code})`);
    await rm(out, { recursive: true, force: true });
    await run('sync', []);
    return { ms: r.ms, cpu };
  };
  /** Both ways of the floor (the order alternating with the run): the faster is the run's floor. */
  const floorBoth = async (i: number): Promise<void> => {
    const kernelFirst = i % 2 === 1;
    const first = await floorOnce(i, kernelFirst);
    const second = await floorOnce(i, !kernelFirst);
    const user = kernelFirst ? second : first;
    const kernel = kernelFirst ? first : second;
    floorUserMs.push(user.ms);
    floorKernelMs.push(kernel.ms);
    const best = user.ms <= kernel.ms ? user : kernel;
    floorMs.push(best.ms);
    if (best.cpu !== undefined) floorCpu.push(best.cpu);
  };
  // Warm: read the card once so neither side is the first to read it from disk.
  if (cache === 'warm') await run('sh', ['-c', 'cat "$0"/*/*/* > /dev/null 2>&1; true', card]);
  for (let i = 0; i < runs; i++) {
    const load = loadavg()[0] ?? 0;
    let cpMsI: number;
    let ag: { ms: number; rss: number };
    // Alternate which side runs first (run 1: cp first, run 2: offload first, …).
    if (i % 2 === 0) {
      cpMsI = await cpOnce(i);
      ag = await agentOnce(i);
      if (withFloor) await floorBoth(i);
    } else {
      if (withFloor) await floorBoth(i);
      ag = await agentOnce(i);
      cpMsI = await cpOnce(i);
    }
    cpMs.push(cpMsI);
    agentMs.push(ag.ms);
    rss.push(ag.rss);
    ratios.push(cpMsI / ag.ms);
    loads.push(load);
    const floor = withFloor
      ? `, floor ${((floorMs[i] ?? 0) / 1000).toFixed(2)} s (buffer ${((floorUserMs[i] ?? 0) / 1000).toFixed(2)}, kernel copy ${((floorKernelMs[i] ?? 0) / 1000).toFixed(2)}; cp / floor ${(cpMsI / (floorMs[i] ?? 1)).toFixed(2)})`
      : '';
    process.stderr.write(
      `${cache} run ${i + 1}/${runs} (${i % 2 === 0 ? 'cp first' : 'offload first'}, load ${load.toFixed(2)}): cp -r + sync ${(cpMsI / 1000).toFixed(2)} s, verified offload ${(ag.ms / 1000).toFixed(2)} s, ratio ${(cpMsI / ag.ms).toFixed(2)}${floor}, offload peak RSS (VmHWM) ${(ag.rss / 2 ** 20).toFixed(0)} MiB\n`,
    );
  }
  const ratio = median(ratios);
  const peak = Math.max(...rss);
  const sec = (ms: number): number => +(ms / 1000).toFixed(2);
  const perRun = (f: (i: number) => number): number | null =>
    floorMs.length === 0 ? null : +median(floorMs.map((_, i) => f(i))).toFixed(2);
  return {
    cache,
    loadAvg1m: loads.map((l) => +l.toFixed(2)),
    cpSyncSec: cpMs.map((ms) => +(ms / 1000).toFixed(2)),
    offloadSec: agentMs.map((ms) => +(ms / 1000).toFixed(2)),
    cpSyncMedianSec: +(median(cpMs) / 1000).toFixed(2),
    offloadMedianSec: +(median(agentMs) / 1000).toFixed(2),
    cpSyncMBps: +(bytes / 1e6 / (median(cpMs) / 1000)).toFixed(1),
    offloadMBps: +(bytes / 1e6 / (median(agentMs) / 1000)).toFixed(1),
    ratio: +ratio.toFixed(2),
    peakRssMiB: +(peak / 2 ** 20).toFixed(0),
    cpSyncCpuSec: cpCpu.length === 0 ? null : +median(cpCpu).toFixed(2),
    offloadCpuSec: agentCpu.length === 0 ? null : +median(agentCpu).toFixed(2),
    floorSec: floorMs.map(sec),
    floorUserSec: floorUserMs.map(sec),
    floorKernelSec: floorKernelMs.map(sec),
    floorMedianSec: floorMs.length === 0 ? null : sec(median(floorMs)),
    floorCpuSec: floorCpu.length === 0 ? null : +median(floorCpu).toFixed(2),
    cpVsFloor: perRun((i) => (cpMs[i] ?? 0) / (floorMs[i] ?? 1)),
    offloadVsFloor: perRun((i) => (agentMs[i] ?? 0) / (floorMs[i] ?? 1)),
    met: ratio >= 0.8 && peak < 200 * 2 ** 20,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'size-gb': { type: 'string', default: '2' },
      'raw-mb': { type: 'string', default: '30' },
      runs: { type: 'string', default: '4' },
      dir: { type: 'string' },
      cache: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'no-floor': { type: 'boolean', default: false },
    },
  });
  const droppable = await canDropCaches();
  const cacheArg = values.cache ?? (droppable ? 'both' : 'warm');
  if (cacheArg !== 'warm' && cacheArg !== 'cold' && cacheArg !== 'both')
    throw new Error('--cache must be warm, cold or both');
  if (cacheArg !== 'warm' && !droppable)
    throw new Error('--cache cold needs a writable /proc/sys/vm/drop_caches (root on Linux)');
  const modes: Cache[] = cacheArg === 'both' ? ['warm', 'cold'] : [cacheArg];
  const sizeBytes = Math.ceil(Number(values['size-gb']) * 1024 ** 3);
  const runs = Number(values.runs);
  const base = values.dir ?? (await mkdtemp(join(tmpdir(), 'bench-ingest-')));
  const card = join(base, 'card');
  process.stderr.write(`generating a ${values['size-gb']} GB card in ${card}…\n`);
  const files = await makeBenchCard(card, { rawSize: Number(values['raw-mb']) * 1024 * 1024, totalBytes: sizeBytes });
  const bytes = files.reduce((n, f) => n + f.size, 0);
  process.stderr.write(`${files.length} files, ${(bytes / 1e9).toFixed(2)} GB\n`);
  const results: ModeResult[] = [];
  try {
    for (const cache of modes)
      results.push(await measure(card, base, files.length, bytes, runs, cache, values['no-floor'] !== true));
  } finally {
    if (values.keep !== true && values.dir === undefined) await rm(base, { recursive: true, force: true });
  }
  for (const r of results) {
    const label = r.cache === 'warm' ? 'card in the page cache' : 'card read from disk';
    process.stdout.write(
      `${label}: cp -r + sync ${r.cpSyncMBps} MB/s (median ${r.cpSyncMedianSec} s), verified offload ${r.offloadMBps} MB/s (median ${r.offloadMedianSec} s)\n`,
    );
    if (r.cpSyncCpuSec !== null && r.offloadCpuSec !== null)
      process.stdout.write(
        `  busy CPU-seconds of the machine (median): cp -r + sync ${r.cpSyncCpuSec}, verified offload ${r.offloadCpuSec} (${availableParallelism()} cores)\n`,
      );
    if (r.floorMedianSec !== null)
      process.stdout.write(
        `  the floor, a verified copy and nothing else (hash, write, fsync, read back, hash; the faster of a buffer copy and the kernel's): median ${r.floorMedianSec} s, busy CPU ${r.floorCpuSec ?? '?'}; cp -r + sync / floor ${r.cpVsFloor} (how near cp a plain verified copy in Node got here), offload / floor ${r.offloadVsFloor}\n`,
      );
    process.stdout.write(
      `  median per-run ratio ${r.ratio} (target >= 0.8), peak RSS ${r.peakRssMiB} MiB (target < 200), load average ${r.loadAvg1m.join(' ')}\n`,
    );
  }
  const summary = {
    files: files.length,
    bytes,
    runs,
    modes: results,
    targets: { ratio: 0.8, peakRssMiB: 200 },
    met: results.every((r) => r.met),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

await main();
