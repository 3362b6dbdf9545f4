/**
 * Errors of recovery: healing a damaged local copy, quarantine, target
 * availability (docs/errors.md §RECOVERY_). `retryable` is decided where the
 * error arises, like everywhere else.
 */
import { CodedError } from '@studio321/protocol';

export const RECOVERY_CODES = {
  /** A local copy was found missing, unreadable or with another BLAKE3, and could not be made again (no verified source, target unavailable or full). */
  healFailed: 'RECOVERY_HEAL_FAILED',
  /** No other verified copy could be read to make a lost copy again (the other local copy is lost too, and no hot cloud copy verifies). */
  noSource: 'RECOVERY_NO_SOURCE',
  /** A local target (mirror, RAID) is unavailable: root or marker gone, or I/O errors. Its copies do not count until it is back. */
  targetUnavailable: 'RECOVERY_TARGET_UNAVAILABLE',
  /** A damaged file could not be moved aside into the quarantine folder; it was left where it was and nothing was written over it. */
  quarantineFailed: 'RECOVERY_QUARANTINE_FAILED',
  /** A local target holds no verified copy of an asset that should be there (lost earlier, or a heal was interrupted). */
  copyNotRecorded: 'RECOVERY_COPY_NOT_RECORDED',
} as const;
export type RecoveryCode = (typeof RECOVERY_CODES)[keyof typeof RECOVERY_CODES];

export class RecoveryError extends CodedError {}
