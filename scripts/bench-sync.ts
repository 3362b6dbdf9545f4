/**
 * `npm run bench:sync` — agent → studiod over loopback TLS against what a studio admin
 * would do by hand, on the same file and disk, in the same run:
 *
 *   by hand   `rsync -a` over ssh (its own sshd on 127.0.0.1, throwaway keys, aes128-gcm)
 *             into a mirror folder, `cp` to a RAID folder + `sync`, `b3sum` of both copies;
 *   ours      field-agent → studiod: every byte fsync'd on mirror and RAID, read back and
 *             hashed, then the Receipt.
 *
 * Per run and as medians: transfer vs rsync; verified end to end vs the by-hand path;
 * studiod's and the agent's CPU-seconds per GiB (studiod from /proc/PID/stat, all threads;
 * the agent child reports its own process.resourceUsage over the sync); peak RSS; a raw TLS
 * stream of the bytes (information); the agent's CPU per GiB as a multiple of its floor (a bare
 * TLS send of the file: `readSync` into reused 1 MiB buffers written to a TLS socket, to a child that
 * discards them; measured with `--sync-only` too; and, except with `--sync-only`, beside one more sync
 * of another file: the floor sending the file over and over for as long as that sync runs, so that
 * both are measured in the same seconds on the same two cores); and studiod's CPU per GiB as a multiple of its floor,
 * measured in the same run from its parts, each as studiod does it: a TLS receive of the bytes
 * into one reused buffer that discards them (its CPU), plus two durable writes and two read-back
 * hashes of them (a child that writes from one reused page-aligned buffer to two files with
 * O_DIRECT, fsyncs, reads both back with O_DIRECT into a reused buffer and hashes them with the
 * native BLAKE3). Also printed: the floor before session 15 (a fresh buffer per TLS record,
 * writes and read-backs through the page cache), which studiod no longer pays.
 *
 * The disk's share, in the same run: the disk alone writing both copies at once as studiod writes
 * them and fsyncing them (what a transfer that ends with both copies durable asks of this disk;
 * rsync's copy into the page cache writes nothing in its measured time), then reading both back
 * (what a verified commit adds); the disk alone on studiod's schedule (`--child disk-schedule`: the
 * staged copy with the fdatasyncs its Acks need, read back behind them into the RAID copy as studiod
 * makes it, the RAID copy read back behind its own; no link, next to no CPU: a model of the disk work our transfer and end to end
 * cannot avoid, for information, not a bound studiod cannot beat); and what the device holding the
 * work dir read and wrote during our transfer (/sys/dev/block/MAJ:MIN/stat), i.e. how much of the
 * disk the read-back lanes took from the writes.
 *
 * studiod and the agents run as real child processes (the agent child is this script with
 * `--child agent`, the real link client and sync loop fed by a one-file queue).
 *
 * Options: --size N (GiB; `512M`, `2G` also), --runs N (default 3), --agents N (default 3:
 * also sync N files of size/N from N agents at once and compare the aggregate rate with one
 * agent's; 1 skips that step),
 * --dir DIR (work dir on the disk to test), --window-mb N (studio window; default the
 * protocol's). For A/B of a change: --sync-only (no baselines: their figures print as NaN),
 * --studiod-env="NAME=value …" (added to the environment studiod gets from its service unit;
 * `none`: not the unit's),
 * --studiod-node-options="…" and --agent-node-options="…" (Node/V8 flags for studiod and the
 * agent children, e.g. `--cpu-prof`), BENCH_THREADS=1 (studiod's and the agent's CPU per thread),
 * BENCH_CPU_PROF=<dir> (a CPU profile of studiod).
 */
import { type ChildProcess, spawn, execFile } from 'node:child_process';
import { closeSync, createReadStream, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { type FileHandle, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as netCreateServer } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { randomBytes, randomFillSync } from 'node:crypto';
import { createHasher, hashFile, generateAgentKeyPair } from '@studio321/protocol';
import {
  alignedBuffer,
  DEFAULT_SYNC_EVERY,
  DIRECT_ALIGN,
  DirectWriter,
  openDirect,
  syncInterval,
  writeParts,
} from '@studio321/protocol/durable';
import { LinkClient, saveIdentity, syncUntilEmpty } from '@studio321/agent/link';
import type { SyncQueue } from '@studio321/agent/state';
import { controlRequest, STUDIOD_DEFAULT_WINDOW_BYTES } from '@studio321/studiod';
import { RAID_SYNC_EVERY_MAX } from '@studio321/studiod/commit';
import { ACK_EVERY_WINDOW_PART } from '@studio321/studiod/link';
import { median } from './lib/bench-run.js';
import { studiodEnv } from './lib/studiod-env.js';

const exec = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const STUDIOD = join(ROOT, 'studiod', 'dist', 'bin', 'studiod.js');
const SELF = fileURLToPath(import.meta.url);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    agents: { type: 'string', default: '3' },
    dir: { type: 'string' },
    'window-mb': { type: 'string' },
    'sync-only': { type: 'boolean', default: false },
    'studiod-node-options': { type: 'string' },
    'agent-node-options': { type: 'string' },
    'studiod-env': { type: 'string' },
    child: { type: 'string' },
    file: { type: 'string' },
    blake3: { type: 'string' },
    bytes: { type: 'string' },
    'data-dir': { type: 'string' },
    direct: { type: 'boolean', default: false },
    loop: { type: 'boolean', default: false },
    port: { type: 'string' },
    'work-dir': { type: 'string' },
  },
});

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([MG]?)i?B?$/i.exec(s.trim());
  if (m === null) throw new Error(`--size ${s}: a number of GiB, or e.g. 512M, 2G`);
  const unit = (m[2] ?? '').toUpperCase() === 'M' ? MiB : GiB;
  return Math.round(Number(m[1]) * unit);
}

const mibps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const now = (): number => performance.timeOrigin + performance.now();

/** CPU seconds (user + system) a process has used so far, from /proc (all its threads). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/**
 * CPU seconds per thread name of a process, of them in the kernel (BENCH_THREADS=1: where studiod's
 * and the agent's CPU went); `since`: only what was used after those figures (threadCpuMaps).
 */
async function threadCpu(pid: number, since?: [Map<string, number>, Map<string, number>]): Promise<string> {
  const [by, sys] = await threadCpuMaps(pid);
  for (const [n, s] of since?.[0] ?? []) by.set(n, (by.get(n) ?? 0) - s);
  for (const [n, s] of since?.[1] ?? []) sys.set(n, (sys.get(n) ?? 0) - s);
  return [...by]
    .sort((a, b) => b[1] - a[1])
    .map(([n, s]) => `${n} ${s.toFixed(2)} (sys ${(sys.get(n) ?? 0).toFixed(2)})`)
    .join(', ');
}

/** CPU seconds per thread (all, and of them in the kernel) of a process so far. */
async function threadCpuMaps(pid: number): Promise<[Map<string, number>, Map<string, number>]> {
  const { readdir } = await import('node:fs/promises');
  const by = new Map<string, number>();
  const sys = new Map<string, number>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const key = tid === String(pid) ? 'main' : `${name}/${tid}`;
    by.set(key, (Number(fields[11]) + Number(fields[12])) / 100);
    sys.set(key, Number(fields[12]) / 100);
  }
  return [by, sys];
}

/** Minor page faults of a process so far (all threads): fresh pages touched, each zeroed by the kernel. */
async function minorFaults(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

/**
 * Bytes the block device holding `dir` has read and written so far (/sys/dev/block/MAJ:MIN/stat,
 * sectors of 512 bytes); undefined where that is not to be had (no block device under it).
 */
async function diskBytes(dir: string): Promise<{ read: number; written: number } | undefined> {
  const dev = (await stat(dir)).dev;
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  const text = await readFile(`/sys/dev/block/${major}:${minor}/stat`, 'utf8').catch(() => undefined);
  const f = text?.trim().split(/\s+/).map(Number);
  if (f === undefined || f.length < 7 || !Number.isFinite(f[2]) || !Number.isFinite(f[6])) return undefined;
  return { read: (f[2] ?? 0) * 512, written: (f[6] ?? 0) * 512 };
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** This process's CPU seconds so far (all threads), and its peak RSS. */
function selfUsage(): { cpuSec: number; maxRssBytes: number } {
  const u = process.resourceUsage();
  return { cpuSec: (u.userCPUTime + u.systemCPUTime) / 1e6, maxRssBytes: u.maxRSS * 1024 };
}

/** Runs this script with `--child …`; resolves with the JSON line it prints last. */
/** Runs this script as `--child …`; its result is the JSON of its last stdout line (`started`: the first line was `started`). */
function startChild<T>(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  nodeArgs: string[] = [],
): { child: ChildProcess; started: Promise<void>; result: Promise<T> } {
  const child = spawn(process.execPath, [...nodeArgs, SELF, '--child', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  let out = '';
  let onStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    onStarted = resolve;
  });
  const result = new Promise<T>((resolve, reject) => {
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.startsWith('started\n')) onStarted();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      onStarted();
      if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as T);
      else reject(new Error(`child ${args[0]} exited ${code}`));
    });
  });
  return { child, started, result };
}

function runChild<T>(args: string[], env: NodeJS.ProcessEnv = process.env, nodeArgs: string[] = []): Promise<T> {
  return startChild<T>(args, env, nodeArgs).result;
}

// ---------------------------------------------------------------- children

interface AgentChildResult {
  startedAt: number;
  endedAt: number;
  cpuSec: number;
  maxRssBytes: number;
}

/** `--child agent`: one agent syncs one file (the real link client and sync loop). */
async function agentChild(): Promise<AgentChildResult> {
  const file = values.file ?? '';
  const size = Number(values.bytes);
  let done = false;
  const queue: SyncQueue = {
    pendingForStudio: async () =>
      done
        ? []
        : [
            {
              blake3: values.blake3 ?? '',
              size,
              storePath: file,
              names: [
                {
                  shoot: 'bench',
                  card: 'CARD',
                  path: `DCIM/100BENCH/${values.blake3?.slice(0, 8)}.MOV`,
                  mtime: Date.now(),
                },
              ],
              copies: [
                { target: 'laptop', device: 'bench', media: 'ssd', location: 'field', offsite: false, verified: true },
              ],
            },
          ],
    recordStudioReceipt: async () => {
      done = true;
    },
    // The file was hashed by the parent: a refusal would be the link's fault, never the file's.
    checkStoreCopy: async () => undefined,
  };
  const threads = process.env['BENCH_THREADS'] === undefined ? undefined : await threadCpuMaps(process.pid);
  const faults0 = await minorFaults(process.pid);
  const cpu0 = selfUsage().cpuSec;
  const startedAt = now();
  const report = await syncUntilEmpty({ dataDir: values['data-dir'] ?? '', queue });
  const endedAt = now();
  if (threads !== undefined)
    process.stderr.write(
      `agent threads (the sync): ${await threadCpu(process.pid, threads)}; minor page faults ${(await minorFaults(process.pid)) - faults0}\n`,
    );
  if (report.receipts !== 1) throw new Error(`sync did not complete: ${JSON.stringify(report)}`);
  const u = selfUsage();
  return { startedAt, endedAt, cpuSec: u.cpuSec - cpu0, maxRssBytes: u.maxRssBytes };
}

/**
 * One copy written as studiod's writers write it: `writeParts`, with O_DIRECT for the chunks that may
 * go direct when `direct` (and the file system allows it), else the ordinary descriptor. `direct()`
 * says whether the O_DIRECT descriptor was opened (by the first chunk that may use it).
 */
async function copyWriter(
  path: string,
  direct: boolean,
): Promise<{
  fh: FileHandle;
  write(chunk: Uint8Array, at: number): Promise<void>;
  direct(): boolean;
  close(): Promise<void>;
}> {
  const fh = await open(path, 'w');
  let opened = false;
  const dw = new DirectWriter<FileHandle>(direct ? () => openDirect(path, true) : undefined, () => {
    opened = true;
  });
  return {
    fh,
    write: (chunk, at) => writeParts(dw, fh, [chunk], at),
    direct: () => opened,
    close: async () => {
      await dw.close();
      await fh.close();
    },
  };
}

/**
 * `--child floor`: what studiod cannot avoid besides the TLS receive — two durable
 * writes of `bytes` (from one reused buffer, fsync'd) and two read-back hashes (reused buffer).
 * `--direct`: as studiod writes and reads a large file's chunks (direct-io.ts): O_DIRECT from a
 * page-aligned buffer in writes of 4 MiB (studiod's runs of up to four 1 MiB chunks, one
 * `pwritev` each, since session 17), the two files at once, read back with O_DIRECT 4 MiB at a
 * time (the read-back lane's reads); without it, 1 MiB at a time through the page cache (what
 * studiod did before session 10). Where the file system refuses O_DIRECT, `--direct` goes
 * through the page cache as studiod then does, and answers `direct: false`.
 *
 * Also the disk's time for it, nothing else running: `writeMs` (both copies written and
 * fsync'd, one 4 MiB write in flight per copy as studiod has) and `ms` (then both read back).
 */
async function floorChild(): Promise<{ cpuSec: number; ms: number; writeMs: number; direct: boolean }> {
  const bytes = Number(values.bytes);
  const dir = values['work-dir'] ?? '';
  const direct = values.direct === true;
  const io = direct ? 4 * MiB : MiB;
  const buf = direct ? alignedBuffer(io) : Buffer.allocUnsafe(io);
  randomFillSync(buf);
  const paths = [join(dir, 'floor-a'), join(dir, 'floor-b')];
  const cpu0 = selfUsage().cpuSec;
  const t0 = performance.now();
  // Each copy written by its own writer, as studiod's staging (mirror) and RAID writers are.
  const writers = await Promise.all(paths.map((p) => copyWriter(p, direct)));
  await Promise.all(
    writers.map(async (w) => {
      for (let off = 0; off < bytes; off += buf.length)
        await w.write(buf.subarray(0, Math.min(buf.length, bytes - off)), off);
      await w.fh.sync();
    }),
  );
  const writeMs = performance.now() - t0;
  const usedDirect = writers.every((w) => w.direct());
  await Promise.all(writers.map((w) => w.close()));
  // Both read back at once, each through its own buffer, as studiod's two read-back lanes do.
  await Promise.all(
    paths.map(async (p) => {
      const rb = usedDirect ? alignedBuffer(io) : Buffer.allocUnsafe(io);
      const h = createHasher();
      const fh = (usedDirect ? await openDirect(p, false) : undefined) ?? (await open(p, 'r'));
      for (;;) {
        const { bytesRead } = await fh.read(rb, 0, rb.length, null);
        if (bytesRead === 0) break;
        h.update(rb.subarray(0, bytesRead));
      }
      h.digest();
      await fh.close();
    }),
  );
  const ms = performance.now() - t0;
  const cpuSec = selfUsage().cpuSec - cpu0;
  await Promise.all(paths.map((p) => rm(p)));
  return { cpuSec, ms, writeMs, direct: usedDirect };
}

/**
 * `--child disk-schedule`: the disk alone on studiod's schedule for one large file, with no CPU spent
 * on a link: what a verified two-copy commit asks of the disk. The staged (mirror) copy is written
 * in 4 MiB O_DIRECT writes and fdatasync'd each half window (an Ack needs its bytes durable:
 * file-receiver.ts), an fdatasync running while the next writes go on. The RAID copy is made from
 * the staged copy read back behind those fdatasyncs (StagedRead: 4 MiB O_DIRECT reads, hashed, each
 * written to the RAID copy with O_DIRECT, the next read when the write asks for it while the staged
 * copy is being written and one read ahead after; that read is also the staged copy's read-back), fdatasync'd at its growing interval (durableWrite's `syncEveryMax`, commit.ts) and
 * read back behind it by the hash worker. Each copy fsync'd at its end. `stagedMs`: the staged copy
 * written and fsync'd (where our transfer ends); `ms`: both copies written and read back (our end
 * to end). Where the file system refuses O_DIRECT, through the page cache as studiod then writes
 * (`direct: false`).
 */
async function diskScheduleChild(): Promise<{ stagedMs: number; ms: number; direct: boolean }> {
  const bytes = Number(values.bytes);
  const dir = values['work-dir'] ?? '';
  const window = values['window-mb'] === undefined ? STUDIOD_DEFAULT_WINDOW_BYTES : Number(values['window-mb']) * MiB;
  const io = 4 * MiB;
  const src = alignedBuffer(io);
  randomFillSync(src);
  const stagedPath = join(dir, 'schedule-staged');
  const raidPath = join(dir, 'schedule-raid');
  /** What an fdatasync covered so far, per copy, and who waits for more of it. */
  const synced = { staged: 0, raid: 0 };
  const waiters: Array<() => void> = [];
  const advance = (c: keyof typeof synced, to: number): void => {
    synced[c] = to;
    for (const w of waiters.splice(0)) w();
  };
  const durable = async (c: keyof typeof synced, to: number): Promise<void> => {
    while (synced[c] < to) await new Promise<void>((r) => waiters.push(r));
  };
  let direct = true;
  const write = async (
    path: string,
    copy: keyof typeof synced,
    interval: (synced: number) => number,
    chunk: (off: number, n: number) => Promise<Uint8Array>,
  ): Promise<void> => {
    const w = await copyWriter(path, true);
    let pending: Promise<void> | undefined;
    let at = 0;
    for (let off = 0; off < bytes; off += io) {
      const n = Math.min(io, bytes - off);
      await w.write(await chunk(off, n), off);
      if (off + n < bytes && off + n - at >= interval(at)) {
        await pending;
        const to = off + n;
        at = to;
        pending = w.fh.datasync().then(() => advance(copy, to));
      }
    }
    await pending;
    await w.fh.sync();
    direct &&= w.direct();
    advance(copy, bytes);
    await w.close();
  };
  /** Reads `path` from 0 to `bytes` behind `copy`'s fdatasyncs, 4 MiB at a time into `bufs` in turn, hashes it; `each` gets every run. */
  const reader = async (
    path: string,
    copy: keyof typeof synced,
    bufs: Buffer[],
    each?: (off: number, b: Buffer) => Promise<void>,
    before?: () => Promise<void>,
  ) => {
    await durable(copy, 1);
    const fh = (await openDirect(path, false)) ?? (await open(path, 'r'));
    const hash = createHasher();
    try {
      for (let off = 0, i = 0; off < bytes; off += io, i++) {
        const n = Math.min(io, bytes - off);
        await before?.();
        await durable(copy, off + n);
        const b = bufs[i % bufs.length] as Buffer;
        const { bytesRead } = await fh.read(b, 0, Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN, off);
        if (bytesRead < n) throw new Error(`disk-schedule: ${path} shorter than written`);
        hash.update(b.subarray(0, n));
        await each?.(off, b.subarray(0, n));
      }
    } finally {
      await fh.close();
    }
    hash.digest();
  };
  const t0 = performance.now();
  let stagedMs = Number.NaN;
  // The RAID copy's source: the staged copy's read-back; while the staged copy is being written a
  // run is read when the RAID write asks for it, after that one run is read ahead (StagedRead).
  const runs: Array<{ off: number; data: Buffer }> = [];
  let wakeRaid: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;
  let asked = 0;
  const chainRead = reader(
    stagedPath,
    'staged',
    [alignedBuffer(io), alignedBuffer(io)],
    async (off, data) => {
      runs.push({ off, data });
      wakeRaid?.();
    },
    async () => {
      while (runs.length > 0 || (Number.isNaN(stagedMs) && asked === 0))
        await new Promise<void>((r) => {
          wakeReader = r;
        });
    },
  );
  const nextRun = async (off: number): Promise<Uint8Array> => {
    asked++;
    wakeReader?.();
    for (;;) {
      const r = runs[0];
      if (r !== undefined && r.off === off) {
        runs.shift();
        asked--;
        wakeReader?.();
        return r.data;
      }
      await new Promise<void>((res) => {
        wakeRaid = res;
      });
    }
  };
  await Promise.all([
    write(
      stagedPath,
      'staged',
      () => window / ACK_EVERY_WINDOW_PART,
      async (_off, n) => src.subarray(0, n),
    ).then(() => {
      stagedMs = performance.now() - t0;
      wakeReader?.();
    }),
    chainRead,
    write(raidPath, 'raid', (at) => syncInterval(at, DEFAULT_SYNC_EVERY, RAID_SYNC_EVERY_MAX), nextRun),
    reader(raidPath, 'raid', [alignedBuffer(io)]),
  ]);
  const ms = performance.now() - t0;
  await Promise.all([rm(stagedPath), rm(raidPath)]);
  return { stagedMs, ms, direct };
}

/** `--child tls-sink`: a TLS server that discards what it receives and reports its CPU for it. */
async function tlsSinkChild(): Promise<void> {
  const { createServer } = await import('node:tls');
  const s = createServer({ key: process.env['KEY'] ?? '', cert: process.env['CERT'] ?? '' }, (c) => {
    const cpu0 = selfUsage().cpuSec;
    c.on('data', () => undefined);
    c.on('end', () => c.end(JSON.stringify({ cpuSec: selfUsage().cpuSec - cpu0 })));
  });
  s.listen(0, '127.0.0.1', () => {
    const a = s.address();
    process.stdout.write(`${typeof a === 'object' && a !== null ? a.port : 0}\n`);
  });
}

/**
 * `--child tls-send --port N --file F`: the agent's floor — what any sender of the file over TLS
 * spends on it: the file read with `readSync` into one of two reused 1 MiB buffers (as the agent
 * reads a chunk right before its send) and written to a TLS connection, the next chunk read while
 * the last write drains. Its CPU (all threads) from before the connect until every write is
 * flushed; the receiver (a `tls-sink` child) discards the bytes.
 */
async function tlsSendChild(): Promise<{ cpuSec: number; bytes: number }> {
  // `--loop`: the file over and over until SIGUSR2 (the floor beside a sync, for as long as it runs).
  const loop = values.loop === true;
  let stopped = false;
  process.once('SIGUSR2', () => {
    stopped = true;
  });
  if (loop) process.stdout.write('started\n');
  const cpu0 = selfUsage().cpuSec;
  const sock = await new Promise<ReturnType<typeof tlsConnect>>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: Number(values.port), rejectUnauthorized: false }, () => resolve(s));
    s.once('error', reject);
  });
  const fd = openSync(values.file ?? '', 'r');
  const fileSize = fstatSync(fd).size;
  const bufs = [Buffer.allocUnsafe(MiB), Buffer.allocUnsafe(MiB)];
  const inFlight: Array<Promise<void> | undefined> = [undefined, undefined];
  let bytes = 0;
  try {
    for (let off = 0, i = 0; ; i ^= 1) {
      await inFlight[i];
      const buf = bufs[i] as Buffer;
      if (stopped) break;
      if (loop && off >= fileSize) off = 0;
      const n = readSync(fd, buf, 0, buf.length, off);
      if (n === 0) break;
      off += n;
      bytes += n;
      inFlight[i] = new Promise<void>((resolve, reject) =>
        sock.write(buf.subarray(0, n), (err) => (err ? reject(err) : resolve())),
      );
    }
    await Promise.all(inFlight);
  } finally {
    closeSync(fd);
  }
  const cpuSec = selfUsage().cpuSec - cpu0;
  await new Promise<void>((resolve) => {
    sock.once('close', () => resolve());
    sock.on('data', () => undefined);
    sock.end();
  });
  return { cpuSec, bytes };
}

/** Runs `use` with the port of a `tls-sink` child (a TLS server that discards what it gets), then kills it. */
async function withTlsSink<T>(keyPem: string, certPem: string, use: (port: number) => Promise<T>): Promise<T> {
  const sink = spawn(process.execPath, [SELF, '--child', 'tls-sink'], {
    env: { ...process.env, KEY: keyPem, CERT: certPem },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((r) =>
      sink.stdout.once('data', (d: Buffer) => r(Number(d.toString().trim()))),
    );
    return await use(port);
  } finally {
    sink.kill('SIGKILL');
  }
}

/** The agent's floor (`tls-send`) over the file to a `tls-sink` child: the sender's CPU seconds. */
async function agentFloor(file: string, keyPem: string, certPem: string): Promise<number> {
  return await withTlsSink(
    keyPem,
    certPem,
    async (port) => (await runChild<{ cpuSec: number }>(['tls-send', '--port', String(port), '--file', file])).cpuSec,
  );
}

/**
 * The agent's floor beside a sync (`during`): the bare TLS send of `file`, over and over, for as long
 * as `during` runs, to a `tls-sink` child. Its CPU seconds per GiB it sent: what Node's TLS send of
 * a file costs with studiod and an agent busy on the same two cores, as the agent's does.
 */
async function agentFloorBeside(
  file: string,
  keyPem: string,
  certPem: string,
  during: Promise<unknown>,
): Promise<number> {
  return await withTlsSink(keyPem, certPem, async (port) => {
    const send = startChild<{ cpuSec: number; bytes: number }>([
      'tls-send',
      '--port',
      String(port),
      '--file',
      file,
      '--loop',
    ]);
    // Told to stop once the sync is over and it listens for the signal (a tiny file's sync can end first).
    await during.finally(async () => {
      await send.started;
      send.child.kill('SIGUSR2');
    });
    const r = await send.result;
    // NaN: the sync was over before the floor's first send (a file of a few MiB).
    return r.bytes === 0 ? Number.NaN : r.cpuSec / (r.bytes / GiB);
  });
}

/**
 * `--child tls-sink-own --port N`: connects to a TLS server that sends it the bytes and reads
 * them into one reused buffer (`onread`, as studiod reads an agent's socket since session 14:
 * no fresh buffer per TLS record), discarding them; prints its CPU for them once the server ends.
 */
async function tlsSinkOwnChild(): Promise<{ cpuSec: number }> {
  const buffer = Buffer.allocUnsafe(64 * 1024);
  let cpu0 = 0;
  return await new Promise((resolve, reject) => {
    const sock = tlsConnect(
      {
        host: '127.0.0.1',
        port: Number(values.port),
        rejectUnauthorized: false,
        // Node honours `onread` for a socket tls.connect makes (its types list it for net only).
        onread: { buffer, callback: () => true },
      } as ConnectionOptions,
      () => {
        cpu0 = selfUsage().cpuSec;
      },
    );
    sock.on('end', () => {
      resolve({ cpuSec: selfUsage().cpuSec - cpu0 });
      sock.end();
    });
    sock.on('error', reject);
  });
}

// ---------------------------------------------------------------- baselines

/**
 * Raw TLS: a child receives and discards while this process streams the file. Wall ms and the
 * receiver's CPU. `ownBuffers`: the child reads into one reused buffer (the receive studiod has);
 * else it gets a fresh buffer per TLS record ('data' events, as studiod did before session 14).
 */
async function rawTls(
  file: string,
  keyPem: string,
  certPem: string,
  ownBuffers: boolean,
): Promise<{ ms: number; recvCpuSec: number }> {
  if (ownBuffers) {
    const { createServer } = await import('node:tls');
    let t0 = 0;
    const server = createServer({ key: keyPem, cert: certPem }, (c) => {
      t0 = performance.now();
      c.on('error', () => undefined);
      createReadStream(file, { highWaterMark: MiB }).pipe(c, { end: true });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const a = server.address();
    try {
      const r = await runChild<{ cpuSec: number }>([
        'tls-sink-own',
        '--port',
        String(typeof a === 'object' && a !== null ? a.port : 0),
      ]);
      return { ms: performance.now() - t0, recvCpuSec: r.cpuSec };
    } finally {
      server.close();
    }
  }
  return await withTlsSink(keyPem, certPem, async (port) => {
    const t0 = performance.now();
    const reply = await new Promise<string>((resolve, reject) => {
      let got = '';
      const sock = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        createReadStream(file, { highWaterMark: MiB }).pipe(sock, { end: true });
      });
      sock.on('data', (d: Buffer) => {
        got += d.toString();
      });
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
    });
    return { ms: performance.now() - t0, recvCpuSec: (JSON.parse(reply) as { cpuSec: number }).cpuSec };
  });
}

async function freePort(): Promise<number> {
  const s = netCreateServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const a = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return typeof a === 'object' && a !== null ? a.port : 0;
}

const SSHD = '/usr/sbin/sshd';

/** Debian's openssh-server, rsync and b3sum, installed when missing (as root). */
async function ensureByHandTools(): Promise<void> {
  const missing = [
    [SSHD, 'openssh-server'],
    ['/usr/bin/rsync', 'rsync'],
    ['/usr/bin/b3sum', 'b3sum'],
  ].filter(([p]) => !existsSync(p as string));
  if (missing.length === 0) return;
  const pkgs = missing.map(([, pkg]) => pkg as string);
  if (process.getuid?.() !== 0) throw new Error(`bench:sync needs ${pkgs.join(', ')}: apt-get install them (as root)`);
  process.stdout.write(`installing ${pkgs.join(' ')} (apt-get)…\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await exec('apt-get', ['update', '-qq'], { env });
  await exec('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env });
}

/** An sshd of our own on 127.0.0.1 with throwaway host and user keys; the system's sshd config is not touched. */
interface Sshd {
  port: number;
  sshCommand: string;
  stop(): Promise<void>;
}

async function startSshd(dir: string): Promise<Sshd> {
  await mkdir(dir, { mode: 0o700 });
  const hostKey = join(dir, 'host_ed25519');
  const userKey = join(dir, 'user_ed25519');
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', userKey]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${userKey}.pub`));
  // Privilege separation needs its empty directory (the package creates it only when its service starts).
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'Ciphers aes128-gcm@openssh.com',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const sshd = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let log = '';
    sshd.stderr.setEncoding('utf8').on('data', (d: string) => {
      log += d;
      if (log.includes('Server listening')) resolve();
    });
    sshd.once('exit', (code) => reject(new Error(`sshd exited ${code}: ${log}`)));
  });
  const sshCommand = `ssh -c aes128-gcm@openssh.com -p ${port} -i ${userKey} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
  return {
    port,
    sshCommand,
    stop: async () => {
      if (sshd.exitCode !== null) return;
      const exited = new Promise<void>((r) => sshd.once('exit', () => r()));
      sshd.kill('SIGTERM');
      await exited;
    },
  };
}

interface ByHand {
  rsyncMs: number;
  totalMs: number;
}

/** rsync over ssh into `mirror`, cp to `raid` + sync, b3sum of both (checked against `blake3`). */
async function byHand(sshd: Sshd, files: string[], blake3s: string[], dir: string): Promise<ByHand> {
  const mirror = join(dir, 'byhand-mirror');
  const raid = join(dir, 'byhand-raid');
  await mkdir(mirror);
  await mkdir(raid);
  await exec('sync');
  const t0 = performance.now();
  await exec('rsync', ['-a', '-e', sshd.sshCommand, ...files, `root@127.0.0.1:${mirror}/`]);
  const rsyncMs = performance.now() - t0;
  const names = files.map((f) => f.slice(f.lastIndexOf('/') + 1));
  await exec('cp', ['-a', ...names.map((n) => join(mirror, n)), `${raid}/`]);
  await exec('sync');
  const { stdout } = await exec('b3sum', [...names.map((n) => join(mirror, n)), ...names.map((n) => join(raid, n))]);
  const totalMs = performance.now() - t0;
  const sums = stdout
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[0]);
  if (sums.some((s, i) => s !== blake3s[i % files.length])) throw new Error(`b3sum mismatch: ${stdout}`);
  await rm(mirror, { recursive: true });
  await rm(raid, { recursive: true });
  return { rsyncMs, totalMs };
}

// ---------------------------------------------------------------- the real sync

interface Source {
  path: string;
  blake3: string;
  size: number;
}

interface Studio {
  pid: number;
  port: number;
  state: string;
  /** Resolves when `n` more commits are logged as started (the transfer's end) and as done. */
  marks(n: number): { committing: Promise<number>; committed: Promise<number> };
  stop(): Promise<void>;
}

async function startStudio(dir: string): Promise<Studio> {
  const state = join(dir, 'state');
  const cfg = {
    listen: { host: '127.0.0.1', port: 0 },
    stateDir: state,
    log: { level: 'info' },
    ...(values['window-mb'] === undefined ? {} : { windowBytes: Number(values['window-mb']) * MiB }),
    targets: {
      mirror: { root: join(dir, 'mirror'), media: 'hdd', location: 'bench', device: 'm' },
      raid: { root: join(dir, 'raid'), media: 'raid', location: 'bench', device: 'r' },
    },
  };
  await mkdir(cfg.targets.mirror.root);
  await mkdir(cfg.targets.raid.root);
  await writeFile(join(dir, 'studiod.json'), JSON.stringify(cfg));
  const prof = process.env['BENCH_CPU_PROF'];
  const studiod = spawn(
    process.execPath,
    [
      ...(values['studiod-node-options']?.split(' ').filter(Boolean) ?? []),
      ...(prof === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', prof]),
      STUDIOD,
      '--config',
      join(dir, 'studiod.json'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...studiodEnv(values['studiod-env']) } },
  );
  const counts = { committing: 0, committed: 0 };
  const waiters: Array<{ what: 'committing' | 'committed'; at: number; resolve: (t: number) => void }> = [];
  let buffered = '';
  let listening: ((port: number) => void) | undefined;
  const port = new Promise<number>((resolve, reject) => {
    listening = resolve;
    studiod.once('exit', (code) => reject(new Error(`studiod exited ${code}: ${buffered}`)));
  });
  studiod.stderr.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
      if (line.includes('"msg":"listening"')) listening?.((JSON.parse(line) as { port: number }).port);
      for (const what of ['committing', 'committed'] as const) {
        if (!line.includes(`"msg":"${what}"`)) continue;
        counts[what]++;
        const t = now();
        for (const w of waiters.filter((x) => x.what === what && counts[what] >= x.at)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(t);
        }
      }
    }
  });
  return {
    pid: studiod.pid ?? 0,
    port: await port,
    state,
    marks: (n) => ({
      committing: new Promise((resolve) => waiters.push({ what: 'committing', at: counts.committing + n, resolve })),
      committed: new Promise((resolve) => waiters.push({ what: 'committed', at: counts.committed + n, resolve })),
    }),
    stop: async () => {
      if (studiod.exitCode !== null) return;
      if (process.env['BENCH_THREADS'] !== undefined)
        process.stdout.write(
          `studiod threads: ${await threadCpu(studiod.pid ?? 0)}; minor page faults ${await minorFaults(studiod.pid ?? 0)}\n`,
        );
      const exited = new Promise<void>((r) => studiod.once('exit', () => r()));
      studiod.kill('SIGTERM');
      await exited;
    },
  };
}

/** Pairs a new agent with the studio; returns its data dir. */
async function pairAgent(studio: Studio, agentDir: string, name: string): Promise<string> {
  const url = `wss://127.0.0.1:${studio.port}/v1`;
  const { code } = (await controlRequest(join(studio.state, 'control.sock'), 'pair')) as { code: string };
  const keys = generateAgentKeyPair();
  const link = new LinkClient({ url });
  await link.open();
  const paired = await link.pair(code, name, keys.publicKeyDer);
  link.close();
  await saveIdentity(agentDir, {
    pairing: {
      url,
      fingerprint: paired.studioFingerprint,
      agentId: paired.agentId,
      agentName: name,
      pairedAt: new Date().toISOString(),
    },
    privateKeyPem: keys.privateKeyPem,
  });
  return agentDir;
}

interface SyncFigures {
  transferMs: number;
  /** What the studio's disk read and wrote during the transfer (MiB/s); NaN where it cannot be read. */
  transferDisk: { readMiBps: number; writeMiBps: number };
  e2eMs: number;
  studiodCpuSec: number;
  agentCpuSec: number;
  agentMaxRssBytes: number;
}

/** Each agent syncs its file at once; transfer ends when the last file's commit starts (all bytes staged and fsync'd). */
async function syncAll(studio: Studio, agents: string[], sources: Source[]): Promise<SyncFigures> {
  const marks = studio.marks(sources.length);
  const cpu0 = await cpuSeconds(studio.pid);
  // The disk's reads and writes from the agents' start to the transfer's end (its last commit starting).
  const disk0 = await diskBytes(studio.state);
  const spawnedAt = now();
  const diskAtTransferEnd = marks.committing.then(async (t) => ({ t, d: await diskBytes(studio.state) }));
  const results = await Promise.all(
    sources.map((s, i) =>
      runChild<AgentChildResult>(
        ['agent', '--data-dir', agents[i] ?? '', '--file', s.path, '--blake3', s.blake3, '--bytes', String(s.size)],
        process.env,
        values['agent-node-options']?.split(' ').filter(Boolean),
      ),
    ),
  );
  await marks.committed;
  const studiodCpuSec = (await cpuSeconds(studio.pid)) - cpu0;
  const start = Math.min(...results.map((r) => r.startedAt));
  const end = await diskAtTransferEnd;
  const rate = (bytes: number | undefined): number =>
    bytes === undefined ? Number.NaN : mibps(bytes, end.t - spawnedAt);
  return {
    transferMs: (await marks.committing) - start,
    transferDisk: {
      readMiBps: rate(end.d === undefined || disk0 === undefined ? undefined : end.d.read - disk0.read),
      writeMiBps: rate(end.d === undefined || disk0 === undefined ? undefined : end.d.written - disk0.written),
    },
    e2eMs: Math.max(...results.map((r) => r.endedAt)) - start,
    studiodCpuSec,
    agentCpuSec: results.reduce((a, r) => a + r.cpuSec, 0),
    agentMaxRssBytes: Math.max(...results.map((r) => r.maxRssBytes)),
  };
}

// ---------------------------------------------------------------- runs

interface RunResult {
  load1m: number;
  rsyncMiBps: number;
  transferMiBps: number;
  transferVsRsync: number;
  byHandMiBps: number;
  e2eMiBps: number;
  e2eVsByHand: number;
  /** The disk alone writing and fsyncing both copies at once, as studiod writes them (MiB/s of the file). */
  diskWriteMiBps: number;
  /** … then reading both back: the least a verified two-copy commit of the file takes on this disk. */
  diskVerifiedMiBps: number;
  /** The disk alone on studiod's schedule (fdatasyncs for the Acks and the RAID copy, read-backs behind them): the staged copy fsync'd. */
  scheduleStagedMiBps: number;
  /** … and both copies fsync'd and read back. */
  scheduleVerifiedMiBps: number;
  /** What the disk wrote and read (the read-back lanes) during our transfer, MiB/s of the device. */
  transferDiskWriteMiBps: number;
  transferDiskReadMiBps: number;
  studiodCpuPerGiB: number;
  agentCpuPerGiB: number;
  /** The agent's floor: a bare TLS send of the file (readSync into reused buffers, written to a TLS socket). */
  agentFloorCpuPerGiB: number;
  agentVsFloor: number;
  /** The floor as studiod works: TLS receive into one buffer, O_DIRECT writes and read-backs (where the file system allows). */
  floorCpuPerGiB: number;
  studiodVsFloor: number;
  /** The bench's floor before session 15 (information): a fresh buffer per TLS record, the page cache. */
  floorBufferedCpuPerGiB: number;
  rawTlsMiBps: number;
  studiodPeakRssBytes: number;
  agentPeakRssBytes: number;
  /** With --agents N: N agents at once, their aggregate rate against one agent's e2e rate. */
  multiE2eMiBps?: number;
  multiVsSingle?: number;
  multiStudiodCpuPerGiB?: number;
  multiStudiodPeakRssBytes?: number;
  /** One more single-agent sync with the agent's floor sending beside it the whole time (not with --sync-only). */
  besideAgentCpuPerGiB?: number;
  besideFloorCpuPerGiB?: number;
  agentVsFloorBeside?: number;
}

async function makeSource(path: string, size: number): Promise<Source> {
  const block = randomBytes(16 * MiB);
  const fh = await open(path, 'w');
  for (let off = 0; off < size; off += block.length) {
    block.writeUInt32LE(off / block.length, 0); // no two blocks (or files) alike
    await fh.write(block, 0, Math.min(block.length, size - off), off);
  }
  await fh.sync();
  await fh.close();
  return { path, size, blake3: (await hashFile(path)).blake3 };
}

async function once(
  single: Source,
  multi: Source[],
  beside: Source | undefined,
  sshd: Sshd,
  dir: string,
): Promise<RunResult> {
  await mkdir(dir);
  const load1m = loadavg()[0] ?? 0;
  const size = single.size;
  const gib = size / GiB;
  const studio = await startStudio(dir);
  try {
    const keyPem = await readFile(join(studio.state, 'tls', 'key.pem'), 'utf8');
    const certPem = await readFile(join(studio.state, 'tls', 'cert.pem'), 'utf8');
    const agentDirs = [await pairAgent(studio, join(dir, 'agent-0'), 'bench-0')];
    for (let i = 1; i < multi.length; i++)
      agentDirs.push(await pairAgent(studio, join(dir, `agent-${i}`), `bench-${i}`));

    // the parts of studiod's floor, and the by-hand path (page cache warm for all)
    const skip = values['sync-only'] === true;
    const noRaw = { ms: Number.NaN, recvCpuSec: Number.NaN };
    const raw = skip ? noRaw : await rawTls(single.path, keyPem, certPem, true);
    const rawFresh = skip ? noRaw : await rawTls(single.path, keyPem, certPem, false);
    type Floor = { cpuSec: number; ms: number; writeMs: number; direct: boolean };
    const none: Floor = { cpuSec: Number.NaN, ms: Number.NaN, writeMs: Number.NaN, direct: false };
    const floor = skip
      ? none
      : await runChild<Floor>(['floor', '--bytes', String(size), '--work-dir', dir, '--direct']);
    const floorBuffered = skip ? none : await runChild<Floor>(['floor', '--bytes', String(size), '--work-dir', dir]);
    const window = values['window-mb'] === undefined ? [] : ['--window-mb', values['window-mb']];
    const schedule = skip
      ? { stagedMs: Number.NaN, ms: Number.NaN }
      : await runChild<{ stagedMs: number; ms: number }>([
          'disk-schedule',
          '--bytes',
          String(size),
          '--work-dir',
          dir,
          ...window,
        ]);
    const hand = skip
      ? { rsyncMs: Number.NaN, totalMs: Number.NaN }
      : await byHand(sshd, [single.path], [single.blake3], dir);
    // the agent's floor: a bare TLS send of the same file (runs with --sync-only too: one pass, ~1 CPU-s a GiB)
    const agentFloorSec = await agentFloor(single.path, keyPem, certPem);
    await exec('sync');

    // the real thing
    const ours = await syncAll(studio, agentDirs.slice(0, 1), [single]);
    const r: RunResult = {
      load1m,
      rsyncMiBps: mibps(size, hand.rsyncMs),
      transferMiBps: mibps(size, ours.transferMs),
      transferVsRsync: hand.rsyncMs / ours.transferMs,
      byHandMiBps: mibps(size, hand.totalMs),
      e2eMiBps: mibps(size, ours.e2eMs),
      e2eVsByHand: hand.totalMs / ours.e2eMs,
      diskWriteMiBps: mibps(size, floor.writeMs),
      diskVerifiedMiBps: mibps(size, floor.ms),
      scheduleStagedMiBps: mibps(size, schedule.stagedMs),
      scheduleVerifiedMiBps: mibps(size, schedule.ms),
      transferDiskWriteMiBps: ours.transferDisk.writeMiBps,
      transferDiskReadMiBps: ours.transferDisk.readMiBps,
      studiodCpuPerGiB: ours.studiodCpuSec / gib,
      agentCpuPerGiB: ours.agentCpuSec / gib,
      agentFloorCpuPerGiB: agentFloorSec / gib,
      agentVsFloor: ours.agentCpuSec / agentFloorSec,
      floorCpuPerGiB: (raw.recvCpuSec + floor.cpuSec) / gib,
      studiodVsFloor: ours.studiodCpuSec / (raw.recvCpuSec + floor.cpuSec),
      floorBufferedCpuPerGiB: (rawFresh.recvCpuSec + floorBuffered.cpuSec) / gib,
      rawTlsMiBps: mibps(size, raw.ms),
      studiodPeakRssBytes: await peakRss(studio.pid),
      agentPeakRssBytes: ours.agentMaxRssBytes,
    };
    if (multi.length > 1) {
      await exec('sync');
      const bytes = multi.reduce((a, s) => a + s.size, 0);
      const m = await syncAll(studio, agentDirs, multi);
      r.multiE2eMiBps = mibps(bytes, m.e2eMs);
      r.multiVsSingle = r.multiE2eMiBps / r.e2eMiBps;
      r.multiStudiodCpuPerGiB = m.studiodCpuSec / (bytes / GiB);
      r.multiStudiodPeakRssBytes = await peakRss(studio.pid);
    }
    if (beside !== undefined) {
      // The agent and its floor in the same seconds on the same cores: a file the studio does not have yet.
      await exec('sync');
      const sync = syncAll(studio, agentDirs.slice(0, 1), [beside]);
      const [b, floorPerGiB] = await Promise.all([sync, agentFloorBeside(beside.path, keyPem, certPem, sync)]);
      r.besideAgentCpuPerGiB = b.agentCpuSec / gib;
      r.besideFloorCpuPerGiB = floorPerGiB;
      r.agentVsFloorBeside = r.besideAgentCpuPerGiB / floorPerGiB;
    }
    return r;
  } finally {
    await studio.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function runLine(i: number, runs: number, r: RunResult, agents: number): string {
  const f = (n: number, d = 0): string => n.toFixed(d);
  return (
    `run ${i}/${runs} (load ${f(r.load1m, 2)}): transfer ${f(r.transferMiBps)} MiB/s vs rsync ${f(r.rsyncMiBps)} (${f(r.transferVsRsync, 2)}x); ` +
    `verified e2e ${f(r.e2eMiBps)} vs by hand ${f(r.byHandMiBps)} (${f(r.e2eVsByHand, 2)}x); ` +
    `the disk alone: both copies written ${f(r.diskWriteMiBps)} MiB/s, and read back ${f(r.diskVerifiedMiBps)}; ` +
    `on studiod's schedule: staged copy fsync'd ${f(r.scheduleStagedMiBps)} MiB/s, both verified ${f(r.scheduleVerifiedMiBps)}; ` +
    `the disk during the transfer: wrote ${f(r.transferDiskWriteMiBps)} MiB/s, read ${f(r.transferDiskReadMiBps)}; ` +
    `CPU/GiB studiod ${f(r.studiodCpuPerGiB, 2)} s (${f(r.studiodVsFloor, 2)}x its floor ${f(r.floorCpuPerGiB, 2)}; the old floor ${f(r.floorBufferedCpuPerGiB, 2)}), agent ${f(r.agentCpuPerGiB, 2)} s (${f(r.agentVsFloor, 2)}x its floor ${f(r.agentFloorCpuPerGiB, 2)}); ` +
    `peak RSS studiod ${f(r.studiodPeakRssBytes / MiB)} MiB, agent ${f(r.agentPeakRssBytes / MiB)} MiB; raw TLS ${f(r.rawTlsMiBps)} MiB/s` +
    (r.multiE2eMiBps === undefined
      ? ''
      : `; ${agents} agents at once ${f(r.multiE2eMiBps)} MiB/s (${f(r.multiVsSingle ?? 0, 2)}x one agent; studiod ${f(r.multiStudiodCpuPerGiB ?? 0, 2)} CPU-s/GiB, peak RSS ${f((r.multiStudiodPeakRssBytes ?? 0) / MiB)} MiB)`) +
    (r.besideAgentCpuPerGiB === undefined
      ? ''
      : `; the agent beside its floor: ${f(r.besideAgentCpuPerGiB, 2)} against ${f(r.besideFloorCpuPerGiB ?? 0, 2)} CPU-s/GiB (${f(r.agentVsFloorBeside ?? 0, 2)}x)`)
  );
}

async function main(): Promise<void> {
  const size = parseSize(values.size ?? '2');
  const runs = Math.max(1, Number(values.runs));
  const agents = Math.max(1, Number(values.agents));
  await ensureByHandTools();
  const base = await mkdtemp(join(values.dir ?? tmpdir(), 'bench-sync-'));
  let sshd: Sshd | undefined;
  try {
    process.stdout.write(
      `bench:sync — ${(size / GiB).toFixed(2)} GiB in ${base}, ${runs} runs, ${agents} agent(s), ${availableParallelism()} cores\n`,
    );
    const single = await makeSource(join(base, 'source.bin'), size);
    const beside = values['sync-only'] === true ? undefined : await makeSource(join(base, 'beside.bin'), size);
    const multi: Source[] = [];
    if (agents > 1)
      for (let i = 0; i < agents; i++)
        multi.push(await makeSource(join(base, `source-${i}.bin`), Math.floor(size / agents)));
    sshd = await startSshd(join(base, 'sshd'));
    const results: RunResult[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await once(single, multi, beside, sshd, join(base, `run-${i}`));
      results.push(r);
      process.stdout.write(`${runLine(i + 1, runs, r, agents)}\n`);
    }
    const m = (k: keyof RunResult): number => median(results.map((r) => r[k] ?? 0));
    const loads = results.map((r) => r.load1m);
    const lines = [
      `medians of ${runs} runs (load ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}):`,
      `transfer agent → studiod   ${m('transferMiBps').toFixed(0)} MiB/s vs rsync over ssh ${m('rsyncMiBps').toFixed(0)}: ${m('transferVsRsync').toFixed(2)}x (target >= 1.0x)`,
      `verified end to end        ${m('e2eMiBps').toFixed(0)} MiB/s vs by hand (rsync + cp + sync + b3sum x2) ${m('byHandMiBps').toFixed(0)}: ${m('e2eVsByHand').toFixed(2)}x (target >= 1.3x)`,
      Number.isNaN(m('diskWriteMiBps'))
        ? 'the disk alone (floor)     not measured (--sync-only)'
        : `the disk alone (floor)     both copies written and fsync'd ${m('diskWriteMiBps').toFixed(0)} MiB/s as studiod writes them, nothing else running (rsync was above it in ${results.filter((r) => r.rsyncMiBps > r.diskWriteMiBps).length} of ${runs} runs); then both read back ${m('diskVerifiedMiBps').toFixed(0)} MiB/s`,
      Number.isNaN(m('scheduleStagedMiBps'))
        ? "the disk on studiod's schedule not measured (--sync-only)"
        : `the disk on studiod's schedule (no link, no CPU to speak of: the staged copy fdatasync'd every half window for its Acks and read back behind those fdatasyncs, that read written to the RAID copy, fdatasync'd at its growing interval and read back behind it) staged copy fsync'd ${m('scheduleStagedMiBps').toFixed(0)} MiB/s (our transfer ${m('transferMiBps').toFixed(0)}; rsync above it in ${results.filter((r) => r.rsyncMiBps > r.scheduleStagedMiBps).length} of ${runs} runs), both copies verified ${m('scheduleVerifiedMiBps').toFixed(0)} MiB/s (our end to end ${m('e2eMiBps').toFixed(0)})`,
      Number.isNaN(m('transferDiskWriteMiBps'))
        ? 'the disk in our transfer   not measurable here (the work dir is on no block device with /sys/dev/block statistics)'
        : `the disk in our transfer   wrote ${m('transferDiskWriteMiBps').toFixed(0)} MiB/s (both copies) and read ${m('transferDiskReadMiBps').toFixed(0)} MiB/s (the read-back lanes verifying behind the fsyncs), device MiB/s from the agent's start to the last commit's start`,
      `studiod CPU per GiB        ${m('studiodCpuPerGiB').toFixed(2)} s (target <= 2.5), ${m('studiodVsFloor').toFixed(2)}x its floor of ${m('floorCpuPerGiB').toFixed(2)} (TLS receive into one buffer + 2 durable O_DIRECT writes + 2 O_DIRECT read-back hashes; the floor before session 15, a buffer per TLS record and the page cache: ${m('floorBufferedCpuPerGiB').toFixed(2)})`,
      `agent CPU per GiB          ${m('agentCpuPerGiB').toFixed(2)} s (target <= 0.8), ${m('agentVsFloor').toFixed(2)}x its floor of ${m('agentFloorCpuPerGiB').toFixed(2)} (the file read into reused 1 MiB buffers and written to a TLS socket, nothing else)`,
      ...(results.some((r) => r.agentVsFloorBeside !== undefined)
        ? [
            Number.isNaN(m('agentVsFloorBeside'))
              ? 'the agent beside its floor not measured (the sync was over before the floor sent its first MiB)'
              : `the agent beside its floor ${m('besideAgentCpuPerGiB').toFixed(2)} CPU-s/GiB against ${m('besideFloorCpuPerGiB').toFixed(2)} for the bare TLS send sending beside it the whole time, on the same cores: ${m('agentVsFloorBeside').toFixed(2)}x (one more sync a run, of another file)`,
          ]
        : []),
      `peak RSS                   studiod ${(Math.max(...results.map((r) => r.studiodPeakRssBytes)) / MiB).toFixed(0)} MiB (target < 250 with 4 GiB in flight), agent ${(Math.max(...results.map((r) => r.agentPeakRssBytes)) / MiB).toFixed(0)} MiB`,
      `raw TLS stream (info)      ${m('rawTlsMiBps').toFixed(0)} MiB/s`,
      ...(agents > 1
        ? [
            `${agents} agents at once          ${m('multiE2eMiBps').toFixed(0)} MiB/s aggregate: ${m('multiVsSingle').toFixed(2)}x one agent (target >= 0.9x), studiod ${m('multiStudiodCpuPerGiB').toFixed(2)} CPU-s/GiB, peak RSS ${(Math.max(...results.map((r) => r.multiStudiodPeakRssBytes ?? 0)) / MiB).toFixed(0)} MiB`,
          ]
        : []),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stdout.write(`${JSON.stringify({ bytes: size, agents, runs: results })}\n`);
  } finally {
    await sshd?.stop();
    await rm(base, { recursive: true, force: true });
  }
}

const child = values.child;
const job: Promise<unknown> =
  child === 'agent'
    ? agentChild().then((r) => process.stdout.write(`${JSON.stringify(r)}\n`))
    : child === 'floor'
      ? floorChild().then((r) => process.stdout.write(`${JSON.stringify(r)}\n`))
      : child === 'disk-schedule'
        ? diskScheduleChild().then((r) => process.stdout.write(`${JSON.stringify(r)}\n`))
        : child === 'tls-send'
          ? tlsSendChild().then((r) => process.stdout.write(`${JSON.stringify(r)}\n`))
          : child === 'tls-sink-own'
            ? tlsSinkOwnChild().then((r) => process.stdout.write(`${JSON.stringify(r)}\n`))
            : child === 'tls-sink'
              ? tlsSinkChild()
              : main();
job.catch((err: unknown) => {
  process.stderr.write(`bench:sync failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
