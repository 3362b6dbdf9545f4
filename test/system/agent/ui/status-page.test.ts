// The agent's status page in a real headless Chromium (Debian's /usr/bin/chromium
// driven by playwright-core). The first cases: the real StatusPage server with
// data from a provider FED BY THIS TEST (a StatusProvider whose snapshot the test
// changes), so progress and the safe-to-format change can be driven step by step.
// The last case: a real `field-agent run` on a real ingested card and hot folder,
// its buttons (resolve, verify, sync now, forget) clicked in the browser.
import t from 'tap';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { request } from 'node:http';
import { access, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodedError } from '@studio321/protocol';
import { StatusPage, type LiveSnapshot, type LiveCard, type StatusProvider } from '@studio321/agent/ui';
import { CHROMIUM, launchChromium } from '../../../../scripts/dist/lib/chromium.js';
import { AGENT_BIN, listFiles, runAgentCli } from '../../../lib/agent-harness.js';
import { dcfFiles, makeCard, waitFor } from '../../../lib/studio-harness.js';

class TestProvider extends EventEmitter implements StatusProvider {
  current: LiveSnapshot;
  constructor(s: LiveSnapshot) {
    super();
    this.current = s;
  }
  set(change: (s: LiveSnapshot) => void): void {
    const next = structuredClone(this.current);
    change(next);
    next.at = new Date().toISOString();
    this.current = next;
    this.emit('change');
  }
  snapshot(): Promise<LiveSnapshot> {
    return Promise.resolve(structuredClone(this.current));
  }
}

const GB = 1_000_000_000;
function card(over: Partial<LiveCard> & { id: string; label: string }): LiveCard {
  return {
    files: 1200,
    bytes: 48 * GB,
    copiedFiles: 0,
    copiedBytes: 0,
    verifiedFiles: 0,
    queuedFiles: 0,
    atStudioFiles: 0,
    speedBytesPerSec: 0,
    etaSeconds: null,
    safeToFormat: false,
    reason: 'offload not finished',
    present: true,
    ...over,
  };
}

interface Resp {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}
function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function haveChromium(): Promise<boolean> {
  try {
    await access(CHROMIUM);
    return true;
  } catch {
    return false;
  }
}

t.test('status page', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'status-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const provider = new TestProvider({
    at: new Date().toISOString(),
    cards: [
      card({
        id: 'card-a',
        label: 'EOS_DIGITAL (slot 1)',
        copiedFiles: 300,
        copiedBytes: 12 * GB,
        verifiedFiles: 290,
        speedBytesPerSec: 180_000_000,
        etaSeconds: 200,
      }),
    ],
    queue: { files: 290, bytes: 11.6 * GB },
    link: { state: 'connecting' },
    errors: [],
  });
  const paused: string[] = [];
  const ejected: string[] = [];
  const page = new StatusPage({
    eject: async (cardId: string) => {
      const c = provider.current.cards.find((x) => x.id === cardId);
      if (!c?.safeToFormat) throw new CodedError('AGENT_EJECT_NOT_SAFE', `${cardId} is not safe to format yet`);
      ejected.push(cardId);
      return { card: cardId, label: c.label, mountPoint: '/media/x', method: 'umount' };
    },
    provider,
    dataDir,
    port: 0,
    minUpdateIntervalMs: 20,
    actions: {
      pauseSync: () => {
        paused.push('pause');
        provider.set((s) => {
          s.link.state = 'paused';
        });
      },
      resumeSync: () => {
        paused.push('resume');
        provider.set((s) => {
          s.link.state = 'connected';
        });
      },
    },
  });
  await page.open();
  t.teardown(() => page.close());
  const port = page.port;
  const base = `http://127.0.0.1:${port}`;
  const token = (await readFile(join(dataDir, 'status-token'), 'utf8')).trim();
  t.equal(page.url, `${base}/?token=${token}`);
  t.equal((await stat(join(dataDir, 'status-token'))).mode & 0o777, 0o600, 'token file is 0600');

  t.test('HTTP: no token, wrong token, foreign Host are refused with no data', async (t) => {
    for (const path of [
      '/',
      '/api/status',
      '/events',
      '/app.js',
      '/?token=wrong',
      `/api/status?token=${token.slice(0, -1)}x`,
    ]) {
      const r = await get(port, path);
      t.equal(r.status, 401, `${path} → 401`);
      t.notMatch(r.body, /EOS_DIGITAL/, `${path}: no data`);
    }
    const rebinding = await get(port, '/api/status', {
      Host: `evil.example:${port}`,
      Authorization: `Bearer ${token}`,
    });
    t.equal(rebinding.status, 403, 'a foreign Host header (DNS rebinding) is refused even with the token');
    t.notMatch(rebinding.body, /EOS_DIGITAL/);
    const otherPort = await get(port, '/api/status', { Host: '127.0.0.1:1', Authorization: `Bearer ${token}` });
    t.equal(otherPort.status, 403, 'the Host must name this port');
    const ok = await get(port, '/api/status', { Host: `localhost:${port}`, Authorization: `Bearer ${token}` });
    t.equal(ok.status, 200, 'localhost:<port> with the bearer token is served');
    t.equal((JSON.parse(ok.body) as LiveSnapshot).cards[0]?.label, 'EOS_DIGITAL (slot 1)');
    t.match(String(ok.headers['content-security-policy']), /default-src 'none'/);
    const refused = await get(port, '/api/eject?card=card-a', { Authorization: `Bearer ${token}` }, 'POST');
    t.equal(refused.status, 409, 'eject of a card that is not safe is refused');
    t.equal((JSON.parse(refused.body) as { code: string }).code, 'AGENT_EJECT_NOT_SAFE');
    const post = await get(port, '/api/pause', { Cookie: `s321_status=${token}` }, 'POST');
    t.equal(post.status, 403, 'a cookie-authorised POST without a same-origin Origin is refused (CSRF)');
    const cross = await get(
      port,
      '/api/pause',
      { Cookie: `s321_status=${token}`, Origin: 'http://evil.example' },
      'POST',
    );
    t.equal(cross.status, 403, 'a cross-origin POST is refused');
    t.same(paused, [], 'and did nothing');
  });

  t.test(
    'browser: refused without token, live progress and safe-to-format with it',
    { skip: !(await haveChromium()) && 'no /usr/bin/chromium (run scripts/ensure-system-deps.sh as root)' },
    async (t) => {
      const browser = await launchChromium();
      t.teardown(() => browser.close());
      const { context } = browser;
      const tab = await context.newPage();

      const refused = await tab.goto(`${base}/`);
      t.equal(refused?.status(), 401, 'no token → 401');
      t.notMatch(await tab.content(), /EOS_DIGITAL/);
      const wrong = await tab.goto(`${base}/?token=not-the-token`);
      t.equal(wrong?.status(), 401, 'wrong token → 401');

      const loaded = await tab.goto(page.url);
      t.equal(loaded?.status(), 200);
      t.equal(tab.url(), `${base}/`, 'the token is traded for a cookie and dropped from the address bar');
      const cookies = await context.cookies(base);
      const c = cookies.find((x) => x.name === 's321_status');
      t.ok(c?.httpOnly, 'cookie is HttpOnly');
      t.equal(c?.sameSite, 'Strict', 'cookie is SameSite=Strict');

      const cardA = tab.locator('[data-card-id="card-a"]');
      await cardA.locator('.label', { hasText: 'EOS_DIGITAL (slot 1)' }).waitFor();
      t.match(await cardA.locator('.progress').textContent(), '300 / 1200 files');
      t.match(await cardA.locator('.speed').textContent(), '180 MB/s');
      t.match(await cardA.locator('.eta').textContent(), 'ETA 3:20');
      t.equal(await cardA.getAttribute('data-safe'), 'false');
      t.equal(await cardA.locator('.badge').textContent(), 'Do not format');
      t.equal(await tab.locator('#link').textContent(), 'Connecting to studio…');

      // Progress moves: the page follows without a reload.
      provider.set((s) => {
        const a = s.cards[0]!;
        Object.assign(a, { copiedFiles: 900, copiedBytes: 36 * GB, verifiedFiles: 880, etaSeconds: 67 });
        s.link = { state: 'connected', studio: 'studio.calgary:7321' };
      });
      await tab.locator('[data-card-id="card-a"] .progress', { hasText: '900 / 1200 files' }).waitFor();
      t.match(await cardA.locator('.eta').textContent(), 'ETA 1:07');
      t.equal(await tab.locator('#link').textContent(), 'Studio connected · studio.calgary:7321');
      t.equal(await cardA.locator('.eject').isVisible(), false, 'no Eject button while not safe');

      // A second card with a hostile label appears; it is shown as text.
      const hostile = '<img src=x onerror="document.title=\'pwned\'">NO NAME';
      provider.set((s) => {
        s.cards.push(card({ id: 'card-b', label: hostile, files: 10, bytes: 100_000_000 }));
      });
      await tab.locator('[data-card-id="card-b"]').waitFor();
      t.equal(await tab.locator('[data-card-id="card-b"] .label').textContent(), hostile, 'label rendered as text');
      t.equal(await tab.locator('[data-card-id="card-b"] img').count(), 0, 'no element injected');

      // The offload finishes and the studio acknowledges: safe to format flips live.
      provider.set((s) => {
        Object.assign(s.cards[0]!, {
          copiedFiles: 1200,
          copiedBytes: 48 * GB,
          verifiedFiles: 1200,
          atStudioFiles: 1200,
          queuedFiles: 0,
          speedBytesPerSec: 0,
          etaSeconds: null,
          safeToFormat: true,
          reason: 'every file has 2 verified copies on distinct devices (laptop, studio)',
        });
        s.queue = { files: 0, bytes: 0 };
      });
      await tab.locator('[data-card-id="card-a"][data-safe="true"]').waitFor();
      await cardA.locator('.eject').click();
      await cardA.locator('.result', { hasText: 'Ejected: you can remove the card.' }).waitFor();
      t.same(ejected, ['card-a'], 'Eject on a safe card reached the agent');
      t.equal(await cardA.locator('.badge').textContent(), 'Safe to format');
      t.match(await cardA.locator('.reason').textContent(), 'every file has 2 verified copies');
      t.match(await tab.locator('#queue-text').textContent(), 'studio has everything');
      t.equal(await tab.locator('#summary').textContent(), '1 of 2 cards not yet safe to format.');
      t.notOk((await tab.title()).includes('pwned'));

      // Pause from the page.
      await tab.locator('#sync-toggle', { hasText: 'Pause sync' }).click();
      await tab.locator('#link[data-state="paused"]').waitFor();
      t.same(paused, ['pause']);
      await tab.locator('#sync-toggle', { hasText: 'Resume sync' }).click();
      await tab.locator('#link[data-state="connected"]').waitFor();
      t.same(paused, ['pause', 'resume']);

      // A hot folder is not a card; warnings name their files; offsite copies are shown;
      // a card that is no longer mounted has no Eject.
      provider.set((s) => {
        Object.assign(s.cards[0]!, { offsiteFiles: 1150, present: false });
        Object.assign(s.cards[1]!, {
          warnings: [
            {
              path: 'DCIM/100CANON/EMPTY.CR3',
              code: 'AGENT_ZERO_BYTE_FILE',
              message: 'DCIM/100CANON/EMPTY.CR3 is empty (0 bytes), often a failed camera write.',
            },
          ],
        });
        s.cards.push(
          card({ id: 'hot-1', label: 'Tether', kind: 'hot-folder', reason: 'hot folder: nothing to format' }),
        );
      });
      const hot = tab.locator('[data-card-id="hot-1"]');
      await hot.waitFor();
      t.equal(await hot.locator('.badge').textContent(), 'Hot folder', 'a hot folder has no format verdict');
      t.equal(await hot.getAttribute('data-kind'), 'hot-folder');
      t.equal(
        await tab.locator('#summary').textContent(),
        '1 of 2 cards not yet safe to format.',
        'hot folder not counted',
      );
      await cardA.locator('.eject').waitFor({ state: 'hidden' });
      t.pass('no Eject on a card that is not mounted');
      t.equal(await cardA.locator('.n-offsite').textContent(), 'offsite 1150');
      t.match(
        await tab.locator('[data-card-id="card-b"] .warnings li').textContent(),
        /DCIM\/100CANON\/EMPTY\.CR3 — AGENT_ZERO_BYTE_FILE/,
        'the warning names its file',
      );
    },
  );

  t.test('a busy port gives AGENT_STATUS_PORT', async (t) => {
    const other = new StatusPage({ provider, dataDir, port });
    await t.rejects(other.open(), { code: 'AGENT_STATUS_PORT' });
    t.equal(other.state, 'closed');
  });
});

t.test(
  'real agent: resolve, verify, sync now and forget from the page; forget from the CLI through the running agent and directly',
  { skip: !(await haveChromium()) && 'no /usr/bin/chromium (run scripts/ensure-system-deps.sh as root)' },
  async (t) => {
    const base = await mkdtemp(join(tmpdir(), 'status-real-'));
    t.teardown(() => rm(base, { recursive: true, force: true }));
    const data = join(base, 'data');
    const store = join(base, 'store');
    const hot = join(base, 'tether');
    const cardDir = join(base, 'card');
    await mkdir(hot);
    const config = join(base, 'agent.json');
    await writeFile(
      config,
      JSON.stringify({
        store,
        statusPort: 0,
        tray: false,
        watchVolumes: false,
        hotFolders: [hot],
        hotFolderStableMs: 100,
      }),
    );
    await makeCard(cardDir, [...dcfFiles(3, (i) => 30_000 + i), { path: 'DCIM/100CANON/IMG_0099.CR3', size: 0 }]);
    const cli = (args: string[]): ReturnType<typeof runAgentCli> =>
      runAgentCli([...args, '--data-dir', data, '--config', config]);
    const ing = await cli(['ingest', cardDir, '--card-label', 'EOS_DIGITAL', '--json']);
    t.equal(ing.code, 0, `ingest (${ing.stderr})`);
    const stored = await listFiles(store);

    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['DISPLAY'];
    delete env['WAYLAND_DISPLAY'];
    const agent = spawn(process.execPath, [AGENT_BIN, 'run', '--data-dir', data, '--config', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
    const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));
    t.teardown(() => {
      if (agent.exitCode === null) agent.kill('SIGKILL');
    });
    let log = '';
    agent.stderr.on('data', (d: Buffer) => {
      log += d.toString('utf8');
    });
    await waitFor(() => log.includes('"event":"started"'), 'field-agent run to start');
    const url = new URL((await readFile(join(data, 'status-url'), 'utf8')).trim());
    const auth = { Authorization: `Bearer ${url.searchParams.get('token') ?? ''}` };
    const snapshot = async (): Promise<LiveSnapshot> =>
      (await (await fetch(`${url.origin}/api/status`, { headers: auth })).json()) as LiveSnapshot;
    const first = await snapshot();
    const eos = first.cards.find((c) => c.label === 'EOS_DIGITAL');
    const tether = first.cards.find((c) => c.kind === 'hot-folder');
    if (eos === undefined || tether === undefined) throw new Error(`cards missing: ${JSON.stringify(first.cards)}`);

    const browser = await launchChromium();
    t.teardown(() => browser.close());
    const tab = await browser.context.newPage();
    await tab.goto(url.href);
    const view = tab.locator(`[data-card-id="${eos.id}"]`);
    await view.locator('.warnings li', { hasText: 'IMG_0099.CR3' }).waitFor();

    // Resolve: the zero-byte file's warning is marked as reviewed, and leaves the page.
    await view.locator('.resolve').click();
    await view.locator('.result', { hasText: '1 warning marked as reviewed.' }).waitFor();
    await view.locator('.warnings li').waitFor({ state: 'detached' });
    t.equal(await view.locator('.resolve').isVisible(), false, 'no Resolve button without warnings');

    // Verify: the agent reads its copies again.
    await view.locator('.verify').click();
    await view.locator('.result', { hasText: 'Verified: 4 copies read again, 4 intact, 0 lost.' }).waitFor();
    t.pass('verify reports the copies read again');

    // Sync now, on an agent that is not paired: the coded answer and what to do.
    await tab.locator('#sync-now').click();
    await tab.locator('#sync-result[data-ok="false"]', { hasText: 'LINK_NOT_PAIRED' }).waitFor();
    t.match(await tab.locator('#sync-result').textContent(), /field-agent pair <url> <code>/, 'says how to pair');

    // Forget: refused (one laptop copy, nothing at the studio), then forced.
    await view.locator('.forget').click();
    await view.locator('.result[data-ok="false"]', { hasText: 'AGENT_FORGET_NOT_SAFE' }).waitFor();
    t.match(await view.locator('.result').textContent(), /--force \(no file is deleted\)/);
    t.ok(
      (await snapshot()).cards.some((c) => c.id === eos.id),
      'refused: still listed',
    );
    await view.locator('.forget-force').click();
    await view.waitFor({ state: 'detached' });
    t.match(
      await tab.locator('#notice').textContent(),
      'EOS_DIGITAL forgotten: no longer listed. No file was deleted.',
    );
    t.notOk(
      (await snapshot()).cards.some((c) => c.id === eos.id),
      'gone from the list',
    );
    t.same(await listFiles(store), stored, 'every stored file is still there');
    t.match(log, /"event":"card-forgotten"/);

    // The CLI goes through the running agent: the empty hot folder has nothing unsafe.
    const viaAgent = await cli(['forget', tether.id, '--json']);
    t.equal(viaAgent.code, 0, `forget through the running agent (${viaAgent.stderr})`);
    t.match(JSON.parse(viaAgent.stdout), { event: 'forgotten', card: tether.id, forced: false });
    await tab.locator(`[data-card-id="${tether.id}"]`).waitFor({ state: 'detached' });
    // A new shot in the forgotten hot folder is not safe yet: the folder is listed again.
    await writeFile(join(hot, 'TETHER_0001.CR3'), Buffer.alloc(20_000, 3));
    await tab.locator(`[data-card-id="${tether.id}"] .progress`, { hasText: '1 / 1 files' }).waitFor();
    t.pass('a new file lists the forgotten hot folder again');
    const refused = await cli(['forget', tether.id]);
    t.equal(refused.code, 1, 'refused through the running agent');
    t.match(refused.stderr, /AGENT_FORGET_NOT_SAFE: tether .* 1 of its 1 files are not at the studio yet/);

    agent.kill('SIGTERM');
    t.equal(await exited, 0, 'the agent stops cleanly');
    // Directly (no agent running): forced.
    const forced = await cli(['forget', tether.id, '--force']);
    t.equal(forced.code, 0, forced.stderr);
    t.match(forced.stdout, /forgotten: no longer listed, although not every file is safely copied/);
    const st = JSON.parse((await cli(['status', '--json'])).stdout) as { cards: unknown[] };
    t.same(st.cards, [], 'status lists neither');
    const after = await listFiles(store);
    t.ok(
      stored.every((p) => after.includes(p)),
      'every file of the forgotten card is still in the store',
    );
    t.equal(after.length, stored.length + 1, 'and the tethered shot too: nothing removed');
  },
);
