/**
 * Group commit of the offload: files whose durable writes finished together are
 * made to count together, with one fsync per directory and ONE synced state batch.
 *
 * A file's durable write (fsyncDir: false) leaves it fsync'd, read back and linked
 * under its final name; only its directory entry may still be lost in a power cut.
 * commit() queues the file; the committer takes every file queued so far, fsyncs
 * each of their directories once, then records them all in one synced LevelDB batch
 * (AgentState.recordFiles), and only then resolves each file's commit(): nothing is
 * reported copied before its name and its record are durable. Files queued while a
 * batch is being written form the next batch, so the batch grows with the load and
 * a lone file waits for nothing (databases and restic's packer do the same).
 *
 * A directory that cannot be fsync'd fails only the files in it (as the durable write
 * would have: DURABLE_* target error); a failed state batch fails every file of it.
 */
import { fsyncTargetDir } from '@studio321/protocol/durable';
import type { AgentState, FileEntry } from '../state/agent-state.js';

interface Waiting {
  entry: FileEntry;
  dirs: readonly string[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  readonly #state: AgentState;
  #queue: Waiting[] = [];
  #running = false;
  /** Batches written and files in them (tests and the bench read these). */
  batches = 0;
  files = 0;

  constructor(state: AgentState) {
    this.#state = state;
  }

  /** Resolves once `dirs` are fsync'd and the entry is in a synced state batch. */
  commit(entry: FileEntry, dirs: readonly string[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ entry, dirs, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        await this.#write(batch);
      }
    } finally {
      this.#running = false;
    }
  }

  async #write(batch: Waiting[]): Promise<void> {
    const dirs = [...new Set(batch.flatMap((w) => w.dirs))];
    const failed = new Map<string, unknown>();
    await Promise.all(
      dirs.map((d) =>
        fsyncTargetDir(d).catch((err: unknown) => {
          failed.set(d, err);
        }),
      ),
    );
    const ok: Waiting[] = [];
    for (const w of batch) {
      const bad = w.dirs.find((d) => failed.has(d));
      if (bad === undefined) ok.push(w);
      else w.reject(failed.get(bad));
    }
    if (ok.length === 0) return;
    try {
      await this.#state.recordFiles(ok.map((w) => w.entry));
    } catch (err) {
      for (const w of ok) w.reject(err);
      return;
    }
    this.batches += 1;
    this.files += ok.length;
    for (const w of ok) w.resolve();
  }
}
