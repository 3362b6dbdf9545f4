/**
 * The commit intents of the folders commits write in (docs/design.md §Studio write order, step 4):
 * one durable `intent!<folder>` record per target folder while any commit may have a temp file
 * in it, not one `intent!<hash>` per commit. A card's files go to the same two folders, so the
 * first commit into them writes their records (a synced batch it waits for, as before) and the
 * commits after it find them durable and write nothing; the commit that leaves a folder with no
 * other commit in it deletes its record in its own catalogue batch. The next start sweeps the
 * folders of the records left by a crash, as it did the folders of each commit's intent.
 *
 * Ordering: a record is deleted only by an operation queued (synchronously, in the catalogue's
 * group commit) when no commit holds its folder; a commit that takes the folder afterwards
 * queues its put after that delete, in the same batch or a later one, so the put wins.
 */
import type { Catalogue } from '../catalogue.js';

interface Held {
  /** Commits in flight that may write temps in this folder. */
  users: number;
  /** The folder's record being written or written (undefined: not written by this process, or its write failed). */
  durable: Promise<void> | undefined;
}

export class FolderIntents {
  readonly #catalogue: Catalogue;
  readonly #now: () => number;
  readonly #held = new Map<string, Held>();

  constructor(catalogue: Catalogue, now: () => number = Date.now) {
    this.#catalogue = catalogue;
    this.#now = now;
  }

  /** Resolves once every folder of `dirs` has its durable record; the caller must release them (once). */
  async acquire(dirs: readonly string[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const missing: string[] = [];
    for (const dir of dirs) {
      let h = this.#held.get(dir);
      if (h === undefined) {
        h = { users: 0, durable: undefined };
        this.#held.set(dir, h);
      }
      h.users++;
      if (h.durable === undefined) missing.push(dir);
      else waits.push(h.durable);
    }
    if (missing.length > 0) {
      let put: Promise<void>;
      try {
        put = this.#catalogue.putFolderIntents(missing, this.#now());
      } catch (err) {
        this.release(dirs); // the catalogue is closed: nothing was queued
        throw err;
      }
      for (const dir of missing) (this.#held.get(dir) as Held).durable = put;
      put.catch(() => {
        // Not written: the next commit into the folder writes it again.
        for (const dir of missing) {
          const h = this.#held.get(dir);
          if (h?.durable === put) h.durable = undefined;
        }
      });
      waits.push(put);
    }
    try {
      await Promise.all(waits);
    } catch (err) {
      await this.releaseAndClear(dirs);
      throw err;
    }
  }

  /**
   * The commit holds no temp in `dirs` any more (its copies are linked, its temps removed): the
   * folders no other commit holds now, whose records its catalogue batch deletes
   * (CommitRecord.clearIntents). Call it right before queueing that batch, with no await between.
   */
  release(dirs: readonly string[]): string[] {
    const idle: string[] = [];
    for (const dir of dirs) {
      const h = this.#held.get(dir);
      if (h === undefined) continue;
      h.users--;
      if (h.users > 0) continue;
      this.#held.delete(dir);
      idle.push(dir);
    }
    return idle;
  }

  /** release() for a commit that failed (its temps removed) or whose batch failed: the idle folders' records deleted on their own. */
  async releaseAndClear(dirs: readonly string[]): Promise<void> {
    await this.clearIdle(this.release(dirs));
  }

  /** Deletes the records of the folders of `dirs` that no commit holds now (one queued batch). */
  async clearIdle(dirs: readonly string[]): Promise<void> {
    const idle = dirs.filter((d) => !this.#held.has(d));
    if (idle.length === 0) return;
    try {
      await this.#catalogue.clearIntents(idle);
    } catch {
      // Not deleted (a failed batch, a catalogue closing: it throws at once): the next start sweeps them.
    }
  }
}
