/**
 * What a failed durable write means to the studio, for each DURABLE_ code: one
 * exhaustive table (protocol/src/durable/errors.ts, DurableTable), so a new
 * DURABLE_ code does not compile until the studio says what it means here.
 * Read by classifyCommitError (commit.ts) and, for the code only, by the target
 * marker write (target-check.ts). The context is the durable failure itself.
 */
import type { CodedError } from '@studio321/protocol';
import { DURABLE_CODES, type DurableTable } from '@studio321/protocol/durable';
import { STUDIO_CODES, type StudioCode } from '../errors.js';

const durableDetail = (err: CodedError) => err.detail ?? {};

export const COMMIT_FAILURES: DurableTable<StudioCode, CodedError> = {
  [DURABLE_CODES.noSpace]: {
    code: STUDIO_CODES.targetFull,
    retryable: true,
    message: (err) =>
      `A studio target is full. Free space (or add a disk); the file is committed when space is back. (${err.message})`,
    detail: durableDetail,
  },
  [DURABLE_CODES.targetMissing]: {
    code: STUDIO_CODES.targetMissing,
    retryable: true,
    message: (err) =>
      `A studio target disappeared during the commit. Mount it again; the file is committed when it returns. (${err.message})`,
    detail: durableDetail,
  },
  [DURABLE_CODES.accessDenied]: {
    code: STUDIO_CODES.targetAccess,
    retryable: true,
    message: (err) => `A studio target refused the write. Fix its permissions. (${err.message})`,
    detail: durableDetail,
  },
  [DURABLE_CODES.aborted]: {
    code: STUDIO_CODES.shuttingDown,
    retryable: true,
    message: () => 'The studio is stopping; the file is committed after the restart.',
  },
  // The rest go to the agent as they are (a Nack with the DURABLE_ code): the bytes received
  // (size, hash), the disk (read-back, I/O), the name (the next free name is tried first).
  [DURABLE_CODES.sizeMismatch]: undefined,
  [DURABLE_CODES.hashMismatch]: undefined,
  [DURABLE_CODES.readbackMismatch]: undefined,
  [DURABLE_CODES.sourceFailed]: undefined,
  [DURABLE_CODES.ioError]: undefined,
  [DURABLE_CODES.nameTaken]: undefined,
  [DURABLE_CODES.badName]: undefined,
  [DURABLE_CODES.missing]: undefined,
};
