/**
 * Rename templates at ingest, as Photo Mechanic and Rapid Photo Downloader do:
 * `{date:YYYYMMDD}_{body}_{seq:4}` gives a sidecar group ONE new stem; each file
 * keeps its own extension as it was written (`.CR3`, `.JPG`, `.xmp`), so the RAW,
 * its JPEG and its XMP stay one group under the new name. The clash rules are
 * unchanged (naming.ts): a name held by other content moves the whole group to
 * `~2`, `~3`… Nothing is ever overwritten.
 *
 * Tokens (a value is never empty: a missing one says `unknown`, never drops the group):
 *   {date:FMT} {time:FMT}  the group's capture time as the camera's clock showed it (FMT
 *                          from YYYY YY MM DD HH mm ss and `-` `_`; default YYYYMMDD and
 *                          HHmmss). No capture time (no EXIF, sidecars alone): the UTC time
 *                          of the group's oldest mtime — the same fallback as its date folder
 *   {body}                 the body's nickname from the config's `bodies` (by serial), else
 *                          the camera's make and model, else its serial, else `unknown`
 *   {serial}               the body serial number, else `unknown`
 *   {seq} {seq:N}          the camera's image number (EXIF FileNumber/ImageNumber/shutter
 *                          count), else the digits of the DCF name (IMG_1234 → 1234), else
 *                          `unknown`; zero-padded to N (1–9) digits, and its last N digits
 *                          when longer (Canon's FileNumber 117-1771 → 1771, as in the name)
 *   {name}                 the group's original stem (IMG_1234)
 *   {shoot} {card}         the shoot name and the card's label
 * Anything else is literal text. Values from the card are made safe for one path
 * segment (`/`, `\`, control characters and spaces become `-`).
 *
 * A template is checked whole before anything is copied: an unknown token, a bad
 * width or format, a `{` or `}` left open, or literal text that would make an unsafe
 * name (`/`, `\`, `..`, control characters, a leading `.`) is AGENT_RENAME_TEMPLATE,
 * naming the token.
 */
import { didYouMean } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from '../errors.js';

type DatePart = 'YYYY' | 'YY' | 'MM' | 'DD' | 'HH' | 'mm' | 'ss' | '-' | '_';

type Part =
  | { kind: 'text'; text: string }
  | { kind: 'date' | 'time'; format: DatePart[] }
  | { kind: 'seq'; width?: number }
  | { kind: 'body' | 'serial' | 'name' | 'shoot' | 'card' };

export interface RenameTemplate {
  readonly text: string;
  readonly parts: readonly Part[];
}

/** What a group's new stem is made of (offloader.ts gathers it from the group's files). */
export interface RenameValues {
  /** The first capture time of the group (capture.ts `takenAt`), when a file has one. */
  takenAt?: string;
  /** The group's oldest mtime (ms): the time when there is no capture time. */
  mtimeMs: number;
  camera?: string;
  serial?: string;
  imageNumber?: number;
  /** The group's original stem. */
  name: string;
  shoot: string;
  card: string;
  /** Body nicknames by serial number (config `bodies`). */
  bodies?: Readonly<Record<string, string>>;
}

const TOKENS = ['date', 'time', 'body', 'serial', 'seq', 'name', 'shoot', 'card'] as const;
const DATE_PARTS = /YYYY|YY|MM|DD|HH|mm|ss|[-_]/y;
const DEFAULT_FORMAT: Record<'date' | 'time', DatePart[]> = { date: ['YYYY', 'MM', 'DD'], time: ['HH', 'mm', 'ss'] };
/** Literal text must not make a name unsafe (one path segment, never hidden). */
const UNSAFE_TEXT = /[/\\\u0000-\u001f\u007f]|\.\./;
/** A token value never grows a name past this (the name stays well within one segment's 255 bytes). */
const MAX_VALUE_CHARS = 64;
const MAX_TEMPLATE_CHARS = 128;

function refused(template: string, token: string, why: string): AgentError {
  return new AgentError(
    AGENT_CODES.renameTemplate,
    `The rename template "${template}" is refused at ${token}: ${why}. Nothing was copied; fix the template (tokens: ${TOKENS.map((t) => `{${t}}`).join(' ')}).`,
    { detail: { template, token } },
  );
}

/** Parse and check a template (AGENT_RENAME_TEMPLATE naming the token at fault). */
export function parseRenameTemplate(text: string): RenameTemplate {
  if (text === '') throw refused(text, '(empty)', 'an empty template makes empty names');
  if (text.length > MAX_TEMPLATE_CHARS) throw refused(text, '(whole)', `longer than ${MAX_TEMPLATE_CHARS} characters`);
  const parts: Part[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{', i);
    const literal = text.slice(i, open < 0 ? text.length : open);
    if (literal !== '') {
      const close = literal.indexOf('}');
      if (close >= 0) throw refused(text, `"${literal}"`, 'a "}" without its "{"');
      if (UNSAFE_TEXT.test(literal))
        throw refused(text, `"${literal}"`, 'names are one file name: no "/", "\\", ".." or control characters');
      parts.push({ kind: 'text', text: literal });
    }
    if (open < 0) break;
    const end = text.indexOf('}', open);
    const nested = text.indexOf('{', open + 1);
    if (end < 0 || (nested >= 0 && nested < end))
      throw refused(text, text.slice(open, end < 0 ? undefined : end + 1), 'a "{" without its "}"');
    parts.push(parseToken(text, text.slice(open, end + 1)));
    i = end + 1;
  }
  const first = parts[0];
  if (first?.kind === 'text' && first.text.startsWith('.'))
    throw refused(text, `"${first.text}"`, 'a name starting with "." is hidden');
  return { text, parts };
}

function parseToken(template: string, token: string): Part {
  const inner = token.slice(1, -1);
  const colon = inner.indexOf(':');
  const name = colon < 0 ? inner : inner.slice(0, colon);
  const arg = colon < 0 ? undefined : inner.slice(colon + 1);
  switch (name) {
    case 'date':
    case 'time': {
      if (arg === undefined) return { kind: name, format: DEFAULT_FORMAT[name] };
      const format: DatePart[] = [];
      DATE_PARTS.lastIndex = 0;
      while (DATE_PARTS.lastIndex < arg.length) {
        const at = DATE_PARTS.lastIndex;
        const m = DATE_PARTS.exec(arg);
        if (m === null)
          throw refused(template, token, `"${arg.slice(at)}" is not a date or time part (YYYY YY MM DD HH mm ss - _)`);
        format.push(m[0] as DatePart);
      }
      if (format.length === 0) throw refused(template, token, 'an empty format');
      return { kind: name, format };
    }
    case 'seq': {
      if (arg === undefined) return { kind: 'seq' };
      if (!/^[1-9]$/.test(arg)) throw refused(template, token, `the width must be a digit from 1 to 9, not "${arg}"`);
      return { kind: 'seq', width: Number(arg) };
    }
    case 'body':
    case 'serial':
    case 'name':
    case 'shoot':
    case 'card':
      if (arg !== undefined) throw refused(template, token, `{${name}} takes no ":${arg}"`);
      return { kind: name };
    default:
      throw refused(template, token, `unknown token${didYouMean(name, TOKENS)}`);
  }
}

/** A value from the card or the config, made safe for one path segment (never empty). */
function safe(v: string | undefined): string {
  const t = (v ?? '').replace(/[/\\\s\u0000-\u001f\u007f]+/g, '-').replace(/^[.-]+|-+$/g, '');
  return t === '' ? 'unknown' : [...t].slice(0, MAX_VALUE_CHARS).join('');
}

interface Clock {
  YYYY: string;
  MM: string;
  DD: string;
  HH: string;
  mm: string;
  ss: string;
}

/** The camera's wall clock from `takenAt`, else the UTC time of the oldest mtime. */
function clockOf(v: RenameValues): Clock {
  const m = v.takenAt === undefined ? null : /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(v.takenAt);
  if (m !== null) {
    const [, YYYY = '', MM = '', DD = '', HH = '', mm = '', ss = ''] = m;
    return { YYYY, MM, DD, HH, mm, ss };
  }
  const iso = new Date(Number.isFinite(v.mtimeMs) ? v.mtimeMs : 0).toISOString();
  return {
    YYYY: iso.slice(0, 4),
    MM: iso.slice(5, 7),
    DD: iso.slice(8, 10),
    HH: iso.slice(11, 13),
    mm: iso.slice(14, 16),
    ss: iso.slice(17, 19),
  };
}

/** The image number: the camera's, else the digits of the DCF name. */
function sequence(v: RenameValues, width: number | undefined): string {
  let digits: string | undefined;
  if (v.imageNumber !== undefined && Number.isSafeInteger(v.imageNumber) && v.imageNumber >= 0)
    digits = String(v.imageNumber);
  else digits = /(\d+)\D*$/.exec(v.name)?.[1];
  if (digits === undefined) return 'unknown';
  if (width === undefined) return digits;
  return digits.length > width ? digits.slice(-width) : digits.padStart(width, '0');
}

/** The group's new stem. */
export function renderRename(t: RenameTemplate, v: RenameValues): string {
  const clock = clockOf(v);
  const nick = v.serial === undefined ? undefined : v.bodies?.[v.serial];
  const text = { body: nick ?? v.camera ?? v.serial, serial: v.serial, name: v.name, shoot: v.shoot, card: v.card };
  let out = '';
  for (const p of t.parts) {
    switch (p.kind) {
      case 'text':
        out += p.text;
        break;
      case 'date':
      case 'time':
        for (const f of p.format) out += f === '-' || f === '_' ? f : f === 'YY' ? clock.YYYY.slice(2) : clock[f];
        break;
      case 'seq':
        out += sequence(v, p.width);
        break;
      default:
        out += safe(text[p.kind]);
    }
  }
  return out;
}

/** The config's renaming fields (config.ts). */
export interface RenameConfig {
  renameTemplate?: string | undefined;
  renameTemplates?: Readonly<Record<string, string>> | undefined;
  bodies?: Readonly<Record<string, string>> | undefined;
}

/** What an offload renames by (offloader.ts `OffloadContext.rename`). */
export interface RenameOption {
  template: RenameTemplate;
  bodies?: Readonly<Record<string, string>>;
}

/**
 * The renaming of a shoot: the template given (`ingest --rename`), else the config's
 * `renameTemplates[shoot]`, else its `renameTemplate`; undefined (names kept) when none.
 */
export function renameFor(config: RenameConfig, shoot: string, given?: string): RenameOption | undefined {
  const text = given ?? config.renameTemplates?.[shoot] ?? config.renameTemplate;
  if (text === undefined) return undefined;
  return { template: parseRenameTemplate(text), ...(config.bodies === undefined ? {} : { bodies: config.bodies }) };
}

/** Every template of the config, checked at start (a typo is refused before any card is copied). */
export function checkRenameTemplates(config: RenameConfig): void {
  if (config.renameTemplate !== undefined) parseRenameTemplate(config.renameTemplate);
  for (const t of Object.values(config.renameTemplates ?? {})) parseRenameTemplate(t);
}
