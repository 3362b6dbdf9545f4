/**
 * Hand-written schema validators for protocol v1 messages (SPEC.md §4).
 *
 * `validateMessage(value)` takes anything (a decoded frame, or a message about
 * to be encoded) and returns a fresh, normalised Message holding only the known
 * fields, or throws a ProtocolError: PROTO_UNKNOWN_TYPE, PROTO_INVALID_FIELD
 * (detail.field names the field, e.g. `files[3].names[0].path`), PROTO_BAD_MAGIC,
 * PROTO_VERSION_UNSUPPORTED. Names are NOT checked here beyond type and length:
 * the studio checks them per file with names.ts and Nacks that file only.
 */

import { PROTO_CODES, ProtocolError } from './errors.js';
import {
  MAGIC,
  MAX_BATCH_FILES,
  MAX_CHUNK_BYTES,
  MAX_MHL_GENERATION_BYTES,
  MAX_CODE_BYTES,
  MAX_COPIES_PER_FILE,
  MAX_FEATURES,
  MAX_ID_BYTES,
  MAX_LABEL_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_NAME_BYTES,
  MAX_NAMES_PER_FILE,
  MAX_PATH_BYTES,
  MAX_PUBLIC_KEY_BYTES,
  MAX_STORED_PATH_BYTES,
  MAX_WINDOW_BYTES,
  MIN_WINDOW_BYTES,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  SIGNATURE_BYTES,
  MAX_VERDICT_REASONS,
} from './limits.js';
import {
  type AgentCopy,
  type AssetVerdict,
  type VerdictCopy,
  type FileName,
  type Message,
  MessageType,
  type MessageTypeName,
  type OfferFile,
  type FileCapture,
  Role,
  type RoleName,
  type StudioCopy,
  type WantEntry,
} from './messages.js';

type Obj = Record<string, unknown>;

const HASH_RE = /^[0-9a-f]{64}$/;
const ID_RE = /^[A-Za-z0-9_.:-]+$/;
const CODE_RE = /^[A-Z][A-Z0-9_]*$/;
const FINGERPRINT_RE = /^sha256:[0-9a-f]{64}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

const TYPE_NAMES = new Set<string>(Object.values(MessageType));

function invalid(field: string, why: string): never {
  throw new ProtocolError(
    PROTO_CODES.invalidField,
    `Invalid field "${field}": ${why}. The peer sent a frame protocol v1 does not allow.`,
    {
      detail: { field },
    },
  );
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function get(o: Obj, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

function obj(v: unknown, field: string): Obj {
  if (!isObj(v)) invalid(field, 'expected a map');
  return v;
}

interface StrOpts {
  max: number;
  min?: number;
  re?: RegExp;
  noControl?: boolean;
}

function str(o: Obj, key: string, field: string, opts: StrOpts): string {
  const v = get(o, key);
  if (typeof v !== 'string') invalid(field, v === undefined ? 'missing' : 'expected a string');
  const bytes = Buffer.byteLength(v, 'utf8');
  if (bytes < (opts.min ?? 1)) invalid(field, 'must not be empty');
  if (bytes > opts.max) invalid(field, `${bytes} bytes exceeds the limit of ${opts.max}`);
  if (opts.re !== undefined && !opts.re.test(v)) invalid(field, 'has characters or a form not allowed');
  if (opts.noControl === true && CONTROL_RE.test(v)) invalid(field, 'contains control characters');
  return v;
}

const label = (o: Obj, key: string, field: string): string =>
  str(o, key, field, { max: MAX_LABEL_BYTES, noControl: true });
const id = (o: Obj, key: string, field: string): string => str(o, key, field, { max: MAX_ID_BYTES, re: ID_RE });
const XXH3_RE = /^[0-9a-f]{16}$/;
const hash = (o: Obj, key: string, field: string): string => str(o, key, field, { max: 64, re: HASH_RE });
const code = (o: Obj, key: string, field: string): string => str(o, key, field, { max: MAX_CODE_BYTES, re: CODE_RE });
const text = (o: Obj, key: string, field: string): string => str(o, key, field, { max: MAX_MESSAGE_BYTES, min: 0 });

function uint(o: Obj, key: string, field: string, max = Number.MAX_SAFE_INTEGER, min = 0): number {
  const v = get(o, key);
  if (typeof v !== 'number') invalid(field, v === undefined ? 'missing' : 'expected an integer');
  if (!Number.isSafeInteger(v)) invalid(field, 'expected a safe integer');
  if (v < min || v > max) invalid(field, `${v} is outside ${min}..${max}`);
  return v;
}

function int(o: Obj, key: string, field: string): number {
  return uint(o, key, field, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER);
}

function bool(o: Obj, key: string, field: string): boolean {
  const v = get(o, key);
  if (typeof v !== 'boolean') invalid(field, v === undefined ? 'missing' : 'expected a boolean');
  return v;
}

function bytes(o: Obj, key: string, field: string, min: number, max: number): Uint8Array {
  const v = get(o, key);
  if (!(v instanceof Uint8Array)) invalid(field, v === undefined ? 'missing' : 'expected bytes');
  if (v.length < min || v.length > max) {
    invalid(
      field,
      min === max ? `expected exactly ${min} bytes, got ${v.length}` : `${v.length} bytes is outside ${min}..${max}`,
    );
  }
  return v;
}

function arr(o: Obj, key: string, field: string, min: number, max: number): unknown[] {
  const v = get(o, key);
  if (!Array.isArray(v)) invalid(field, v === undefined ? 'missing' : 'expected an array');
  if (v.length < min || v.length > max) invalid(field, `${v.length} entries is outside ${min}..${max}`);
  return v;
}

function uniqueHashes(hashes: string[], field: string): void {
  const seen = new Set<string>();
  hashes.forEach((h, i) => {
    if (seen.has(h)) invalid(`${field}[${i}]`, 'the same hash appears twice');
    seen.add(h);
  });
}

function fileName(v: unknown, f: string): FileName {
  const o = obj(v, f);
  const name: FileName = {
    shoot: str(o, 'shoot', `${f}.shoot`, { max: MAX_NAME_BYTES }),
    card: str(o, 'card', `${f}.card`, { max: MAX_NAME_BYTES }),
    path: str(o, 'path', `${f}.path`, { max: MAX_PATH_BYTES }),
    mtime: int(o, 'mtime', `${f}.mtime`),
  };
  // Optional: agents from before it send none.
  if (get(o, 'capture') !== undefined) name.capture = fileCapture(get(o, 'capture'), `${f}.capture`);
  return name;
}

/** A date folder: it becomes a path segment at the studio, so nothing but a real calendar day. */
const DAY_RE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
/** One path segment: no `/` or `\\`, not `.` or `..` (the studio shows it; it is never a path). */
const ORIGINAL_NAME_RE = /^(?!\.{1,2}$)[^/\\]+$/;
const TAKEN_AT_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?([+-]\d{2}:\d{2})?$/;

function fileCapture(v: unknown, f: string): FileCapture {
  const o = obj(v, f);
  const dateSource = get(o, 'dateSource');
  if (dateSource !== 'exif' && dateSource !== 'mtime') invalid(`${f}.dateSource`, 'expected "exif" or "mtime"');
  const c: FileCapture = { day: str(o, 'day', `${f}.day`, { max: 10, re: DAY_RE }), dateSource };
  if (get(o, 'takenAt') !== undefined) c.takenAt = str(o, 'takenAt', `${f}.takenAt`, { max: 40, re: TAKEN_AT_RE });
  if (get(o, 'camera') !== undefined) c.camera = label(o, 'camera', `${f}.camera`);
  if (get(o, 'serial') !== undefined) c.serial = label(o, 'serial', `${f}.serial`);
  if (get(o, 'imageNumber') !== undefined) c.imageNumber = uint(o, 'imageNumber', `${f}.imageNumber`);
  if (get(o, 'lens') !== undefined) c.lens = label(o, 'lens', `${f}.lens`);
  if (get(o, 'originalName') !== undefined)
    c.originalName = str(o, 'originalName', `${f}.originalName`, {
      max: MAX_NAME_BYTES,
      re: ORIGINAL_NAME_RE,
      noControl: true,
    });
  return c;
}

function agentCopy(v: unknown, f: string): AgentCopy {
  const o = obj(v, f);
  return {
    target: label(o, 'target', `${f}.target`),
    device: label(o, 'device', `${f}.device`),
    media: label(o, 'media', `${f}.media`),
    location: label(o, 'location', `${f}.location`),
    verifiedAt: uint(o, 'verifiedAt', `${f}.verifiedAt`),
    method: label(o, 'method', `${f}.method`),
  };
}

function studioCopy(v: unknown, f: string): StudioCopy {
  const o = obj(v, f);
  return {
    target: label(o, 'target', `${f}.target`),
    path: str(o, 'path', `${f}.path`, { max: MAX_STORED_PATH_BYTES }),
    device: label(o, 'device', `${f}.device`),
    media: label(o, 'media', `${f}.media`),
    location: label(o, 'location', `${f}.location`),
    verifiedAt: uint(o, 'verifiedAt', `${f}.verifiedAt`),
    method: label(o, 'method', `${f}.method`),
  };
}

function offerFile(v: unknown, f: string): OfferFile {
  const o = obj(v, f);
  return {
    hash: hash(o, 'hash', `${f}.hash`),
    size: uint(o, 'size', `${f}.size`),
    names: arr(o, 'names', `${f}.names`, 1, MAX_NAMES_PER_FILE).map((n, i) => fileName(n, `${f}.names[${i}]`)),
    copies: arr(o, 'copies', `${f}.copies`, 0, MAX_COPIES_PER_FILE).map((c, i) => agentCopy(c, `${f}.copies[${i}]`)),
    ...(get(o, 'xxh3') === undefined ? {} : { xxh3: str(o, 'xxh3', `${f}.xxh3`, { min: 16, max: 16, re: XXH3_RE }) }),
  };
}

function hashList(o: Obj, key: string, min: number, max: number): string[] {
  return arr(o, key, key, min, max).map((h, i) => {
    if (typeof h !== 'string' || !HASH_RE.test(h))
      invalid(`${key}[${i}]`, 'expected a 64-character lower-case hex hash');
    return h;
  });
}

function verdictCopy(v: unknown, f: string): VerdictCopy {
  const o = obj(v, f);
  const storageClass = get(o, 'storageClass') === undefined ? undefined : label(o, 'storageClass', `${f}.storageClass`);
  return {
    target: label(o, 'target', `${f}.target`),
    media: label(o, 'media', `${f}.media`),
    location: label(o, 'location', `${f}.location`),
    offsite: bool(o, 'offsite', `${f}.offsite`),
    ...(storageClass === undefined ? {} : { storageClass }),
    verifiedAt: uint(o, 'verifiedAt', `${f}.verifiedAt`),
  };
}

function assetVerdict(v: unknown, f: string): AssetVerdict {
  const o = obj(v, f);
  return {
    hash: hash(o, 'hash', `${f}.hash`),
    known: bool(o, 'known', `${f}.known`),
    compliant: bool(o, 'compliant', `${f}.compliant`),
    copies: arr(o, 'copies', `${f}.copies`, 0, MAX_COPIES_PER_FILE).map((c, i) => verdictCopy(c, `${f}.copies[${i}]`)),
    reasons: arr(o, 'reasons', `${f}.reasons`, 0, MAX_VERDICT_REASONS).map((_, i, all) =>
      text({ r: all[i] }, 'r', `${f}.reasons[${i}]`),
    ),
  };
}

function wantEntry(v: unknown, f: string): WantEntry {
  const o = obj(v, f);
  return { hash: hash(o, 'hash', `${f}.hash`), offset: uint(o, 'offset', `${f}.offset`) };
}

function hello(o: Obj): Message {
  const magic = get(o, 'magic');
  if (magic !== MAGIC) {
    throw new ProtocolError(
      PROTO_CODES.badMagic,
      `Hello magic is ${JSON.stringify(typeof magic === 'string' ? magic.slice(0, 16) : typeof magic)}, expected "${MAGIC}": the peer is not a Studio321 endpoint.`,
    );
  }
  const version = uint(o, 'version', 'version');
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      PROTO_CODES.versionUnsupported,
      `The peer speaks protocol version ${version}; this side speaks only version ${PROTOCOL_VERSION}. Upgrade the older of field-agent and studiod.`,
      {
        detail: { version, supported: [PROTOCOL_VERSION] },
      },
    );
  }
  const role = get(o, 'role');
  if (role !== Role.Agent && role !== Role.Studio) invalid('role', 'expected "agent" or "studio"');
  const software = label(o, 'software', 'software');
  if ((role as RoleName) === Role.Studio) {
    const window = uint(o, 'window', 'window', MAX_WINDOW_BYTES, MIN_WINDOW_BYTES);
    if (get(o, 'features') === undefined) return { t: 'hello', magic: MAGIC, version, role, software, window };
    const features = arr(o, 'features', 'features', 0, MAX_FEATURES).map((_, i, all) =>
      label({ f: all[i] }, 'f', `features[${i}]`),
    );
    return { t: 'hello', magic: MAGIC, version, role, software, window, features };
  }
  // An agent's queue report is optional: agents from before it connect without one.
  const queue = get(o, 'queue');
  if (queue === undefined) return { t: 'hello', magic: MAGIC, version, role, software };
  const q = obj(queue, 'queue');
  return {
    t: 'hello',
    magic: MAGIC,
    version,
    role,
    software,
    queue: { files: uint(q, 'files', 'queue.files'), bytes: uint(q, 'bytes', 'queue.bytes') },
  };
}

const validators: { [K in MessageTypeName]: (o: Obj) => Message } = {
  hello,
  'pair-request': (o) => ({
    t: 'pair-request',
    code: str(o, 'code', 'code', { max: 64, noControl: true }),
    agentName: label(o, 'agentName', 'agentName'),
    publicKey: bytes(o, 'publicKey', 'publicKey', 1, MAX_PUBLIC_KEY_BYTES),
  }),
  'pair-accepted': (o) => ({
    t: 'pair-accepted',
    agentId: id(o, 'agentId', 'agentId'),
    studioFingerprint: str(o, 'studioFingerprint', 'studioFingerprint', { max: 71, re: FINGERPRINT_RE }),
  }),
  'auth-challenge': (o) => ({
    t: 'auth-challenge',
    nonce: bytes(o, 'nonce', 'nonce', NONCE_BYTES, NONCE_BYTES),
    sessionId: id(o, 'sessionId', 'sessionId'),
  }),
  'auth-proof': (o) => ({
    t: 'auth-proof',
    agentId: id(o, 'agentId', 'agentId'),
    signature: bytes(o, 'signature', 'signature', SIGNATURE_BYTES, SIGNATURE_BYTES),
  }),
  'auth-accepted': (o) => ({ t: 'auth-accepted', agentId: id(o, 'agentId', 'agentId') }),
  offer: (o) => {
    const batchId = id(o, 'batchId', 'batchId');
    const files = arr(o, 'files', 'files', 1, MAX_BATCH_FILES).map((f, i) => offerFile(f, `files[${i}]`));
    uniqueHashes(
      files.map((f) => f.hash),
      'files',
    );
    return { t: 'offer', batchId, files };
  },
  want: (o) => {
    const batchId = id(o, 'batchId', 'batchId');
    const wants = arr(o, 'wants', 'wants', 0, MAX_BATCH_FILES).map((w, i) => wantEntry(w, `wants[${i}]`));
    const have = hashList(o, 'have', 0, MAX_BATCH_FILES);
    uniqueHashes([...wants.map((w) => w.hash), ...have], 'wants+have');
    return { t: 'want', batchId, wants, have };
  },
  chunk: (o) => ({
    t: 'chunk',
    hash: hash(o, 'hash', 'hash'),
    offset: uint(o, 'offset', 'offset'),
    data: bytes(o, 'data', 'data', 1, MAX_CHUNK_BYTES),
  }),
  ack: (o) => ({ t: 'ack', hash: hash(o, 'hash', 'hash'), offset: uint(o, 'offset', 'offset') }),
  'file-end': (o) => ({ t: 'file-end', hash: hash(o, 'hash', 'hash'), size: uint(o, 'size', 'size') }),
  receipt: (o) => ({
    t: 'receipt',
    hash: hash(o, 'hash', 'hash'),
    size: uint(o, 'size', 'size'),
    committedAt: uint(o, 'committedAt', 'committedAt'),
    copies: arr(o, 'copies', 'copies', 1, MAX_COPIES_PER_FILE).map((c, i) => studioCopy(c, `copies[${i}]`)),
  }),
  nack: (o) => ({
    t: 'nack',
    hash: hash(o, 'hash', 'hash'),
    code: code(o, 'code', 'code'),
    message: text(o, 'message', 'message'),
    retryable: bool(o, 'retryable', 'retryable'),
    resumeOffset: uint(o, 'resumeOffset', 'resumeOffset'),
  }),
  ping: (o) => ({ t: 'ping', ts: uint(o, 'ts', 'ts') }),
  pong: (o) => ({ t: 'pong', ts: uint(o, 'ts', 'ts') }),
  error: (o) => ({
    t: 'error',
    code: code(o, 'code', 'code'),
    message: text(o, 'message', 'message'),
    retryable: bool(o, 'retryable', 'retryable'),
  }),
  'verdict-request': (o) => {
    const requestId = id(o, 'requestId', 'requestId');
    const hashes = hashList(o, 'hashes', 1, MAX_BATCH_FILES);
    uniqueHashes(hashes, 'hashes');
    return { t: 'verdict-request', requestId, hashes };
  },
  verdict: (o) => ({
    t: 'verdict',
    requestId: id(o, 'requestId', 'requestId'),
    verdicts: arr(o, 'verdicts', 'verdicts', 0, MAX_BATCH_FILES).map((v, i) => assetVerdict(v, `verdicts[${i}]`)),
  }),
  // Names are checked by the studio (SPEC §3.11), as an Offer's are, not here.
  'mhl-generation': (o) => ({
    t: 'mhl-generation',
    requestId: id(o, 'requestId', 'requestId'),
    shoot: str(o, 'shoot', 'shoot', { max: MAX_NAME_BYTES }),
    card: str(o, 'card', 'card', { max: MAX_NAME_BYTES }),
    name: str(o, 'name', 'name', { max: MAX_NAME_BYTES }),
    data: bytes(o, 'data', 'data', 1, MAX_MHL_GENERATION_BYTES),
  }),
  'mhl-stored': (o) => ({ t: 'mhl-stored', requestId: id(o, 'requestId', 'requestId') }),
};

/** Validate and normalise a message (see file comment). */
export function validateMessage(value: unknown): Message {
  if (!isObj(value)) invalid('(frame)', 'a frame must be a map');
  const t = get(value, 't');
  if (typeof t !== 'string' || !TYPE_NAMES.has(t)) {
    const shown = typeof t === 'string' ? JSON.stringify(t.slice(0, 32)) : typeof t;
    throw new ProtocolError(
      PROTO_CODES.unknownType,
      `Unknown message type ${shown}: the peer speaks a protocol this side does not know.`,
      {
        detail: { type: typeof t === 'string' ? t.slice(0, 32) : null },
      },
    );
  }
  return validators[t as MessageTypeName](value);
}
