/**
 * What a failed durable write means to the agent, for each DURABLE_ code: one
 * exhaustive table per kind of write, so a new DURABLE_ code does not compile
 * until both say what it means here (protocol/src/durable/errors.ts,
 * DurableTable). The two differ because the roles differ:
 *  - OFFLOAD_FAILURES: the card is the source, the laptop store and the field
 *    drive are the destinations (offloader.ts). A hash or size mismatch is the
 *    card reading differently twice; a full or read-only store stops the offload.
 *  - BACKFILL_FAILURES: the laptop store is the source, the field drive the one
 *    destination (backfill.ts). A hash or size mismatch is a damaged laptop copy;
 *    a missing destination is the field drive unplugged.
 */
import { DURABLE_CODES, type DurableTable, type DurableTranslation } from '@studio321/protocol/durable';
import { AGENT_CODES, type AgentCode } from '../errors.js';
import { storeCopyDamagedMessage } from '../state/store-copy.js';

/** The failure of one card file's copy, as offloader.ts sees it. */
export interface OffloadFailureContext {
  /** ` while copying <path>`, or '' when no file was being copied. */
  where: string;
  card: string;
  path: string;
  /** The system error code the card read failed with (unreadable file). */
  errno: string | undefined;
  /** Code and message of the failure (a copy failure names them). */
  code: string;
  text: string;
}

export interface OffloadTranslation extends DurableTranslation<AgentCode, OffloadFailureContext> {
  /** true: the whole offload stops (OffloadStop); false: the file is recorded as failed and the offload goes on. */
  readonly stops: boolean;
}

const offloadStopDetail = (x: OffloadFailureContext) => ({ card: x.card });
const offloadFileDetail = (x: OffloadFailureContext) => ({ path: x.path });

const SOURCE_CHANGED: OffloadTranslation = {
  code: AGENT_CODES.sourceChanged,
  retryable: true,
  stops: false,
  message: (x) =>
    `${x.path} read differently on two passes: the card or the reader may be failing. Nothing was kept; try another reader, then ingest again.`,
  detail: offloadFileDetail,
};

/** A file the card would not give (also any uncoded failure of the card read). */
export const OFFLOAD_UNREADABLE: OffloadTranslation = {
  code: AGENT_CODES.unreadableFile,
  retryable: false,
  stops: false,
  message: (x) =>
    `${x.path} cannot be read from the card (${x.errno ?? 'error'}): the other files were copied; check this file in a reader or with the camera.`,
  detail: (x) => ({ path: x.path, ...(x.errno === undefined ? {} : { errno: x.errno }) }),
};

/** Any other failure of a destination (also a coded failure that is not a DURABLE_ one). */
export const OFFLOAD_COPY_FAILED: OffloadTranslation = {
  code: AGENT_CODES.copyFailed,
  retryable: 'cause',
  stops: false,
  message: (x) => `Copying ${x.path} failed (${x.code}): ${x.text}`,
  detail: offloadFileDetail,
};

export const OFFLOAD_FAILURES: DurableTable<AgentCode, OffloadFailureContext, OffloadTranslation> = {
  [DURABLE_CODES.noSpace]: {
    code: AGENT_CODES.storeFull,
    retryable: false,
    stops: true,
    message: (x) =>
      `The store is full${x.where}: free space on the laptop (or the field drive) and ingest again; everything verified so far is kept and will not be copied again.`,
    detail: offloadStopDetail,
  },
  [DURABLE_CODES.accessDenied]: {
    code: AGENT_CODES.storeUnwritable,
    retryable: false,
    stops: true,
    message: (x) =>
      `The store refused the write${x.where}: check it is writable (not read-only, permissions), then ingest again.`,
    detail: offloadStopDetail,
  },
  [DURABLE_CODES.targetMissing]: {
    code: AGENT_CODES.copyFailed,
    retryable: true,
    stops: true,
    message: (x) => `A destination disappeared${x.where} (field drive unplugged?): reconnect it and ingest again.`,
    detail: offloadStopDetail,
  },
  [DURABLE_CODES.hashMismatch]: SOURCE_CHANGED,
  [DURABLE_CODES.sizeMismatch]: SOURCE_CHANGED,
  // Unless the card is gone (AGENT_CARD_REMOVED), or the cause is the agent's own error (kept as it is).
  [DURABLE_CODES.sourceFailed]: OFFLOAD_UNREADABLE,
  // Any abort (this, an AbortError, the offload's signal) stops the offload before this table is read:
  // AGENT_ABORTED, or AGENT_CARD_REMOVED when the card is gone.
  [DURABLE_CODES.aborted]: undefined,
  [DURABLE_CODES.readbackMismatch]: OFFLOAD_COPY_FAILED,
  [DURABLE_CODES.ioError]: OFFLOAD_COPY_FAILED,
  // Normally the file moves to the next free name (offloader.ts) and this is not reached.
  [DURABLE_CODES.nameTaken]: OFFLOAD_COPY_FAILED,
  [DURABLE_CODES.badName]: OFFLOAD_COPY_FAILED,
  // A verdict of verifyFile, never thrown by a write.
  [DURABLE_CODES.missing]: OFFLOAD_COPY_FAILED,
};

/** The failure of one asset's copy to the field drive, as backfill.ts sees it. */
export interface BackfillFailureContext {
  blake3: string;
  storePath: string;
  /** The laptop copy read. */
  source: string;
  /** The field-drive file written. */
  dest: string;
  /** Code and message of the failure (a copy failure names them; no code: "error"). */
  code: string | undefined;
  text: string;
}

const backfillDetail = (x: BackfillFailureContext) => ({ blake3: x.blake3, storePath: x.storePath });

const LAPTOP_COPY_DAMAGED: DurableTranslation<AgentCode, BackfillFailureContext> = {
  code: AGENT_CODES.storeCopyDamaged,
  retryable: false,
  message: (x) => storeCopyDamagedMessage(x.source, 'was not copied to the field drive'),
  detail: (x) => ({ ...backfillDetail(x), path: x.source }),
};

/** Any other failure (also one that is not a DURABLE_ one, and a laptop copy unreadable for a reason not its own). */
export const BACKFILL_COPY_FAILED: DurableTranslation<AgentCode, BackfillFailureContext> = {
  code: AGENT_CODES.copyFailed,
  retryable: 'cause',
  message: (x) => `Copying ${x.storePath} to the field drive failed (${x.code ?? 'error'}): ${x.text}`,
  detail: backfillDetail,
};

export const BACKFILL_FAILURES: DurableTable<AgentCode, BackfillFailureContext> = {
  [DURABLE_CODES.hashMismatch]: LAPTOP_COPY_DAMAGED,
  [DURABLE_CODES.sizeMismatch]: LAPTOP_COPY_DAMAGED,
  // Only a laptop copy that is gone or unreadable (ENOENT, EIO) is damaged; other read failures
  // (EMFILE…) are not its fault and are BACKFILL_COPY_FAILED (backfill.ts decides).
  [DURABLE_CODES.sourceFailed]: LAPTOP_COPY_DAMAGED,
  [DURABLE_CODES.nameTaken]: {
    code: AGENT_CODES.copyFailed,
    retryable: false,
    message: (x) =>
      `${x.dest} on the field drive already holds a different file; it was left untouched. Move it away, then the back-fill copies this one.`,
    detail: (x) => ({ ...backfillDetail(x), path: x.dest }),
  },
  [DURABLE_CODES.noSpace]: {
    code: AGENT_CODES.storeFull,
    retryable: false,
    message: () => 'The field drive is full: free space on it; the back-fill goes on next time.',
    detail: backfillDetail,
  },
  [DURABLE_CODES.accessDenied]: {
    code: AGENT_CODES.storeUnwritable,
    retryable: false,
    message: () => 'The field drive refused the write: check it is writable (not read-only, permissions).',
    detail: backfillDetail,
  },
  [DURABLE_CODES.targetMissing]: {
    code: AGENT_CODES.fieldDriveMissing,
    retryable: true,
    message: () => 'The field drive disappeared during the back-fill: reconnect it; the back-fill goes on next time.',
    detail: backfillDetail,
  },
  [DURABLE_CODES.aborted]: {
    code: AGENT_CODES.aborted,
    retryable: true,
    message: () => 'The field-drive back-fill was stopped; it goes on next time.',
  },
  [DURABLE_CODES.readbackMismatch]: BACKFILL_COPY_FAILED,
  [DURABLE_CODES.ioError]: BACKFILL_COPY_FAILED,
  [DURABLE_CODES.badName]: BACKFILL_COPY_FAILED,
  [DURABLE_CODES.missing]: BACKFILL_COPY_FAILED,
};
