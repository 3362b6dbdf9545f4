// SIGTERM during an offload, with the real `field-agent run` and a real card:
// a tmpfs with a DCIM layout, mounted in a PRIVATE mount namespace (unshare -m)
// so that only this agent sees it (other tests' agents watch every volume).
// The test follows the agent's own status page (SSE) and sends SIGTERM once
// the first file is verified and the rest is still copying. Then: exit 0, the
// stop was logged as a park (AGENT_ABORTED), no temp file and no partial file
// in the store, every stored file matches the card byte for byte, the card is
// not safe to format. A restart with the card back resumes: only the files not
// yet verified are copied, and everything ends verified.
import t from 'tap';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  dcfFiles,
  ingest,
  listFiles,
  makeAgent,
  makeCard,
  pairAgent,
  spawnPersistentSync,
  run,
  sha256Hex,
  startStudiod,
  tempDir,
  waitFor,
  AGENT_BIN,
} from '../../lib/studio-harness.js';

const agentBin = fileURLToPath(new URL('../../../agent/dist/bin/field-agent.js', import.meta.url));

function canUnshare(): Promise<boolean> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return Promise.resolve(false);
  return new Promise((resolve) =>
    execFile('unshare', ['-m', '--propagation', 'private', 'true'], (err) => resolve(!err)),
  );
}

interface Run {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  waitLog: (pred: (l: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
}

/** field-agent run inside its own mount namespace, with `src` copied onto a fresh tmpfs card at `card`. */
function startAgentWithCard(src: string, card: string, dataDir: string, config: string): Run {
  const script =
    'mount -t tmpfs -o size=300m tmpfs "$1" && cp -a "$2"/. "$1"/ && exec "$3" "$4" run --data-dir "$5" --config "$6"';
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['DISPLAY'];
  delete env['WAYLAND_DISPLAY'];
  const child = spawn(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      script,
      'sh',
      card,
      src,
      process.execPath,
      agentBin,
      dataDir,
      config,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env },
  );
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] =
    [];
  let buf = '';
  child.stderr!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        rec = { raw: line };
      }
      lines.push(rec);
      for (const w of [...waiters])
        if (w.pred(rec)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(rec);
        }
    }
  });
  const waitLog = (pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      waiters.push({ pred, resolve });
      child.once('exit', (code) =>
        reject(
          new Error(`agent exited ${code} while waiting; log:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`),
        ),
      );
    });
  };
  return { child, lines, waitLog };
}

/** Follow the agent's status page (SSE) until `pred` holds for a snapshot. */
async function followStatus(
  dataDir: string,
  pred: (s: { cards: { files: number; verifiedFiles: number; id: string }[] }) => boolean,
): Promise<void> {
  // The agent writes the page's URL once the page listens, which may be after its first card is seen.
  const text = await waitFor(
    () => readFile(join(dataDir, 'status-url'), 'utf8').catch(() => undefined),
    'the status page URL',
  );
  const url = new URL(text.trim());
  const token = url.searchParams.get('token')!;
  const res = await fetch(`${url.origin}/events`, { headers: { Authorization: `Bearer ${token}` } });
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('status stream ended');
      buf += dec.decode(value, { stream: true });
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = ev.split('\n').find((l) => l.startsWith('data: '));
        if (data && pred(JSON.parse(data.slice(6)) as never)) return;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

async function exitOf(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  return code ?? signal;
}

async function walk(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true }).catch(() => [])) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(dir, r)));
    else out.push(r);
  }
  return out;
}

const sha = sha256Hex;

t.test(
  'SIGTERM during an offload parks it; the restart resumes without recopying',
  { skip: !(await canUnshare()) && 'needs root and unshare -m (private mount namespace for the card)' },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'sigterm-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const src = join(dir, 'card-src');
    const card = join(dir, 'card');
    const dataDir = join(dir, 'data');
    const config = join(dir, 'field-agent.json');
    await mkdir(join(src, 'DCIM', '100CANON'), { recursive: true });
    await mkdir(card);
    // A small first file (verified quickly), then large ones that keep the offload busy.
    const sources = new Map<string, string>();
    // Enough bytes after the first file that the offload is still busy when SIGTERM lands, however fast the disk.
    const sizes = [64 * 1024, 48e6, 48e6, 48e6, 48e6, 48e6, 48e6];
    for (const [i, size] of sizes.entries()) {
      const name = `DCIM/100CANON/IMG_${String(i + 1).padStart(4, '0')}.CR3`;
      const data = randomBytes(size);
      await writeFile(join(src, name), data);
      sources.set(name, sha(data));
    }
    await writeFile(
      config,
      JSON.stringify({ statusPort: 0, tray: false, pollIntervalMs: 100, store: join(dataDir, 'store') }),
    );

    // 1. Offload starts; SIGTERM once 1 <= verified < all.
    const a = startAgentWithCard(src, card, dataDir, config);
    t.teardown(() => {
      a.child.kill('SIGKILL');
    });
    // Only this test's card: other cards mounted on the machine are seen (and offloaded) too.
    const inserted = await a.waitLog((l) => l['event'] === 'card-inserted' && l['mountPoint'] === card);
    const cardId = String(inserted['card']);
    await followStatus(dataDir, (s) =>
      s.cards.some((c) => c.id === cardId && c.verifiedFiles >= 1 && c.verifiedFiles < c.files),
    );
    a.child.kill('SIGTERM');
    t.equal(await exitOf(a.child), 0, 'clean exit on SIGTERM');
    const stopped = a.lines.find((l) => l['event'] === 'card-stopped' && l['card'] === cardId);
    t.equal(stopped?.['code'], 'AGENT_ABORTED', 'the offload was parked mid-card (not finished before the signal)');
    t.ok(
      a.lines.some((l) => l['event'] === 'shutdown-done' && l['clean'] === true),
      'every closer ran',
    );

    const storeFiles = await walk(join(dataDir, 'store'));
    t.same(
      storeFiles.filter((f) => f.endsWith('.s321tmp')),
      [],
      'no temp file left',
    );
    const stored = storeFiles.filter((f) => f.includes(cardId) && f.includes('IMG_'));
    t.ok(
      stored.length >= 1 && stored.length < sizes.length,
      `${stored.length} of ${sizes.length} files stored before the stop`,
    );
    for (const f of stored) {
      const name = Object.keys(Object.fromEntries(sources)).find((n) => f.endsWith(n.split('/').pop()!))!;
      t.equal(
        sha(await readFile(join(dataDir, 'store', f))),
        sources.get(name),
        `${f}: complete and identical to the card (nothing partial under a final name)`,
      );
    }
    const st1 = await statusJson(dataDir, config);
    const c1 = st1.cards.find((c) => c.id === cardId)!;
    t.equal(c1.safeToFormat.safe, false, 'not safe to format after an interrupted offload');
    t.ok(c1.verifiedFiles >= 1 && c1.verifiedFiles < sizes.length);

    // 2. Restart with the card back: resumes, copies only what is missing.
    const b = startAgentWithCard(src, card, dataDir, config);
    t.teardown(() => {
      b.child.kill('SIGKILL');
    });
    const again = await b.waitLog((l) => l['event'] === 'card-inserted' && l['mountPoint'] === card);
    t.equal(again['card'], cardId, 'the same card is recognised');
    const done = await b.waitLog(
      (l) =>
        (l['event'] === 'card-done' || l['event'] === 'card-stopped' || l['event'] === 'card-failed') &&
        (l['card'] === cardId || l['mountPoint'] === card),
    );
    t.equal(done['event'], 'card-done', String(done['msg']));
    t.match(
      String(done['msg']),
      new RegExp(`${c1.verifiedFiles} verified earlier`),
      'files verified before the stop were not copied again',
    );
    b.child.kill('SIGTERM');
    t.equal(await exitOf(b.child), 0);
    const st2 = await statusJson(dataDir, config);
    const c2 = st2.cards.find((c) => c.id === cardId)!;
    t.equal(c2.verifiedFiles, sizes.length, 'every file verified after the resume');
    const finalFiles = (await walk(join(dataDir, 'store'))).filter((f) => f.includes(cardId) && f.includes('IMG_'));
    t.equal(finalFiles.length, sizes.length, 'each file stored once');
    for (const f of finalFiles) {
      const name = [...sources.keys()].find((n) => f.endsWith(n.split('/').pop()!))!;
      t.equal(sha(await readFile(join(dataDir, 'store', f))), sources.get(name), `${f} identical to the card`);
    }
  },
);

interface StatusCard {
  id: string;
  verifiedFiles: number;
  files: number;
  safeToFormat: { safe: boolean };
}
function statusJson(dataDir: string, config: string): Promise<{ cards: StatusCard[] }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [agentBin, 'status', '--json', '--data-dir', dataDir, '--config', config],
      (err, stdout, stderr) => {
        if (err) reject(new Error(`status failed: ${stderr}`));
        else resolve(JSON.parse(stdout) as { cards: StatusCard[] });
      },
    );
  });
}

// SIGTERM during a commit, with the real studiod and a real agent sync
// (test/lib/studio-harness.ts): studiod is stopped with SIGTERM right after it
// logs "committing", twice. Each time it exits 0 after its closers ran,
// leaves no temp file and no partial file under a final name; after the last
// restart the sync completes, every file is identical on both targets and the
// catalogue counts each asset once.
t.test('SIGTERM during a studiod commit: clean stop, nothing partial, restart completes', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const cardDir = join(await tempDir(t, 'card-'), 'CARD');
  const files = dcfFiles(24, (i) => 200_000 + ((i * 7919) % 11) * 150_000);
  await makeCard(cardDir, files);
  await ingest(agent, cardDir, 'sigterm', 'CARD1');
  const bySha = new Set<string>();
  for (const f of files) bySha.add(sha(await readFile(join(cardDir, f.path))));

  const { child, exited } = spawnPersistentSync(t, agent);

  let stops = 0;
  for (let i = 0; i < 2; i++) {
    const before = (studio.log.match(/"msg":"committing"/g) ?? []).length;
    const hit = await waitFor(
      () => {
        if ((studio.log.match(/"msg":"committing"/g) ?? []).length > before) return 'stop';
        if (child.exitCode !== null) return 'done';
        return undefined;
      },
      'a commit to start',
      60_000,
    );
    if (hit === 'done') break;
    const proc = studio.proc!;
    await studio.kill('SIGTERM');
    stops++;
    t.equal(proc.exitCode, 0, `stop ${stops}: studiod exits 0 on SIGTERM`);
    t.match(studio.log, /"event":"shutdown-done","clean":true/, `stop ${stops}: every closer ran`);
    for (const root of [studio.dirs.mirror, studio.dirs.raid]) {
      const all = await listFiles(root);
      t.same(
        all.filter((p) => p.endsWith('.s321tmp')),
        [],
        `stop ${stops}: no temp file left in ${root.endsWith('mirror') ? 'mirror' : 'raid'} by a clean stop`,
      );
      let partial = 0;
      for (const rel of all) if (!bySha.has(sha(await readFile(join(root, rel))))) partial++;
      t.equal(partial, 0, `stop ${stops}: no partial file under a final name`);
    }
    await studio.restart();
  }
  t.ok(stops >= 1, `studiod stopped mid-commit ${stops} times`);
  await exited;
  const final = await run(AGENT_BIN, ['sync', '--json', '--data-dir', agent.dataDir, '--backoff-ms', '10']);
  t.equal(final.code, 0, 'the sync completes after the restarts');
  const mirror = await listFiles(studio.dirs.mirror);
  t.same(await listFiles(studio.dirs.raid), mirror, 'same tree on both targets');
  t.equal(mirror.length, files.length, 'each file stored exactly once');
  for (const rel of mirror) {
    const m = sha(await readFile(join(studio.dirs.mirror, rel)));
    t.ok(bySha.has(m) && m === sha(await readFile(join(studio.dirs.raid, rel))), `${rel} identical on both targets`);
  }
  const st = JSON.parse((await studio.ctl(['--json', 'status'])).stdout) as { counters: { assets: number } };
  t.equal(st.counters.assets, files.length, 'catalogue counts each asset once');
});
