/**
 * Recovery error codes (docs/errors.md §RECOVERY_): restore, and the archive
 * restore requests. A per-file outcome of a restore carries one of these codes
 * (or the code of the copy that failed: DURABLE_…, CLOUD_…, STUDIO_…) in the
 * report; a RecoveryError is thrown only when the whole request cannot go on.
 */
import { CodedError, type CodedErrorOptions } from '@studio321/protocol';

export const RECOVERY_CODES = {
  /** A restore query (name, hash, --shoot, --card) matched no asset. Not retryable. */
  notFound: 'RECOVERY_NOT_FOUND',
  /** A bad restore request: no selection, DIR not absolute, --from naming no target with a copy. Not retryable. */
  badArgument: 'RECOVERY_BAD_ARGUMENT',
  /** No copy of a file could be read and verified: every source failed (each attempt is listed). Not retryable as is. */
  noSource: 'RECOVERY_NO_SOURCE',
  /** (an attempt) The copy is in an archive storage class and not restored: S3 refuses to read it (InvalidObjectState). */
  archived: 'RECOVERY_ARCHIVED',
  /** The only readable copy is in an archive storage class: a restore was requested (ready within 12–48 h). Retryable. */
  archivePending: 'RECOVERY_ARCHIVE_PENDING',
  /** The destination DIR refused the write (full, read-only, permissions, I/O). Not retryable until fixed. */
  destinationFailed: 'RECOVERY_DESTINATION_FAILED',
  /** No free `~N` name in DIR after many tries. Not retryable. */
  noFreeName: 'RECOVERY_NO_FREE_NAME',
} as const;

export type RecoveryCode = (typeof RECOVERY_CODES)[keyof typeof RECOVERY_CODES];

export class RecoveryError extends CodedError {
  constructor(code: RecoveryCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }
}
