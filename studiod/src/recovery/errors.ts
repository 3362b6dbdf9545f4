/**
 * Recovery error codes (docs/errors.md §RECOVERY_): restore and the archive restore
 * requests; catalogue snapshots, the catalogue rebuild, the pairing store, and studiod's
 * refusal to claim an empty archive over full targets. A per-file outcome of a restore
 * carries one of these codes (or the code of the copy that failed: DURABLE_…, CLOUD_…,
 * STUDIO_…) in the report; a RecoveryError is thrown only when the whole request cannot go on.
 * Healing a damaged local copy, the quarantine, target availability, adopting a new disk, the scrub.
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
  /** studiod started with an empty catalogue while the mirror or RAID holds committed files. */
  catalogueEmpty: 'RECOVERY_CATALOGUE_EMPTY',
  /** A catalogue rebuild was interrupted; studiod refuses until it has been run to the end. */
  rebuildIncomplete: 'RECOVERY_REBUILD_INCOMPLETE',
  /** `catalogue rebuild` on a catalogue that already holds assets (nothing to rebuild). */
  catalogueNotEmpty: 'RECOVERY_CATALOGUE_NOT_EMPTY',
  /** A snapshot could not be written to one destination (RAID or a cloud target). Retryable. */
  snapshotFailed: 'RECOVERY_SNAPSHOT_FAILED',
  /** A snapshot is truncated, corrupt or not a studio321 catalogue export. */
  snapshotUnreadable: 'RECOVERY_SNAPSHOT_UNREADABLE',
  /** A snapshot written by a newer studiod (format version higher than this one reads). */
  snapshotTooNew: 'RECOVERY_SNAPSHOT_TOO_NEW',
  /** No readable snapshot was found on the RAID nor on any cloud target. */
  noSnapshot: 'RECOVERY_NO_SNAPSHOT',
  /** The rebuild found files or objects it could not account for (see its report). */
  unaccounted: 'RECOVERY_UNACCOUNTED',
  /** The pairing store (`pairings.json`) cannot be read or written. */
  pairingsIo: 'RECOVERY_PAIRINGS_IO',
  /** A local copy was found missing, unreadable or with another BLAKE3, and could not be made again (no verified source, target unavailable or full). */
  healFailed: 'RECOVERY_HEAL_FAILED',
  /** A local target (mirror, RAID) is unavailable: root or marker gone, or I/O errors. Its copies do not count until it is back. */
  targetUnavailable: 'RECOVERY_TARGET_UNAVAILABLE',
  /** A damaged file could not be moved aside into the quarantine folder; it was left where it was and nothing was written over it. */
  quarantineFailed: 'RECOVERY_QUARANTINE_FAILED',
  /** A local target holds no verified copy of an asset that should be there (lost earlier, or a heal was interrupted). */
  copyNotRecorded: 'RECOVERY_COPY_NOT_RECORDED',
  /** `target adopt`: the root holds files (other than dot-folders): not a new, empty disk. Nothing was changed. */
  adoptNotEmpty: 'RECOVERY_ADOPT_NOT_EMPTY',
  /** `target adopt`: the root still holds the valid marker of the target's current disk: adopting is for a replaced disk. */
  adoptCurrentDisk: 'RECOVERY_ADOPT_CURRENT_DISK',
} as const;

export type RecoveryCode = (typeof RECOVERY_CODES)[keyof typeof RECOVERY_CODES];

export class RecoveryError extends CodedError {
  constructor(code: RecoveryCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }
}
