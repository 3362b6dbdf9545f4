/**
 * studiod's error class and codes (docs/errors.md §STUDIO_). Wire-level refusals
 * use ProtocolError with PROTO_CODES from protocol/src/errors.ts.
 */
import { CodedError, type CodedErrorOptions } from '@studio321/protocol';

export const STUDIO_CODES = {
  /** A target root is missing or is not the configured device (disk unmounted). Retryable. */
  targetMissing: 'STUDIO_TARGET_MISSING',
  /** A target has no space left. Retryable once space is freed. */
  targetFull: 'STUDIO_TARGET_FULL',
  /** A target refused the write (permissions). Retryable once fixed. */
  targetAccess: 'STUDIO_TARGET_ACCESS',
  /** An I/O error on a target or on staging. Retryable. */
  targetIo: 'STUDIO_TARGET_IO',
  /** The same file is being received from another session right now. Retryable. */
  busy: 'STUDIO_BUSY',
  /** Nack: this session (or all sessions together) holds as many staged files as the config allows. Retryable once its files are done. */
  stagingLimit: 'STUDIO_STAGING_LIMIT',
  /** Logged: a connection refused because too many are not authenticated yet (from its address, or in all). Retryable. */
  connectionLimit: 'STUDIO_CONNECTION_LIMIT',
  /** The catalogue was written by a newer studiod. Not retryable. */
  formatTooNew: 'STUDIO_FORMAT_TOO_NEW',
  /** The catalogue is locked by another studiod process. Not retryable. */
  catalogueLocked: 'STUDIO_CATALOGUE_LOCKED',
  /** No free distinct name was found for a clashing file (after many suffixes). Not retryable. */
  noFreeName: 'STUDIO_NO_FREE_NAME',
  /** The staging directory failed (I/O). Retryable. */
  stagingIo: 'STUDIO_STAGING_IO',
  /** TLS key/cert could not be created or read. Not retryable. */
  tlsSetup: 'STUDIO_TLS_SETUP',
  /** The TLS key/cert are missing or damaged while agents are paired (they pinned it). Not retryable. */
  identityLost: 'STUDIO_IDENTITY_LOST',
  /** Logged: the TLS key/cert were damaged or missing with no agent paired; a new identity was made. */
  tlsRegenerated: 'STUDIO_TLS_REGENERATED',
  /** The control socket could not be bound (another studiod running?). Not retryable. */
  controlSocket: 'STUDIO_CONTROL_SOCKET',
  /** A control request was malformed or named an unknown command/agent. Not retryable. */
  controlRequest: 'STUDIO_CONTROL_REQUEST',
  /** studioctl could not reach studiod. Retryable. */
  notRunning: 'STUDIO_NOT_RUNNING',
  /** studiod is starting (opening the catalogue, rebuilding the ledger): it answers once started. Retryable. */
  starting: 'STUDIO_STARTING',
  /** Commit was interrupted because studiod is stopping. Retryable. */
  shuttingDown: 'STUDIO_SHUTTING_DOWN',
  /** An alert notice could not be delivered (webhook, e-mail): retryable per attempt; logged when the attempts run out. */
  alertDelivery: 'STUDIO_ALERT_DELIVERY',
  /** The metrics endpoint could not listen on its configured address. Not retryable. */
  metricsListen: 'STUDIO_METRICS_LISTEN',
  /** studiod could not start for a reason without its own code (bin/studiod.ts). Not retryable. */
  startFailed: 'STUDIO_START_FAILED',
  /** Logged once at start: the native malloc_trim addon is missing or did not load; studiod runs without the idle memory trim. */
  mallocTrimUnavailable: 'STUDIO_MALLOC_TRIM_UNAVAILABLE',
  /** studiod or studioctl was given an unknown command or option, or a bad value (exit status 2). Not retryable. */
  usage: 'STUDIO_USAGE',
} as const;

export type StudioCode = (typeof STUDIO_CODES)[keyof typeof STUDIO_CODES];

export class StudioError extends CodedError {
  constructor(code: StudioCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }

  /** studioctl: an error studiod answered on the control socket keeps studiod's code (LEDGER_…, CLOUD_…, CONFIG_…). */
  static fromPeer(code: string, message: string, options: CodedErrorOptions = {}): StudioError {
    return new StudioError(code as StudioCode, message, options);
  }
}
