/**
 * `npm run bench:sync` — agent → studiod over loopback TLS, compared in the
 * same run with:
 *   1. a raw TLS socket stream of the same bytes (transfer ratio, target >= 0.7x);
 *   2. `cp` of the file to two directories plus `sync` (end-to-end verified
 *      commit to both targets, target >= 0.7x);
 * and studiod's peak RSS (VmHWM) with the whole file in flight (target < 250 MB).
 *
 * studiod runs as a real child process; the agent side is the real link client
 * and sync loop (agent/src/sync-*.ts) in this process, fed by a one-file queue
 * (the agent's LevelDB queue is not what is measured here).
 *
 * Options: --gb N (file size, default 4), --runs N (default 3; medians are printed),
 * --dir DIR (work dir on the disk to test),
 * --window-mb N (studio window; default the protocol's 16 MiB).
 */
import { spawn, execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as tlsConnect, createServer as tlsCreateServer } from 'node:tls';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { hashFile, generateAgentKeyPair } from '@studio321/protocol';
import { LinkClient } from '@studio321/agent/link';
import { saveIdentity } from '@studio321/agent/link';
import { syncUntilEmpty } from '@studio321/agent/link';
import type { SyncQueue } from '@studio321/agent/state';
import { controlRequest } from '@studio321/studiod';

const exec = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const STUDIOD = join(ROOT, 'studiod', 'dist', 'bin', 'studiod.js');
const MiB = 1024 * 1024;
const cpus = availableParallelism();

const { values } = parseArgs({
  options: {
    gb: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string' },
    'window-mb': { type: 'string' },
  },
});
const runs = Math.max(1, Number(values.runs));
const size = Math.round(Number(values.gb) * 1024 * MiB);

function mbps(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

async function makeFile(path: string): Promise<void> {
  const block = randomBytes(16 * MiB);
  const fh = await open(path, 'w');
  for (let off = 0; off < size; off += block.length) await fh.write(block, 0, Math.min(block.length, size - off), off);
  await fh.sync();
  await fh.close();
}

/** Raw TLS: a child process accepts and discards; this process streams the file. */
async function rawTls(file: string, keyPem: string, certPem: string): Promise<number> {
  const server = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    import { createServer } from 'node:tls';
    const s = createServer({ key: process.env.KEY, cert: process.env.CERT }, (c) => { let n = 0; c.on('data', (d) => { n += d.length; }); c.on('end', () => c.end(String(n))); });
    s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
  `,
    ],
    { env: { ...process.env, KEY: keyPem, CERT: certPem }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  void tlsCreateServer;
  const port = await new Promise<number>((r) =>
    server.stdout.once('data', (d: Buffer) => r(Number(d.toString().trim()))),
  );
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const sock = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const rs = createReadStream(file, { highWaterMark: MiB });
      rs.pipe(sock, { end: true });
    });
    sock.on('data', () => undefined);
    sock.on('end', () => resolve());
    sock.on('error', reject);
  });
  const ms = performance.now() - t0;
  server.kill('SIGKILL');
  return ms;
}

async function cpBoth(file: string, a: string, b: string): Promise<number> {
  await mkdir(a, { recursive: true });
  await mkdir(b, { recursive: true });
  const t0 = performance.now();
  await exec('cp', [file, join(a, 'x')]);
  await exec('cp', [file, join(b, 'x')]);
  await exec('sync');
  return performance.now() - t0;
}

/** CPU seconds (user + system) a process has used so far, from /proc (all its threads). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m === null ? 0 : Number(m[1]) * 1024;
}

interface RunResult {
  rawTlsMiBps: number;
  transferMiBps: number;
  cpBothSyncMiBps: number;
  e2eMiBps: number;
  transferRatio: number;
  e2eRatio: number;
  studiodPeakRssBytes: number;
  studiodCpuSec: number;
  agentCpuSec: number;
  load1m: number;
}

const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] ?? 0) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
};

/** One run in `dir` (fresh studiod state and targets): raw TLS, cp to both + sync, then the real sync. */
async function once(file: string, blake3: string, dir: string): Promise<RunResult> {
  await mkdir(dir);
  const load1m = loadavg()[0] ?? 0;
  // studiod
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
  const profile =
    process.env['BENCH_CPU_PROF'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', process.env['BENCH_CPU_PROF']];
  const studiod = spawn(process.execPath, [...profile, STUDIOD, '--config', join(dir, 'studiod.json')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    let log = '';
    const marks: Record<string, number> = {};
    studiod.stderr.setEncoding('utf8').on('data', (d: string) => {
      log += d;
      if (marks['committing'] === undefined && log.includes('"msg":"committing"'))
        marks['committing'] = performance.now();
      if (marks['committed'] === undefined && log.includes('"msg":"committed"')) marks['committed'] = performance.now();
    });
    const port = await new Promise<number>((resolve, reject) => {
      const tick = setInterval(() => {
        const line = log.split('\n').find((l) => l.includes('"msg":"listening"'));
        if (line !== undefined) {
          clearInterval(tick);
          resolve((JSON.parse(line) as { port: number }).port);
        }
        if (studiod.exitCode !== null) {
          clearInterval(tick);
          reject(new Error(log));
        }
      }, 20);
    });
    const keyPem = await readFile(join(state, 'tls', 'key.pem'), 'utf8');
    const certPem = await readFile(join(state, 'tls', 'cert.pem'), 'utf8');

    // pair an in-process agent
    const agentDir = join(dir, 'agent');
    const url = `wss://127.0.0.1:${port}/v1`;
    const { code } = (await controlRequest(join(state, 'control.sock'), 'pair')) as { code: string };
    const keys = generateAgentKeyPair();
    const link = new LinkClient({ url });
    await link.open();
    const paired = await link.pair(code, 'bench', keys.publicKeyDer);
    link.close();
    await saveIdentity(agentDir, {
      pairing: {
        url,
        fingerprint: paired.studioFingerprint,
        agentId: paired.agentId,
        agentName: 'bench',
        pairedAt: new Date().toISOString(),
      },
      privateKeyPem: keys.privateKeyPem,
    });

    // baselines (page cache warm for all three)
    const rawMs = await rawTls(file, keyPem, certPem);
    const cpMs = await cpBoth(file, join(dir, 'cpA'), join(dir, 'cpB'));
    await rm(join(dir, 'cpA'), { recursive: true });
    await rm(join(dir, 'cpB'), { recursive: true });
    await exec('sync');

    // the real thing
    let done = false;
    const queue: SyncQueue = {
      pendingForStudio: async () =>
        done
          ? []
          : [
              {
                blake3,
                size,
                storePath: file,
                names: [{ shoot: 'bench', card: 'CARD', path: 'DCIM/100BENCH/BIG.MOV', mtime: Date.now() }],
                copies: [
                  {
                    target: 'laptop',
                    device: 'bench',
                    media: 'ssd',
                    location: 'field',
                    offsite: false,
                    verified: true,
                  },
                ],
              },
            ],
      recordStudioReceipt: async () => {
        done = true;
      },
      // The file was hashed just above: a refusal here would be the link's fault, never the file's.
      checkStoreCopy: async () => undefined,
    };
    const studiodCpu0 = await cpuSeconds(studiod.pid ?? 0);
    const agentCpu0 = process.cpuUsage();
    const t0 = performance.now();
    const report = await syncUntilEmpty({ dataDir: agentDir, queue });
    const e2eMs = performance.now() - t0;
    const agentCpu = process.cpuUsage(agentCpu0);
    const studiodCpu = (await cpuSeconds(studiod.pid ?? 0)) - studiodCpu0;
    const transferMs = (marks['committing'] ?? performance.now()) - t0;
    const rss = await peakRss(studiod.pid ?? 0);
    if (report.receipts !== 1) throw new Error(`sync did not complete: ${JSON.stringify(report)}`);
    const raw = mbps(size, rawMs);
    const transfer = mbps(size, transferMs);
    const cp = mbps(size, cpMs);
    const e2e = mbps(size, e2eMs);
    return {
      rawTlsMiBps: raw,
      transferMiBps: transfer,
      cpBothSyncMiBps: cp,
      e2eMiBps: e2e,
      transferRatio: transfer / raw,
      e2eRatio: e2e / cp,
      studiodPeakRssBytes: rss,
      studiodCpuSec: studiodCpu,
      agentCpuSec: (agentCpu.user + agentCpu.system) / 1e6,
      load1m,
    };
  } finally {
    studiod.kill('SIGTERM');
    await new Promise<void>((r) => (studiod.exitCode !== null ? r() : studiod.once('exit', () => r())));
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(values.dir ?? tmpdir(), 'bench-sync-'));
  try {
    const file = join(base, 'source.bin');
    process.stdout.write(
      `bench:sync — ${(size / 1024 / MiB).toFixed(2)} GiB file in ${base}, ${runs} runs, ${cpus} cores\n`,
    );
    await makeFile(file);
    const { blake3 } = await hashFile(file);
    const results: RunResult[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await once(file, blake3, join(base, `run-${i}`));
      results.push(r);
      process.stdout.write(
        `run ${i + 1}/${runs} (load ${r.load1m.toFixed(2)}): raw TLS ${r.rawTlsMiBps.toFixed(0)} MiB/s, transfer ${r.transferMiBps.toFixed(0)} (${r.transferRatio.toFixed(2)}x), ` +
          `cp both + sync ${r.cpBothSyncMiBps.toFixed(0)}, verified commit e2e ${r.e2eMiBps.toFixed(0)} (${r.e2eRatio.toFixed(2)}x), ` +
          `studiod RSS ${(r.studiodPeakRssBytes / MiB).toFixed(0)} MiB, CPU studiod ${r.studiodCpuSec.toFixed(1)} s + agent ${r.agentCpuSec.toFixed(1)} s\n`,
      );
    }
    const m = (k: keyof RunResult): number => median(results.map((r) => r[k]));
    const peak = Math.max(...results.map((r) => r.studiodPeakRssBytes));
    const lines = [
      `medians of ${runs} runs:`,
      `raw TLS stream           ${m('rawTlsMiBps').toFixed(0)} MiB/s`,
      `agent → studiod transfer ${m('transferMiBps').toFixed(0)} MiB/s  (median ratio ${m('transferRatio').toFixed(2)}x raw TLS; target >= 0.7x)`,
      `cp to two dirs + sync    ${m('cpBothSyncMiBps').toFixed(0)} MiB/s`,
      `verified commit e2e      ${m('e2eMiBps').toFixed(0)} MiB/s  (median ratio ${m('e2eRatio').toFixed(2)}x cp-both+sync; target >= 0.7x)`,
      `studiod peak RSS         ${(peak / MiB).toFixed(0)} MiB with a ${(size / 1024 / MiB).toFixed(2)} GiB file in flight (target < 250 MiB)`,
      `CPU during the sync      studiod ${m('studiodCpuSec').toFixed(1)} s, agent ${m('agentCpuSec').toFixed(1)} s`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stdout.write(
      `${JSON.stringify({
        bytes: size,
        runs: results,
        median: { transferRatio: m('transferRatio'), e2eRatio: m('e2eRatio') },
        studiodPeakRssBytes: peak,
      })}\n`,
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:sync failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
