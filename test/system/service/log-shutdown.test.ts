// protocol/src/log.ts (JSON lines, error codes, lastErrors ring) and
// protocol/src/shutdown.ts (closers newest first, once, timeout, exit codes)
// with real child processes and real signals.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { CodedError, ConfigError, createLogger, ErrorRing, ShutdownController } from '@studio321/protocol';

t.test('logger: one JSON line per record, level filter, errors with code into the ring', async (t) => {
  const lines: string[] = [];
  const ring = new ErrorRing(2);
  let changes = 0;
  ring.on('change', () => changes++);
  const log = createLogger({
    name: 'studiod',
    level: 'info',
    stream: { write: (l: string) => lines.push(l) },
    lastErrors: ring,
    now: () => new Date('2026-11-26T10:00:00Z'),
  });
  log.debug({ event: 'noise' }, 'hidden');
  log.info({ event: 'started', port: 7321 }, 'listening');
  const cause = Object.assign(new Error('no space'), { code: 'ENOSPC' });
  log.error(
    {
      event: 'commit-failed',
      err: new CodedError('STUDIO_TARGET_FULL', 'raid is full. Free space.', { cause, detail: { target: 'raid' } }),
    },
    'commit failed',
  );
  log.child({ session: 's1' }).warn({ event: 'slow', code: 'STUDIO_SLOW' }, 'slow agent');
  log.warn({ event: 'no-code' }, 'a warning without a code stays out of the ring');
  t.equal(lines.length, 4, 'debug filtered at info');
  for (const l of lines) t.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'), 'one line each');
  const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(recs[0], {
    time: '2026-11-26T10:00:00.000Z',
    level: 'info',
    name: 'studiod',
    msg: 'listening',
    event: 'started',
    port: 7321,
  });
  t.match(recs[1], {
    level: 'error',
    code: 'STUDIO_TARGET_FULL',
    retryable: false,
    detail: { target: 'raid' },
    err: { name: 'CodedError', message: 'raid is full. Free space.', cause: { code: 'ENOSPC', message: 'no space' } },
  });
  t.match(recs[2], { level: 'warn', session: 's1', code: 'STUDIO_SLOW' });
  t.same(ring.list(), [
    { code: 'STUDIO_TARGET_FULL', message: 'raid is full. Free space.', at: '2026-11-26T10:00:00.000Z' },
    { code: 'STUDIO_SLOW', message: 'slow agent', at: '2026-11-26T10:00:00.000Z' },
  ]);
  log.error({ err: new ConfigError('CONFIG_INVALID', 'bad') }, 'x');
  t.equal(ring.list().length, 2, 'bounded');
  t.equal(ring.list()[1]?.code, 'CONFIG_INVALID', 'newest last');
  t.equal(changes, 3);
  const circular: Record<string, unknown> = {};
  circular['self'] = circular;
  log.info({ circular }, 'still logs');
  t.match(JSON.parse(lines[lines.length - 1]!), { msg: 'still logs', logError: 'event not serialisable' });
  t.throws(() => createLogger({ name: 'x', level: 'loud' as 'info' }), TypeError);
});

t.test('ShutdownController: newest first, once, failures and timeout give exit 1', async (t) => {
  const order: string[] = [];
  const c = new ShutdownController({ timeoutMs: 1000 });
  c.register('a', () => {
    order.push('a');
  });
  c.register('b', async () => {
    order.push('b');
  });
  const p1 = c.run('test');
  const p2 = c.run('again');
  t.equal(p1, p2, 'a second call shares the first run');
  t.equal(await p1, 0);
  t.same(order, ['b', 'a']);

  const failing = new ShutdownController();
  failing.register('ok', () => {
    order.push('ok');
  });
  failing.register('bad', () => {
    throw new Error('nope');
  });
  t.equal(await failing.run('test'), 1, 'a failing closer → 1, the others still run');
  t.equal(order[order.length - 1], 'ok');
});

const fixture = fileURLToPath(new URL('../../lib/shutdown-child.mjs', import.meta.url));
async function child(
  mode: string,
  signals: NodeJS.Signals[],
): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawn(process.execPath, [fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  await new Promise<void>((resolve) =>
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    }),
  );
  for (const s of signals) p.kill(s);
  const [code] = (await once(p, 'exit')) as [number | null];
  return { code, out, err };
}

t.test('real process: SIGTERM runs the closers newest first and exits 0', async (t) => {
  const r = await child('ok', ['SIGTERM']);
  t.equal(r.code, 0);
  t.equal(r.out, 'ready\nclose last\nclose middle\nclose first\n', 'reverse order, unregistered closer skipped');
  t.match(r.err, /"event":"shutdown-done","clean":true/);
});

t.test('real process: SIGINT with a failing closer exits 1 after running all', async (t) => {
  const r = await child('fail', ['SIGINT']);
  t.equal(r.code, 1);
  t.equal(r.out, 'ready\nclose last\nclose middle\nclose first\n');
  t.match(r.err, /"event":"shutdown-closer-failed","closer":"middle"/);
});

t.test('real process: a hanging closer hits the timeout and exits 1', async (t) => {
  const r = await child('hang', ['SIGTERM']);
  t.equal(r.code, 1);
  t.match(r.err, /SHUTDOWN_TIMEOUT/);
  t.notMatch(r.out, /close first/, 'closers after the hung one did not run');
});
