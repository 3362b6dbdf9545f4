/**
 * The face of `field-agent run`: the status provider fed by the runner, the
 * local status page and the tray. None of it is needed for the offload: a
 * status page that cannot bind its port or a tray that cannot show is logged
 * and the agent goes on.
 *
 *   open():  provider (follows runner events) → status page (127.0.0.1, token;
 *            its address with the token is written to <dataDir>/status-url, 0600;
 *            it also answers the field-agent CLI while this agent holds the state
 *            DB: status, ingest, sync, resolve, verify, eject, forget, report) → tray
 *            (or headless)
 *   close(): in reverse.
 */
import { rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { writeFileAtomic } from '@studio321/protocol/durable';
import type { Logger } from '@studio321/protocol';
import type { AgentRunner } from '../runner.js';
import type { CardReport } from '../offload/offload-card.js';
import { validateSegment, type ProgressTracker } from '@studio321/protocol';
import { buildStatus } from '../state/status.js';
import { resolveCardWarnings } from '../state/agent-state.js';
import type { SyncReport } from '../link/sync-loop.js';
import { LINK_CODES, LinkError } from '../link/errors.js';
import { AgentStatusProvider } from './status-provider.js';
import { DEFAULT_STATUS_PORT, StatusPage, type AgentCommand } from './status-page.js';
import type { StatusActions } from './snapshot.js';
import { Tray, type TrayMode } from './tray.js';
import { ejectCard } from '../offload/eject.js';
import { AGENT_CODES, AgentError } from '../errors.js';
import { verifyCopies } from '../offload/verify-card.js';
import { forgetCard } from '../offload/forget-card.js';
import { findCard } from '../state/agent-state.js';
import { buildOffloadReport } from '../state/card-report.js';
import { freeLaptopCopies } from '../state/free-laptop.js';
import { defaultVolumeSource, type VolumeSource } from '../card/volume-source.js';
import { STATUS_URL_FILE } from '../paths.js';

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
  /** A sync pass now and its report (`field-agent sync`), when the agent is paired. */
  syncNow?: (onProgress: (p: ProgressTracker) => void) => Promise<SyncReport>;
  /** The tray's Quit (e.g. requestShutdown from protocol/shutdown). */
  quit: () => void | Promise<void>;
  env?: NodeJS.ProcessEnv;
  /** Volumes for eject (default: the system's). */
  volumes?: VolumeSource;
}

/** Least time between two progress events streamed to a CLI (its own printer throttles further). */
const PROGRESS_EVENT_MS = 200;

/** Progress events for a streamed command: at most one per PROGRESS_EVENT_MS, and the last one on flush(). */
function progressEvents(emit: (e: Record<string, unknown>) => void): {
  tick: (p: ProgressTracker) => void;
  flush: () => void;
} {
  let last: ProgressTracker | undefined;
  let sentAt = 0;
  const send = (p: ProgressTracker): void => {
    sentAt = Date.now();
    emit({ event: 'progress', progress: p.snapshot() });
  };
  return {
    tick: (p) => {
      last = p;
      if (Date.now() - sentAt >= PROGRESS_EVENT_MS) send(p);
    },
    flush: () => {
      if (last !== undefined) send(last);
    },
  };
}

/** Runs `fn` with a progress follower that streams through `emit`, and sends the last state at the end. */
async function withProgress<T>(
  emit: (e: Record<string, unknown>) => void,
  fn: (tick: (p: ProgressTracker) => void) => Promise<T>,
): Promise<T> {
  const progress = progressEvents(emit);
  try {
    return await fn(progress.tick);
  } finally {
    progress.flush();
  }
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
      status: () =>
        buildStatus(
          options.runner.state,
          options.copiesNeeded,
          options.runner.opts.config.fieldDrives,
          options.runner.opts.config.store,
        ),
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
    const verify: AgentCommand = async (query, { emit, signal }) => {
      const { store, fieldDrives } = runner.opts.config;
      const outcome = await withProgress(emit, (onProgress) =>
        verifyCopies(
          runner.state,
          { store, fieldDrives, copiesNeeded: this.#o.copiesNeeded, onProgress, signal },
          query.get('card') ?? '',
        ),
      );
      if (outcome.lost.length > 0)
        log.error(
          { event: 'copies-lost', code: AGENT_CODES.copiesLost, lost: outcome.lost },
          `${outcome.lost.length} copies no longer match their BLAKE3 and stopped counting`,
        );
      this.provider.changed();
      return outcome;
    };
    const free: AgentCommand = async (query) => {
      const card = query.get('card') ?? '';
      const cards = card === '' ? undefined : [(await findCard(runner.state, card)).id];
      const { freeLaptop, fieldDrives } = runner.opts.config;
      const results =
        runner.sync?.free !== undefined
          ? await runner.sync.free(cards)
          : await freeLaptopCopies(
              runner.state,
              {
                policy: freeLaptop,
                ...(cards === undefined ? {} : { cards }),
                fieldDrives,
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
      commands: { ...this.#commands(), verify, free },
      ...(this.#o.sync ? { actions: this.#o.sync } : {}),
    });
    try {
      await page.open();
      this.#page = page;
      await writeFileAtomic(join(dataDir, STATUS_URL_FILE), `${page.url}\n`, { mode: 0o600 });
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

  /** What the field-agent CLI asks for while this agent holds the state DB (cli/running-agent.ts). */
  #commands(): Record<string, AgentCommand> {
    const { runner, copiesNeeded } = this.#o;
    const { config } = runner.opts;
    const usage = (message: string): AgentError => new AgentError(AGENT_CODES.usage, message);
    return {
      'agent-status': () => buildStatus(runner.state, copiesNeeded, config.fieldDrives, config.store),
      resolve: async (query) => {
        const r = await resolveCardWarnings(runner.state, query.get('card') ?? '');
        this.provider.changed();
        return r;
      },
      ingest: async (query, { emit, signal }) => {
        const root = query.get('root') ?? '';
        if (!isAbsolute(root)) throw usage(`ingest needs an absolute folder path, not "${root}"`);
        let shoot: string;
        try {
          shoot = validateSegment(query.get('shoot') ?? '');
        } catch (err) {
          throw new AgentError(AGENT_CODES.usage, 'the shoot must be one folder name', { cause: err });
        }
        const cardLabel = query.get('cardLabel');
        const rename = query.get('rename');
        return withProgress(emit, (onProgress) =>
          runner.ingest(
            {
              root,
              shoot,
              shootGiven: query.get('shootGiven') === '1',
              ...(cardLabel === null ? {} : { cardLabel }),
              ...(rename === null ? {} : { rename }),
            },
            { signal, onProgress, onFile: (card, file) => emit({ event: 'file', card, file }) },
          ),
        );
      },
      report: async (query) => buildOffloadReport(runner.state, await findCard(runner.state, query.get('card') ?? '')),
      forget: async (query) => {
        const result = await forgetCard(query.get('card') ?? '', {
          state: runner.state,
          copiesNeeded,
          force: query.get('force') === '1',
        });
        runner.opts.log.info(
          { event: 'card-forgotten', card: result.card, forced: result.forced },
          `${result.label} forgotten (no file deleted)`,
        );
        this.provider.changed();
        return result;
      },
      // The page's "Sync now": resumes a paused sync, then a pass now, its counts when it ends.
      'sync-now': async () => {
        const syncNow = this.#o.syncNow;
        if (syncNow === undefined)
          throw new LinkError(
            LINK_CODES.notPaired,
            'This agent is not paired with a studio, so there is nothing to sync to. Run `studioctl pair` at the studio, then `field-agent pair <url> <code>` here.',
          );
        this.#o.sync?.resumeSync();
        const pass = await syncNow(() => undefined);
        this.provider.changed();
        return {
          receipts: pass.receipts,
          filesSent: pass.filesSent,
          bytesSent: pass.bytesSent,
          failed: pass.failed.length,
        };
      },
      sync: async (_query, { emit }) => {
        const syncNow = this.#o.syncNow;
        if (syncNow === undefined)
          throw new LinkError(
            LINK_CODES.notPaired,
            'This agent is not paired with a studio: run `field-agent pair <url> <code>` first.',
          );
        const report = await withProgress(emit, (onProgress) => syncNow(onProgress));
        return { ...report, queue: await runner.state.queueDepth() };
      },
    };
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
