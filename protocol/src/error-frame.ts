/**
 * Building Error / Nack frames from coded errors, within the wire limits
 * (`message` ≤ MAX_MESSAGE_BYTES UTF-8 bytes, `code` a valid code).
 */

import type { CodedError } from './errors.js';
import { MAX_CODE_BYTES, MAX_MESSAGE_BYTES } from './limits.js';
import type { ErrorMessage, NackMessage } from './messages.js';

const CODE_RE = /^[A-Z][A-Z0-9_]*$/;

/** `s` cut to at most `maxBytes` UTF-8 bytes, never inside a character. */
export function clipUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

function wireCode(code: string): string {
  return CODE_RE.test(code) && code.length <= MAX_CODE_BYTES ? code : 'INTERNAL_ERROR';
}

/** The Error frame for a fatal session error (the caller closes the socket after sending it). */
export function errorFrame(err: CodedError): ErrorMessage {
  return {
    t: 'error',
    code: wireCode(err.code),
    message: clipUtf8(err.message, MAX_MESSAGE_BYTES),
    retryable: err.retryable,
  };
}

/** The Nack frame refusing one file. */
export function nackFrame(hash: string, err: CodedError, resumeOffset: number): NackMessage {
  return {
    t: 'nack',
    hash,
    code: wireCode(err.code),
    message: clipUtf8(err.message, MAX_MESSAGE_BYTES),
    retryable: err.retryable,
    resumeOffset,
  };
}
