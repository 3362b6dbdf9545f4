/**
 * `npm run bench:scale` — shoots of many small files, and many agents at once.
 *
 *   node scripts/dist/bench-scale.js [--files 20000] [--runs 3] [--agents 0] [--agent-files 2000] [--no-sync] [--dir DIR] [--keep]
 *                                    [--verify-only] [--verify-files 5000] [--verify-large 0]
 *                                    [--sync-only] [--agents-only] [--studiod-node-args '--cpu-prof --cpu-prof-dir=DIR'] [--studiod-env 'K=V …' (on top of the service unit's; none: not the unit's)]
 *                                    [--status-only 5000,20000,100000 [--status-agent OTHER/field-agent.js]]
 *                                    [--ingest-only] [--agent-node-args '--cpu-prof --cpu-prof-dir=DIR'] [--compare-agent JS] [--studiod JS] [--agents-agent JS]
 *                                    [--agent-env 'K=V …' (on top of field-agent.service's; none: not the unit's)] [--agents-nice 10]
 *
 * A card of `files` small files (2–20 KB, incompressible, DCF folders of 9,999) is written
 * once (it stays in the page cache). Then, same run, same disk:
 *  1. ingest, `runs` times, each run back to back with the baseline (alternating which goes
 *     first): the baseline is a plain copy written here that, one file at a time, reads the
 *     file, writes it under a new name, fsyncs it and fsyncs its folder; the ingest is
 *     `field-agent ingest` (a child process) into a fresh data dir. Files/s of both, the median
 *     of the per-run ratios (target >= 0.8), the agent's peak RSS (VmHWM, target < 200 MB), its
 *     CPU-seconds (and CPU-ms a file: compare card sizes) and the MiB its state's LevelDB
 *     compactions wrote (from the LOG: what grows with the card's size);
 *  2. `field-agent status --json` on the last ingest's data dir: median wall time of 5 runs
 *     (target < 200 ms) and peak RSS;
 *  3. sync of that card to a real studiod child (mirror + RAID targets on the same disk):
 *     `field-agent sync` files/s end to end, studiod CPU-ms per file (from /proc), studiod peak RSS
 *     (left out with `--no-sync`, for A/B runs of the agent's ingest and status alone), and studiod's
 *     CPU a file as a multiple of its floor, measured right after on the same card and disk
 *     (lib/small-floor.ts: the hash, two temp-write-fsync-rename-read-back copies and a share of
 *     one folder fsync and one synced LevelDB batch a group, synchronous in one thread); with
 *     `--warm-files N`, another agent first syncs N other files to the same studiod, so the measured
 *     sync meets a studio whose JIT is warm, as a daemon that has run a while (the default, 0: a
 *     studiod started for this sync, its compilation counted in its CPU a file);
 *  4. with `--agents N` (N >= 2): N + 1 more cards of `agent-files` files each (distinct content),
 *     each ingested and paired; one agent syncs alone to a fresh studiod, then N agents sync at
 *     once: aggregate files/s vs the lone agent, and each agent's first commit after the start
 *     (from studiod's log) vs the lone agent's, and after its session authenticated (studiod's
 *     share of the wait: an agent process starting among twenty on the same cores is not), studiod
 *     peak RSS, its RSS when the agents finished and once idle (past the link's quiet time and its memory reclaim, then stable for 3 s; at most 30 s), and
 *     where its memory was (process.memoryUsage() from its status, MiB) at the highest RSS sampled
 *     every second and once idle;
 *     the agents' own CPU-ms a file, their start-up included (`agentCpuMsPerFile`: the lone one's; the N's together);
 *     `firstCommitPartsMs` (median/max ms): spawn → authenticated (`auth`: process start, connect,
 *     TLS, proof), authenticated → first Want (`want`; `offer`: studiod's time answering it), first
 *     Want → first commit (`commit`), split at studiod's `committing` (the file received whole): first Want →
 *     received (`received`: the agent reading and sending it, studiod's frame queue) and received →
 *     committed (`written`: the commit slot, the small-commit worker's queue and group, the catalogue group),
 *     and `written` by step (`w.slot`: the commit slot; `w.targets`: the target checks; `w.intent`: the folders'
 *     intents durable and a free name; `w.write`: the small-commit worker's group; `w.record`: the catalogue's batch);
 *  5. with `--verify-files N` (and `--verify-large M`: M files of 64 MiB), `verifyCopies` (what
 *     `studioctl verify` and the scrub run) in this process over a fresh catalogue of N small
 *     assets (2–20 KB), both local copies written straight to the targets (page cache warm):
 *     assets/s, MB/s and CPU-ms per asset. `--verify-only` runs only this step.
 * `--status-only N,M…`: step 2 alone on agent states built here for one card of N files each
 * (written through AgentState as an ingest records them, half of them receipted by the studio:
 * no copying, so 100,000 files take a minute, not an hour); `--status-agent` times another
 * build's field-agent on the same states, run for run alternating (A/B against an older commit);
 * then again while a `field-agent run` of each build holds its state (`running`, `otherRunning`:
 * status asks the running agent over its local API); median wall ms and CPU ms of 5 runs each.
 * `--studiod JS`: the studiod children run that studiod.js (another build's, e.g. the base commit's: A/B of the
 * studio with the same agents). `--agents-agent JS`: step 4's agents (the lone one and the N) sync with that
 * field-agent.js (A/B of the agents with the same studiod; the cards are still ingested by this build's).
 * `--agents-nice N`: step 4's syncing agents run at nice N (each stands for a laptop of its own; studiod does not).
 * `--agents-only`: step 4 alone (with `--agents N`). `--sync-only`: one ingest (no baseline copy, no status), then step 3 — the studio's commit path
 * alone; `--studiod-node-args`: node options for the studiod children of steps 3 and 4 (a CPU profile, a heap snapshot).
 * `--studiod-heap-snapshot DIR`: step 4's studiod writes a heap snapshot into DIR once idle after the agents
 * (`afterSnapshot`: its memory after the snapshot's full GC).
 * `--ingest-only`: step 1 alone; `--agent-node-args`: node options for the ingesting agent;
 * `--compare-agent JS`: in every run of step 1 also ingest with that field-agent.js (another
 * build, e.g. the base commit's), in the same minutes, and print its ratio too (A/B); with
 * `--sync-only`, step 3 instead: `runs` rounds, each syncing a copy of the one ingested state with
 * both builds (alternating which goes first, each to a fresh studiod): agent CPU-ms a file of each.
 * `--agent-node-args` apply to the syncing agent too.
 * Prints every step with the 1-minute load average (the machine may be shared), then one JSON line.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { cp, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Level } from 'level';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger, EXIT, hashBytes, nameKey } from '@studio321/protocol';
import { Catalogue, controlRequest, localCopyRecord, type CommitRecord } from '@studio321/studiod';
import { checkTarget } from '@studio321/studiod/commit';
import { LINK_QUIET_MS, RECLAIM_SETTLE_MS } from '@studio321/studiod/link';
import { verifyCopies } from '@studio321/studiod/ledger';
import { AgentState, buildStatus, type FileEntry } from '@studio321/agent/state';
import { BINS } from './lib/demo-run.js';
import { median } from './lib/bench-run.js';
import { agentEnv, studiodEnv } from './lib/studiod-env.js';
import type { SmallFloor } from './lib/small-floor.js';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '3' },
    agents: { type: 'string', default: '0' },
    'agent-files': { type: 'string', default: '2000' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'no-sync': { type: 'boolean', default: false },
    'verify-only': { type: 'boolean', default: false },
    'verify-files': { type: 'string', default: '0' },
    'verify-large': { type: 'string', default: '0' },
    'sync-only': { type: 'boolean', default: false },
    'agents-only': { type: 'boolean', default: false },
    'studiod-node-args': { type: 'string', default: '' },
    'studiod-env': { type: 'string', default: '' },
    'studiod-heap-snapshot': { type: 'string' },
    'status-only': { type: 'string' },
    'status-agent': { type: 'string' },
    'ingest-only': { type: 'boolean', default: false },
    'agent-node-args': { type: 'string', default: '' },
    'agent-env': { type: 'string', default: '' },
    'compare-agent': { type: 'string' },
    'agents-agent': { type: 'string' },
    studiod: { type: 'string' },
    'warm-files': { type: 'string', default: '0' },
    'agents-nice': { type: 'string', default: '0' },
  },
});
const FILES = Number(values.files);
const RUNS = Math.max(1, Number(values.runs));
const AGENTS = Number(values.agents);
const AGENT_FILES = Number(values['agent-files']);
const VERIFY_FILES = Number(values['verify-files']);
const VERIFY_LARGE = Number(values['verify-large']);
const SYNC_ONLY = values['sync-only'] === true;
/** Step 3: before the measured sync, another agent syncs this many other files to the same studiod (its JIT warm, as a studio that has run for a while). */
const WARM_FILES = Number(values['warm-files']);
const STUDIOD_NODE_ARGS = (values['studiod-node-args'] ?? '').split(' ').filter((a) => a !== '');
/** studiod's environment: the service unit's, then `--studiod-env 'K=V …'` (`none`: not the unit's). */
const STUDIOD_ENV = studiodEnv(values['studiod-env']);
/** Step 4: write studiod's heap snapshot into this folder once it is idle after the agents (what it still holds). */
const HEAP_SNAPSHOT_DIR = values['studiod-heap-snapshot'];
const INGEST_ONLY = values['ingest-only'] === true;
const AGENT_NODE_ARGS = (values['agent-node-args'] ?? '').split(' ').filter((a) => a !== '');
const COMPARE_AGENT = values['compare-agent'];
/** Step 4: the agents (the lone one and the N) run this field-agent.js (another build's: A/B of the agents with the same studiod). */
const AGENTS_AGENT = values['agents-agent'] ?? BINS.agent;
/**
 * Step 4: the agents' nice value (`--agents-nice 10`). Each agent stands for a laptop of its own: at 0 the
 * twenty share the CPU equally with studiod's main thread, so every step of studiod's runs at a twentieth
 * of a core; at 10 studiod gets the CPU it would have on a machine of its own and the agents share the rest.
 */
const AGENTS_NICE = Number(values['agents-nice']);
/**
 * The environment of the agents that stand for the service (ingest, sync, `run`): field-agent.service's
 * `Environment=` lines, then `--agent-env 'K=V …'` (`none`: not the unit's). `status` is a command
 * run from a shell: it gets this process' environment only.
 */
const AGENT_ENV = agentEnv(values['agent-env']);
/** The studiod.js the studiod children run (another build's, for A/B runs of the studio alone). */
const STUDIOD_JS = values.studiod ?? BINS.studiod;
const FLOOR_JS = join(dirname(fileURLToPath(import.meta.url)), 'lib', 'small-floor.js');
const load = (): number => +(loadavg()[0] ?? 0).toFixed(2);
const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/** `n` files of 2–20 KB under `root` (DCF folders of 9,999 files, `100<tag>`…), random content. */
async function makeSmallCard(root: string, n: number, tag = 'TLAPS'): Promise<string[]> {
  const paths: string[] = [];
  const buf = Buffer.alloc(20 * 1024);
  for (let i = 0; i < n; i++) {
    const folder = `${100 + Math.floor(i / 9999)}${tag}`;
    const rel = `DCIM/${folder}/IMG_${String((i % 9999) + 1).padStart(4, '0')}.JPG`;
    const abs = join(root, rel);
    if (i % 9999 === 0) await mkdir(dirname(abs), { recursive: true });
    const size = 2048 + ((i * 7919) % (18 * 1024 + 1));
    randomFillSync(buf, 0, size);
    await writeFile(abs, buf.subarray(0, size));
    paths.push(rel);
  }
  return paths;
}

/** The baseline: one file at a time, read it, write it, fsync it, fsync its folder. Returns ms. */
async function fsyncEachCopy(card: string, paths: readonly string[], dst: string): Promise<number> {
  const t0 = performance.now();
  let dirFh: Awaited<ReturnType<typeof open>> | undefined;
  let dirName = '';
  try {
    for (const rel of paths) {
      const to = join(dst, rel);
      const dir = dirname(to);
      if (dir !== dirName) {
        await dirFh?.close();
        await mkdir(dir, { recursive: true });
        dirFh = await open(dir, 'r');
        dirName = dir;
      }
      const bytes = await readFile(join(card, rel));
      const fh = await open(to, 'wx');
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await dirFh?.sync();
    }
  } finally {
    await dirFh?.close();
  }
  return performance.now() - t0;
}

/** The steps of a first small commit's `written` part, as studiod logs them (`first commit stages`, fair-scheduler.ts). */
const WRITTEN_STAGES = ['slot', 'targets', 'intent', 'write', 'record'] as const;

interface Usage {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
  cpuSec: number;
  /** The system (kernel) share of cpuSec. */
  sysSec: number;
  maxRssMiB: number;
}

/** A child under /usr/bin/time: wall, CPU, peak RSS; `env` on top of this process' environment. */
function timed(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Usage> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/time', ['-f', 'TIME %U %S %M', cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const line = stderr.split('\n').find((l) => l.startsWith('TIME ')) ?? 'TIME 0 0 0';
      const [u, s, kib] = line.slice(5).split(' ').map(Number);
      resolve({
        ms: performance.now() - t0,
        code,
        stdout,
        stderr,
        cpuSec: (u ?? 0) + (s ?? 0),
        sysSec: s ?? 0,
        maxRssMiB: (kib ?? 0) / 1024,
      });
    });
  });
}

function agent(args: string[], bin = BINS.agent): Promise<Usage> {
  return timed(process.execPath, [bin, ...args]);
}

/**
 * An agent state holding one card of `n` verified files, half of them receipted by the studio,
 * written through AgentState in the batches an ingest and a sync write (no file is copied).
 */
async function syntheticState(data: string, n: number): Promise<void> {
  const state = await AgentState.open(data);
  try {
    const id = `synthetic-${n}`;
    const store = join(data, 'store');
    const input = { id, label: 'SYNTH', kind: 'card' as const, source: '/synthetic', shoot: 'bench', store };
    const card = await state.beginOffload({ ...input, dev: 1, disk: 'disk:wwid:synthetic-card' });
    const files = Array.from({ length: n }, (_, i) => ({
      path: `DCIM/${String(100 + Math.floor(i / 9999)).padStart(3, '0')}CANON/IMG_${String(i % 9999).padStart(4, '0')}.JPG`,
      size: 2048 + (i % 18000),
      mtimeMs: 1_700_000_000_000 + i,
    }));
    const todo = await state.recordScan(id, { root: '/synthetic', dev: 1, disk: card.disk ?? '', files, warnings: [] });
    const fact = { target: 'laptop', device: 'disk:wwid:synthetic-laptop', media: 'ssd', location: 'field' };
    for (let i = 0; i < todo.length; i += 500) {
      const entries: FileEntry[] = todo.slice(i, i + 500).map((file, j) => {
        const blake3 = hashBytes(Buffer.from(`${n}:${i + j}`));
        const storePath = `bench/${file.path}`;
        return {
          kind: 'verified',
          card,
          file,
          blake3,
          size: file.size,
          storePath,
          paths: { laptop: join(store, storePath) },
          copies: [{ ...fact, offsite: false, verified: true }],
          verifiedAt: new Date().toISOString(),
        };
      });
      await state.recordFiles(entries);
    }
    await state.endOffload(id, { state: 'done' });
    for (let left = Math.floor(n / 2); left > 0; ) {
      const batch = await state.pendingForStudio(Math.min(500, left));
      await state.recordStudioReceipts(
        batch.map((p) => ({
          blake3: p.blake3,
          size: p.size,
          committedAt: new Date().toISOString(),
          copies: [
            {
              target: 'mirror',
              device: 'disk:wwid:synthetic-mirror',
              path: `/mirror/${p.blake3}`,
              media: 'hdd',
              location: 'studio',
              verifiedAt: new Date().toISOString(),
              method: 'blake3',
            },
          ],
        })),
      );
      left -= batch.length;
    }
  } finally {
    await state.close();
  }
}

/** `field-agent run` (no tray, no volume watcher) holding `dataDir`, once it has started; the function stops it. */
async function runningAgent(bin: string, dataDir: string): Promise<() => Promise<void>> {
  const config = join(dataDir, 'bench-run.json');
  await writeFile(config, JSON.stringify({ statusPort: 0, tray: false, watchVolumes: false }));
  const { DISPLAY: _d, WAYLAND_DISPLAY: _w, ...env } = process.env;
  const child = spawn(process.execPath, [bin, 'run', '--data-dir', dataDir, '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...env, ...AGENT_ENV },
  });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (err.includes('"event":"started"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`field-agent run exited ${code}: ${err.slice(-2000)}`)));
  });
  return async () => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
}

/** `--status-only`: status at each size on a synthetic state, this build (and `--status-agent`) alternating. */
async function statusOnly(base: string, sizes: number[], other: string | undefined): Promise<Record<string, unknown>> {
  const rows: Record<string, unknown> = {};
  for (const n of sizes) {
    const data = join(base, `status-${n}`);
    const t0 = performance.now();
    await syntheticState(data, n);
    const buildSec = (performance.now() - t0) / 1000;
    // The other build reads a copy marked format 1 (an older agent refuses format 2; it ignores the summary's keys).
    const otherData = `${data}-other`;
    if (other !== undefined) {
      await cp(data, otherData, { recursive: true });
      const db = new Level<string, unknown>(join(otherData, 'state'), { valueEncoding: 'json' });
      await db.put('meta:format', 1);
      await db.close();
    }
    // `empty`: this build on a data dir with no card (the process's start-up, the floor).
    const runs: Record<string, Usage[]> = { empty: [], this: [], ...(other === undefined ? {} : { other: [] }) };
    const bins = { empty: BINS.agent, this: BINS.agent, ...(other === undefined ? {} : { other }) };
    for (let i = 0; i < 5; i++)
      for (const [k, bin] of Object.entries(bins)) {
        const dir = k === 'empty' ? join(base, 'status-empty') : k === 'other' ? otherData : data;
        const r = await agent(['status', '--data-dir', dir, '--json'], bin);
        if (r.code !== EXIT.ok) throw new Error(`status failed (${r.code}): ${r.stderr}`);
        runs[k]?.push(r);
      }
    // The same states held by a running agent (`field-agent run`): status asks it over its local API.
    const held = { running: data, ...(other === undefined ? {} : { otherRunning: otherData }) };
    const heldBins = { running: BINS.agent, ...(other === undefined ? {} : { otherRunning: other }) };
    const agents = await Promise.all(
      Object.entries(held).map(([k, dir]) => runningAgent(heldBins[k as 'running'], dir)),
    );
    try {
      for (let i = 0; i < 5; i++)
        for (const [k, dir] of Object.entries(held)) {
          const r = await agent(['status', '--data-dir', dir, '--json'], heldBins[k as 'running']);
          if (r.code !== EXIT.ok) throw new Error(`status of a running agent failed (${r.code}): ${r.stderr}`);
          (runs[k] ??= []).push(r);
        }
    } finally {
      await Promise.all(agents.map((stop) => stop()));
    }
    // The status work alone, in this process (no start-up): what the summary costs at this size.
    const inProcess: number[] = [];
    const state = await AgentState.open(data);
    try {
      for (let i = 0; i < 5; i++) {
        const t1 = performance.now();
        await buildStatus(state, 2);
        inProcess.push(performance.now() - t1);
      }
    } finally {
      await state.close();
    }
    const row: Record<string, unknown> = {
      buildSec: +buildSec.toFixed(1),
      load: load(),
      inProcessMs: +median(inProcess).toFixed(1),
    };
    for (const [k, rs] of Object.entries(runs))
      row[k] = {
        medianMs: +median(rs.map((r) => r.ms)).toFixed(0),
        cpuMs: +median(rs.map((r) => r.cpuSec * 1000)).toFixed(0),
        peakRssMiB: +Math.max(...rs.map((r) => r.maxRssMiB)).toFixed(0),
      };
    rows[String(n)] = row;
    log(`status --json at ${n} files: ${JSON.stringify(row)}`);
    await rm(data, { recursive: true, force: true });
    await rm(otherData, { recursive: true, force: true });
  }
  return rows;
}

/**
 * Preloaded into the ingesting agent (`--require`): samples process.memoryUsage() every 100 ms and
 * writes its peaks (MiB) to $BENCH_MEMORY_OUT at exit. VmHWM says how much; this says where (the
 * JS heap or Buffers outside it).
 */
const MEMORY_SAMPLER = `const m = { heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
const tick = () => { const u = process.memoryUsage(); for (const k of Object.keys(m)) m[k] = Math.max(m[k], u[k]); };
setInterval(tick, 100).unref();
process.on('exit', () => { tick(); require('node:fs').writeFileSync(process.env.BENCH_MEMORY_OUT,
  JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, +(v / 2 ** 20).toFixed(1)])))); });
`;

type Ingest = Usage & {
  memory: { heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  /** MiB LevelDB's compactions wrote (from the state's LOG): what grows with the card, whatever the load. */
  compactedMiB: number;
};

/** MiB the compactions of the LevelDB under `dir` wrote, summed from its LOG and LOG.old. */
async function compactedMiB(dir: string): Promise<number> {
  let bytes = 0;
  for (const name of ['LOG.old', 'LOG']) {
    const text = await readFile(join(dir, name), 'utf8').catch(() => '');
    for (const m of text.matchAll(/Compacted .* => (\d+) bytes/g)) bytes += Number(m[1]);
  }
  return +(bytes / 2 ** 20).toFixed(1);
}

async function ingest(card: string, data: string, n: number, bin = BINS.agent): Promise<Ingest> {
  const sampler = join(dirname(data), 'memory-sampler.cjs');
  const memoryOut = `${data}.memory.json`;
  await writeFile(sampler, MEMORY_SAMPLER);
  process.env['BENCH_MEMORY_OUT'] = memoryOut;
  const r = await timed(
    process.execPath,
    [...AGENT_NODE_ARGS, '--require', sampler, bin, 'ingest', card, '--data-dir', data, '--shoot', 'bench', '--json'],
    AGENT_ENV,
  );
  const done = r.stdout
    .split('\n')
    .filter((l) => l.includes('"event":"done"'))
    .map((l) => JSON.parse(l) as { copied: number })[0];
  if (r.code !== EXIT.ok || done?.copied !== n)
    throw new Error(`field-agent ingest failed (${r.code}, copied ${done?.copied}): ${r.stderr.slice(-2000)}`);
  const memory = JSON.parse(await readFile(memoryOut, 'utf8')) as Ingest['memory'];
  await rm(memoryOut, { force: true });
  return { ...r, memory, compactedMiB: await compactedMiB(join(data, 'state')) };
}

async function procStat(pid: number): Promise<{ cpuSec: number; sysSec: number; rssMiB: number; hwmMiB: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return {
    cpuSec: (Number(f[11]) + Number(f[12])) / 100,
    sysSec: Number(f[12]) / 100,
    rssMiB: kb('VmRSS'),
    hwmMiB: kb('VmHWM'),
  };
}

/** Where a process' RSS is, in MiB: anonymous vs file-backed (smaps_rollup), and its thread count. */
async function procMemory(pid: number): Promise<Record<string, number>> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (text: string, k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return {
    anonMiB: Math.round(kb(rollup, 'Anonymous') / 1024),
    fileMiB: Math.round((kb(rollup, 'Rss') - kb(rollup, 'Anonymous')) / 1024),
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0),
  };
}

/** A studiod child with mirror + RAID under `dir`; `committed` lists (time, session) of every commit. */
class Studio {
  readonly dir: string;
  readonly commits: Array<{ at: number; session: string }> = [];
  readonly sessions = new Map<string, string>();
  /** When each session authenticated (performance.now()). */
  readonly authAt = new Map<string, number>();
  /** When each session's first Want was sent, and how long its Offer took to answer (studiod's log). */
  readonly firstWant = new Map<string, { at: number; offerMs: number }>();
  /** When each session's first commit began (its first file received whole: studiod's `committing`). */
  readonly firstCommitting = new Map<string, number>();
  /** Where each session's first small commit spent its `written` time, ms a step (studiod's `first commit stages`). */
  readonly firstStages = new Map<string, Record<string, number>>();
  #child: ReturnType<typeof spawn> | undefined;
  #port = 0;
  readonly #nodeArgs: readonly string[];
  constructor(dir: string, nodeArgs: readonly string[] = []) {
    this.dir = dir;
    this.#nodeArgs = nodeArgs;
  }
  get pid(): number {
    return this.#child?.pid ?? 0;
  }
  get url(): string {
    return `wss://127.0.0.1:${this.#port}/v1`;
  }
  async start(): Promise<void> {
    const cfg = {
      listen: { host: '127.0.0.1', port: 0 },
      stateDir: join(this.dir, 'state'),
      log: { level: 'info' },
      targets: {
        mirror: { root: join(this.dir, 'mirror'), media: 'hdd', location: 'bench', device: 'm' },
        raid: { root: join(this.dir, 'raid'), media: 'raid', location: 'bench', device: 'r' },
      },
    };
    await mkdir(cfg.targets.mirror.root, { recursive: true });
    await mkdir(cfg.targets.raid.root, { recursive: true });
    await writeFile(join(this.dir, 'studiod.json'), JSON.stringify(cfg));
    const child = spawn(process.execPath, [...this.#nodeArgs, STUDIOD_JS, '--config', join(this.dir, 'studiod.json')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...STUDIOD_ENV },
    });
    this.#child = child;
    let rest = '';
    this.#port = await new Promise<number>((resolve, reject) => {
      child.on('exit', (code) => reject(new Error(`studiod exited ${code}`)));
      const logFile = createWriteStream(join(this.dir, 'studiod.log'));
      child.on('exit', () => logFile.end());
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        logFile.write(d);
        const lines = (rest + d).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) {
          if (l.includes('"msg":"committing"')) {
            const id = /"sessionId":"([^"]+)"/.exec(l)?.[1] ?? '';
            if (!this.firstCommitting.has(id)) this.firstCommitting.set(id, performance.now());
          } else if (l.includes('"msg":"committed"')) {
            this.commits.push({ at: performance.now(), session: /"sessionId":"([^"]+)"/.exec(l)?.[1] ?? '' });
          } else if (l.includes('"msg":"agent authenticated"')) {
            const m = JSON.parse(l) as { sessionId: string; agentId: string };
            this.sessions.set(m.sessionId, m.agentId);
            this.authAt.set(m.sessionId, performance.now());
          } else if (l.includes('"msg":"first commit stages"')) {
            const m = JSON.parse(l) as { sessionId: string; stagesMs: Record<string, number> };
            this.firstStages.set(m.sessionId, m.stagesMs);
          } else if (l.includes('"msg":"first offer answered"')) {
            const m = JSON.parse(l) as { sessionId: string; ms: number };
            this.firstWant.set(m.sessionId, { at: performance.now(), offerMs: m.ms });
          } else if (l.includes('"msg":"listening"')) resolve((JSON.parse(l) as { port: number }).port);
        }
      });
    });
  }
  async pair(data: string, name: string): Promise<string> {
    const { code } = (await controlRequest(join(this.dir, 'state', 'control.sock'), 'pair')) as { code: string };
    const r = await agent(['pair', this.url, code, '--name', name, '--data-dir', data, '--json']);
    if (r.code !== EXIT.ok) throw new Error(`pair failed: ${r.stdout}${r.stderr}`);
    return (JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { agentId: string }).agentId;
  }
  /** Where studiod's memory is, in MiB (its status' process.memoryUsage(); {} from a studiod without it). */
  async memory(): Promise<Record<string, number>> {
    const st = (await controlRequest(join(this.dir, 'state', 'control.sock'), 'status')) as {
      memory?: Record<string, number>;
      link?: {
        receiveHeld: number;
        reclaims: number;
        settles?: number;
        smallSlabs?: { allocated: number; inUse: number };
        mallocTrim?: { available: boolean; trims: number; releasedBytes: number; ms: number; cpuMs?: number };
      };
    };
    const link = st.link;
    return {
      ...Object.fromEntries(Object.entries(st.memory ?? {}).map(([k, v]) => [k, Math.round(v / 2 ** 20)])),
      // The link's: receive-budget bytes held (MiB), reclaims so far, small-file slabs allocated / in use.
      ...(link === undefined
        ? {}
        : {
            receiveHeldMiB: Math.round(link.receiveHeld / 2 ** 20),
            reclaims: link.reclaims,
            ...(link.settles === undefined ? {} : { settles: link.settles }),
            ...(link.smallSlabs === undefined
              ? {}
              : { slabsAllocated: link.smallSlabs.allocated, slabsInUse: link.smallSlabs.inUse }),
            // malloc_trim after the reclaim's GCs: calls, RSS they gave back (MiB), their time and CPU (ms); -1: unavailable.
            ...(link.mallocTrim === undefined
              ? {}
              : link.mallocTrim.available
                ? {
                    trims: link.mallocTrim.trims,
                    trimmedMiB: Math.round(link.mallocTrim.releasedBytes / 2 ** 20),
                    trimMs: Math.round(link.mallocTrim.ms),
                    ...(link.mallocTrim.cpuMs === undefined ? {} : { trimCpuMs: Math.round(link.mallocTrim.cpuMs) }),
                  }
                : { trims: -1 }),
          }),
    };
  }
  async stop(): Promise<void> {
    const c = this.#child;
    if (c === undefined || c.exitCode !== null) return;
    c.removeAllListeners('exit');
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    await gone;
  }
}

/**
 * studiod's RSS once it is idle: sampled every second until it stays within 2 MiB for 3 s (at most 30 s),
 * and not before the link has been quiet long enough to give its memory back (LINK_QUIET_MS, its
 * settling GC RECLAIM_SETTLE_MS later, then a few seconds for V8 to return the emptied pages):
 * earlier, "idle" was often read before that.
 */
async function idleRss(pid: number): Promise<number> {
  const samples: number[] = [];
  const notBefore = Math.ceil((LINK_QUIET_MS + RECLAIM_SETTLE_MS) / 1000) + 4;
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    samples.push((await procStat(pid)).rssMiB);
    const last = samples.slice(-4);
    if (i >= notBefore && Math.max(...last) - Math.min(...last) <= 2) break;
  }
  return samples.at(-1) ?? 0;
}

/**
 * Signal studiod to write a heap snapshot (it runs a full GC first) into `dir`, wait until the file is
 * complete, and return where its memory is then (the RSS a full GC leaves).
 */
async function heapSnapshot(studio: Studio, dir: string): Promise<Record<string, number>> {
  const before = new Set(await readdir(dir).catch(() => []));
  process.kill(studio.pid, 'SIGUSR2');
  let size = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const file = (await readdir(dir)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (file === undefined) continue;
    const now = (await stat(join(dir, file))).size;
    if (now > 0 && now === size) break;
    size = now;
  }
  return { ...(await studio.memory()), ...(await procMemory(studio.pid)) };
}

/** Step 5: verifyCopies over `small` assets of 2–20 KB and `large` of 64 MiB, both copies each. */
async function verifyStep(dir: string, small: number, large: number): Promise<Record<string, number>> {
  const targets = {
    mirror: { root: join(dir, 'mirror'), media: 'hdd', location: 'bench', device: 'm', requireExistingRoot: true },
    raid: { root: join(dir, 'raid'), media: 'raid', location: 'bench', device: 'r', requireExistingRoot: true },
  };
  const catalogue = new Catalogue(join(dir, 'catalogue'));
  try {
    for (const t of ['mirror', 'raid'] as const) {
      await mkdir(targets[t].root, { recursive: true });
      await checkTarget(t, targets[t], false); // writes the target marker
    }
    await catalogue.open();
    const buf = Buffer.alloc(64 * 1024 * 1024);
    let recs: CommitRecord[] = [];
    let bytes = 0;
    for (let i = 0; i < small + large; i++) {
      const size = i < small ? 2048 + ((i * 7919) % (18 * 1024 + 1)) : buf.length;
      randomFillSync(buf, 0, size);
      const data = buf.subarray(0, size);
      const hash = hashBytes(data);
      const rel = `2026-12-05/bench/card/${String(Math.floor(i / 1000))}/IMG_${i}.JPG`;
      for (const t of ['mirror', 'raid'] as const) {
        await mkdir(dirname(join(targets[t].root, rel)), { recursive: true });
        await writeFile(join(targets[t].root, rel), data);
      }
      bytes += size;
      const copies = (['mirror', 'raid'] as const).map((t) =>
        localCopyRecord(t, targets[t], { hash, path: rel, size, method: 'readback-blake3', verifiedAt: Date.now() }),
      );
      recs.push({
        asset: { hash, size, committedAt: Date.now() },
        names: [],
        copies,
        storedPaths: [{ key: nameKey(rel), value: { hash, path: rel } }],
      });
      if (recs.length === 1000) {
        await catalogue.importAssets(recs);
        recs = [];
      }
    }
    if (recs.length > 0) await catalogue.importAssets(recs);
    const l = load();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await verifyCopies(
      { catalogue, targets, log: createLogger({ name: 'bench-verify', level: 'warn' }) },
      { repair: false },
    );
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (r.copiesOk !== 2 * (small + large)) throw new Error(`verify: ${JSON.stringify(r).slice(0, 2000)}`);
    return {
      assets: r.assetsChecked,
      copies: r.copiesChecked,
      assetsPerSec: +(r.assetsChecked / (ms / 1000)).toFixed(0),
      mbPerSec: +((2 * bytes) / 1e6 / (ms / 1000)).toFixed(0),
      cpuMsPerAsset: +((cpu.user + cpu.system) / 1000 / r.assetsChecked).toFixed(2),
      load: l,
    };
  } finally {
    await catalogue.close();
  }
}

/**
 * studiod's floor for a small file (lib/small-floor.ts) over this card, in a child process, into
 * `dir` (removed after): what any studio must spend a file on this disk, to compare its CPU with.
 */
async function smallFloorRun(card: string, paths: readonly string[], dir: string): Promise<SmallFloor> {
  await mkdir(dir, { recursive: true });
  const list = join(dir, 'paths.txt');
  await writeFile(list, `${paths.join('\n')}\n`);
  try {
    const r = await timed(process.execPath, [FLOOR_JS, card, list, join(dir, 'out')]);
    if (r.code !== 0) throw new Error(`small-floor failed (${r.code}): ${r.stderr.slice(-2000)}`);
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as SmallFloor;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function sync(data: string, bin = BINS.agent, nice = 0): Promise<Usage> {
  const args = [...AGENT_NODE_ARGS, bin, 'sync', '--data-dir', data, '--json'];
  const r = await (nice === 0
    ? timed(process.execPath, args, AGENT_ENV)
    : timed('/usr/bin/nice', ['-n', String(nice), process.execPath, ...args], AGENT_ENV));
  if (r.code !== EXIT.ok) throw new Error(`field-agent sync failed (${r.code}): ${r.stderr.slice(-2000)}`);
  return r;
}

interface IngestSummary {
  baselineFilesPerSec: number;
  ingestFilesPerSec: number;
  ratio: number;
  peakRssMiB: number;
  peakRssBytesPerFile: number;
  peakHeapUsedMiB: number;
  cpuSec: number;
  load: number[];
}

/** Steps 1–3 on one card of FILES small files. */
async function cardSteps(base: string, out: Record<string, unknown>): Promise<void> {
  const card = join(base, 'card');
  const paths = await makeSmallCard(card, FILES);

  // 1. ingest vs the fsync-each-file copy
  const rows: Array<{
    load: number;
    baseline: number;
    ingest: number;
    ratio: number;
    rss: number;
    heap: number;
    cpu: number;
    compacted: number;
    other?: { ingest: number; ratio: number; cpu: number; rss: number; heap: number; compacted: number };
  }> = [];
  let lastData = '';
  for (let i = 0; i < (SYNC_ONLY ? 1 : RUNS); i++) {
    const l = load();
    const dst = join(base, `copy-${i}`);
    const data = join(base, `agent-${i}`);
    const baseOnce = async (): Promise<number> => (SYNC_ONLY ? Number.NaN : fsyncEachCopy(card, paths, dst));
    let bMs = 0;
    let ag: Ingest | undefined;
    let other: Ingest | undefined;
    // Each run in another order, so no step always follows the same one.
    const steps: Array<() => Promise<void>> = [
      async () => {
        bMs = await baseOnce();
      },
      async () => {
        ag = await ingest(card, data, FILES);
      },
      ...(COMPARE_AGENT === undefined || SYNC_ONLY
        ? []
        : [
            async () => {
              other = await ingest(card, `${data}-other`, FILES, COMPARE_AGENT);
              await rm(`${data}-other`, { recursive: true, force: true });
            },
          ]),
    ];
    for (let j = 0; j < steps.length; j++) await (steps[(i + j) % steps.length] as () => Promise<void>)();
    if (ag === undefined) throw new Error('no ingest');
    await rm(dst, { recursive: true, force: true });
    if (lastData !== '') await rm(lastData, { recursive: true, force: true });
    lastData = data;
    const row = {
      load: l,
      baseline: FILES / (bMs / 1000),
      ingest: FILES / (ag.ms / 1000),
      ratio: bMs / ag.ms,
      rss: ag.maxRssMiB,
      heap: ag.memory.heapUsed,
      cpu: ag.cpuSec,
      compacted: ag.compactedMiB,
      ...(other === undefined
        ? {}
        : {
            other: {
              ingest: FILES / (other.ms / 1000),
              ratio: bMs / other.ms,
              cpu: other.cpuSec,
              rss: other.maxRssMiB,
              heap: other.memory.heapUsed,
              compacted: other.compactedMiB,
            },
          }),
    };
    rows.push(row);
    log(
      `ingest run ${i + 1}/${RUNS} (load ${l}): fsync-each copy ${row.baseline.toFixed(0)} files/s, ingest ${row.ingest.toFixed(0)} files/s, ratio ${row.ratio.toFixed(2)}, agent peak RSS ${row.rss.toFixed(0)} MiB (${((row.rss * 2 ** 20) / FILES).toFixed(0)} B a file), peak heapUsed ${row.heap.toFixed(0)} MiB, CPU ${row.cpu.toFixed(1)} s (${((row.cpu * 1000) / FILES).toFixed(2)} ms a file), LevelDB compactions ${row.compacted} MiB${row.other === undefined ? '' : `; compared agent ${row.other.ingest.toFixed(0)} files/s, ratio ${row.other.ratio.toFixed(2)}, CPU ${row.other.cpu.toFixed(1)} s (${((row.other.cpu * 1000) / FILES).toFixed(2)} ms a file), peak RSS ${row.other.rss.toFixed(0)} MiB, heapUsed ${row.other.heap.toFixed(0)} MiB, compactions ${row.other.compacted} MiB`}`,
    );
  }
  const ingestSummary = {
    baselineFilesPerSec: +median(rows.map((r) => r.baseline)).toFixed(0),
    ingestFilesPerSec: +median(rows.map((r) => r.ingest)).toFixed(0),
    ratio: +median(rows.map((r) => r.ratio)).toFixed(2),
    peakRssMiB: +Math.max(...rows.map((r) => r.rss)).toFixed(0),
    // Peak RSS over the card's files (it includes the process's fixed ~80 MiB: compare two sizes for the slope).
    peakRssBytesPerFile: +((Math.max(...rows.map((r) => r.rss)) * 2 ** 20) / FILES).toFixed(0),
    peakHeapUsedMiB: +Math.max(...rows.map((r) => r.heap)).toFixed(0),
    cpuSec: +median(rows.map((r) => r.cpu)).toFixed(1),
    // CPU a file: steady under load where files/s is not; compare card sizes for growth.
    cpuMsPerFile: +((median(rows.map((r) => r.cpu)) * 1000) / FILES).toFixed(2),
    compactedMiB: +median(rows.map((r) => r.compacted)).toFixed(1),
    load: rows.map((r) => r.load),
    ...(COMPARE_AGENT === undefined || SYNC_ONLY
      ? {}
      : {
          compared: {
            ingestFilesPerSec: +median(rows.map((r) => r.other?.ingest ?? 0)).toFixed(0),
            ratio: +median(rows.map((r) => r.other?.ratio ?? 0)).toFixed(2),
            cpuSec: +median(rows.map((r) => r.other?.cpu ?? 0)).toFixed(1),
            cpuMsPerFile: +((median(rows.map((r) => r.other?.cpu ?? 0)) * 1000) / FILES).toFixed(2),
            compactedMiB: +median(rows.map((r) => r.other?.compacted ?? 0)).toFixed(1),
            peakRssMiB: +Math.max(...rows.map((r) => r.other?.rss ?? 0)).toFixed(0),
            peakHeapUsedMiB: +Math.max(...rows.map((r) => r.other?.heap ?? 0)).toFixed(0),
          },
        }),
  };
  out['ingest'] = ingestSummary;
  if (INGEST_ONLY) {
    process.stdout.write(
      `ingest of ${FILES} small files: ${ingestSummary.ingestFilesPerSec} files/s vs fsync-each copy ${ingestSummary.baselineFilesPerSec} files/s — median ratio ${ingestSummary.ratio} (target >= 0.8), agent CPU ${ingestSummary.cpuSec} s (${ingestSummary.cpuMsPerFile} ms a file), peak RSS ${ingestSummary.peakRssMiB} MiB\n${JSON.stringify(out)}\n`,
    );
    return;
  }

  // 2. status
  const st: Usage[] = [];
  for (let i = 0; i < (SYNC_ONLY ? 0 : 5); i++) {
    const r = await agent(['status', '--data-dir', lastData, '--json']);
    if (r.code !== EXIT.ok && r.code !== EXIT.notSafe) throw new Error(`status failed (${r.code}): ${r.stderr}`);
    st.push(r);
  }
  out['status'] = {
    medianMs: st.length === 0 ? Number.NaN : +median(st.map((r) => r.ms)).toFixed(0),
    peakRssMiB: st.length === 0 ? Number.NaN : +Math.max(...st.map((r) => r.maxRssMiB)).toFixed(0),
    load: load(),
  };
  log(`status --json: ${JSON.stringify(out['status'])}`);

  // 3. sync of the card to studiod (with --compare-agent and --sync-only: `runs` rounds, each
  // syncing a copy of the same agent state with both builds, alternating which goes first, each
  // to a fresh studiod)
  if (values['no-sync'] !== true) {
    const builds = COMPARE_AGENT === undefined || !SYNC_ONLY ? [BINS.agent] : [BINS.agent, COMPARE_AGENT];
    // --warm-files: one more card, ingested once; a copy of its state syncs first to each studiod
    const warmState = join(base, 'agent-warm');
    if (WARM_FILES > 0) {
      // other folder names: the measured card's files must not meet names already taken
      await makeSmallCard(join(base, 'warm-card'), WARM_FILES, 'WARMU');
      await ingest(join(base, 'warm-card'), warmState, WARM_FILES);
      await rm(join(base, 'warm-card'), { recursive: true, force: true });
    }
    const rounds = builds.length === 1 ? 1 : RUNS;
    const rows: Array<Record<string, number>> = [];
    const floors: SmallFloor[] = [];
    for (let i = 0; i < rounds; i++) {
      for (let j = 0; j < builds.length; j++) {
        const k = (i + j) % builds.length;
        const data = builds.length === 1 ? lastData : `${lastData}-sync${k}`;
        if (data !== lastData) await cp(lastData, data, { recursive: true });
        const studioDir = join(base, builds.length === 1 ? 'studio' : `studio-${i}-${k}`);
        const studio = new Studio(studioDir, STUDIOD_NODE_ARGS);
        await studio.start();
        try {
          await studio.pair(data, 'bench');
          if (WARM_FILES > 0) {
            const warm = `${warmState}-${i}-${k}`;
            await cp(warmState, warm, { recursive: true });
            await studio.pair(warm, 'bench-warm');
            await sync(warm, builds[k]);
            await rm(warm, { recursive: true, force: true });
          }
          const l = load();
          const ps0 = await procStat(studio.pid);
          const r = await sync(data, builds[k]);
          const ps = await procStat(studio.pid);
          const s = {
            filesPerSec: +(FILES / (r.ms / 1000)).toFixed(0),
            studiodCpuMsPerFile: +(((ps.cpuSec - ps0.cpuSec) * 1000) / FILES).toFixed(2),
            // The kernel's share of it (system time: fsyncs, file-system calls, socket I/O).
            studiodSysMsPerFile: +(((ps.sysSec - ps0.sysSec) * 1000) / FILES).toFixed(2),
            agentCpuSec: +r.cpuSec.toFixed(1),
            agentCpuMsPerFile: +((r.cpuSec * 1000) / FILES).toFixed(2),
            agentSysMsPerFile: +((r.sysSec * 1000) / FILES).toFixed(2),
            studiodPeakRssMiB: +ps.hwmMiB.toFixed(0),
            warmFiles: WARM_FILES,
            load: l,
          };
          if (builds.length === 1) out['sync'] = s;
          else rows.push({ build: k, ...s });
          log(
            `sync${builds.length === 1 ? '' : ` round ${i + 1}/${rounds} ${k === 0 ? 'this build' : 'compared agent'}`}: ${JSON.stringify(s)}`,
          );
        } finally {
          await studio.stop();
          if (values.keep !== true) await rm(studioDir, { recursive: true, force: true });
          if (data !== lastData) await rm(data, { recursive: true, force: true });
        }
      }
      // The same card's floor, same disk, right after the round's syncs.
      const l = load();
      const fl = await smallFloorRun(card, paths, join(base, `floor-${i}`));
      floors.push(fl);
      log(`small-file floor (load ${l}): ${JSON.stringify(fl)}`);
    }
    await rm(warmState, { recursive: true, force: true });
    const floorMs = +median(floors.map((f) => f.cpuMsPerFile)).toFixed(3);
    const floor = {
      cpuMsPerFile: floorMs,
      sysMsPerFile: +median(floors.map((f) => f.sysMsPerFile)).toFixed(3),
      filesPerSec: +median(floors.map((f) => f.filesPerSec)).toFixed(0),
      group: floors[0]?.group ?? 0,
    };
    if (rows.length === 0) {
      const s = out['sync'] as Record<string, number>;
      out['sync'] = { ...s, studiodVsFloor: +((s['studiodCpuMsPerFile'] ?? 0) / floorMs).toFixed(2), floor };
    } else {
      const of = (k: number, f: string): number =>
        +median(rows.filter((r) => r['build'] === k).map((r) => r[f] ?? 0)).toFixed(2);
      out['sync'] = {
        agentCpuMsPerFile: of(0, 'agentCpuMsPerFile'),
        agentSysMsPerFile: of(0, 'agentSysMsPerFile'),
        studiodCpuMsPerFile: of(0, 'studiodCpuMsPerFile'),
        filesPerSec: of(0, 'filesPerSec'),
        studiodVsFloor: +(of(0, 'studiodCpuMsPerFile') / floorMs).toFixed(2),
        compared: {
          agentCpuMsPerFile: of(1, 'agentCpuMsPerFile'),
          agentSysMsPerFile: of(1, 'agentSysMsPerFile'),
          studiodCpuMsPerFile: of(1, 'studiodCpuMsPerFile'),
          filesPerSec: of(1, 'filesPerSec'),
          studiodVsFloor: +(of(1, 'studiodCpuMsPerFile') / floorMs).toFixed(2),
        },
        floor,
        rounds: rows,
      };
    }
  }
  await rm(lastData, { recursive: true, force: true });
  if (values.keep !== true) await rm(join(base, 'studio'), { recursive: true, force: true });
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(values.dir ?? tmpdir(), 'bench-scale-'));
  const out: Record<string, unknown> = {
    files: FILES,
    runs: RUNS,
    cores: availableParallelism(),
    agentEnv: AGENT_ENV,
    studiodEnv: STUDIOD_ENV,
    ...(values['agents-agent'] === undefined ? {} : { agentsAgent: AGENTS_AGENT }),
  };
  try {
    log(`bench:scale — ${FILES} small files in ${base}, ${RUNS} runs, ${availableParallelism()} cores`);
    if (values['status-only'] !== undefined) {
      const sizes = values['status-only'].split(',').map(Number);
      out['status'] = await statusOnly(base, sizes, values['status-agent']);
      process.stdout.write(`${JSON.stringify(out)}\n`);
      return;
    }
    if (values['verify-only'] === true) {
      out['verify'] = await verifyStep(join(base, 'verify'), VERIFY_FILES, VERIFY_LARGE);
      process.stdout.write(`verify: ${JSON.stringify(out['verify'])}\n${JSON.stringify(out)}\n`);
      return;
    }
    if (values['agents-only'] !== true) await cardSteps(base, out);
    if (INGEST_ONLY) return;

    // 4. many agents at once
    if (AGENTS >= 2) {
      const datas: string[] = [];
      for (let a = 0; a <= AGENTS; a++) {
        const c = join(base, `card-${a}`);
        await makeSmallCard(c, AGENT_FILES);
        const d = join(base, `data-${a}`);
        await ingest(c, d, AGENT_FILES);
        await rm(c, { recursive: true, force: true });
        datas.push(d);
      }
      const studio = new Studio(
        join(base, 'studio-many'),
        HEAP_SNAPSHOT_DIR === undefined
          ? STUDIOD_NODE_ARGS
          : [...STUDIOD_NODE_ARGS, '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${HEAP_SNAPSHOT_DIR}`],
      );
      await studio.start();
      try {
        const ids: string[] = [];
        for (let a = 0; a <= AGENTS; a++) ids.push(await studio.pair(datas[a] as string, `bench-${a}`));
        const firstCommit = (id: string, t0: number): number => {
          const c = studio.commits.find((x) => x.at >= t0 && studio.sessions.get(x.session) === id);
          return c === undefined ? Number.NaN : c.at - t0;
        };
        /** From the session's authentication to its first commit. */
        const firstAfterAuth = (id: string, t0: number): number => {
          const c = studio.commits.find((x) => x.at >= t0 && studio.sessions.get(x.session) === id);
          const auth = c === undefined ? undefined : studio.authAt.get(c.session);
          return c === undefined || auth === undefined ? Number.NaN : c.at - auth;
        };
        /**
         * Where an agent's first commit waited, in ms from the start: its process start, connect, TLS
         * and authentication (spawn → authenticated), the Offer's answer (authenticated → first Want;
         * `offer`: the studio's time answering it) and the first file (first Want → first commit).
         */
        const parts = (id: string, t0: number): Record<string, number> => {
          const c = studio.commits.find((x) => x.at >= t0 && studio.sessions.get(x.session) === id);
          const auth = c === undefined ? undefined : studio.authAt.get(c.session);
          const want = c === undefined ? undefined : studio.firstWant.get(c.session);
          if (c === undefined || auth === undefined || want === undefined) return {};
          const committing = studio.firstCommitting.get(c.session) ?? Number.NaN;
          const stages = studio.firstStages.get(c.session) ?? {};
          return {
            ...Object.fromEntries(WRITTEN_STAGES.map((k) => [`w.${k}`, stages[k] ?? Number.NaN])),
            auth: auth - t0,
            want: want.at - auth,
            offer: want.offerMs,
            commit: c.at - want.at,
            received: committing - want.at,
            written: c.at - committing,
          };
        };
        const summary = (rows: Array<Record<string, number>>): Record<string, string> =>
          Object.fromEntries(
            ['auth', 'want', 'offer', 'commit', 'received', 'written', ...WRITTEN_STAGES.map((k) => `w.${k}`)].map(
              (k) => {
                const v = rows.map((r) => r[k] ?? Number.NaN);
                return [k, `${median(v).toFixed(0)}/${Math.max(...v).toFixed(0)}`];
              },
            ),
          );
        const idle0 = await procStat(studio.pid);
        // the lone agent
        let t0 = performance.now();
        const lone = await sync(datas[0] as string, AGENTS_AGENT, AGENTS_NICE);
        const loneRate = AGENT_FILES / (lone.ms / 1000);
        const loneFirst = firstCommit(ids[0] as string, t0);
        const loneAuthFirst = firstAfterAuth(ids[0] as string, t0);
        const loneParts = summary([parts(ids[0] as string, t0)]);
        // N at once
        const l = load();
        const before = await procStat(studio.pid);
        t0 = performance.now();
        let peakMemory: Record<string, number> = {};
        let syncing = true;
        const sampling = (async () => {
          while (syncing) {
            const m = await studio.memory().catch(() => ({}) as Record<string, number>);
            if ((m['rss'] ?? 0) > (peakMemory['rss'] ?? -1))
              peakMemory = { ...m, ...(await procMemory(studio.pid).catch(() => ({}))) };
            await new Promise((r) => setTimeout(r, 1000));
          }
        })();
        const manyUsage = await Promise.all(datas.slice(1).map((d) => sync(d, AGENTS_AGENT, AGENTS_NICE))).finally(
          () => {
            syncing = false;
          },
        );
        const allMs = performance.now() - t0;
        await sampling;
        const firsts = ids.slice(1).map((id) => firstCommit(id, t0));
        const authFirsts = ids.slice(1).map((id) => firstAfterAuth(id, t0));
        const manyParts = summary(ids.slice(1).map((id) => parts(id, t0)));
        const busy = await procStat(studio.pid);
        const idleAfter = await idleRss(studio.pid);
        const idleMemory = { ...(await studio.memory()), ...(await procMemory(studio.pid)) };
        const afterSnapshot = HEAP_SNAPSHOT_DIR === undefined ? {} : await heapSnapshot(studio, HEAP_SNAPSHOT_DIR);
        const many = {
          agents: AGENTS,
          filesPerAgent: AGENT_FILES,
          loneFilesPerSec: +loneRate.toFixed(0),
          aggregateFilesPerSec: +((AGENTS * AGENT_FILES) / (allMs / 1000)).toFixed(0),
          aggregateVsLone: +((AGENTS * AGENT_FILES) / (allMs / 1000) / loneRate).toFixed(2),
          loneFirstCommitMs: +loneFirst.toFixed(0),
          firstCommitMs: { median: +median(firsts).toFixed(0), max: +Math.max(...firsts).toFixed(0) },
          worstFirstCommitVsLone: +(Math.max(...firsts) / loneFirst).toFixed(2),
          loneFirstCommitAfterAuthMs: +loneAuthFirst.toFixed(0),
          firstCommitAfterAuthMs: { median: +median(authFirsts).toFixed(0), max: +Math.max(...authFirsts).toFixed(0) },
          worstFirstCommitAfterAuthVsLone: +(Math.max(...authFirsts) / loneAuthFirst).toFixed(2),
          firstCommitPartsMs: { lone: loneParts, many: manyParts },
          studiodCpuMsPerFile: +(((busy.cpuSec - before.cpuSec) * 1000) / (AGENTS * AGENT_FILES)).toFixed(2),
          // The agents' own CPU (start-up included) a file: the lone one's, and the N's together.
          agentCpuMsPerFile: {
            lone: +((lone.cpuSec * 1000) / AGENT_FILES).toFixed(2),
            many: +((manyUsage.reduce((sum, u) => sum + u.cpuSec, 0) * 1000) / (AGENTS * AGENT_FILES)).toFixed(2),
          },
          studiodIdleRssMiB: +idle0.rssMiB.toFixed(0),
          studiodPeakRssMiB: +busy.hwmMiB.toFixed(0),
          studiodRssAfterMiB: +busy.rssMiB.toFixed(0),
          studiodRssIdleAfterMiB: +idleAfter.toFixed(0),
          studiodMemoryMiB: {
            peak: peakMemory,
            idleAfter: idleMemory,
            ...(HEAP_SNAPSHOT_DIR === undefined ? {} : { afterSnapshot }),
          },
          load: l,
          ...(AGENTS_NICE === 0 ? {} : { agentsNice: AGENTS_NICE }),
        };
        out['agents'] = many;
        log(`agents: ${JSON.stringify(many)}`);
      } finally {
        await studio.stop();
      }
    }

    if (VERIFY_FILES + VERIFY_LARGE > 0) {
      out['verify'] = await verifyStep(join(base, 'verify'), VERIFY_FILES, VERIFY_LARGE);
      log(`verify: ${JSON.stringify(out['verify'])}`);
    }

    const i = out['ingest'] as IngestSummary | undefined;
    const lines = [
      ...(i === undefined
        ? []
        : [
            `ingest of ${FILES} small files: ${i.ingestFilesPerSec} files/s vs fsync-each copy ${i.baselineFilesPerSec} files/s — median ratio ${i.ratio} (target >= 0.8); agent peak RSS ${i.peakRssMiB} MiB (target < 200; heapUsed ${i.peakHeapUsedMiB} MiB), CPU ${i.cpuSec} s`,
            `field-agent status --json: ${(out['status'] as { medianMs: number }).medianMs} ms median (target < 200), peak RSS ${(out['status'] as { peakRssMiB: number }).peakRssMiB} MiB`,
          ]),
      ...(out['sync'] === undefined ? [] : [`sync to studiod: ${JSON.stringify(out['sync'])}`]),
      ...(out['agents'] === undefined ? [] : [`agents: ${JSON.stringify(out['agents'])}`]),
      ...(out['verify'] === undefined ? [] : [`verify: ${JSON.stringify(out['verify'])}`]),
    ];
    process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(out)}\n`);
  } finally {
    if (values.keep !== true) await rm(base, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:scale failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(EXIT.error);
});
