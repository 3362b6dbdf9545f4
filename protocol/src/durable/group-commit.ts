/**
 * Group commit: items whose durable writes finished together are made to count together,
 * with ONE fsync per directory and ONE call of `record` (a synced database batch) for all
 * of them. The field agent's offload (agent/src/offload/offloader.ts, recording with
 * AgentState.recordFiles), its receipts (link/sync-pass.ts) and the studio's catalogue
 * (studiod/src/catalogue.ts) use it.
 *
 * A file written with `fsyncDir: false` (durableWrite, placeVerified) is fsync'd, read back
 * and linked under its final name; only its directory entry may still be lost in a power
 * cut. commit() queues the item with the directories it needs durable; the committer takes
 * every item queued so far, fsyncs each of their directories once, then calls `record` once
 * for the items whose directories are durable, and only then resolves each item's commit():
 * nothing counts before its names and its record are durable. Items queued while a group
 * is being written form the next group, so the group grows with the load and a lone item
 * waits for nothing (databases and restic's packer do the same).
 *
 * A directory that cannot be fsync'd fails only the items in it (as the durable write would
 * have: a DURABLE_* target error); a failed `record` fails every item of its group.
 */
import { fsyncTargetDir } from './durable-write.js';
import { nodeFs, type DurableFs } from './fs-facade.js';

interface Waiting<T> {
  item: T;
  dirs: readonly string[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<T> {
  readonly #record: (items: T[]) => Promise<void>;
  readonly #fs: DurableFs;
  #queue: Array<Waiting<T>> = [];
  #running = false;
  /** Groups recorded and items in them (tests and the benches read these). */
  groups = 0;
  items = 0;

  /** `record` writes the items of one group durably (one synced batch); it runs one group at a time. */
  constructor(record: (items: T[]) => Promise<void>, opts: { fs?: DurableFs } = {}) {
    this.#record = record;
    this.#fs = opts.fs ?? nodeFs;
  }

  /** Resolves once `dirs` are fsync'd and `item` is recorded in a group. */
  commit(item: T, dirs: readonly string[] = []): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ item, dirs, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const group = this.#queue;
        this.#queue = [];
        await this.#write(group);
      }
    } finally {
      this.#running = false;
    }
  }

  async #write(group: Array<Waiting<T>>): Promise<void> {
    const dirs = [...new Set(group.flatMap((w) => w.dirs))];
    const failed = new Map<string, unknown>();
    await Promise.all(
      dirs.map((d) =>
        fsyncTargetDir(d, this.#fs).catch((err: unknown) => {
          failed.set(d, err);
        }),
      ),
    );
    const ok: Array<Waiting<T>> = [];
    for (const w of group) {
      const bad = w.dirs.find((d) => failed.has(d));
      if (bad === undefined) ok.push(w);
      else w.reject(failed.get(bad));
    }
    if (ok.length === 0) return;
    try {
      await this.#record(ok.map((w) => w.item));
    } catch (err) {
      for (const w of ok) w.reject(err);
      return;
    }
    this.groups += 1;
    this.items += ok.length;
    for (const w of ok) w.resolve();
  }
}
