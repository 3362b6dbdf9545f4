// The tray: state and summary from a status snapshot; no desktop → runs
// without the tray (logged once); a tray helper that cannot start (the real
// systray2 binary, with no X server) → AGENT_TRAY_UNAVAILABLE, no crash; with a
// tray (a recording backend, since no desktop tray exists here): icon/menu
// follow the status, menu actions reach the agent, and "safe to format" is
// announced once per card through the real notifier code (spawner recorded).
import t from 'tap';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { createLogger, ErrorRing } from '@studio321/protocol';
import { Tray, type TrayBackend, type TrayItemId, type TrayMenuModel } from '@studio321/agent/ui';
import { summariseForTray } from '@studio321/agent/ui';
import { discPng, trayIcon } from '@studio321/agent/ui';
import { Desktop } from '@studio321/agent/ui';
import type { LiveSnapshot, LiveCard, StatusProvider } from '@studio321/agent/ui';

const NOW = new Date('2026-11-26T12:00:00Z');
function card(over: Partial<LiveCard> & { id: string }): LiveCard {
  return {
    label: over.id.toUpperCase(),
    files: 10,
    bytes: 1000,
    copiedFiles: 10,
    copiedBytes: 1000,
    verifiedFiles: 10,
    queuedFiles: 0,
    atStudioFiles: 0,
    speedBytesPerSec: 0,
    etaSeconds: null,
    safeToFormat: false,
    reason: '10 files have 1 copy',
    present: true,
    ...over,
  };
}
function snap(over: Partial<LiveSnapshot> = {}): LiveSnapshot {
  return {
    at: NOW.toISOString(),
    cards: [],
    queue: { files: 0, bytes: 0 },
    link: { state: 'offline' },
    errors: [],
    ...over,
  };
}

class TestProvider extends EventEmitter implements StatusProvider {
  constructor(public current: LiveSnapshot) {
    super();
  }
  set(s: LiveSnapshot): void {
    this.current = s;
    this.emit('change');
  }
  snapshot(): Promise<LiveSnapshot> {
    return Promise.resolve(structuredClone(this.current));
  }
}

class RecordingBackend implements TrayBackend {
  started: TrayMenuModel[] = [];
  updates: TrayMenuModel[] = [];
  stopped = 0;
  #click: ((id: TrayItemId) => void) | undefined;
  #waiters: ((m: TrayMenuModel) => void)[] = [];
  start(menu: TrayMenuModel): Promise<void> {
    this.started.push(menu);
    return Promise.resolve();
  }
  update(menu: TrayMenuModel): Promise<void> {
    this.updates.push(menu);
    for (const w of this.#waiters.splice(0)) w(menu);
    return Promise.resolve();
  }
  nextUpdate(): Promise<TrayMenuModel> {
    return new Promise((r) => this.#waiters.push(r));
  }
  onClick(l: (id: TrayItemId) => void): void {
    this.#click = l;
  }
  onExit(): void {}
  click(id: TrayItemId): void {
    this.#click?.(id);
  }
  stop(): Promise<void> {
    this.stopped++;
    return Promise.resolve();
  }
}

function memoryLog() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    name: 'field-agent',
    level: 'debug',
    lastErrors: new ErrorRing(10),
    stream: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
  });
  return { log, lines };
}

t.test('summary: idle, offloading, syncing, attention', async (t) => {
  t.match(summariseForTray(snap(), NOW), { state: 'idle', summary: 'No cards yet' });
  t.match(summariseForTray(snap({ cards: [card({ id: 'a', safeToFormat: true })] }), NOW), {
    state: 'idle',
    summary: 'All cards safe to format',
  });
  const hotFolder = card({ id: 'hot', kind: 'hot-folder', present: false, reason: 'hot folder: nothing to format' });
  const folder = card({ id: 'dir', kind: 'folder', present: false });
  t.match(
    summariseForTray(snap({ cards: [card({ id: 'a', safeToFormat: true, kind: 'card' }), hotFolder, folder] }), NOW),
    { state: 'idle', summary: 'All cards safe to format' },
    'a hot folder or a folder (never safe to format) is not counted as an unsafe card',
  );
  t.match(summariseForTray(snap({ cards: [hotFolder] }), NOW), { state: 'idle', summary: 'No cards yet' });
  t.match(
    summariseForTray(
      snap({ cards: [card({ id: 'a', label: 'EOS', copiedBytes: 250, copiedFiles: 2, etaSeconds: 75 })] }),
      NOW,
    ),
    { state: 'offloading', title: '25%', summary: 'Offloading EOS 25% · ETA 1:15' },
  );
  t.match(
    summariseForTray(
      snap({ cards: [card({ id: 'a' })], queue: { files: 10, bytes: 1000 }, link: { state: 'connected' } }),
      NOW,
    ),
    { state: 'syncing', summary: 'Syncing 10 files to the studio · 1 card not yet safe to format' },
  );
  t.match(
    summariseForTray(
      snap({ cards: [card({ id: 'a' })], queue: { files: 10, bytes: 1000 }, link: { state: 'offline' } }),
      NOW,
    ),
    { state: 'idle', summary: /10 files wait for the studio \(offline\)/ },
  );
  t.match(
    summariseForTray(
      snap({
        errors: [
          {
            code: 'AGENT_TARGET_FULL',
            message: 'laptop disk full',
            at: new Date(NOW.getTime() - 60_000).toISOString(),
          },
        ],
      }),
      NOW,
    ),
    { state: 'attention', summary: 'AGENT_TARGET_FULL: laptop disk full' },
  );
  t.match(
    summariseForTray(
      snap({ errors: [{ code: 'X', message: 'old', at: new Date(NOW.getTime() - 3_600_000).toISOString() }] }),
      NOW,
    ),
    { state: 'idle' },
    'an old error no longer needs attention',
  );
  t.match(
    summariseForTray(
      snap({ cards: [card({ id: 'a', label: 'EOS', present: false, copiedFiles: 3, copiedBytes: 300 })] }),
      NOW,
    ),
    { state: 'attention', summary: /EOS was removed before its offload finished/ },
  );
});

t.test('icons are valid PNGs in four colours', async (t) => {
  const png = discPng([255, 0, 0], 16);
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  t.equal(png.readUInt32BE(16), 16, 'width');
  const idatLen = png.readUInt32BE(33);
  t.equal(png.subarray(37, 41).toString('ascii'), 'IDAT');
  const raw = inflateSync(png.subarray(41, 41 + idatLen));
  t.equal(raw.length, (16 * 4 + 1) * 16);
  const centre = 8 * 65 + 1 + 8 * 4;
  t.same([...raw.subarray(centre, centre + 4)], [255, 0, 0, 255], 'opaque red centre');
  t.equal(raw[1 + 3], 0, 'transparent corner');
  t.equal(new Set(['idle', 'offloading', 'syncing', 'attention'].map((s) => trayIcon(s as 'idle'))).size, 4);
});

t.test('no desktop: runs without the tray and says so once', async (t) => {
  const { log, lines } = memoryLog();
  const backend = new RecordingBackend();
  const provider = new TestProvider(snap());
  const tray = new Tray({
    provider,
    statusUrl: () => 'http://127.0.0.1:1/',
    actions: { quit() {} },
    dataDir: '/nonexistent',
    log,
    env: {},
    platform: 'linux',
    backend,
  });
  t.equal(await tray.open(), 'headless');
  t.equal(backend.started.length, 0, 'no tray started');
  t.equal(lines.filter((l) => l['event'] === 'tray-headless').length, 1, 'logged once');
  t.equal(provider.listenerCount('change'), 0, 'not watching without a desktop');
  await tray.close();
});

t.test('the real systray2 helper cannot start here: AGENT_TRAY_UNAVAILABLE, no crash', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tray-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const { log, lines } = memoryLog();
  const provider = new TestProvider(snap());
  // DISPLAY names an X server that does not exist: the helper (GTK + libappindicator3) exits.
  const tray = new Tray({
    provider,
    statusUrl: () => 'http://127.0.0.1:1/',
    actions: { quit() {} },
    dataDir,
    log,
    env: { DISPLAY: ':97' },
    platform: 'linux',
    desktop: new Desktop({ spawner: () => Promise.resolve() }),
  });
  const mode = await tray.open();
  t.equal(mode, 'unavailable');
  const warn = lines.find((l) => l['event'] === 'tray-unavailable');
  t.equal(warn?.['code'], 'AGENT_TRAY_UNAVAILABLE');
  t.equal(log.lastErrors.list()[0]?.code, 'AGENT_TRAY_UNAVAILABLE', 'shown among the recent errors');
  await tray.close();
});

t.test('with a tray: icon follows status, menu drives the agent, safe-to-format notified once per card', async (t) => {
  const { log } = memoryLog();
  const backend = new RecordingBackend();
  const spawned: [string, string[]][] = [];
  const desktop = new Desktop({
    platform: 'linux',
    spawner: (cmd, args) => {
      spawned.push([cmd, args]);
      return Promise.resolve();
    },
  });
  const calls: string[] = [];
  const provider = new TestProvider(
    snap({
      cards: [
        card({ id: 'old', label: 'ALREADY_SAFE', safeToFormat: true, reason: 'ok' }),
        card({ id: 'a', label: 'EOS_DIGITAL', copiedBytes: 500, copiedFiles: 5, etaSeconds: 10 }),
      ],
      link: { state: 'connected' },
    }),
  );
  const tray = new Tray({
    provider,
    desktop,
    backend,
    log,
    dataDir: '/nonexistent',
    env: { WAYLAND_DISPLAY: 'wayland-0' },
    platform: 'linux',
    minUpdateIntervalMs: 0,
    now: () => NOW,
    statusUrl: () => 'http://127.0.0.1:7322/?token=abc',
    actions: {
      sync: {
        pauseSync: () => {
          calls.push('pause');
          provider.set({ ...provider.current, link: { state: 'paused' } });
        },
        resumeSync: () => {
          calls.push('resume');
          provider.set({ ...provider.current, link: { state: 'connected' } });
        },
      },
      quit: () => {
        calls.push('quit');
      },
    },
  });
  t.equal(await tray.open(), 'tray');
  t.equal(backend.started[0]?.state, 'offloading');
  t.equal(backend.started[0]?.icon, trayIcon('offloading'));
  t.equal(backend.started[0]?.summary, 'Offloading EOS_DIGITAL 50% · ETA 0:10');
  t.equal(backend.started[0]?.syncControl, true, 'pause/resume offered when the agent has sync control');

  let next = backend.nextUpdate();
  provider.set(
    snap({
      cards: [card({ id: 'old', label: 'ALREADY_SAFE', safeToFormat: true }), card({ id: 'a', label: 'EOS_DIGITAL' })],
      queue: { files: 10, bytes: 1000 },
      link: { state: 'connected' },
    }),
  );
  t.equal((await next).state, 'syncing');
  t.equal(spawned.length, 0, 'nothing announced yet (the already-safe card is not announced)');

  next = backend.nextUpdate();
  provider.set(
    snap({
      cards: [
        card({ id: 'old', label: 'ALREADY_SAFE', safeToFormat: true }),
        card({ id: 'a', label: 'EOS_DIGITAL', safeToFormat: true, reason: '2 verified copies of every file' }),
      ],
      link: { state: 'connected' },
    }),
  );
  const idle = await next;
  t.equal(idle.state, 'idle');
  t.equal(idle.summary, 'All cards safe to format');
  t.same(spawned, [
    ['notify-send', ['--app-name=field-agent', 'EOS_DIGITAL is safe to format', '2 verified copies of every file']],
  ]);

  next = backend.nextUpdate();
  provider.set({ ...provider.current, at: new Date().toISOString() });
  await next;
  t.equal(spawned.length, 1, 'announced once, not on every update');

  next = backend.nextUpdate();
  backend.click('sync');
  t.equal((await next).syncPaused, true, 'menu shows paused');
  next = backend.nextUpdate();
  backend.click('sync');
  t.equal((await next).syncPaused, false);
  t.same(calls, ['pause', 'resume']);

  backend.click('open');
  backend.click('quit');
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.same(spawned[1], ['xdg-open', ['http://127.0.0.1:7322/?token=abc']]);
  t.same(calls, ['pause', 'resume', 'quit']);

  await tray.close();
  t.equal(backend.stopped, 1);
  t.equal(provider.listenerCount('change'), 0);
});

t.test('a missing notifier is logged once and never throws', async (t) => {
  const { log, lines } = memoryLog();
  const desktop = new Desktop({ platform: 'linux', log });
  // The real spawner: run a command that does not exist, through the macOS path name on Linux.
  const mac = new Desktop({ platform: 'darwin', log });
  t.equal(await mac.notify('t', 'b'), false, 'osascript is not on Linux');
  t.equal(await mac.notify('t', 'b'), false);
  t.equal(lines.filter((l) => l['event'] === 'desktop-command-failed').length, 1, 'warned once');
  t.type(
    await desktop.notify('card "x" $(rm -rf /)', 'body'),
    'boolean',
    'a hostile label is an argument, never a shell word',
  );
});
