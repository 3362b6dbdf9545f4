/**
 * Errors of the cloud forwarder, and the one place where S3 and network
 * failures are classified as retryable or permanent.
 *
 * Queue and workers branch on `retryable`, never on message text.
 */
import { CodedError, isRetryableSystemError, errorCode, type CodedErrorOptions } from '@studio321/protocol';

/** Every code this subsystem throws or reports; listed in docs/errors.md §CLOUD_. */
export const CLOUD_CODES = {
  /** A cloud target in the config has a missing or bad field. Not retryable. */
  configInvalid: 'CLOUD_CONFIG_INVALID',
  /** `verify`/`retry` named a target that is not configured. Not retryable. */
  unknownTarget: 'CLOUD_UNKNOWN_TARGET',
  /** 5xx, throttling or a network failure: the job waits and is retried with backoff. Retryable. */
  unavailable: 'CLOUD_UNAVAILABLE',
  /** AccessDenied or any other 403. Not retryable (the job is parked). */
  accessDenied: 'CLOUD_ACCESS_DENIED',
  /** InvalidAccessKeyId or SignatureDoesNotMatch. Not retryable (the job is parked). */
  badCredentials: 'CLOUD_BAD_CREDENTIALS',
  /** The bucket does not exist. Not retryable (the job is parked). */
  noSuchBucket: 'CLOUD_NO_SUCH_BUCKET',
  /** The server does not implement the request (501 NotImplemented, e.g. RestoreObject on RADOS Gateway). Not retryable. */
  notSupported: 'CLOUD_NOT_SUPPORTED',
  /** The target has objectLock but its bucket lacks versioning or Object Lock: nothing is uploaded to it. Not retryable. */
  bucketUnprotected: 'CLOUD_BUCKET_UNPROTECTED',
  /** (a warning, logged) the locked target's bucket has no lifecycle rule aborting incomplete multipart uploads. */
  noAbortRule: 'CLOUD_NO_ABORT_RULE',
  /** Any other 4xx. Not retryable (the job is parked). */
  requestRejected: 'CLOUD_REQUEST_REJECTED',
  /** NoSuchUpload: the server forgot our multipart upload; it restarts from part 1. Retryable. */
  uploadLost: 'CLOUD_UPLOAD_LOST',
  /** The server forgot the multipart upload again right after it was restarted from part 1. Not retryable (parked). */
  uploadLostAgain: 'CLOUD_UPLOAD_LOST_AGAIN',
  /** The target's upload window closed: the upload pauses, its parts kept, until the next window. Not a failure. */
  windowClosed: 'CLOUD_WINDOW_CLOSED',
  /** The content-addressed key holds an object this job did not write, of other content. Not retryable. */
  keyConflict: 'CLOUD_KEY_CONFLICT',
  /** A counted object is gone, or a PUT the server accepted cannot be found; it is re-sent. Retryable. */
  objectMissing: 'CLOUD_OBJECT_MISSING',
  /** The object's HEAD or its downloaded BLAKE3 does not match; it is re-sent to the next key. Retryable. */
  verifyMismatch: 'CLOUD_VERIFY_MISMATCH',
  /** The mirror copy to upload from is missing. Retryable as its cause (ENOENT: no). */
  sourceMissing: 'CLOUD_SOURCE_MISSING',
  /** The mirror copy no longer has the asset's size/BLAKE3: never uploaded. Not retryable. */
  sourceMismatch: 'CLOUD_SOURCE_MISMATCH',
  /** Reading the mirror copy failed (EIO…). Retryable as its cause. */
  sourceUnreadable: 'CLOUD_SOURCE_UNREADABLE',
  /** (`verify` verdict) the asset is queued, not yet uploaded. A verdict, not thrown. */
  uploadPending: 'CLOUD_UPLOAD_PENDING',
  /** studiod is stopping; the in-flight upload was aborted and stays queued. Retryable. */
  closed: 'CLOUD_CLOSED',
} as const;

export type CloudCode = (typeof CLOUD_CODES)[keyof typeof CLOUD_CODES];

export class CloudError extends CodedError {
  declare readonly code: CloudCode;

  constructor(code: CloudCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }
}

/** CLOUD_UPLOAD_LOST: the server forgot our multipart upload (NoSuchUpload, or a 500 on Complete that ListParts explains). */
export function uploadLostError(target: string, cause: unknown, detail: Record<string, unknown>): CloudError {
  return new CloudError(
    CLOUD_CODES.uploadLost,
    `The multipart upload on cloud target "${target}" is gone (expired or aborted); it restarts from the first part.`,
    { cause, retryable: true, detail },
  );
}

/** The shape of an AWS SDK v3 service exception, narrowed without `any`. */
interface SdkErrorShape {
  name: string;
  message: string;
  Code?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
}

function asSdkError(err: unknown): SdkErrorShape | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & { $metadata?: unknown };
  if (e.$metadata === undefined || typeof e.$metadata !== 'object' || e.$metadata === null) return undefined;
  return e as unknown as SdkErrorShape;
}

export function httpStatusOf(err: unknown): number | undefined {
  return asSdkError(err)?.$metadata?.httpStatusCode;
}

/** The S3 error code (`AccessDenied`, `SlowDown`…) or `NotFound` for a bodiless 404. */
export function s3CodeOf(err: unknown): string | undefined {
  const e = asSdkError(err);
  if (e === undefined) return undefined;
  return e.Code ?? e.name;
}

const RETRYABLE_S3_CODES = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'OperationAborted',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestTimeoutException',
  'TimeoutError',
]);

const RETRYABLE_NETWORK_NAMES = new Set(['TimeoutError', 'AbortError']);

/**
 * Turn whatever the SDK, the network or the file system threw during an S3
 * call into a CloudError with a stable code, decided here and only here.
 */
export function classifyS3Error(err: unknown, what: string, target: string): CloudError {
  if (err instanceof CloudError) return err;
  const detail: Record<string, unknown> = { target, operation: what };
  const status = httpStatusOf(err);
  const s3Code = s3CodeOf(err);
  if (status !== undefined) detail.httpStatus = status;
  if (s3Code !== undefined) detail.s3Code = s3Code;

  if (s3Code === 'InvalidAccessKeyId' || s3Code === 'SignatureDoesNotMatch') {
    return new CloudError(
      CLOUD_CODES.badCredentials,
      `Cloud target "${target}" refused the credentials (${s3Code}) during ${what}. ` +
        'Fix accessKeyId/secretAccessKey in the studiod config, then run `studioctl cloud retry`.',
      { cause: err, retryable: false, detail },
    );
  }
  if (
    s3Code === 'AccessDenied' ||
    s3Code === 'AllAccessDisabled' ||
    s3Code === 'AccountProblem' ||
    (status === 403 && s3Code !== 'RequestTimeTooSkewed')
  ) {
    return new CloudError(
      CLOUD_CODES.accessDenied,
      `Cloud target "${target}" denied access (${s3Code ?? 'HTTP 403'}) during ${what}. ` +
        'Grant the key s3:PutObject, s3:GetObject and multipart permissions on the bucket, then run `studioctl cloud retry`.',
      { cause: err, retryable: false, detail },
    );
  }
  if (s3Code === 'NoSuchBucket') {
    return new CloudError(
      CLOUD_CODES.noSuchBucket,
      `The bucket of cloud target "${target}" does not exist. Create it or fix "bucket" in the studiod config, ` +
        'then run `studioctl cloud retry`.',
      { cause: err, retryable: false, detail },
    );
  }
  if (s3Code === 'NoSuchUpload') return uploadLostError(target, err, detail);
  if (s3Code === 'NotImplemented' || status === 501) {
    // A 5xx, but no retry will change it: this server does not have the feature.
    return new CloudError(
      CLOUD_CODES.notSupported,
      `Cloud target "${target}" does not support ${what} (${s3Code ?? 'HTTP 501'}). ` +
        'This S3-compatible server lacks the feature; use another source or a server that has it.',
      { cause: err, retryable: false, detail },
    );
  }
  if (
    (s3Code !== undefined && RETRYABLE_S3_CODES.has(s3Code)) ||
    (status !== undefined && (status >= 500 || status === 429 || status === 408))
  ) {
    return new CloudError(
      CLOUD_CODES.unavailable,
      `Cloud target "${target}" is unavailable (${s3Code ?? `HTTP ${status}`}) during ${what}; ` +
        'the upload stays queued and is retried with backoff.',
      { cause: err, retryable: true, detail },
    );
  }
  if (status !== undefined) {
    return new CloudError(
      CLOUD_CODES.requestRejected,
      `Cloud target "${target}" rejected ${what} (${s3Code ?? 'error'}, HTTP ${status}). ` +
        'Check the target config (endpoint, region, storage class); the job is parked until `studioctl cloud retry`.',
      { cause: err, retryable: false, detail },
    );
  }
  const sysCode = errorCode(err);
  if (sysCode !== undefined) detail.systemCode = sysCode;
  if (
    isRetryableSystemError(err) ||
    (err instanceof Error && RETRYABLE_NETWORK_NAMES.has(err.name)) ||
    sysCode === 'ECONNREFUSED' ||
    sysCode === 'ERR_STREAM_PREMATURE_CLOSE' ||
    sysCode === 'UND_ERR_SOCKET'
  ) {
    return new CloudError(
      CLOUD_CODES.unavailable,
      `Cannot reach cloud target "${target}" (${sysCode ?? (err instanceof Error ? err.name : 'network error')}) ` +
        `during ${what}; the upload stays queued and is retried with backoff.`,
      { cause: err, retryable: true, detail },
    );
  }
  // Unknown failures without an HTTP status are most likely transport problems
  // (a socket torn down mid-body, a parse error on a truncated response): retry.
  return new CloudError(
    CLOUD_CODES.unavailable,
    `Cloud target "${target}" failed during ${what} (${err instanceof Error ? err.message : String(err)}); ` +
      'the upload stays queued and is retried with backoff.',
    { cause: err, retryable: true, detail },
  );
}
