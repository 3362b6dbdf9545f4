/**
 * Clean shutdown on SIGTERM / SIGINT for the long-running programs
 * (`studiod`, `field-agent run`).
 *
 * Components register an async closer when they open (`onShutdown('catalogue',
 * () => catalogue.close())`); on the first signal the closers run once, in
 * reverse order of registration (the last thing opened is closed first), each
 * awaited before the next. Then the process exits: 0 when every closer finished
 * within the timeout, 1 otherwise. A second signal while closing exits at once
 * with 1 (an impatient Ctrl-C); systemd sends one SIGTERM, then SIGKILL after
 * TimeoutStopSec, which the unit sets above the default timeout here.
 */
import type { Logger } from './log.js';

export type Closer = () => Promise<void> | void;

export interface ShutdownOptions {
  /** How long all closers together may take; default 20 s. */
  timeoutMs?: number;
  /** Called with the exit code; default process.exit. */
  exit?: (code: number) => void;
  log?: Logger;
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 20_000;
const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

export class ShutdownController {
  #closers: { name: string; fn: Closer }[] = [];
  #running: Promise<number> | undefined;
  #installed = false;
  #options: ShutdownOptions;
  #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#running) {
      this.#options.log?.warn(
        { event: 'shutdown-forced', signal },
        `second ${signal} while shutting down: exiting now`,
      );
      this.#exit(1);
      return;
    }
    void this.runAndExit(signal);
  };

  constructor(options: ShutdownOptions = {}) {
    this.#options = options;
  }

  configure(options: ShutdownOptions): void {
    this.#options = { ...this.#options, ...options };
  }

  /** Register a closer; returns a function that unregisters it (for components closed earlier). */
  register(name: string, fn: Closer): () => void {
    if (typeof fn !== 'function') throw new TypeError('onShutdown needs a function');
    const entry = { name, fn };
    this.#closers.push(entry);
    return () => {
      const i = this.#closers.indexOf(entry);
      if (i >= 0) this.#closers.splice(i, 1);
    };
  }

  /** Listen for SIGTERM and SIGINT (idempotent). */
  install(): void {
    if (this.#installed) return;
    this.#installed = true;
    for (const s of SIGNALS) process.on(s, this.#onSignal);
  }

  uninstall(): void {
    if (!this.#installed) return;
    this.#installed = false;
    for (const s of SIGNALS) process.off(s, this.#onSignal);
  }

  get shuttingDown(): boolean {
    return this.#running !== undefined;
  }

  /**
   * Run every closer once, newest first. Resolves to the exit code
   * (0 clean, 1 a closer failed or the timeout passed); never rejects.
   * A second call returns the first call's promise.
   */
  run(reason: string): Promise<number> {
    this.#running ??= this.#runOnce(reason);
    return this.#running;
  }

  async #runOnce(reason: string): Promise<number> {
    const log = this.#options.log;
    const timeoutMs = this.#options.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    log?.info({ event: 'shutdown', reason }, `shutting down (${reason})`);
    let failed = false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref();
    });
    const closeAll = async (): Promise<void> => {
      for (const { name, fn } of [...this.#closers].reverse()) {
        try {
          await fn();
        } catch (err) {
          failed = true;
          log?.error({ event: 'shutdown-closer-failed', closer: name, err }, `closing ${name} failed`);
        }
      }
    };
    const outcome = await Promise.race([closeAll().then(() => 'done' as const), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      log?.error(
        { event: 'shutdown-timeout', code: 'SHUTDOWN_TIMEOUT', timeoutMs },
        `shutdown did not finish within ${timeoutMs} ms; exiting anyway`,
      );
      return 1;
    }
    log?.info({ event: 'shutdown-done', clean: !failed }, failed ? 'shut down with errors' : 'shut down cleanly');
    return failed ? 1 : 0;
  }

  /** run(), then exit with its code (what a signal does). */
  async runAndExit(reason: string): Promise<void> {
    this.#exit(await this.run(reason));
  }

  #exit(code: number): void {
    (this.#options.exit ?? ((c: number) => process.exit(c)))(code);
  }
}

const defaultController = new ShutdownController();

/**
 * Register `closer` to run on SIGTERM/SIGINT; installs the signal handlers on
 * first use. Returns an unregister function.
 */
export function onShutdown(name: string, closer: Closer): () => void {
  defaultController.install();
  return defaultController.register(name, closer);
}

/** Set the timeout, logger or exit function of the process-wide controller. */
export function configureShutdown(options: ShutdownOptions): void {
  defaultController.configure(options);
}

/** Shut down as if signalled (e.g. the tray's Quit): run the closers, then exit. */
export async function requestShutdown(reason: string): Promise<void> {
  await defaultController.runAndExit(reason);
}
