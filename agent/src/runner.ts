/**
 * `field-agent run`: the long-running agent.
 *
 *   open():  state DB → targets → sweep stale temps (whole store) → volume watcher
 *            (cards, one offload at a time so a dual-slot pair is stored once)
 *            → hot folders → startSync hook (the link client's sync loop)
 *            → field-drive back-fill (queued like a card)
 *   Each mount (a card, or the field drive plugged in) re-checks the field drive:
 *   cards offloaded while it was away get their copy on it (backfill.ts).
 *   ingest(): a folder given by `field-agent ingest` while the agent runs, offloaded in turn
 *            with the cards (the same queue), followed on the status page like a card.
 *   close(): in reverse; a running offload is aborted (AGENT_ABORTED, resumes next start).
 *
 * The sync loop plugs in through `startSync`: one call, given the open state.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '@studio321/protocol';
import { AgentState } from './state/agent-state.js';
import type { AgentConfig } from './config.js';
import { defaultShootName } from './config.js';
import type { AgentPaths } from './paths.js';
import { isFieldDrive, resolveTargets, type AgentTarget } from './targets.js';
import { sweepAll } from './offload/recovery.js';
import { VolumeWatcher } from './card/volume-watcher.js';
import { defaultVolumeSource, isSystemVolume, type Volume, type VolumeSource } from './card/volume-source.js';
import { detectCameraLayouts } from './card/detector.js';
import { scanCard } from './card/scanner.js';
import { cardIdentity, cardLabel, hotFolderIdentity, readVolumeLabels } from './card/identity.js';
import { offloadCard, reportSummary, type CardReport } from './offload/offload-card.js';
import { HotFolder, type StableResult } from './card/hot-folder.js';
import { CardOffloader, OffloadStop } from './offload/offloader.js';
import type { ProgressTracker } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from './errors.js';
import type { ScannedFile } from './card/scanner.js';
import { backfillFieldDrive, type BackfillReport } from './offload/backfill.js';
import { ingestFolder, type IngestOutcome, type IngestRequest } from './offload/ingest-folder.js';
import { checkRenameTemplates, renameFor } from './offload/rename-template.js';
import type { FileOutcome } from './offload/offloader.js';
import type { SyncReport } from './link/sync-loop.js';

export interface SyncContext {
  state: AgentState;
  config: AgentConfig;
  paths: AgentPaths;
  log: Logger;
  signal: AbortSignal;
}

/** What startSync returns: something to close on shutdown, and optionally its state and pause/resume. */
export interface SyncHandle {
  close(): Promise<void>;
  status?(): { state: string; receipts: number; lastError?: string; offlineSince?: string };
  /** A pass now and its report (`field-agent sync` while the agent runs). */
  syncNow?(onProgress: (p: ProgressTracker) => void): Promise<SyncReport>;
  pauseSync?(): Promise<void>;
  resumeSync?(): void;
  /** `field-agent free` through the running agent (state/free-laptop.ts), verdicts re-asked over the live link. */
  free?(cards?: string[]): Promise<unknown>;
}

export interface AgentRunnerOptions {
  paths: AgentPaths;
  config: AgentConfig;
  log: Logger;
  volumeSource?: VolumeSource;
  /** The studio link's sync loop (agent/src/sync*.ts); started after everything else is open. */
  startSync?: (ctx: SyncContext) => Promise<SyncHandle | undefined>;
}

export interface AgentRunnerEvents {
  'card-start': [{ id: string; label: string; mountPoint: string }];
  progress: [{ id: string; progress: ProgressTracker }];
  'card-done': [CardReport];
  'hot-file': [{ folder: string; path: string; result: string; code?: string }];
  backfill: [BackfillReport];
}

export class AgentRunner extends EventEmitter<AgentRunnerEvents> {
  readonly opts: AgentRunnerOptions;
  #state: AgentState | undefined;
  #targets: AgentTarget[] = [];
  #watcher: VolumeWatcher | undefined;
  #hotFolders: HotFolder[] = [];
  #sync: SyncHandle | undefined;
  #abort = new AbortController();
  #cardQueue: Promise<void> = Promise.resolve();
  #active = new Map<string, AbortController>();
  /** Field drives whose absence was logged (by target name). */
  readonly #fieldDrivesWarned = new Set<string>();
  #storeWarned = false;

  constructor(opts: AgentRunnerOptions) {
    super();
    this.opts = opts;
  }

  get state(): AgentState {
    if (this.#state === undefined) throw new TypeError('AgentRunner is not open');
    return this.#state;
  }

  async open(): Promise<void> {
    const { config, paths, log } = this.opts;
    // A rename template with a typo is refused at start, before any card is copied.
    checkRenameTemplates(config);
    this.#state = await AgentState.open(paths.dataDir);
    try {
      await this.#refreshTargets();
      const swept = await sweepAll(this.#targets);
      if (swept > 0)
        log.info(
          { event: 'swept-temps', count: swept },
          `removed ${swept} stale temp file(s) left by an interrupted copy`,
        );
      this.#watcher = new VolumeWatcher(this.opts.volumeSource ?? defaultVolumeSource(), config.pollIntervalMs);
      this.#watcher.on('mounted', (v) => this.#onMounted(v));
      this.#watcher.on('unmounted', (v) =>
        this.#active
          .get(v.mountPoint)
          ?.abort(new AgentError(AGENT_CODES.cardRemoved, `${v.mountPoint} was unmounted`, { retryable: true })),
      );
      this.#watcher.on('error', (err) =>
        log.warn({ event: 'volume-poll-failed', err }, 'listing mounted volumes failed; will retry'),
      );
      if (config.watchVolumes !== false) this.#watcher.start();
      for (const dir of config.hotFolders) await this.#openHotFolder(dir);
      if (this.opts.startSync !== undefined) {
        const handle = await this.opts.startSync({
          state: this.#state,
          config,
          paths,
          log,
          signal: this.#abort.signal,
        });
        if (handle !== undefined) this.#sync = handle;
      }
      this.#queueBackfill();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** The running studio sync loop, when the agent is paired (undefined before open() or when not paired). */
  get sync(): SyncHandle | undefined {
    return this.#sync;
  }

  async close(): Promise<void> {
    this.#abort.abort(new AgentError(AGENT_CODES.aborted, 'field-agent is shutting down', { retryable: true }));
    await this.#sync?.close().catch((err: unknown) => this.opts.log.warn({ err }, 'closing the sync loop failed'));
    for (const h of this.#hotFolders) await h.close();
    await this.#watcher?.stop();
    for (const c of this.#active.values()) c.abort(this.#abort.signal.reason);
    await this.#cardQueue;
    await this.#state?.close();
    this.#state = undefined;
  }

  /**
   * `field-agent ingest` while the agent runs (asked through the status page): the folder waits
   * for the card or back-fill before it (one offload at a time, so a dual-slot pair is stored
   * once), then is offloaded like a card. `signal`: the asking command went away.
   */
  ingest(
    req: IngestRequest,
    hooks: {
      signal: AbortSignal;
      onFile?: (card: string, o: FileOutcome) => void;
      onProgress?: (p: ProgressTracker) => void;
    },
  ): Promise<IngestOutcome> {
    const { config, log } = this.opts;
    const run = this.#cardQueue.then(async () => {
      const signal = AbortSignal.any([this.#abort.signal, hooks.signal]);
      signal.throwIfAborted();
      let card = '';
      return ingestFolder(
        {
          state: this.state,
          store: config.store,
          fieldDrives: config.fieldDrives,
          copiesNeeded: config.policy.copiesBeforeFormat,
          renaming: config,
          log,
          signal,
          sweepTemps: false,
          ...(hooks.onFile === undefined ? {} : { onFile: hooks.onFile }),
          onCardStart: (c) => {
            card = c.id;
            log.info({ event: 'ingest', card: c.id, root: req.root }, `ingesting ${req.root} as ${c.label} (${c.id})`);
            this.emit('card-start', c);
          },
          onProgress: (progress) => {
            this.emit('progress', { id: card, progress });
            hooks.onProgress?.(progress);
          },
          onReport: (report) => {
            log.info({ event: 'card-done', card: report.card.id }, reportSummary(report));
            this.emit('card-done', report);
          },
        },
        req,
      );
    });
    this.#cardQueue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Resolves when every card queued so far has been handled (tests, status). */
  idle(): Promise<void> {
    return this.#cardQueue;
  }

  #onMounted(v: Volume): void {
    if (isSystemVolume(v)) return;
    this.#cardQueue = this.#cardQueue
      .then(() => this.#handleVolume(v))
      .catch((err: unknown) => {
        this.opts.log.error(
          { event: 'card-failed', mountPoint: v.mountPoint, err },
          `offloading ${v.mountPoint} failed`,
        );
      });
    // The new volume may be the field drive: files offloaded without it get their copy now.
    this.#queueBackfill();
  }

  /** Re-checks the laptop store and the field drives (plugged in or pulled since the last look). */
  async #refreshTargets(): Promise<void> {
    const { config, log } = this.opts;
    const had = new Set(this.#targets.filter((t) => isFieldDrive(t.name)).map((t) => t.name));
    let resolved;
    try {
      resolved = await resolveTargets(config.store, config.fieldDrives, {
        storeHasCopies: () => this.state.hasCopiesUnder('laptop', config.store),
      });
    } catch (err) {
      // The laptop store's disk is not there: nothing is offloaded until it is back.
      if (!(err instanceof AgentError && err.code === AGENT_CODES.storeUnavailable)) throw err;
      if (this.#targets.length > 0 || !this.#storeWarned) log.warn({ event: 'store-unavailable', err }, err.message);
      this.#storeWarned = true;
      this.#targets = [];
      return;
    }
    this.#storeWarned = false;
    this.#targets = resolved.targets;
    await this.state.refreshLegacyDevices(resolved.targets);
    // Each drive's absence is said once (at start, or when it is pulled), not at every look.
    for (const problem of resolved.fieldDriveProblems) {
      const name = String(problem.detail?.['target'] ?? '');
      if (had.has(name) || !this.#fieldDrivesWarned.has(name)) {
        this.#fieldDrivesWarned.add(name);
        log.warn({ err: problem }, problem.message);
      }
    }
    for (const t of resolved.targets)
      if (isFieldDrive(t.name) && !had.has(t.name))
        log.info({ event: 'field-drive', target: t.name, root: t.root }, `field drive ${t.root} is connected`);
  }

  #queueBackfill(): void {
    if (this.opts.config.fieldDrives.length === 0) return;
    this.#cardQueue = this.#cardQueue
      .then(async () => {
        if (this.#abort.signal.aborted) return;
        await this.#refreshTargets();
        if (!this.#targets.some((t) => isFieldDrive(t.name))) return;
        const report = await backfillFieldDrive({
          state: this.state,
          targets: this.#targets,
          signal: this.#abort.signal,
          log: this.opts.log,
        });
        if (report.missing > 0) this.emit('backfill', report);
      })
      .catch((err: unknown) => {
        this.opts.log.error(
          { event: 'backfill-failed', err },
          'the field-drive back-fill failed; it is tried again at the next mount',
        );
      });
  }

  async #handleVolume(v: Volume): Promise<void> {
    if (this.#abort.signal.aborted) return;
    const layouts = await detectCameraLayouts(v.mountPoint);
    if (layouts.length === 0) return;
    const { log, config } = this.opts;
    const ctrl = new AbortController();
    const onStop = (): void => ctrl.abort(this.#abort.signal.reason);
    this.#abort.signal.addEventListener('abort', onStop, { once: true });
    this.#active.set(v.mountPoint, ctrl);
    try {
      await this.#refreshTargets();
      if (this.#targets.length === 0) return; // the laptop store is unavailable (logged)
      const scan = await scanCard(v.mountPoint, { signal: ctrl.signal });
      const labels = await readVolumeLabels(v.device);
      const identity = cardIdentity({
        label: cardLabel(labels, v.mountPoint),
        ...(labels.uuid === undefined ? {} : { uuid: labels.uuid }),
        files: scan.files,
      });
      log.info(
        { event: 'card-inserted', card: identity.id, mountPoint: v.mountPoint, layouts, files: scan.files.length },
        `card ${identity.label} (${identity.id}) inserted at ${v.mountPoint}`,
      );
      this.emit('card-start', { id: identity.id, label: identity.label, mountPoint: v.mountPoint });
      const shoot = config.shoot ?? defaultShootName();
      const rename = renameFor(config, shoot);
      const report = await offloadCard(
        {
          state: this.state,
          targets: this.#targets,
          signal: ctrl.signal,
          log,
          ...(rename === undefined ? {} : { rename }),
          onProgress: (progress) => this.emit('progress', { id: identity.id, progress }),
        },
        {
          root: v.mountPoint,
          card: {
            id: identity.id,
            label: identity.label,
            ...(identity.uuid === undefined ? {} : { uuid: identity.uuid }),
            kind: 'card',
            source: v.mountPoint,
            shoot,
          },
          scan,
        },
      );
      if (report.stoppedBy !== undefined)
        log.warn({ event: 'card-stopped', card: identity.id, err: report.stoppedBy }, report.stoppedBy.message);
      else log.info({ event: 'card-done', card: identity.id }, reportSummary(report));
      this.emit('card-done', report);
    } finally {
      this.#abort.signal.removeEventListener('abort', onStop);
      this.#active.delete(v.mountPoint);
    }
  }

  async #openHotFolder(dir: string): Promise<void> {
    const { config, log } = this.opts;
    const identity = hotFolderIdentity(dir);
    const card = await this.state.beginOffload({
      id: identity.id,
      label: identity.label,
      kind: 'hot-folder',
      source: dir,
      store: config.store,
      shoot: config.shoot ?? defaultShootName(),
    });
    const onStable = async (file: ScannedFile): Promise<StableResult> => {
      const rec = await this.state.recordSeen(card.id, file);
      if (!(await this.state.needsCopy(rec, config.store))) return 'done';
      await this.#refreshTargets(); // a field drive pulled or plugged in since the last file
      if (this.#targets.length === 0) return 'done'; // the laptop store is unavailable (logged)
      const rename = renameFor(config, card.shoot);
      const offloader = new CardOffloader(
        {
          state: this.state,
          targets: this.#targets,
          signal: this.#abort.signal,
          log,
          sourceStillWritten: true,
          ...(rename === undefined ? {} : { rename }),
        },
        card,
        dir,
      );
      try {
        const [o] = await offloader.run([rec]);
        this.emit('hot-file', {
          folder: dir,
          path: file.path,
          result: o?.result ?? 'failed',
          ...(o?.code === undefined ? {} : { code: o.code }),
        });
        return o?.code === AGENT_CODES.sourceChanged ? 'retry' : 'done';
      } catch (err) {
        if (!(err instanceof OffloadStop)) throw err;
        log.error({ event: 'hot-folder-stopped', folder: dir, err: err.error }, err.error.message);
        this.emit('hot-file', { folder: dir, path: file.path, result: 'failed', code: err.error.code });
        return 'done';
      }
    };
    const hf = new HotFolder({ dir, stableMs: config.hotFolderStableMs, onStable, log });
    await hf.open();
    this.#hotFolders.push(hf);
    log.info({ event: 'hot-folder', dir, card: card.id }, `watching hot folder ${dir}`);
  }
}
