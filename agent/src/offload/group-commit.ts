/**
 * Group commit of the offload (protocol/src/durable/group-commit.ts): files whose durable
 * writes (fsyncDir: false) finished together are recorded with one fsync per directory and
 * ONE synced state batch (AgentState.recordFiles); nothing is reported copied before its
 * name and its record are durable. A directory that cannot be fsync'd fails only the files
 * in it (DURABLE_* target error); a failed state batch fails every file of it.
 */
import { GroupCommit as DurableGroupCommit } from '@studio321/protocol/durable';
import type { AgentState, FileEntry } from '../state/agent-state.js';

export class GroupCommit extends DurableGroupCommit<FileEntry> {
  constructor(state: AgentState) {
    super(async (entries) => {
      await state.recordFiles(entries);
    });
  }

  /** Synced state batches written (tests and the bench read it). */
  get batches(): number {
    return this.groups;
  }

  /** Files recorded in them. */
  get files(): number {
    return this.items;
  }
}
