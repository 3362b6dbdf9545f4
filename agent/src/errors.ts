/**
 * Field-agent error codes (docs/errors.md, section AGENT_).
 *
 * `retryable` is decided where the error arises: a pulled card or a file that
 * changed while being copied may succeed later (retryable); a full store, an
 * unreadable file or a hostile name need a person first (not retryable).
 *
 * The one AGENT_ table: the eject, single-instance lock, tray and status-page
 * codes are here too (their error classes subclass AgentError, for their names).
 */
import { CodedError, type CodedErrorOptions } from '@studio321/protocol/base';

export const AGENT_CODES = {
  /** The card (or folder) disappeared while it was being read. Retryable (insert it again). */
  cardRemoved: 'AGENT_CARD_REMOVED',
  /** One file on the card could not be read (EIO, EACCES…). Not retryable. */
  unreadableFile: 'AGENT_UNREADABLE_FILE',
  /** A folder on the card could not be listed. Not retryable. */
  unreadableDir: 'AGENT_UNREADABLE_DIR',
  /** The file's size/mtime/ctime changed while it was read: the copy was discarded. Retryable. */
  sourceChanged: 'AGENT_SOURCE_CHANGED',
  /** The laptop store (or the field drive) is full. Not retryable until space is freed. */
  storeFull: 'AGENT_STORE_FULL',
  /** The store refused writing (read-only, permissions). Not retryable. */
  storeUnwritable: 'AGENT_STORE_UNWRITABLE',
  /** Any other failure of a destination (I/O error, read-back mismatch). Retryable as its cause. */
  copyFailed: 'AGENT_COPY_FAILED',
  /** The configured field drive is not mounted; copies go to the laptop only. Retryable. */
  fieldDriveMissing: 'AGENT_FIELD_DRIVE_MISSING',
  /** The laptop store's disk is not there (unplugged, or an empty mount point): nothing is written, its copies are not judged. Retryable. */
  storeUnavailable: 'AGENT_STORE_UNAVAILABLE',
  /** The card needs more space than the laptop store or field drive has free: refused before anything was copied. Not retryable. */
  notEnoughSpace: 'AGENT_NOT_ENOUGH_SPACE',
  /** `ingest <path>`: the folder has no camera layout (DCIM…); copied as a plain folder (a warning). */
  notACard: 'AGENT_NOT_A_CARD',
  /** `ingest <path>`: the card or folder holds no files; nothing was copied (exit 3). Not retryable. */
  emptyCard: 'AGENT_EMPTY_CARD',
  /** A zero-byte file: kept and verified, but flagged for review (a warning). */
  zeroByteFile: 'AGENT_ZERO_BYTE_FILE',
  /** A symbolic link on the card: never followed, not copied (a warning). */
  symlinkSkipped: 'AGENT_SYMLINK_SKIPPED',
  /** A FIFO, socket or device node on the card: not copied (a warning). */
  specialFileSkipped: 'AGENT_SPECIAL_FILE_SKIPPED',
  /** A file name that cannot be stored safely (control characters, too long…) (a warning). */
  badName: 'AGENT_BAD_NAME',
  /** `ingest <path>`: the path is not a readable folder. Not retryable. */
  notAFolder: 'AGENT_NOT_A_FOLDER',
  /** The state database is held by another field-agent process. Retryable. */
  stateLocked: 'AGENT_STATE_LOCKED',
  /** The state database was written by a newer field-agent. Not retryable. */
  stateFormatTooNew: 'AGENT_STATE_FORMAT_TOO_NEW',
  /** The state database failed (disk error, corruption). Retryable. */
  stateFailed: 'AGENT_STATE_FAILED',
  /** Bad command line (exit code 2). Not retryable. */
  usage: 'AGENT_USAGE',
  /** `resolve`: no card with that id. Not retryable. */
  unknownCard: 'AGENT_UNKNOWN_CARD',
  /** A rename template (`ingest --rename`, config `renameTemplate(s)`) is refused, naming the token; nothing was copied (exit code 2). Not retryable. */
  renameTemplate: 'AGENT_RENAME_TEMPLATE',
  /** `report --out FILE`: FILE exists; it is never replaced. Not retryable. */
  reportExists: 'AGENT_REPORT_EXISTS',
  /** A card label names several cards: name it by card id. Not retryable. */
  cardAmbiguous: 'AGENT_CARD_AMBIGUOUS',
  /** A laptop store copy is missing or no longer hashes to its recorded BLAKE3 (found by the field-drive back-fill or the studio sync). Not retryable. */
  storeCopyDamaged: 'AGENT_STORE_COPY_DAMAGED',
  /** `field-agent verify` found copies that no longer match their BLAKE3; they stopped counting. Not retryable. */
  copiesLost: 'AGENT_COPIES_LOST',
  /** The offload was stopped (shutdown, card removed). Retryable (it resumes). */
  aborted: 'AGENT_ABORTED',
  /** `field-agent run`: another agent holds this data directory (exit code 3). Not retryable. */
  alreadyRunning: 'AGENT_ALREADY_RUNNING',
  /** The single-instance lock could not be taken (data directory not writable). Not retryable. */
  lockFailed: 'AGENT_LOCK_FAILED',
  /** `eject`: the card is not safe to format yet; it stays mounted. Not retryable. */
  ejectNotSafe: 'AGENT_EJECT_NOT_SAFE',
  /** `eject`: the card named is not mounted now. Not retryable. */
  cardNotMounted: 'AGENT_CARD_NOT_MOUNTED',
  /** `eject`: the unmount command failed or the card is still mounted. Retryable. */
  ejectFailed: 'AGENT_EJECT_FAILED',
  /** `forget`: the card's files are not all safely copied (not safe to format, or not all at the studio); it stays listed. Not retryable (wait, or --force). */
  forgetNotSafe: 'AGENT_FORGET_NOT_SAFE',
  /** The status page cannot listen on its port. Retryable when the port is in use. */
  statusPort: 'AGENT_STATUS_PORT',
  /** The status page token file cannot be created or is invalid. Not retryable. */
  statusToken: 'AGENT_STATUS_TOKEN',
  /** No tray icon here (no desktop session, or the tray helper cannot start); logged once. Not retryable. */
  trayUnavailable: 'AGENT_TRAY_UNAVAILABLE',
} as const;

export type AgentCode = (typeof AGENT_CODES)[keyof typeof AGENT_CODES];

export class AgentError extends CodedError {
  declare readonly code: AgentCode;

  constructor(code: AgentCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }
}
