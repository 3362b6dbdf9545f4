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
import type { StudioCopy } from '@studio321/protocol';
import { GroupWorker, type DurableTarget, type GroupReply, type GroupRequest } from '@studio321/protocol/durable';
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

export type SmallGroupRequest = GroupRequest<SmallFileRequest>;

/** A verified copy under its final name (written now, or an identical one found there). */
export interface SmallTargetDone {
  method: StudioCopy['method'];
  verifiedAt: number;
  /** The final name's mtime, stat'd by the worker for the folder's ASC MHL generation (undefined: not read). */
  mtimeMs?: number | undefined;
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

export type SmallGroupReply = GroupReply<SmallFileOutcome>;

/**
 * The worker and its queue (GroupWorker): files queued while a group is being written form the
 * next group (a lone file waits for nothing), one group at a time. The worker starts on first
 * use and is unref'd while idle, so it never keeps the process alive; if it dies, the files in
 * its group fail (retryable) and the next group starts a new one.
 */
export class SmallGroupWriter {
  readonly #group = new GroupWorker<SmallFileRequest, SmallFileOutcome>({
    url: new URL('./small-commit-worker.js', import.meta.url),
    groupsInFlight: 1,
    fault: (message) => new Error(`small-commit worker: ${message}`),
  });

  /** Groups written and files in them (tests and the benches read these). */
  get groups(): number {
    return this.#group.groups;
  }

  get files(): number {
    return this.#group.files;
  }

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
    return this.#group.run(file, { first });
  }

  /** Stops the worker (tests, orderly shutdown); files waiting fail. */
  close(): Promise<void> {
    return this.#group.close(new Error('small-commit writer closed'));
  }
}
