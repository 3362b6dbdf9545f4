/**
 * Desktop notifications and opening a URL, best effort: `notify-send` /
 * `xdg-open` on Linux, `osascript` / `open` on macOS. Arguments are passed as
 * argv (never through a shell), so a card label cannot inject anything. A
 * missing tool or a failure is logged once and otherwise ignored: a
 * notification never stops the agent.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '@studio321/protocol';

export type Spawner = (cmd: string, args: string[]) => Promise<void>;

/** Run a command detached from our stdio; resolves when it exits 0, rejects otherwise. */
export const spawnDetached: Spawner = (cmd, args) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code ?? signal}`)),
    );
  });

export interface DesktopOptions {
  platform?: NodeJS.Platform;
  spawner?: Spawner;
  log?: Logger;
}

export class Desktop {
  readonly #platform: NodeJS.Platform;
  readonly #spawn: Spawner;
  readonly #log: Logger | undefined;
  #warned = new Set<string>();

  constructor(options: DesktopOptions = {}) {
    this.#platform = options.platform ?? process.platform;
    this.#spawn = options.spawner ?? spawnDetached;
    this.#log = options.log;
  }

  /** Show a notification; never throws. */
  async notify(title: string, body: string): Promise<boolean> {
    if (this.#platform === 'darwin') {
      return this.#try('osascript', [
        '-e',
        'on run argv',
        '-e',
        'display notification (item 2 of argv) with title (item 1 of argv)',
        '-e',
        'end run',
        title,
        body,
      ]);
    }
    return this.#try('notify-send', ['--app-name=field-agent', title, body]);
  }

  /** Open a URL in the default browser; never throws. */
  async open(url: string): Promise<boolean> {
    return this.#try(this.#platform === 'darwin' ? 'open' : 'xdg-open', [url]);
  }

  async #try(cmd: string, args: string[]): Promise<boolean> {
    try {
      await this.#spawn(cmd, args);
      return true;
    } catch (err) {
      if (!this.#warned.has(cmd)) {
        this.#warned.add(cmd);
        this.#log?.warn(
          { event: 'desktop-command-failed', command: cmd, err },
          `${cmd} failed; desktop notifications may not show`,
        );
      }
      return false;
    }
  }
}
