/**
 * Field-agent error codes (docs/errors.md, section AGENT_).
 *
 * `retryable` is decided where the error arises: a pulled card or a file that
 * changed while being copied may succeed later (retryable); a full store, an
 * unreadable file or a hostile name need a person first (not retryable).
 */
import { CodedError, type CodedErrorOptions } from '@studio321/protocol';

export const AGENT_CODES = {
  /** The card (or folder) disappeared while it was being read. */
  cardRemoved: 'AGENT_CARD_REMOVED',
  /** One file on the card could not be read (EIO, EACCES…). */
  unreadableFile: 'AGENT_UNREADABLE_FILE',
  /** A folder on the card could not be listed. */
  unreadableDir: 'AGENT_UNREADABLE_DIR',
  /** The file's size/mtime/ctime changed while it was read: the copy was discarded. */
  sourceChanged: 'AGENT_SOURCE_CHANGED',
  /** The laptop store (or the field drive) is full. */
  storeFull: 'AGENT_STORE_FULL',
  /** The store refused writing (read-only, permissions). */
  storeUnwritable: 'AGENT_STORE_UNWRITABLE',
  /** Any other failure of a destination (I/O error, read-back mismatch). */
  copyFailed: 'AGENT_COPY_FAILED',
  /** The configured field drive is not mounted; copies go to the laptop only. */
  fieldDriveMissing: 'AGENT_FIELD_DRIVE_MISSING',
  /** A zero-byte file: kept and verified, but flagged for review. */
  zeroByteFile: 'AGENT_ZERO_BYTE_FILE',
  /** A symbolic link on the card: never followed, not copied. */
  symlinkSkipped: 'AGENT_SYMLINK_SKIPPED',
  /** A FIFO, socket or device node on the card: not copied. */
  specialFileSkipped: 'AGENT_SPECIAL_FILE_SKIPPED',
  /** A file name that cannot be stored safely (control characters, too long…). */
  badName: 'AGENT_BAD_NAME',
  /** `ingest <path>`: the path is not a readable folder. */
  notAFolder: 'AGENT_NOT_A_FOLDER',
  /** The state database is held by another field-agent process. */
  stateLocked: 'AGENT_STATE_LOCKED',
  /** The state database was written by a newer field-agent. */
  stateFormatTooNew: 'AGENT_STATE_FORMAT_TOO_NEW',
  /** The state database failed (disk error, corruption). */
  stateFailed: 'AGENT_STATE_FAILED',
  /** Bad command line. */
  usage: 'AGENT_USAGE',
  /** `resolve`: no card with that id. */
  unknownCard: 'AGENT_UNKNOWN_CARD',
  /** A card label names several cards: name it by card id. */
  cardAmbiguous: 'AGENT_CARD_AMBIGUOUS',
  /** A laptop store copy is missing or no longer hashes to its recorded BLAKE3 (found by the field-drive back-fill or the studio sync). */
  storeCopyDamaged: 'AGENT_STORE_COPY_DAMAGED',
  /** `field-agent verify` found copies that no longer match their BLAKE3; they stopped counting. */
  copiesLost: 'AGENT_COPIES_LOST',
  /** The offload was stopped (shutdown, card removed). */
  aborted: 'AGENT_ABORTED',
} as const;

export type AgentCode = (typeof AGENT_CODES)[keyof typeof AGENT_CODES];

export class AgentError extends CodedError {
  constructor(code: AgentCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }
}
