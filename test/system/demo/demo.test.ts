/**
 * `npm run demo` as a user runs it (a real child process), with smaller RAW
 * files so it is quick: every image ends 3-2-1 compliant, it runs twice in a
 * row in the same folder (the second time with --stay), and everything it started is gone when it exits —
 * also when it is interrupted with Ctrl-C (SIGINT) half-way. With --stay the
 * studio stays up after the demo, the printed `ready:` line works as given, and
 * Ctrl-C then stops everything with exit 0.
 */
import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const DEMO = resolve(import.meta.dirname, '..', '..', '..', 'scripts', 'dist', 'demo.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

function runDemo(
  dir: string,
  onLine?: (line: string, kill: (s: NodeJS.Signals) => void) => void,
  extra: string[] = [],
): Promise<Run> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [DEMO, '--dir', dir, '--raw-size', String(192 * 1024), ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) onLine?.(l, (s) => child.kill(s));
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.once('error', fail);
    child.once('close', (code, signal) => ok({ code, signal, out }));
  });
}

/** true when something accepts connections on host:port (or the Unix socket path). */
function listening(target: { port: number } | { path: string }): Promise<boolean> {
  return new Promise((ok) => {
    const s = 'port' in target ? connect(target.port, '127.0.0.1') : connect(target.path);
    s.once('connect', () => {
      s.destroy();
      ok(true);
    });
    s.once('error', () => ok(false));
  });
}

function ports(out: string): { studiod: number; s3: number } {
  const studiod = Number(/wss:\/\/127\.0\.0\.1:(\d+)\/v1/.exec(out)?.[1] ?? NaN);
  const s3 = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1] ?? NaN);
  return { studiod, s3 };
}

const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const runDir = join(dir, 'demo-run');

/** What every complete demo run prints: the eight steps and every image 3-2-1 compliant. */
function assertCompliant(t: Test, r: Run): void {
  for (let step = 1; step <= 8; step++) t.match(r.out, `[${step}/8]`, `step ${step} printed`);
  const m = /Demo done in [\d.]+ s: (\d+) of (\d+) images are 3-2-1 compliant/.exec(r.out);
  t.ok(m, 'final line says how many are compliant');
  t.equal(m?.[1], m?.[2], 'all of them');
  t.ok(Number(m?.[2]) >= 30, 'the sample set has RAW+JPEG pairs, sidecars, video, dual-slot and clashing names');
  t.match(r.out, /every asset is 3-2-1 safe/, 'studioctl status output shown');
}

async function assertStopped(t: Test, r: Run): Promise<void> {
  const p = ports(r.out);
  t.notOk(await listening({ port: p.studiod }), 'studiod stopped');
  t.notOk(await listening({ port: p.s3 }), 's3rver stopped');
  t.notOk(await listening({ path: join(runDir, 'studio', 'state', 'control.sock') }), 'control socket gone');
}

t.test('run 1: every image 3-2-1 compliant, everything stopped afterwards', async (t) => {
  const r = await runDemo(runDir);
  t.equal(r.code, 0, `exit 0\n${r.code === 0 ? '' : r.out}`);
  assertCompliant(t, r);
  await assertStopped(t, r);
});

t.test(
  'run 2 in the same folder, with --stay: compliant again, the studio stays up with a ready line that works, until Ctrl-C',
  async (t) => {
    let ready: string | undefined;
    let status: { code: number; stdout: string } | undefined;
    const r = await runDemo(
      runDir,
      (line, kill) => {
        const m = /^ready: studioctl --config (\/\S+)$/.exec(line);
        if (m === null || ready !== undefined) return;
        const config = m[1] ?? '';
        ready = config;
        // Paste the line as a user would (studioctl from node_modules/.bin, as `npx studioctl` runs it).
        const studioctl = resolve(import.meta.dirname, '..', '..', '..', 'studiod', 'dist', 'bin', 'studioctl.js');
        promisify(execFile)(process.execPath, [studioctl, '--config', config, 'status'])
          .then(
            (o) => ({ code: 0, stdout: o.stdout }),
            (e: { code?: number; stdout?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '' }),
          )
          .then((s) => {
            status = s;
            kill('SIGINT');
          });
      },
      ['--stay'],
    );
    assertCompliant(t, r);
    t.ok(ready, `a ready line with an absolute config path\n${ready === undefined ? r.out : ''}`);
    t.equal(status?.code, 0, 'studioctl --config <that path> status answers while the demo stays');
    t.match(status?.stdout ?? '', /every asset is 3-2-1 safe/, 'against the demo studio');
    t.equal(r.code, 0, 'Ctrl-C ends the stay with exit 0');
    await assertStopped(t, r);
  },
);

t.test('Ctrl-C half-way stops everything the demo started', async (t) => {
  let sent = false;
  const r = await runDemo(runDir, (line, kill) => {
    if (!sent && line.startsWith('[5/8]')) {
      sent = true;
      kill('SIGINT');
    }
  });
  t.ok(sent, 'interrupted during the offload step');
  t.equal(r.code, 130, 'exit status 130 (interrupted)');
  t.match(r.out, /SIGINT: stopping everything/);
  const p = ports(r.out);
  t.notOk(await listening({ port: p.studiod }), 'studiod stopped');
  t.notOk(await listening({ port: p.s3 }), 's3rver stopped');
});
