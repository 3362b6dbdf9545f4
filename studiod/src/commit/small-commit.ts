/**
 * Small files committed in groups (docs/design.md §Studio write order, "Small files"): a file
 * of at most SMALL_COMMIT_BYTES arrives whole in memory (file-receiver.ts keeps it there instead
 * of staging it), and the file-system work of every small commit that is ready while the
 * previous group is being written goes to small-commit-worker.ts in ONE message: both copies
 * written, fdatasync'd, read back and hashed, linked under their final names, each folder
 * fsync'd once. Committer.commitSmall (commit.ts) does the rest around it on the main thread:
 * names, the intent before any final name can appear, the catalogue record after both copies
 * are verified (both grouped by the catalogue's group commit), the Receipt.
 *
 * Memory: the bytes of the files in flight (the receiver bounds them by its window), and a copy
 * of the group being written in the worker.
 */
import { Worker } from 'node:worker_threads';
import type { StudioCopy } from '@studio321/protocol';
import type { DurableTarget } from '@studio321/protocol/durable';
import type { LocalTargetName } from '../config.js';

/** The largest file committed whole from memory; larger files are staged and streamed (commit()). */
export const SMALL_COMMIT_BYTES = 256 * 1024;

/** One file of a group: its bytes and where each copy goes. */
export interface SmallFileRequest {
  bytes: Uint8Array;
  size: number;
  blake3: string;
  targets: Record<LocalTargetName, DurableTarget>;
}

export interface SmallGroupRequest {
  id: number;
  files: SmallFileRequest[];
}

/** A verified copy under its final name (written now, or an identical one found there). */
export interface SmallTargetDone {
  method: StudioCopy['method'];
  verifiedAt: number;
}

/** A file's outcome: both copies, or the first failure (a DurableWriteError's fields, or an errno). */
export type SmallFileOutcome =
  | { ok: true; raid: SmallTargetDone; mirror: SmallTargetDone }
  | {
      ok: false;
      target: LocalTargetName;
      code: string;
      message: string;
      retryable: boolean;
      detail?: Record<string, unknown>;
    };

export type SmallGroupReply = { id: number; outcomes: SmallFileOutcome[] } | { id: number; fault: string };

interface Queued {
  file: SmallFileRequest;
  /** Its session's first commit (goes ahead, see write). */
  first: boolean;
  resolve: (o: SmallFileOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * The worker and its queue: files queued while a group is being written form the next group
 * (a lone file waits for nothing), one group at a time. The worker starts on first use and is
 * unref'd while idle, so it never keeps the process alive; if it dies, the files in its group
 * fail (retryable) and the next group starts a new one.
 */
export class SmallGroupWriter {
  #worker: Worker | undefined;
  #queue: Queued[] = [];
  #inGroup: Queued[] | undefined;
  #nextId = 1;
  /** Groups written and files in them (tests and the benches read these). */
  groups = 0;
  files = 0;

  /**
   * Resolves with the file's outcome; rejects only when the worker failed as a whole.
   *
   * `first`: the first commit of its link session. The files queued while a group is written
   * form the next group, and with twenty agents that is one file of each of tens of commits
   * in flight, tens of fsyncs long; an agent that just connected would wait for it behind
   * the others' hundredth files. The first files queued form a group of their own, written
   * next, ahead of the rest (one per newly connected session: a few, never a starving
   * stream; the rest go as one group right after it).
   */
  write(file: SmallFileRequest, first = false): Promise<SmallFileOutcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ file, first, resolve, reject });
      if (this.#inGroup === undefined) this.#next();
    });
  }

  #start(): Worker {
    // Plain JS worker: do not inherit loaders/hooks (test runners, coverage) from the parent.
    const w = new Worker(new URL('./small-commit-worker.js', import.meta.url), { execArgv: [] });
    w.on('message', (m: SmallGroupReply) => this.#settle(m));
    const fail = (err: Error): void => {
      if (this.#worker !== w) return;
      this.#worker = undefined;
      this.#settle({ id: -1, fault: err.message });
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`small-commit worker exited (code ${code})`)));
    return w;
  }

  #next(): void {
    if (this.#queue.length === 0) {
      this.#worker?.unref();
      return;
    }
    let group = this.#queue.filter((q) => q.first);
    if (group.length > 0 && group.length < this.#queue.length) this.#queue = this.#queue.filter((q) => !q.first);
    else {
      group = this.#queue;
      this.#queue = [];
    }
    this.#inGroup = group;
    let w: Worker;
    try {
      w = this.#worker ??= this.#start();
    } catch (err) {
      this.#inGroup = undefined;
      for (const q of group) q.reject(err);
      return;
    }
    w.ref(); // a reply is due
    // Copied, not transferred: a retry under a distinct name sends the same bytes again.
    w.postMessage({ id: this.#nextId++, files: group.map((q) => q.file) } satisfies SmallGroupRequest);
  }

  #settle(m: SmallGroupReply): void {
    const group = this.#inGroup;
    if (group === undefined) return;
    this.#inGroup = undefined;
    if ('fault' in m) {
      const err = new Error(`small-commit worker: ${m.fault}`);
      for (const q of group) q.reject(err);
    } else {
      this.groups += 1;
      this.files += group.length;
      group.forEach((q, i) => {
        const o = m.outcomes[i];
        if (o === undefined) q.reject(new Error('small-commit worker: no outcome'));
        else q.resolve(o);
      });
    }
    this.#next();
  }

  /** Stops the worker (tests, orderly shutdown); files waiting fail. */
  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    const err = new Error('small-commit writer closed');
    for (const q of [...(this.#inGroup ?? []), ...this.#queue]) q.reject(err);
    this.#inGroup = undefined;
    this.#queue = [];
    await w?.terminate();
  }
}
