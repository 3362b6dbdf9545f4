/**
 * The adapter from the running agent to the status page and the tray: it
 * turns `buildStatus()` (state/status.ts, read from the state's status summary: files,
 * verified, queued, at studio, safe to format) plus the live offload progress
 * (offload/progress.ts trackers: bytes, speed, ETA), the link state and the logger's
 * recent errors into one LiveSnapshot, and emits 'change' when any of
 * them moves.
 *
 * Wiring in `field-agent run` (ui/agent-ui.ts, AgentUi):
 *   const status = new AgentStatusProvider({
 *     status: () => buildStatus(state, config.policy.copiesBeforeFormat),
 *     errors: log.lastErrors,
 *   });
 *   offloadCard({ ..., onProgress: (p) => status.trackOffload(card.id, p) }, input)
 *     .finally(() => status.offloadDone(card.id));
 *   sync loop: status.setLink('connected' | 'connecting' | 'offline' | 'paused', studioUrl);
 *              status.changed() after each receipt is stored;
 *   card watcher: status.setPresent(card.id, false) when a card is pulled.
 */
import { EventEmitter } from 'node:events';
import type { ErrorRing } from '@studio321/protocol';
import type { AgentStatus, CardSummary } from '../state/status.js';
import type { ProgressSnapshot } from '@studio321/protocol';
import type { LiveSnapshot, LiveCard, LinkState, StatusProvider } from './snapshot.js';

/** What the adapter needs from a ProgressTracker. */
export interface ProgressSource {
  snapshot(): ProgressSnapshot;
}

export interface AgentStatusProviderOptions {
  /** The DB-derived status (status.ts buildStatus). */
  status: () => Promise<AgentStatus>;
  /** Recent errors (the logger's lastErrors). */
  errors?: ErrorRing;
  now?: () => Date;
}

export class AgentStatusProvider extends EventEmitter implements StatusProvider {
  readonly #o: AgentStatusProviderOptions;
  #offloads = new Map<string, ProgressSource>();
  #present = new Map<string, boolean>();
  #link: LiveSnapshot['link'] = { state: 'offline' };
  #inflight: Promise<LiveSnapshot> | undefined;
  readonly #onErrors = (): void => this.changed();

  constructor(options: AgentStatusProviderOptions) {
    super();
    this.#o = options;
    options.errors?.on('change', this.#onErrors);
  }

  /** Stop following the error ring (the agent is closing). */
  close(): void {
    this.#o.errors?.off('change', this.#onErrors);
  }

  /** Something the snapshot depends on moved. */
  changed(): void {
    this.emit('change');
  }

  /** An offload of `cardId` is running with this tracker (call on every progress tick). */
  trackOffload(cardId: string, progress: ProgressSource): void {
    this.#offloads.set(cardId, progress);
    this.#present.set(cardId, true);
    this.changed();
  }

  offloadDone(cardId: string): void {
    this.#offloads.delete(cardId);
    this.changed();
  }

  setPresent(cardId: string, present: boolean): void {
    if (this.#present.get(cardId) === present) return;
    this.#present.set(cardId, present);
    this.changed();
  }

  setLink(state: LinkState, studio?: string, offlineSince?: string): void {
    const l = this.#link;
    if (l.state === state && l.studio === studio && l.offlineSince === offlineSince) return;
    this.#link = {
      state,
      ...(studio === undefined ? {} : { studio }),
      ...(offlineSince === undefined ? {} : { offlineSince }),
    };
    this.changed();
  }

  /** Concurrent callers share one computation (a few state reads per card). */
  snapshot(): Promise<LiveSnapshot> {
    this.#inflight ??= this.#compute().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #compute(): Promise<LiveSnapshot> {
    const st = await this.#o.status();
    return {
      at: (this.#o.now?.() ?? new Date()).toISOString(),
      cards: st.cards.map((c) => this.#card(c)),
      queue: { ...st.queue },
      link: { ...this.#link },
      errors: this.#o.errors?.list() ?? [],
    };
  }

  #card(c: CardSummary): LiveCard {
    const live = this.#offloads.get(c.id)?.snapshot();
    let copiedFiles = c.verifiedFiles;
    let copiedBytes = c.verifiedBytes;
    let speed = 0;
    let eta: number | null = null;
    if (live) {
      // The tracker covers the files still to copy in this run; the rest were verified before.
      const bytesLeft = Math.max(0, live.totalBytes - live.bytes);
      const filesLeft = Math.max(0, live.totalFiles - live.files);
      copiedBytes = Math.min(c.bytes, Math.max(c.verifiedBytes, c.bytes - bytesLeft));
      copiedFiles = Math.min(c.files, Math.max(c.verifiedFiles, c.files - filesLeft));
      speed = live.bytesPerSec;
      eta = live.etaSec === undefined ? null : live.etaSec;
    }
    const present = this.#present.get(c.id);
    return {
      id: c.id,
      label: c.label,
      files: c.files,
      bytes: c.bytes,
      copiedFiles,
      copiedBytes,
      verifiedFiles: c.verifiedFiles,
      queuedFiles: c.queuedFiles,
      atStudioFiles: c.atStudioFiles,
      speedBytesPerSec: speed,
      etaSeconds: eta,
      safeToFormat: c.kind !== 'hot-folder' && c.safeToFormat.safe,
      reason: c.kind === 'hot-folder' ? 'hot folder: nothing to format' : c.safeToFormat.reason,
      ...(present === undefined ? {} : { present }),
      kind: c.kind,
      warnings: c.warnings.map((w) => ({ path: w.path, code: w.code, message: w.message })),
      offsiteFiles: c.offsiteFiles,
    };
  }
}
