/**
 * The tray icon of `field-agent run` and the "safe to format" notification.
 *
 * The icon's colour and title follow the status (tray-summary.ts); the menu
 * shows the one-line summary, opens the status page, pauses/resumes sync and
 * quits. When a card becomes safe to format (false → true while the agent
 * watches) a desktop notification says so, once per card.
 *
 * systray2's Linux helper links libappindicator3.so.1, which Debian 12 no longer
 * ships (only the Ayatana fork, another soname); there it cannot start and the
 * agent logs AGENT_TRAY_UNAVAILABLE as below.
 *
 * Without a desktop (Linux with neither DISPLAY nor WAYLAND_DISPLAY: a server,
 * an SSH session, a user unit started before the desktop imported its
 * environment) the agent runs without the tray and says so once in the log. If
 * the tray helper cannot start (systray2's binary needs libappindicator3 on
 * Linux) the agent logs AGENT_TRAY_UNAVAILABLE once and goes on: the tray is a
 * convenience, the offload never depends on it.
 */
import { chmod, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '@studio321/protocol/durable';
import SysTrayModule, { type ClickEvent } from 'systray2';
import type { Logger } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from '../errors.js';
import { Desktop } from './desktop-notify.js';
import type { LiveSnapshot, StatusActions, StatusProvider } from './snapshot.js';
import { trayIcon, type TrayState } from './tray-icons.js';
import { summariseForTray } from './tray-summary.js';

// ---------------------------------------------------------------- backend seam

export type TrayItemId = 'summary' | 'open' | 'sync' | 'quit';

export interface TrayMenuModel {
  state: TrayState;
  /** base64 PNG. */
  icon: string;
  title: string;
  tooltip: string;
  summary: string;
  syncPaused: boolean;
  /** Whether the menu offers pause/resume. */
  syncControl: boolean;
}

/** What the tray needs from a tray implementation (systray2, or a test double). */
export interface TrayBackend {
  /** Resolves when the icon is shown; rejects if the helper cannot start. */
  start(menu: TrayMenuModel): Promise<void>;
  update(menu: TrayMenuModel): Promise<void>;
  onClick(listener: (id: TrayItemId) => void): void;
  /** The helper went away on its own (the desktop's tray crashed, logout). */
  onExit(listener: () => void): void;
  stop(): Promise<void>;
}

const ITEM_ORDER: readonly (TrayItemId | 'sep')[] = ['summary', 'sep', 'open', 'sync', 'sep', 'quit'];

// systray2 is CommonJS compiled from TS: Node's default import is module.exports, the class is `.default`.
const SysTray = SysTrayModule.default;
type SysTrayInstance = InstanceType<typeof SysTray>;

const HELPER_NAMES: Partial<Record<NodeJS.Platform, string>> = {
  linux: 'tray_linux_release',
  darwin: 'tray_darwin_release',
  win32: 'tray_windows_release.exe',
};

async function installHelper(copyDir: string): Promise<void> {
  const name = HELPER_NAMES[process.platform];
  if (name === undefined) throw new TypeError(`no tray helper for ${process.platform}`);
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve('systray2/package.json');
  const { version } = JSON.parse(await readFile(pkgFile, 'utf8')) as { version: string };
  const dest = join(copyDir, version, name);
  const src = join(dirname(pkgFile), 'traybin', name);
  const [a, b] = await Promise.all([stat(src), stat(dest).catch(() => undefined)]);
  if (b === undefined || b.size !== a.size) {
    await writeFileAtomic(dest, await readFile(src), { mode: 0o755 });
  } else if ((b.mode & 0o100) === 0) {
    await chmod(dest, 0o755);
  }
}

/** systray2: the tray helper binary shipped inside the package, driven over stdin/stdout. */
export function systray2Backend(binCopyDir: string, readyTimeoutMs = 15_000): TrayBackend {
  let tray: SysTrayInstance | undefined;
  let exited = false;
  const exitListeners: (() => void)[] = [];
  const clickListeners: ((id: TrayItemId) => void)[] = [];
  const items = (m: TrayMenuModel) =>
    ITEM_ORDER.map((id) => {
      if (id === 'sep') return SysTray.separator;
      const title = {
        summary: m.summary,
        open: 'Open status page',
        sync: m.syncPaused ? 'Resume sync' : 'Pause sync',
        quit: 'Quit field agent',
      }[id];
      return {
        title,
        tooltip: title,
        enabled: id !== 'summary',
        checked: false,
        hidden: id === 'sync' && !m.syncControl,
      };
    });
  const menu = (m: TrayMenuModel) => ({ icon: m.icon, title: m.title, tooltip: m.tooltip, items: items(m) });

  return {
    async start(m) {
      // systray2 looks for <copyDir>/<version>/<binary>. npm installs its binaries
      // without the executable bit and systray2's own chmod('+x') is a no-op, so the
      // helper is copied into the agent's data dir and made executable here.
      await installHelper(binCopyDir);
      const t = new SysTray({ menu: menu(m), copyDir: binCopyDir });
      tray = t;
      const childExited = new Promise<never>((_, reject) => {
        const watch = (): void => {
          const p = (t as unknown as { _process: import('node:child_process').ChildProcess | null })._process;
          if (!p) {
            setImmediate(watch); // systray2 spawns after resolving its binary path
            return;
          }
          p.once('exit', (code, signal) => {
            exited = true;
            for (const l of exitListeners) l();
            reject(new Error(`tray helper exited (${code ?? signal})`));
          });
          p.once('error', (err) => {
            exited = true;
            reject(err);
          });
          p.stderr?.resume();
        };
        watch();
      });
      childExited.catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`tray helper not ready after ${readyTimeoutMs} ms`)), readyTimeoutMs);
      });
      try {
        await Promise.race([t.ready(), childExited, timeout]);
      } finally {
        clearTimeout(timer);
      }
      await t.onClick((ev: ClickEvent) => {
        const id = ITEM_ORDER[ev.seq_id];
        if (id !== undefined && id !== 'sep') for (const l of clickListeners) l(id);
      });
    },
    async update(m) {
      if (!tray || exited) return;
      await tray.sendAction({ type: 'update-menu', menu: menu(m) });
    },
    onClick(l) {
      clickListeners.push(l);
    },
    onExit(l) {
      exitListeners.push(l);
    },
    async stop() {
      const t = tray;
      tray = undefined;
      if (!t || exited) return;
      const p = (t as unknown as { _process: import('node:child_process').ChildProcess | null })._process;
      if (!p || p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
      // Ask the helper to exit (kill(false): systray2 would otherwise exit node too); SIGTERM if it lingers.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        t.kill(false).catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 2000);
        }),
      ]);
      clearTimeout(timer);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    },
  };
}

// ---------------------------------------------------------------- tray

export class TrayError extends AgentError {}

export interface TrayActions {
  quit(): void | Promise<void>;
  /** Pause/resume of the studio sync; without it the menu has no such item. */
  sync?: StatusActions;
}

export interface TrayOptions {
  provider: StatusProvider;
  /** The status page address with its token (StatusPage.url). */
  statusUrl: () => string;
  actions: TrayActions;
  /** The agent's data dir (a copy of the tray helper is kept there). */
  dataDir: string;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  desktop?: Desktop;
  backend?: TrayBackend;
  now?: () => Date;
  /** Least time between two tray updates, ms (default 1000). */
  minUpdateIntervalMs?: number;
}

export type TrayMode = 'tray' | 'headless' | 'unavailable';

/** Whether a graphical session is there to show a tray and notifications. */
export function hasDesktop(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): boolean {
  if (platform === 'darwin' || platform === 'win32') return true;
  return Boolean(env['DISPLAY'] || env['WAYLAND_DISPLAY']);
}

export class Tray {
  readonly #o: TrayOptions;
  readonly #desktop: Desktop;
  #mode: TrayMode | undefined;
  #backend: TrayBackend | undefined;
  #safe = new Map<string, boolean>();
  #timer: NodeJS.Timeout | undefined;
  #lastUpdate = 0;
  #updating: Promise<void> = Promise.resolve();
  #last: TrayMenuModel | undefined;
  #closed = false;
  readonly #onChange = (): void => this.#schedule();

  constructor(options: TrayOptions) {
    this.#o = options;
    this.#desktop =
      options.desktop ?? new Desktop({ ...(options.platform ? { platform: options.platform } : {}), log: options.log });
  }

  get mode(): TrayMode | undefined {
    return this.#mode;
  }

  /** What the icon currently shows (for tests and `status`). */
  get menu(): TrayMenuModel | undefined {
    return this.#last;
  }

  async open(): Promise<TrayMode> {
    const env = this.#o.env ?? process.env;
    const platform = this.#o.platform ?? process.platform;
    const log = this.#o.log;
    if (!hasDesktop(env, platform)) {
      this.#mode = 'headless';
      log.info(
        { event: 'tray-headless' },
        'no desktop session (DISPLAY/WAYLAND_DISPLAY unset): running without the tray icon; the status page is still served',
      );
      return this.#mode;
    }
    const first = await this.#model();
    // Remember which cards are already safe: only a change to safe is announced.
    for (const [id, safe] of first.safe) this.#safe.set(id, safe);
    const backend = this.#o.backend ?? systray2Backend(join(this.#o.dataDir, 'tray-helper'));
    try {
      await backend.start(first.menu);
      this.#backend = backend;
      this.#last = first.menu;
      this.#mode = 'tray';
      backend.onClick((id) => void this.#click(id));
      backend.onExit(() => {
        if (this.#closed) return;
        this.#backend = undefined;
        this.#mode = 'unavailable';
        log.warn(
          { event: 'tray-exited', code: AGENT_CODES.trayUnavailable },
          'the tray helper exited; the agent goes on without the tray icon',
        );
      });
    } catch (err) {
      await backend.stop().catch(() => undefined);
      this.#mode = 'unavailable';
      const e = new TrayError(
        AGENT_CODES.trayUnavailable,
        'the tray icon cannot be shown (on Linux the tray helper needs libappindicator3.so.1 and a desktop tray). The agent runs without it: use the status page; notifications still show.',
        { cause: err },
      );
      log.warn({ event: 'tray-unavailable', err: e }, e.message);
    }
    this.#o.provider.on('change', this.#onChange);
    return this.#mode;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.provider.off('change', this.#onChange);
    if (this.#timer) clearTimeout(this.#timer);
    await this.#updating;
    await this.#backend?.stop();
    this.#backend = undefined;
  }

  async #model(): Promise<{ menu: TrayMenuModel; safe: Map<string, boolean>; snapshot: LiveSnapshot }> {
    const snapshot = await this.#o.provider.snapshot();
    const sum = summariseForTray(snapshot, this.#o.now?.() ?? new Date());
    const menu: TrayMenuModel = {
      state: sum.state,
      icon: trayIcon(sum.state),
      title: sum.title,
      tooltip: `field agent: ${sum.summary}`,
      summary: sum.summary,
      syncPaused: snapshot.link.state === 'paused',
      syncControl: this.#o.actions.sync !== undefined,
    };
    return { menu, safe: new Map(snapshot.cards.map((c) => [c.id, c.safeToFormat])), snapshot };
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    const wait = Math.max(0, this.#lastUpdate + (this.#o.minUpdateIntervalMs ?? 1000) - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#updating = this.#updating.then(() => this.#refresh());
    }, wait);
  }

  /** Recompute the icon and menu, and announce cards that became safe to format. */
  async #refresh(): Promise<void> {
    if (this.#closed) return;
    this.#lastUpdate = Date.now();
    try {
      const { menu, snapshot } = await this.#model();
      for (const card of snapshot.cards) {
        const before = this.#safe.get(card.id);
        this.#safe.set(card.id, card.safeToFormat);
        if (card.safeToFormat && before === false) {
          this.#o.log.info({ event: 'card-safe-to-format', card: card.id }, `${card.label} is safe to format`);
          void this.#desktop.notify(`${card.label} is safe to format`, card.reason);
        }
      }
      this.#last = menu;
      await this.#backend?.update(menu);
    } catch (err) {
      this.#o.log.warn({ event: 'tray-update-failed', err }, 'tray update failed');
    }
  }

  async #click(id: TrayItemId): Promise<void> {
    try {
      switch (id) {
        case 'open':
          await this.#desktop.open(this.#o.statusUrl());
          break;
        case 'sync': {
          const sync = this.#o.actions.sync;
          if (!sync) break;
          if (this.#last?.syncPaused) await sync.resumeSync();
          else await sync.pauseSync();
          this.#schedule();
          break;
        }
        case 'quit':
          await this.#o.actions.quit();
          break;
        case 'summary':
          break;
      }
    } catch (err) {
      this.#o.log.warn({ event: 'tray-action-failed', item: id, err }, `tray action ${id} failed`);
    }
  }
}
