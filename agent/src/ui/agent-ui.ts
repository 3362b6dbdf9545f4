/**
 * The face of `field-agent run`: the status provider fed by the runner, the
 * local status page and the tray. None of it is needed for the offload: a
 * status page that cannot bind its port or a tray that cannot show is logged
 * and the agent goes on.
 *
 *   open():  provider (follows runner events) → status page (127.0.0.1, token;
 *            its address with the token is written to <dataDir>/status-url, 0600)
 *            → tray (or headless)
 *   close(): in reverse.
 */
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@studio321/protocol';
import type { AgentRunner } from '../runner.js';
import type { CardReport } from '../offload/offload-card.js';
import type { ProgressTracker } from '@studio321/protocol';
import { buildStatus } from '../state/status.js';
import { AgentStatusProvider } from './status-provider.js';
import { DEFAULT_STATUS_PORT, StatusPage } from './status-page.js';
import type { StatusActions } from './snapshot.js';
import { Tray, type TrayMode } from './tray.js';
import { ejectCard } from '../offload/eject.js';
import { AGENT_CODES } from '../errors.js';
import { verifyCopies } from '../offload/verify-card.js';
import { findCard } from '../state/agent-state.js';
import { freeLaptopCopies } from '../state/free-laptop.js';
import { defaultVolumeSource, type VolumeSource } from '../card/volume-source.js';

export const STATUS_URL_FILE = 'status-url';

export interface AgentUiOptions {
  runner: AgentRunner;
  copiesNeeded: number;
  dataDir: string;
  log: Logger;
  /** 127.0.0.1 port of the status page; default 7322, 0 picks one. */
  statusPort?: number;
  /** Show the tray icon when a desktop is there (default true). */
  tray?: boolean;
  /** Pause/resume of the studio sync, when the sync loop offers it. */
  sync?: StatusActions;
  /** The tray's Quit (e.g. requestShutdown from protocol/shutdown). */
  quit: () => void | Promise<void>;
  env?: NodeJS.ProcessEnv;
  /** Volumes for eject (default: the system's). */
  volumes?: VolumeSource;
}

export class AgentUi {
  readonly #o: AgentUiOptions;
  readonly provider: AgentStatusProvider;
  #page: StatusPage | undefined;
  #tray: Tray | undefined;
  #open = false;
  readonly #onProgress = (e: { id: string; progress: ProgressTracker }): void =>
    this.provider.trackOffload(e.id, e.progress);
  readonly #onCardStart = (e: { id: string }): void => this.provider.setPresent(e.id, true);
  readonly #onCardDone = (r: CardReport): void => this.provider.offloadDone(r.card.id);
  readonly #onHotFile = (): void => this.provider.changed();

  constructor(options: AgentUiOptions) {
    this.#o = options;
    this.provider = new AgentStatusProvider({
      status: () => buildStatus(options.runner.state, options.copiesNeeded, options.runner.opts.config.fieldDrive),
      errors: options.log.lastErrors,
    });
  }

  /** The status page address with its token, once open (undefined when the page could not start). */
  get statusUrl(): string | undefined {
    return this.#page?.state === 'open' ? this.#page.url : undefined;
  }

  get trayMode(): TrayMode | undefined {
    return this.#tray?.mode;
  }

  async open(): Promise<void> {
    if (this.#open) throw new TypeError('AgentUi.open() twice');
    this.#open = true;
    const { runner, log, dataDir } = this.#o;
    runner.on('progress', this.#onProgress);
    runner.on('card-start', this.#onCardStart);
    runner.on('card-done', this.#onCardDone);
    runner.on('hot-file', this.#onHotFile);

    const eject = async (card: string): Promise<unknown> => {
      const result = await ejectCard(card, {
        state: runner.state,
        copiesNeeded: this.#o.copiesNeeded,
        volumes: this.#o.volumes ?? defaultVolumeSource(),
      });
      log.info(
        { event: 'card-ejected', card: result.card, mountPoint: result.mountPoint, method: result.method },
        `${result.label} ejected`,
      );
      this.provider.setPresent(result.card, false);
      return result;
    };
    const verify = async (card: string): Promise<unknown> => {
      const { store, fieldDrive } = runner.opts.config;
      const outcome = await verifyCopies(runner.state, { store, fieldDrive, copiesNeeded: this.#o.copiesNeeded }, card);
      if (outcome.lost.length > 0)
        log.error(
          { event: 'copies-lost', code: AGENT_CODES.copiesLost, lost: outcome.lost },
          `${outcome.lost.length} copies no longer match their BLAKE3 and stopped counting`,
        );
      this.provider.changed();
      return outcome;
    };
    const free = async (card: string): Promise<unknown> => {
      const cards = card === '' ? undefined : [(await findCard(runner.state, card)).id];
      const { freeLaptop, fieldDrive } = runner.opts.config;
      const results =
        runner.sync?.free !== undefined
          ? await runner.sync.free(cards)
          : await freeLaptopCopies(
              runner.state,
              {
                policy: freeLaptop,
                ...(cards === undefined ? {} : { cards }),
                ...(fieldDrive === undefined ? {} : { fieldDrive }),
                log,
              },
              true,
            );
      this.provider.changed();
      return { cards: results };
    };
    const page = new StatusPage({
      provider: this.provider,
      dataDir,
      port: this.#o.statusPort ?? DEFAULT_STATUS_PORT,
      log,
      eject,
      verify,
      free,
      ...(this.#o.sync ? { actions: this.#o.sync } : {}),
    });
    try {
      await page.open();
      this.#page = page;
      await writeFile(join(dataDir, STATUS_URL_FILE), `${page.url}\n`, { mode: 0o600 });
      await chmod(join(dataDir, STATUS_URL_FILE), 0o600); // also when an older file had looser bits
    } catch (err) {
      log.error(
        { event: 'status-page-unavailable', err },
        'the status page cannot be served; the agent goes on without it',
      );
    }

    if (this.#o.tray !== false) {
      const tray = new Tray({
        provider: this.provider,
        statusUrl: () => this.statusUrl ?? '',
        actions: { quit: this.#o.quit, ...(this.#o.sync ? { sync: this.#o.sync } : {}) },
        dataDir,
        log,
        ...(this.#o.env ? { env: this.#o.env } : {}),
      });
      await tray.open();
      this.#tray = tray;
    }
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    const { runner } = this.#o;
    runner.off('progress', this.#onProgress);
    runner.off('card-start', this.#onCardStart);
    runner.off('card-done', this.#onCardDone);
    runner.off('hot-file', this.#onHotFile);
    await this.#tray?.close();
    this.#tray = undefined;
    if (this.#page) {
      await this.#page.close();
      await rm(join(this.#o.dataDir, STATUS_URL_FILE), { force: true });
      this.#page = undefined;
    }
    this.provider.close();
  }
}
