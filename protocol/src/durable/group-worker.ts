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
 *
 * Queues with a `lane` share one worker per module (one thread, one isolate: about 10 MiB each):
 * each lane has its own groups in flight, so one lane's groups never wait for another's replies;
 * requests and replies carry the lane. The worker is unref'd once no lane has a group in flight,
 * and closing a lane terminates it only when no other lane uses it.
 */
import { Worker } from 'node:worker_threads';

export interface GroupRequest<I> {
  id: number;
  files: I[];
  lane?: string;
}

export type GroupReply<O> = ({ id: number; outcomes: O[] } | { id: number; fault: string }) & { lane?: string };

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
  /** This queue's lane in the worker of `url` that queues with a lane share (see the header). */
  lane?: string;
}

/** A worker shared by lanes: the lanes attached to it and those with a group in flight. */
interface Shared {
  worker: Worker;
  lanes: Set<object>;
  busy: Set<object>;
}

/** The shared worker of each module url, while it runs. */
const sharedWorkers = new Map<string, Shared>();

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
  /** The worker shared with other lanes (a `lane`), else undefined. */
  #shared: Shared | undefined;
  /** Removes this queue's listeners from its worker. */
  #off: (() => void) | undefined;
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

  /**
   * Starts the worker now, unref'd like an idle one, so that the first group does not wait for it
   * to boot (about 100 ms here, on another core while the caller loads the rest of its program).
   * Nothing when it runs in this thread or already runs; a worker that cannot start is left to the
   * first group (its `fallback`, or its failure).
   */
  warm(): void {
    if (this.#o.inThread !== undefined || this.#worker !== undefined) return;
    try {
      this.#worker = this.#start();
    } catch {
      return;
    }
    this.#idle(); // no group was sent to it
  }

  #start(): Worker {
    const lane = this.#o.lane;
    const key = this.#o.url.href;
    let shared = lane === undefined ? undefined : sharedWorkers.get(key);
    // Plain JS worker: do not inherit loaders/hooks (test runners, coverage) from the parent.
    const w = shared?.worker ?? new Worker(this.#o.url, { execArgv: [] });
    if (lane !== undefined && shared === undefined) {
      const made: Shared = { worker: w, lanes: new Set(), busy: new Set() };
      shared = made;
      sharedWorkers.set(key, made);
      const forget = (): void => {
        if (sharedWorkers.get(key) === made) sharedWorkers.delete(key);
      };
      w.once('exit', forget);
      w.once('error', forget);
    }
    shared?.lanes.add(this);
    this.#shared = shared;
    const onMessage = (m: GroupReply<O>): void => {
      if (m.lane === lane) this.#settle(m);
    };
    const fail = (err: Error): void => {
      if (this.#worker !== w) return;
      this.#detach();
      for (const id of [...this.#inFlight.keys()]) this.#settle({ id, fault: err.message });
    };
    const onExit = (code: number): void => fail(new Error(`worker exited (code ${code})`));
    w.on('message', onMessage);
    w.on('error', fail);
    w.on('exit', onExit);
    this.#off = () => {
      w.off('message', onMessage);
      w.off('error', fail);
      w.off('exit', onExit);
    };
    return w;
  }

  /** This queue no longer uses its worker (it died, or the queue is closed). */
  #detach(): void {
    this.#off?.();
    this.#off = undefined;
    this.#shared?.lanes.delete(this);
    this.#shared?.busy.delete(this);
    this.#shared = undefined;
    this.#worker = undefined;
  }

  /** The worker may let the process exit: no group of this queue (or of any lane sharing it) in flight. */
  #idle(): void {
    const shared = this.#shared;
    shared?.busy.delete(this);
    if (shared === undefined || shared.busy.size === 0) this.#worker?.unref();
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
      if (this.#inFlight.size === 0) this.#idle();
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
    this.#shared?.busy.add(this);
    // Copied, not transferred: a caller may send the same bytes again (a retry, another name).
    const lane = this.#o.lane;
    w.postMessage({ id, files, ...(lane === undefined ? {} : { lane }) } satisfies GroupRequest<I>);
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
    const others = (this.#shared?.lanes.size ?? 1) > 1;
    this.#detach();
    for (const q of [...[...this.#inFlight.values()].flat(), ...this.#queue]) q.reject(err);
    this.#inFlight.clear();
    this.#queue = [];
    if (others) {
      // Other lanes still use the worker: let it exit only once they are idle too.
      if (w !== undefined && [...(sharedWorkers.get(this.#o.url.href)?.busy ?? [])].length === 0) w.unref();
      return;
    }
    await w?.terminate();
  }
}
