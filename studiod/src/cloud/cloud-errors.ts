/**
 * Transitional: cloud-forwarder.ts (rewritten in parallel) imports from this old
 * path with the table's former keys. Delete this file once
 * /work/tools/code-renames.sed has been applied to it.
 */
import { CLOUD_CODES as CODES } from './errors.js';

export { CloudError, classifyS3Error } from './errors.js';

/** @deprecated the former keys of CLOUD_CODES (./errors.js). */
export const CLOUD_CODES = {
  CONFIG_INVALID: CODES.configInvalid,
  UNKNOWN_TARGET: CODES.unknownTarget,
  UNAVAILABLE: CODES.unavailable,
  ACCESS_DENIED: CODES.accessDenied,
  BAD_CREDENTIALS: CODES.badCredentials,
  NO_SUCH_BUCKET: CODES.noSuchBucket,
  REQUEST_REJECTED: CODES.requestRejected,
  UPLOAD_LOST: CODES.uploadLost,
  KEY_CONFLICT: CODES.keyConflict,
  OBJECT_MISSING: CODES.objectMissing,
  VERIFY_MISMATCH: CODES.verifyMismatch,
  SOURCE_MISSING: CODES.sourceMissing,
  SOURCE_MISMATCH: CODES.sourceMismatch,
  SOURCE_UNREADABLE: CODES.sourceUnreadable,
  UPLOAD_PENDING: CODES.uploadPending,
  CLOSED: CODES.closed,
} as const;
