/**
 * `npm run bench:status`: how fast does `studioctl status` answer on a
 * catalogue of 1,000,000 assets?
 *
 *   node scripts/dist/bench-status.js [--assets N] [--runs R] [--dir DIR] [--keep] [--studiod-env 'K=V …' (on top of the service unit's; none: not the unit's)]
 *
 * 1. fills a catalogue in-process with the catalogue API (`importAssets`,
 *    batches of 5,000; the ledger hook keeps its counters in the same batches):
 *    every asset has a name, mirror + RAID copies; 99 % also have both cloud
 *    copies (3-2-1 compliant), 1 % lack them (not compliant, "missing" rows);
 * 2. starts a real studiod child process on it (two cloud targets configured,
 *    pointing at a closed loopback port — nothing is queued);
 * 3. times the control-socket round trip of `status` (median and max of R
 *    runs; target < 200 ms), one `studioctl status` CLI run for reference;
 * 4. moves the RAID's target marker away and back, timing the first `status` after each (it
 *    answers within 2 s, with the ledger's recount's progress while that runs), the recount
 *    until a status shows it ended, and studiod's CPU for it, and reports
 *    studiod's peak RSS (VmHWM).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nameKey } from '@studio321/protocol';
import { Catalogue, controlRequest, type CommitRecord, type CopyRecord } from '@studio321/studiod';
import { checkTarget, TARGET_MARKER } from '@studio321/studiod/commit';
import { Ledger } from '@studio321/studiod/ledger';
import { BINS } from './lib/demo-run.js';
import { studiodEnv } from './lib/studiod-env.js';

const BATCH = 5000;
const CLOUD = ['cloud-east', 'cloud-west'] as const;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      assets: { type: 'string', default: '1000000' },
      runs: { type: 'string', default: '15' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'studiod-env': { type: 'string' },
    },
  });
  const total = Number(values.assets);
  const runs = Number(values.runs);
  const dir = values.dir ?? join(tmpdir(), `bench-status-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  const paths = {
    mirror: join(dir, 'mirror'),
    raid: join(dir, 'raid'),
    state: join(dir, 'state'),
    config: join(dir, 'studiod.json'),
  };
  for (const p of [paths.mirror, paths.raid, paths.state]) await mkdir(p, { recursive: true });
  const cloud = CLOUD.map((name, i) => ({
    name,
    endpoint: 'http://127.0.0.1:9',
    region: 'us-east-1',
    bucket: name,
    accessKeyId: 'BENCH',
    secretAccessKey: 'BENCH',
    storageClass: i === 0 ? 'STANDARD' : 'DEEP_ARCHIVE',
    media: i === 0 ? 'cloud-ssd' : 'tape',
    location: name,
    forcePathStyle: true,
  }));
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    stateDir: paths.state,
    log: { level: 'info' },
    targets: {
      mirror: { root: paths.mirror, media: 'hdd', location: 'studio', device: 'mirror-1' },
      raid: { root: paths.raid, media: 'raid-hdd', location: 'studio', device: 'raid-1' },
    },
    cloud,
    policy: { copies: 3, media: 2, offsite: 1 },
  };
  await writeFile(paths.config, JSON.stringify(config, null, 2));

  // 1. Fill.
  const t0 = performance.now();
  const catalogue = new Catalogue(join(paths.state, 'catalogue'));
  await catalogue.open();
  const ledger = new Ledger({ catalogue, policy: config.policy, targets: ['mirror', 'raid', ...CLOUD] });
  await ledger.open();
  const base = Date.parse('2026-11-26T09:00:00Z');
  for (let start = 0; start < total; start += BATCH) {
    const recs: CommitRecord[] = [];
    for (let i = start; i < Math.min(total, start + BATCH); i++) {
      const hash = createHash('sha256').update(`asset ${i}`).digest('hex');
      const size = 20_000_000 + (i % 10_000) * 1000;
      const committedAt = base + i * 1000;
      const card = `CARD-${Math.floor(i / 2000)}`;
      const path = `DCIM/${100 + Math.floor((i % 2000) / 999)}CANON/IMG_${String((i % 9999) + 1).padStart(4, '0')}.CR3`;
      const rel = `2026-11-26/bench/${card}/${path}`;
      const copy = (
        target: string,
        kind: CopyRecord['kind'],
        media: string,
        location: string,
        offsite: boolean,
      ): CopyRecord => ({
        hash,
        target,
        kind,
        path: kind === 'cloud' ? `blake3/${hash.slice(0, 2)}/${hash}` : rel,
        size,
        device: kind === 'cloud' ? `cloud:${target}` : `${target}-1`,
        media,
        location,
        offsite,
        method: 'readback-blake3',
        verifiedAt: committedAt,
      });
      const copies = [
        copy('mirror', 'studio', 'hdd', 'studio', false),
        copy('raid', 'studio', 'raid-hdd', 'studio', false),
      ];
      if (i % 100 !== 0)
        copies.push(
          copy('cloud-east', 'cloud', 'cloud-ssd', 'cloud-east', true),
          copy('cloud-west', 'cloud', 'tape', 'cloud-west', true),
        );
      recs.push({
        asset: { hash, size, committedAt },
        names: [
          {
            key: nameKey(`bench/${card}/${path}`),
            value: { hash, shoot: 'bench', card, path, mtime: committedAt, agentId: 'agt_bench', seenAt: committedAt },
          },
        ],
        copies,
        storedPaths: [{ key: nameKey(rel), value: { hash, path: rel } }],
      });
    }
    await catalogue.importAssets(recs);
    if ((start / BATCH) % 20 === 0)
      process.stdout.write(
        `\r  filled ${(start + recs.length).toLocaleString('en-US')} / ${total.toLocaleString('en-US')}`,
      );
  }
  const c = ledger.counters();
  await catalogue.close();
  const fillS = (performance.now() - t0) / 1000;
  process.stdout.write(
    `\rfilled ${c.assets.toLocaleString('en-US')} assets in ${fillS.toFixed(1)} s (${c.compliant.toLocaleString('en-US')} compliant, ${c.notCompliant.toLocaleString('en-US')} not)\n`,
  );

  // The disks' target markers, written as the first commit to each writes them (checkTarget):
  // without them the catalogue's copies on the targets would make both unavailable (an empty
  // mount point) and studiod's start would recount the ledger.
  for (const t of ['mirror', 'raid'] as const)
    await checkTarget(t, { ...config.targets[t], requireExistingRoot: true }, false);

  // 2. studiod on it.
  const child = spawn(process.execPath, [BINS.studiod, '--config', paths.config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...studiodEnv(values['studiod-env']) },
  });
  const stopStudiod = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  process.once('SIGINT', () => {
    void stopStudiod().finally(() => process.exit(130));
  });
  try {
    let log = '';
    const startT = performance.now();
    await new Promise<void>((ok, fail) => {
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        log += d;
        if (log.includes('"msg":"listening"')) ok();
      });
      child.once('exit', (code) => fail(new Error(`studiod exited ${code}: ${log}`)));
    });
    const startS = (performance.now() - startT) / 1000;
    const socket = join(paths.state, 'control.sock');

    // 3. Time it.
    const times: number[] = [];
    let last: { ledger: { assets: number; compliant: number | null }; builtInMs: number } | undefined;
    for (let i = 0; i < runs + 2; i++) {
      const t = performance.now();
      last = (await controlRequest(socket, 'status')) as typeof last;
      if (i >= 2) times.push(performance.now() - t); // two warm-up runs
    }
    const cliT = performance.now();
    const cli = await new Promise<number | null>((ok) =>
      spawn(process.execPath, [BINS.studioctl, '--socket', socket, 'status'], { stdio: 'ignore' }).once('exit', ok),
    );
    const cliMs = performance.now() - cliT;
    // 4. The RAID disk goes away, then comes back: each time the ledger recounts every asset
    // (Ledger.setUnavailable; docs/design.md, Ledger invariant 3). The first status after it
    // answers within RECOUNT_WAIT_MS with the recount's progress; status is then asked every
    // half second until the recount has ended.
    const cpuOf = async (): Promise<number> => {
      const f = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
      return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks of 10 ms
    };
    const marker = join(paths.raid, TARGET_MARKER);
    const recounts: string[] = [];
    type Recounting = typeof last & { recount: { phase: string; done: number; total: number } | null };
    for (const [what, move] of [
      ['RAID disk gone', () => rename(marker, `${marker}.away`)],
      ['RAID disk back', () => rename(`${marker}.away`, marker)],
    ] as const) {
      await move();
      const cpu0 = await cpuOf();
      const t = performance.now();
      let r = (await controlRequest(socket, 'status')) as Recounting;
      const firstMs = performance.now() - t;
      const first =
        r?.recount === null
          ? 'the verdicts'
          : `recounting (${r?.recount.phase} ${r?.recount.done}/${r?.recount.total})`;
      let polls = 1;
      while (r?.recount !== null) {
        await new Promise((ok) => setTimeout(ok, 500));
        r = (await controlRequest(socket, 'status')) as Recounting;
        polls++;
      }
      recounts.push(
        `${what}: first status in ${(firstMs / 1000).toFixed(1)} s with ${first}; recount ended after ${((performance.now() - t) / 1000).toFixed(1)} s (${polls} status), studiod ${((await cpuOf()) - cpu0).toFixed(1)} CPU-s (${r?.ledger.compliant?.toLocaleString('en-US')} compliant)`,
      );
    }
    const statusFile = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(statusFile)?.[1];
    const med = median(times);
    process.stdout.write(
      `${[
        `studiod started on the catalogue in ${startS.toFixed(1)} s`,
        `status on ${last?.ledger.assets.toLocaleString('en-US')} assets (${last?.ledger.compliant?.toLocaleString('en-US')} compliant): ` +
          `median ${med.toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms over ${runs} control-socket round trips ` +
          `(report built in ${last?.builtInMs} ms inside studiod) — target < 200 ms: ${med < 200 ? 'MET' : 'NOT MET'}`,
        `studioctl status (whole CLI process, node start included): ${cliMs.toFixed(0)} ms, exit ${cli}`,
        ...recounts,
        `studiod peak RSS (VmHWM): ${hwm === undefined ? 'n/a' : `${(Number(hwm) / 1024).toFixed(0)} MiB`}; this process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
      ].join('\n')}\n`,
    );
    if (med >= 200) process.exitCode = 1;
  } finally {
    await stopStudiod();
    if (values.keep) process.stdout.write(`catalogue kept in ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-status: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
