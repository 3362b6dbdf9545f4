/**
 * Frame codec (SPEC.md §2.1): one frame = one msgpack map = one Message. No I/O.
 *
 * decodeFrame order: size check → structural pre-scan (msgpack-scan.ts) →
 * msgpackr decode (anything it throws becomes PROTO_MALFORMED with `cause`) →
 * schema validation (schema.ts). Byte fields of the result (Chunk.data…) are
 * Buffer views into `buf`, not copies.
 */

import { createRequire } from 'node:module';
import type { Packr, Unpackr } from 'msgpackr';
import { PROTO_CODES, ProtocolError } from './errors.js';
import { MAX_CHUNK_BYTES, MAX_FRAME_BYTES } from './limits.js';
import type { Message } from './messages.js';
import { scanMsgpack } from './msgpack-scan.js';
import { validateMessage } from './schema.js';

let coders: { packr: Packr; unpackr: Unpackr } | undefined;

/** msgpackr's switch for its native string decoder, read once when msgpackr loads. */
const NATIVE_OFF = 'MSGPACKR_NATIVE_ACCELERATION_DISABLED';
let nativeStrings = true;

/**
 * Decode strings in JavaScript in this process: msgpackr then loads without its native string
 * decoder (msgpackr-extract), whose load costs 15–20 ms of CPU. That decoder halves the time of a
 * large Offer (1,000 files: about 1.2 against 2.4 ms), which studiod decodes. field-agent decodes
 * Wants, Acks and Receipts (a Want of 1,000 files: 0.55 against 0.2 ms) and paid the load at every
 * start: its first frames cost 26 ms of CPU without it against 44 with it, about a fifth of its fixed
 * CPU per sync (README "Session 17"). Frames decode to the same messages either way. Call it before
 * the first frame: once msgpackr is loaded it has no effect.
 */
export function decodeStringsInJs(): void {
  nativeStrings = false;
}

/** msgpackr, loaded on first use: commands that never touch the wire (`field-agent ingest`) do not pay for it. */
function msgpack(): { packr: Packr; unpackr: Unpackr } {
  if (coders === undefined) {
    const before = process.env[NATIVE_OFF];
    if (!nativeStrings) process.env[NATIVE_OFF] = 'true';
    let m: typeof import('msgpackr');
    try {
      m = createRequire(import.meta.url)('msgpackr') as typeof import('msgpackr');
    } finally {
      if (!nativeStrings && before === undefined) delete process.env[NATIVE_OFF];
      else if (!nativeStrings) process.env[NATIVE_OFF] = before;
    }
    coders = {
      packr: new m.Packr({ useRecords: false, structuredClone: false, moreTypes: false, bundleStrings: false }),
      unpackr: new m.Unpackr({
        useRecords: false,
        mapsAsObjects: true,
        structuredClone: false,
        moreTypes: false,
        int64AsType: 'number',
      }),
    };
  }
  return coders;
}

function tooLarge(size: number): ProtocolError {
  return new ProtocolError(
    PROTO_CODES.frameTooLarge,
    `Frame of ${size} bytes exceeds the limit of ${MAX_FRAME_BYTES} bytes; the sender must split its data.`,
    {
      detail: { size, limit: MAX_FRAME_BYTES },
    },
  );
}

/** Validate `msg` and encode it as one frame. Throws ProtocolError (PROTO_INVALID_FIELD, PROTO_FRAME_TOO_LARGE…). */
export function encodeFrame(msg: Message): Buffer {
  const normalised = validateMessage(msg);
  const frame = msgpack().packr.pack(normalised);
  if (frame.length > MAX_FRAME_BYTES) throw tooLarge(frame.length);
  return frame;
}

/** Decode and validate one frame. Throws only ProtocolError. */
export function decodeFrame(buf: Uint8Array): Message {
  if (buf.length > MAX_FRAME_BYTES) throw tooLarge(buf.length);
  const view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  scanMsgpack(view);
  let value: unknown;
  try {
    value = msgpack().unpackr.unpack(view);
  } catch (err) {
    throw new ProtocolError(
      PROTO_CODES.malformed,
      'Malformed frame: msgpack decoding failed; the peer is not speaking protocol v1 correctly.',
      {
        cause: err,
      },
    );
  }
  return validateMessage(value);
}

/**
 * Bytes before a Chunk frame's data in encodeChunkFrame's fixed layout: map(4), `t`: "chunk",
 * `hash`: str 8 of 64, `offset`: uint 64, `data`: bin 32 header.
 */
export const CHUNK_HEADER_BYTES = 1 + 2 + 6 + 5 + 2 + 64 + 7 + 9 + 5 + 5;

const CHUNK_HEAD = Buffer.from([
  0x84,
  0xa1,
  0x74,
  0xa5,
  ...Buffer.from('chunk'),
  0xa4,
  ...Buffer.from('hash'),
  0xd9,
  64,
]);
const OFFSET_KEY = Buffer.from([0xa6, ...Buffer.from('offset'), 0xcf]);
const DATA_KEY = Buffer.from([0xa4, ...Buffer.from('data'), 0xc6]);
const HASH_HEX = /^[0-9a-f]{64}$/;

/**
 * A Chunk frame built in place, for a sender that reads the data straight into
 * `frame` at CHUNK_HEADER_BYTES (no copy into an encoder's buffer, and `frame`
 * can be reused once sent): writes the header for `dataLength` bytes there and
 * returns the frame's view. The same frame as encodeFrame's, with the offset as
 * uint 64 and the data as bin 32 whatever their values (SPEC §2.1 allows any width).
 * Throws PROTO_INVALID_FIELD for a field encodeFrame would refuse.
 */
export function encodeChunkFrame(frame: Uint8Array, hash: string, offset: number, dataLength: number): Uint8Array {
  const invalid = (field: string, what: string): ProtocolError =>
    new ProtocolError(PROTO_CODES.invalidField, `Chunk.${field}: ${what}.`, { detail: { field } });
  if (!HASH_HEX.test(hash)) throw invalid('hash', 'must be 64 lower-case hex characters');
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalid('offset', 'must be an integer in [0, 2^53 - 1]');
  if (!Number.isSafeInteger(dataLength) || dataLength < 1 || dataLength > MAX_CHUNK_BYTES)
    throw invalid('data', `must be 1..${MAX_CHUNK_BYTES} bytes`);
  if (frame.byteLength < CHUNK_HEADER_BYTES + dataLength)
    throw new TypeError('encodeChunkFrame: the frame is shorter than its header and data');
  const b = Buffer.from(frame.buffer, frame.byteOffset, CHUNK_HEADER_BYTES);
  let at = CHUNK_HEAD.copy(b, 0);
  at += b.write(hash, at, 'latin1');
  at += OFFSET_KEY.copy(b, at);
  at = b.writeUInt32BE(Math.floor(offset / 2 ** 32), at);
  at = b.writeUInt32BE(offset >>> 0, at);
  at += DATA_KEY.copy(b, at);
  b.writeUInt32BE(dataLength, at);
  return frame.subarray(0, CHUNK_HEADER_BYTES + dataLength);
}
