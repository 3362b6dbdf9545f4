/**
 * Items handed to one worker thread in groups, one message a group: the items asked for while
 * groups are in flight form the next group (a lone item waits for nothing), at most
 * `groupsInFlight` groups at a time. Items marked `first` go ahead: they form a group of their
 * own, sent next (a few at a time, never a starving stream: the rest go as the group after it).
 * The small writer (small-writer.ts: the agent's offload) and studiod's small commits
 * (studiod/src/commit/small-commit.ts) each run their own worker through it.
 *
 * The worker starts on first use and is unref'd while idle, so it never keeps the process
 * alive. If it cannot start, `fallback` (when given) runs the group on this thread, else the
 * group fails; if it dies, the items of its groups fail and the next group starts a new one.
 * `inThread` (tests that inject faults into the file system) runs every group on this thread.
 */
import { Worker } from 'node:worker_threads';

export interface GroupRequest<I> {
  id: number;
  files: I[];
}

export type GroupReply<O> = { id: number; outcomes: O[] } | { id: number; fault: string };

export interface GroupWorkerOptions<I, O> {
  /** The worker's module: it answers each GroupRequest with one GroupReply. */
  url: URL;
  groupsInFlight: number;
  /** The error an item of a group gets when the worker failed as a whole (or is closed). */
  fault: (message: string) => Error;
  /** The error an item gets when its signal was aborted before its group was sent. */
  aborted?: (signal: AbortSignal) => Error;
  inThread?: (files: I[]) => Promise<O[]>;
  fallback?: (files: I[]) => Promise<O[]>;
}

interface Queued<I, O> {
  item: I;
  first: boolean;
  signal: AbortSignal | undefined;
  resolve: (o: O) => void;
  reject: (err: unknown) => void;
}

export class GroupWorker<I, O> {
  readonly #o: GroupWorkerOptions<I, O>;
  #worker: Worker | undefined;
  #queue: Queued<I, O>[] = [];
  readonly #inFlight = new Map<number, Queued<I, O>[]>();
  #nextId = 1;
  /** Groups answered and items in them (tests and the benches read these). */
  groups = 0;
  files = 0;

  constructor(opts: GroupWorkerOptions<I, O>) {
    this.#o = opts;
  }

  /** The item's outcome, as the worker gave it; rejects when the worker failed as a whole. */
  run(item: I, opts: { first?: boolean; signal?: AbortSignal } = {}): Promise<O> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, first: opts.first === true, signal: opts.signal, resolve, reject });
      if (this.#inFlight.size < this.#o.groupsInFlight) this.#next();
    });
  }

  #start(): Worker {
    // Plain JS worker: do not inherit loaders/hooks (test runners, coverage) from the parent.
    const w = new Worker(this.#o.url, { execArgv: [] });
    w.on('message', (m: GroupReply<O>) => this.#settle(m));
    const fail = (err: Error): void => {
      if (this.#worker !== w) return;
      this.#worker = undefined;
      for (const id of [...this.#inFlight.keys()]) this.#settle({ id, fault: err.message });
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`worker exited (code ${code})`)));
    return w;
  }

  #take(): Queued<I, O>[] {
    const live: Queued<I, O>[] = [];
    // An item whose signal was aborted while it waited is not sent.
    for (const q of this.#queue) {
      const s = q.signal;
      if (s?.aborted === true && this.#o.aborted !== undefined) q.reject(this.#o.aborted(s));
      else live.push(q);
    }
    const first = live.filter((q) => q.first);
    if (first.length > 0 && first.length < live.length) {
      this.#queue = live.filter((q) => !q.first);
      return first;
    }
    this.#queue = [];
    return live;
  }

  #next(): void {
    const group = this.#take();
    if (group.length === 0) {
      if (this.#inFlight.size === 0) this.#worker?.unref();
      return;
    }
    const id = this.#nextId++;
    this.#inFlight.set(id, group);
    const files = group.map((q) => q.item);
    const here = (run: (files: I[]) => Promise<O[]>): void => {
      void run(files).then(
        (outcomes) => this.#settle({ id, outcomes }),
        (err: unknown) => this.#settle({ id, fault: err instanceof Error ? err.message : String(err) }),
      );
    };
    if (this.#o.inThread !== undefined) {
      here(this.#o.inThread);
      return;
    }
    let w: Worker;
    try {
      w = this.#worker ??= this.#start();
    } catch (err) {
      if (this.#o.fallback !== undefined) here(this.#o.fallback);
      else this.#settle({ id, fault: err instanceof Error ? err.message : String(err) });
      return;
    }
    w.ref(); // a reply is due
    // Copied, not transferred: a caller may send the same bytes again (a retry, another name).
    w.postMessage({ id, files } satisfies GroupRequest<I>);
  }

  #settle(m: GroupReply<O>): void {
    const group = this.#inFlight.get(m.id);
    if (group === undefined) return;
    this.#inFlight.delete(m.id);
    if ('fault' in m) {
      const err = this.#o.fault(m.fault);
      for (const q of group) q.reject(err);
    } else {
      this.groups += 1;
      this.files += group.length;
      group.forEach((q, i) => {
        const o = m.outcomes[i];
        if (o === undefined) q.reject(this.#o.fault('no outcome for an item'));
        else q.resolve(o);
      });
    }
    this.#next();
  }

  /** Stops the worker (tests, orderly shutdown); items waiting or in flight fail with `err`. */
  async close(err: unknown): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    for (const q of [...[...this.#inFlight.values()].flat(), ...this.#queue]) q.reject(err);
    this.#inFlight.clear();
    this.#queue = [];
    await w?.terminate();
  }
}
