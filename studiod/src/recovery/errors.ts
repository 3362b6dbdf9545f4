/**
 * Recovery error codes (docs/errors.md, section RECOVERY_): catalogue snapshots,
 * the catalogue rebuild, the pairing store, and studiod's refusal to claim an
 * empty archive over full targets.
 */
import { CodedError } from '@studio321/protocol';

export const RECOVERY_CODES = {
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
} as const;
export type RecoveryCode = (typeof RECOVERY_CODES)[keyof typeof RECOVERY_CODES];

export class RecoveryError extends CodedError {}
