/**
 * Errors of the cloud forwarder, and the one place where S3 and network
 * failures are classified as retryable or permanent.
 *
 * Queue and workers branch on `retryable`, never on message text.
 */
import { CodedError, isRetryableSystemError, errorCode } from '@studio321/protocol';

export class CloudError extends CodedError {}

/** Every code this subsystem throws or reports; listed in docs/errors.md. */
export const CLOUD_CODES = {
  CONFIG_INVALID: 'CLOUD_CONFIG_INVALID',
  UNKNOWN_TARGET: 'CLOUD_UNKNOWN_TARGET',
  UNAVAILABLE: 'CLOUD_UNAVAILABLE',
  ACCESS_DENIED: 'CLOUD_ACCESS_DENIED',
  BAD_CREDENTIALS: 'CLOUD_BAD_CREDENTIALS',
  NO_SUCH_BUCKET: 'CLOUD_NO_SUCH_BUCKET',
  REQUEST_REJECTED: 'CLOUD_REQUEST_REJECTED',
  UPLOAD_LOST: 'CLOUD_UPLOAD_LOST',
  KEY_CONFLICT: 'CLOUD_KEY_CONFLICT',
  OBJECT_MISSING: 'CLOUD_OBJECT_MISSING',
  VERIFY_MISMATCH: 'CLOUD_VERIFY_MISMATCH',
  SOURCE_MISSING: 'CLOUD_SOURCE_MISSING',
  SOURCE_MISMATCH: 'CLOUD_SOURCE_MISMATCH',
  SOURCE_UNREADABLE: 'CLOUD_SOURCE_UNREADABLE',
  UPLOAD_PENDING: 'CLOUD_UPLOAD_PENDING',
  CLOSED: 'CLOUD_CLOSED',
} as const;

export type CloudCode = (typeof CLOUD_CODES)[keyof typeof CLOUD_CODES];

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
      CLOUD_CODES.BAD_CREDENTIALS,
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
      CLOUD_CODES.ACCESS_DENIED,
      `Cloud target "${target}" denied access (${s3Code ?? 'HTTP 403'}) during ${what}. ` +
        'Grant the key s3:PutObject, s3:GetObject and multipart permissions on the bucket, then run `studioctl cloud retry`.',
      { cause: err, retryable: false, detail },
    );
  }
  if (s3Code === 'NoSuchBucket') {
    return new CloudError(
      CLOUD_CODES.NO_SUCH_BUCKET,
      `The bucket of cloud target "${target}" does not exist. Create it or fix "bucket" in the studiod config, ` +
        'then run `studioctl cloud retry`.',
      { cause: err, retryable: false, detail },
    );
  }
  if (s3Code === 'NoSuchUpload') {
    return new CloudError(
      CLOUD_CODES.UPLOAD_LOST,
      `The multipart upload on cloud target "${target}" is gone (expired or aborted); it restarts from the first part.`,
      { cause: err, retryable: true, detail },
    );
  }
  if (
    (s3Code !== undefined && RETRYABLE_S3_CODES.has(s3Code)) ||
    (status !== undefined && (status >= 500 || status === 429 || status === 408))
  ) {
    return new CloudError(
      CLOUD_CODES.UNAVAILABLE,
      `Cloud target "${target}" is unavailable (${s3Code ?? `HTTP ${status}`}) during ${what}; ` +
        'the upload stays queued and is retried with backoff.',
      { cause: err, retryable: true, detail },
    );
  }
  if (status !== undefined) {
    return new CloudError(
      CLOUD_CODES.REQUEST_REJECTED,
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
      CLOUD_CODES.UNAVAILABLE,
      `Cannot reach cloud target "${target}" (${sysCode ?? (err instanceof Error ? err.name : 'network error')}) ` +
        `during ${what}; the upload stays queued and is retried with backoff.`,
      { cause: err, retryable: true, detail },
    );
  }
  // Unknown failures without an HTTP status are most likely transport problems
  // (a socket torn down mid-body, a parse error on a truncated response): retry.
  return new CloudError(
    CLOUD_CODES.UNAVAILABLE,
    `Cloud target "${target}" failed during ${what} (${err instanceof Error ? err.message : String(err)}); ` +
      'the upload stays queued and is retried with backoff.',
    { cause: err, retryable: true, detail },
  );
}
