/**
 * Link (agent ↔ studio) error codes, agent side (docs/errors.md §LINK_).
 * Wire-level codes (PROTO_*) keep their protocol code when the studio sent them.
 */
import { CodedError } from '@studio321/protocol';

export class LinkError extends CodedError {}

export const LINK_CODES = {
  /** The studio cannot be reached (refused, DNS, timeout). Retryable. */
  unreachable: 'LINK_UNREACHABLE',
  /** The connection dropped in the middle of a session. Retryable. */
  connectionLost: 'LINK_CONNECTION_LOST',
  /** This agent is not paired with a studio yet. */
  notPaired: 'LINK_NOT_PAIRED',
  /** The pairing files in the data dir cannot be read or written. */
  pairingStore: 'LINK_PAIRING_STORE',
  /** The studio's answer broke the protocol (e.g. a Want naming a hash not offered). */
  badPeer: 'LINK_BAD_PEER',
  /** Some files were refused or could not be committed this time (sync exits non-zero). */
  incomplete: 'LINK_INCOMPLETE',
  /** The URL given to `field-agent pair` is not a wss:// URL. */
  badUrl: 'LINK_BAD_URL',
} as const;
