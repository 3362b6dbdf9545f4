/**
 * A watched hot folder (tethered shooting).
 *
 * Tethering software writes a file over seconds, so a file is handed over only
 * when it is complete and stable: regular file, size and mtime unchanged over
 * `stableMs` (checked again at the end of the window, never on the first event).
 * The copy itself re-checks the file (readCardFile): a file that changed while
 * it was copied is discarded and goes back to waiting for stability, so it is
 * never recorded with the wrong hash. Symlinks are never followed.
 * Files are handed over one at a time, in the order they became stable.
 */
import { lstat } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '@studio321/protocol';
import type { ScannedFile } from './scanner.js';
import { isOsLitter } from './scanner.js';
import { mtimeMsOf } from './source-reader.js';

export type StableResult = 'done' | 'retry';

export interface HotFolderOptions {
  dir: string;
  stableMs: number;
  /** Called for each stable file; 'retry' puts it back to wait for stability. */
  onStable: (file: ScannedFile) => Promise<StableResult>;
  log?: Logger;
}

const IGNORE_RE = /(\.s321tmp|\.tmp|\.part|\.crdownload|~)$/i;

export class HotFolder {
  readonly opts: HotFolderOptions;
  #watcher: FSWatcher | undefined;
  #pending = new Map<string, { size: number; mtimeMs: number; timer: NodeJS.Timeout }>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(opts: HotFolderOptions) {
    this.opts = opts;
  }

  async open(): Promise<void> {
    const w = watch(this.opts.dir, {
      ignoreInitial: false,
      followSymlinks: false,
      persistent: true,
      ignored: (p: string) => {
        const base = p.slice(p.lastIndexOf(sep) + 1);
        return base.startsWith('.') && p !== this.opts.dir ? true : isOsLitter(base) || IGNORE_RE.test(base);
      },
    });
    this.#watcher = w;
    w.on('add', (p) => this.#touch(p));
    w.on('change', (p) => this.#touch(p));
    w.on('error', (err) =>
      this.opts.log?.warn({ event: 'hot-folder-error', dir: this.opts.dir, err }, 'hot folder watch error'),
    );
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    await this.#watcher?.close();
    await this.#queue;
  }

  /** Files waiting for stability (for status and tests). */
  get waiting(): number {
    return this.#pending.size;
  }

  #touch(abs: string): void {
    if (this.#closed) return;
    void this.#check(abs, false);
  }

  /** Stable = the window elapsed (`fromTimer`) and size+mtime equal what was seen when it started. */
  async #check(abs: string, fromTimer: boolean): Promise<void> {
    if (this.#closed) return;
    const rel = relative(this.opts.dir, abs).split(sep).join('/');
    let st;
    try {
      st = await lstat(abs, { bigint: true });
    } catch {
      this.#forget(rel);
      return; // gone again (a tethering app's temp)
    }
    if (!st.isFile()) {
      this.#forget(rel);
      return;
    }
    const now = { size: Number(st.size), mtimeMs: mtimeMsOf(st) };
    const entry = this.#pending.get(rel);
    if (fromTimer && entry !== undefined && entry.size === now.size && entry.mtimeMs === now.mtimeMs) {
      this.#pending.delete(rel);
      this.#enqueue(abs, { path: rel, ...now });
      return;
    }
    if (entry !== undefined) clearTimeout(entry.timer);
    const timer = setTimeout(() => void this.#check(abs, true), this.opts.stableMs);
    this.#pending.set(rel, { ...now, timer });
  }

  #forget(rel: string): void {
    const old = this.#pending.get(rel);
    if (old !== undefined) clearTimeout(old.timer);
    this.#pending.delete(rel);
  }

  #enqueue(abs: string, file: ScannedFile): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#closed) return;
      let result: StableResult;
      try {
        result = await this.opts.onStable(file);
      } catch (err) {
        this.opts.log?.error(
          { event: 'hot-folder-ingest-failed', path: file.path, err },
          `ingesting ${file.path} from the hot folder failed`,
        );
        result = 'done';
      }
      if (result === 'retry' && !this.#closed) void this.#check(abs, false);
    });
  }
}
