/**
 * Polls a VolumeSource and reports mounts that appear and disappear.
 *
 * The first poll reports every volume already mounted (a card inserted before
 * the agent started is offloaded too). Polls never overlap: the next one is
 * scheduled when the previous finished.
 */
import { EventEmitter } from 'node:events';
import type { Volume, VolumeSource } from './volume-source.js';

export interface VolumeWatcherEvents {
  mounted: [Volume];
  unmounted: [Volume];
  error: [unknown];
}

const keyOf = (v: Volume): string => `${v.device}\0${v.mountPoint}`;

export class VolumeWatcher extends EventEmitter<VolumeWatcherEvents> {
  readonly source: VolumeSource;
  readonly intervalMs: number;
  #known = new Map<string, Volume>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #poll: Promise<void> | undefined;

  constructor(source: VolumeSource, intervalMs: number) {
    super();
    this.source = source;
    this.intervalMs = intervalMs;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#poll;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#poll = this.pollOnce().finally(() => {
        this.#poll = undefined;
        if (this.#running) this.#schedule(this.intervalMs);
      });
    }, ms);
  }

  /** One poll: emit `mounted`/`unmounted` for the differences. */
  async pollOnce(): Promise<void> {
    let list: Volume[];
    try {
      list = await this.source.list();
    } catch (err) {
      this.emit('error', err);
      return;
    }
    const now = new Map(list.map((v) => [keyOf(v), v]));
    for (const [k, v] of this.#known) {
      if (!now.has(k)) {
        this.#known.delete(k);
        this.emit('unmounted', v);
      }
    }
    for (const [k, v] of now) {
      if (!this.#known.has(k)) {
        this.#known.set(k, v);
        this.emit('mounted', v);
      }
    }
  }
}
