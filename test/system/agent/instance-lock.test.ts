// Single-instance lock of `field-agent run`: two real child processes on one
// data directory; the second is refused with AGENT_ALREADY_RUNNING naming the
// first's pid; after SIGKILL of the holder the lock is taken over (no stale lock).
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InstanceLock } from '@studio321/agent';

const fixture = fileURLToPath(new URL('../../lib/hold-instance-lock.mjs', import.meta.url));

interface Holder {
  child: ChildProcess;
  first: Record<string, unknown>;
}

async function startHolder(dataDir: string): Promise<Holder> {
  const child = spawn(process.execPath, [fixture, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
    });
    child.once('exit', (code) => reject(new Error(`fixture exited ${code} before printing`)));
  });
  return { child, first };
}

async function exitCode(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  return code ?? signal;
}

t.test('a second agent on the same data dir is refused, naming the first pid', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lock-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));

  const a = await startHolder(dataDir);
  t.teardown(() => {
    a.child.kill('SIGKILL');
  });
  t.equal(a.first['locked'], a.child.pid, 'first agent holds the lock');
  const pidFile = JSON.parse(await readFile(join(dataDir, 'field-agent.pid'), 'utf8')) as { pid: number };
  t.equal(pidFile.pid, a.child.pid, 'pid file names the holder');

  const b = await startHolder(dataDir);
  t.equal(b.first['code'], 'AGENT_ALREADY_RUNNING');
  t.match(String(b.first['message']), new RegExp(`already running as process ${a.child.pid}\\b`));
  t.equal(await exitCode(b.child), 3, 'second agent exits non-zero');
  const after = JSON.parse(await readFile(join(dataDir, 'field-agent.pid'), 'utf8')) as { pid: number };
  t.equal(after.pid, a.child.pid, 'the refused agent did not touch the pid file');

  // In-process too: the lock is exclusive against this process.
  const mine = new InstanceLock(dataDir);
  await t.rejects(mine.open(), { code: 'AGENT_ALREADY_RUNNING' });
  t.equal(mine.state, 'closed');

  a.child.kill('SIGTERM');
  t.equal(await exitCode(a.child), 0, 'holder released cleanly on SIGTERM');
  await t.rejects(readFile(join(dataDir, 'field-agent.pid')), { code: 'ENOENT' }, 'clean release removes the pid file');
});

t.test('a lock left by a SIGKILLed agent is taken over', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lock-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));

  const a = await startHolder(dataDir);
  t.equal(a.first['locked'], a.child.pid);
  a.child.kill('SIGKILL');
  t.equal(await exitCode(a.child), 'SIGKILL');
  const stale = JSON.parse(await readFile(join(dataDir, 'field-agent.pid'), 'utf8')) as { pid: number };
  t.equal(stale.pid, a.child.pid, 'the dead agent left its pid file behind');

  const b = await startHolder(dataDir);
  t.teardown(() => {
    b.child.kill('SIGKILL');
  });
  t.equal(b.first['locked'], b.child.pid, 'a new agent takes the lock over');
  const now = JSON.parse(await readFile(join(dataDir, 'field-agent.pid'), 'utf8')) as { pid: number };
  t.equal(now.pid, b.child.pid, 'pid file names the new holder');
  b.child.kill('SIGTERM');
  t.equal(await exitCode(b.child), 0);

  // And this process can now take it, then release it for the next.
  const mine = new InstanceLock(dataDir);
  await mine.open();
  t.equal(mine.state, 'open');
  await mine.close();
  const again = new InstanceLock(dataDir);
  await again.open();
  await again.close();
});

t.test('an unwritable data dir gives AGENT_LOCK_FAILED, not a crash', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'lock-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(base, 'file'), 'not a dir');
  const lock = new InstanceLock(join(base, 'file', 'data'));
  await t.rejects(lock.open(), { code: 'AGENT_LOCK_FAILED' });
  t.equal(lock.state, 'closed');
});

// The real `field-agent run`: the second one exits 3 with AGENT_ALREADY_RUNNING
// naming the first's pid; the first serves its status page (token-protected)
// and releases everything on SIGTERM; after SIGKILL a new one takes over.
const agentBin = fileURLToPath(new URL('../../../agent/dist/bin/field-agent.js', import.meta.url));

interface Agent {
  child: ChildProcess;
  stderr: () => string;
  started: Promise<void>;
}
function startAgent(dataDir: string, config: string): Agent {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['DISPLAY'];
  delete env['WAYLAND_DISPLAY'];
  const child = spawn(process.execPath, [agentBin, 'run', '--data-dir', dataDir, '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  let err = '';
  const started = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      if (/"event":"started"/.test(err)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`agent exited ${code}: ${err}`)));
  });
  started.catch(() => undefined);
  return { child, stderr: () => err, started };
}

t.test('field-agent run: single instance, status page wired, clean SIGTERM, takeover after SIGKILL', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'agent-run-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const config = join(dir, 'field-agent.json');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(config, JSON.stringify({ statusPort: 0, tray: false, watchVolumes: false }));

  const a = startAgent(dataDir, config);
  t.teardown(() => {
    a.child.kill('SIGKILL');
  });
  await a.started;

  const b = startAgent(dataDir, config);
  t.equal(await exitCode(b.child), 3, 'the second agent exits 3');
  t.match(b.stderr(), new RegExp(`AGENT_ALREADY_RUNNING: field-agent is already running as process ${a.child.pid}\\b`));

  // The first one serves its status page; the address with the token is in status-url.
  const url = (await readFile(join(dataDir, 'status-url'), 'utf8')).trim();
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{40,}$/);
  const { origin, searchParams } = new URL(url);
  const denied = await fetch(`${origin}/api/status`);
  t.equal(denied.status, 401, 'no token, no data');
  const ok = await fetch(`${origin}/api/status`, { headers: { Authorization: `Bearer ${searchParams.get('token')}` } });
  t.equal(ok.status, 200);
  t.match(await ok.json(), { cards: [], queue: { files: 0, bytes: 0 }, link: { state: 'offline' } });

  a.child.kill('SIGTERM');
  t.equal(await exitCode(a.child), 0, 'SIGTERM: clean exit 0');
  await t.rejects(readFile(join(dataDir, 'field-agent.pid')), { code: 'ENOENT' }, 'pid file removed');
  await t.rejects(readFile(join(dataDir, 'status-url')), { code: 'ENOENT' }, 'status-url removed');
  t.match(a.stderr(), /"event":"shutdown-done","clean":true/);

  const c = startAgent(dataDir, config);
  t.teardown(() => {
    c.child.kill('SIGKILL');
  });
  await c.started;
  c.child.kill('SIGKILL');
  await exitCode(c.child);
  const d = startAgent(dataDir, config);
  t.teardown(() => {
    d.child.kill('SIGKILL');
  });
  await d.started;
  const holder = JSON.parse(await readFile(join(dataDir, 'field-agent.pid'), 'utf8')) as { pid: number };
  t.equal(holder.pid, d.child.pid, 'after SIGKILL the next agent takes the lock over');
  d.child.kill('SIGTERM');
  t.equal(await exitCode(d.child), 0);
});
