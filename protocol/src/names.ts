/**
 * The one name validator (SPEC.md §5), used by the agent before it offers a
 * file and by the studio before it builds any path from a name.
 *
 * A name is shoot / card / card-relative path. Refused with PROTO_BAD_NAME
 * (detail.reason says why): empty, absolute, drive prefix, `.`/`..`/empty
 * segments, backslash, NUL and control characters, a segment over
 * MAX_NAME_BYTES or a path over MAX_PATH_BYTES (UTF-8 bytes, after NFC), a
 * segment ending in TEMP_SUFFIX (the durable write's temp files).
 * Accepted names are returned NFC-normalised.
 */

import path from 'node:path';
import { PROTO_CODES, ProtocolError } from './errors.js';
import { MAX_NAME_BYTES, MAX_PATH_BYTES, TEMP_SUFFIX } from './limits.js';

// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const DRIVE_RE = /^[A-Za-z]:/;

export type BadNameReason =
  | 'not-a-string'
  | 'empty'
  | 'absolute'
  | 'drive-prefix'
  | 'dot-segment'
  | 'empty-segment'
  | 'backslash'
  | 'slash-in-segment'
  | 'control-character'
  | 'segment-too-long'
  | 'path-too-long'
  | 'temp-suffix'
  | 'outside-root';

const REASON_TEXT: Record<BadNameReason, string> = {
  'not-a-string': 'is not a string',
  empty: 'is empty',
  absolute: 'is absolute (starts with "/")',
  'drive-prefix': 'starts with a drive letter',
  'dot-segment': 'has a "." or ".." segment',
  'empty-segment': 'has an empty segment ("//" or a trailing "/")',
  backslash: 'contains a backslash',
  'slash-in-segment': 'contains "/" where a single name is expected',
  'control-character': 'contains NUL or a control character',
  'segment-too-long': `has a segment longer than ${MAX_NAME_BYTES} UTF-8 bytes`,
  'path-too-long': `is longer than ${MAX_PATH_BYTES} UTF-8 bytes`,
  'temp-suffix': `has a segment ending in ${TEMP_SUFFIX}, the suffix of the studio's temp files`,
  'outside-root': 'resolves outside its root directory',
};

export function badName(name: unknown, reason: BadNameReason): ProtocolError {
  const shown =
    typeof name === 'string' ? JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name) : typeof name;
  return new ProtocolError(
    PROTO_CODES.badName,
    `Refused name ${shown}: it ${REASON_TEXT[reason]}. Rename the file on the card or copy it by hand.`,
    {
      detail: { reason, name: typeof name === 'string' ? name.slice(0, 256) : null },
    },
  );
}

function checkSegment(original: unknown, seg: string, inPath: boolean): void {
  if (seg.length === 0) throw badName(original, inPath ? 'empty-segment' : 'empty');
  if (seg === '.' || seg === '..') throw badName(original, 'dot-segment');
  if (Buffer.byteLength(seg, 'utf8') > MAX_NAME_BYTES) throw badName(original, 'segment-too-long');
  // A start sweeps files ending so as leftovers of interrupted writes: an archive file must never look like one.
  if (seg.endsWith(TEMP_SUFFIX)) throw badName(original, 'temp-suffix');
}

function checkCharacters(original: unknown, s: string): void {
  if (CONTROL_RE.test(s)) throw badName(original, 'control-character');
  if (s.includes('\\')) throw badName(original, 'backslash');
}

/** Validate a single name (shoot, card, one path component). Returns it NFC-normalised. */
export function validateSegment(s: unknown): string {
  if (typeof s !== 'string') throw badName(s, 'not-a-string');
  const n = s.normalize('NFC');
  if (n.length === 0) throw badName(s, 'empty');
  checkCharacters(s, n);
  if (n.includes('/')) throw badName(s, 'slash-in-segment');
  if (DRIVE_RE.test(n)) throw badName(s, 'drive-prefix');
  checkSegment(s, n, false);
  return n;
}

/** Validate a card-relative path with "/" separators. Returns it NFC-normalised. */
export function validateRelativePath(p: unknown): string {
  if (typeof p !== 'string') throw badName(p, 'not-a-string');
  const n = p.normalize('NFC');
  if (n.length === 0) throw badName(p, 'empty');
  checkCharacters(p, n);
  if (n.startsWith('/')) throw badName(p, 'absolute');
  if (DRIVE_RE.test(n)) throw badName(p, 'drive-prefix');
  if (Buffer.byteLength(n, 'utf8') > MAX_PATH_BYTES) throw badName(p, 'path-too-long');
  for (const seg of n.split('/')) checkSegment(p, seg, true);
  return n;
}

/**
 * Comparison key: NFC + Unicode case folding. Two names with the same key would
 * collide on a case-insensitive or normalising filesystem (macOS, exFAT, NTFS):
 * the second one must get a distinct name.
 */
export function nameKey(p: string): string {
  return p.normalize('NFC').toUpperCase().toLowerCase().normalize('NFC');
}

/**
 * Join a validated relative path under `root` and assert the result stays under
 * it (PROTO_BAD_NAME 'outside-root' otherwise). Symlinks are not followed:
 * archive roots must not contain symlinks the system did not create.
 */
export function safeJoin(root: string, rel: string): string {
  const valid = validateRelativePath(rel);
  const base = path.resolve(root);
  const full = path.resolve(base, valid);
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;
  if (!full.startsWith(prefix)) throw badName(rel, 'outside-root');
  return full;
}

/**
 * The UTC day (`YYYY-MM-DD`) of a time in ms: the studio's date folder of a file whose
 * agent sent no capture day. A time JavaScript cannot represent gives `0000-00-00`.
 */
export function utcDay(ms: number): string {
  const d = new Date(Number.isFinite(ms) ? ms : 0);
  if (Number.isNaN(d.getTime())) return '0000-00-00';
  return d.toISOString().slice(0, 10);
}
