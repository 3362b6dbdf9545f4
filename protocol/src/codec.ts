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
import { MAX_FRAME_BYTES } from './limits.js';
import type { Message } from './messages.js';
import { scanMsgpack } from './msgpack-scan.js';
import { validateMessage } from './schema.js';

let coders: { packr: Packr; unpackr: Unpackr } | undefined;

/** msgpackr, loaded on first use: commands that never touch the wire (`field-agent ingest`) do not pay for it. */
function msgpack(): { packr: Packr; unpackr: Unpackr } {
  if (coders === undefined) {
    const m = createRequire(import.meta.url)('msgpackr') as typeof import('msgpackr');
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
