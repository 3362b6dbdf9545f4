/**
 * Final and temp names inside a destination directory.
 * A final name is ONE path segment, checked in the durable write's step 1 (check);
 * temp names, created in step 3 (openTemp), are `.<name>.<random>.s321tmp`.
 */
import { randomBytes } from 'node:crypto';
import { TEMP_SUFFIX } from '../limits.js';
import { DURABLE_CODES, durableError } from './errors.js';

export { TEMP_SUFFIX };
/** Most file systems limit one name to 255 bytes. */
export const MAX_NAME_BYTES = 255;

/** Throws DURABLE_BAD_NAME for anything that is not one safe path segment. */
export function checkTargetName(name: unknown): asserts name is string {
  const bad = (why: string): never => {
    throw durableError(
      DURABLE_CODES.badName,
      `Refused file name ${JSON.stringify(name)}: ${why}. Use a single file name without path separators.`,
      {
        retryable: false,
        detail: { name: typeof name === 'string' ? name : String(name) },
      },
    );
  };
  if (typeof name !== 'string' || name.length === 0) return bad('it is empty');
  if (name === '.' || name === '..') return bad('it names a directory');
  if (name.includes('/')) return bad("it contains '/'");
  if (name.includes('\\')) return bad("it contains '\\'");
  if (name.includes('\0')) return bad('it contains a NUL byte');
  if (name.endsWith(TEMP_SUFFIX)) return bad(`it ends with the temp suffix ${TEMP_SUFFIX}`);
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return bad(`it is longer than ${MAX_NAME_BYTES} bytes`);
}

export function tempNameFor(name: string): string {
  // Keep the temp within NAME_MAX: a long name is shortened in its temp only.
  const stem = Buffer.byteLength(name, 'utf8') > 200 ? [...name].slice(0, 50).join('') : name;
  return `.${stem}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
}
