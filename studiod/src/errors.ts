/**
 * studiod's error class and codes (docs/errors.md §studiod). Wire-level refusals
 * use ProtocolError with PROTO_* codes from protocol/src/messages.ts.
 */
import { CodedError } from '@studio321/protocol';

export class StudioError extends CodedError {}

export const StudioCode = {
  /** A target root is missing or is not the configured device (disk unmounted). Retryable. */
  TargetMissing: 'STUDIO_TARGET_MISSING',
  /** A target has no space left. Retryable once space is freed. */
  TargetFull: 'STUDIO_TARGET_FULL',
  /** A target refused the write (permissions). */
  TargetAccess: 'STUDIO_TARGET_ACCESS',
  /** An I/O error on a target or on staging. Retryable. */
  TargetIo: 'STUDIO_TARGET_IO',
  /** The same file is being received from another session right now. Retryable. */
  Busy: 'STUDIO_BUSY',
  /** The catalogue was written by a newer studiod. */
  FormatTooNew: 'STUDIO_FORMAT_TOO_NEW',
  /** The catalogue is locked by another studiod process. */
  CatalogueLocked: 'STUDIO_CATALOGUE_LOCKED',
  /** No free distinct name was found for a clashing file (after many suffixes). */
  NoFreeName: 'STUDIO_NO_FREE_NAME',
  /** The staging directory failed (I/O). */
  StagingIo: 'STUDIO_STAGING_IO',
  /** TLS key/cert could not be created or read. */
  TlsSetup: 'STUDIO_TLS_SETUP',
  /** The control socket could not be bound (another studiod running?). */
  ControlSocket: 'STUDIO_CONTROL_SOCKET',
  /** A control request was malformed or named an unknown command/agent. */
  ControlRequest: 'STUDIO_CONTROL_REQUEST',
  /** studioctl could not reach studiod. */
  NotRunning: 'STUDIO_NOT_RUNNING',
  /** Commit was interrupted because studiod is stopping. Retryable. */
  ShuttingDown: 'STUDIO_SHUTTING_DOWN',
} as const;
export type StudioCodeName = (typeof StudioCode)[keyof typeof StudioCode];
