/**
 * Link (agent ↔ studio) error codes, agent side (docs/errors.md §LINK_).
 * Wire-level codes (PROTO_*) keep their protocol code when the studio sent them.
 */
import { CodedError, type CodedErrorOptions } from '@studio321/protocol';

export const LINK_CODES = {
  /** The studio cannot be reached (refused, DNS, timeout). Retryable. */
  unreachable: 'LINK_UNREACHABLE',
  /** The connection dropped in the middle of a session. Retryable. */
  connectionLost: 'LINK_CONNECTION_LOST',
  /** This agent is not paired with a studio yet. Not retryable. */
  notPaired: 'LINK_NOT_PAIRED',
  /** The pairing files in the data dir cannot be read or written. Not retryable. */
  pairingStore: 'LINK_PAIRING_STORE',
  /** The studio's answer broke the protocol (e.g. a Want naming a hash not offered). Not retryable. */
  badPeer: 'LINK_BAD_PEER',
  /** Some files were refused or could not be committed this time (sync exits non-zero). Retryable. */
  incomplete: 'LINK_INCOMPLETE',
  /** The URL given to `field-agent pair` is not a wss:// URL. Not retryable. */
  badUrl: 'LINK_BAD_URL',
  /** `field-agent sync` while the running agent's sync is paused (tray, status page). Not retryable. */
  syncPaused: 'LINK_SYNC_PAUSED',
  /** The studio does not answer verdict requests (an older studiod): offsite copies are not known, nothing is freed. Not retryable. */
  verdictUnsupported: 'LINK_VERDICT_UNSUPPORTED',
} as const;

export type LinkCode = (typeof LINK_CODES)[keyof typeof LINK_CODES];

export class LinkError extends CodedError {
  constructor(code: LinkCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }

  /** An Error frame the studio sent: it keeps the studio's code (STUDIO_…), not one of LINK_CODES. */
  static fromPeer(code: string, message: string, options: CodedErrorOptions = {}): LinkError {
    return new LinkError(code as LinkCode, message, options);
  }
}
