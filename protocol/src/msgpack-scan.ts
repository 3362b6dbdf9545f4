/**
 * Structural pre-scan of one msgpack frame, BEFORE msgpackr decodes it.
 *
 * Iterative (no recursion), O(frame bytes), allocates nothing proportional to
 * the input. Refuses (PROTO_MALFORMED): a top-level value that is not a map,
 * nesting deeper than MAX_NESTING_DEPTH, containers with more than
 * MAX_CONTAINER_ITEMS entries or claiming more entries than bytes remain,
 * str/bin lengths beyond the remaining bytes or the scan limits, non-string map
 * keys, nil, the never-used byte 0xc1, extension types, truncation and trailing
 * bytes. After a successful scan msgpackr only ever sees a bounded, well-formed
 * value, so it cannot blow the stack or allocate from a lying header.
 */

import { PROTO_CODES, ProtocolError } from './errors.js';
import { MAX_CONTAINER_ITEMS, MAX_FRAME_BYTES, MAX_NESTING_DEPTH } from './limits.js';

export interface ScanLimits {
  maxDepth: number;
  maxItems: number;
  /** Longest str value (the schema checks each field's own, smaller limit). */
  maxStrBytes: number;
  /** Longest map key. */
  maxKeyBytes: number;
  /** Longest bin value. */
  maxBinBytes: number;
}

export const DEFAULT_SCAN_LIMITS: ScanLimits = {
  maxDepth: MAX_NESTING_DEPTH,
  maxItems: MAX_CONTAINER_ITEMS,
  maxStrBytes: 4096,
  maxKeyBytes: 32,
  maxBinBytes: MAX_FRAME_BYTES,
};

function malformed(message: string, offset: number): never {
  throw new ProtocolError(
    PROTO_CODES.malformed,
    `Malformed frame: ${message} at byte ${offset}; the peer is not speaking protocol v1 correctly.`,
    {
      detail: { offset },
    },
  );
}

/** Throws PROTO_MALFORMED unless `buf` holds exactly one msgpack map within `limits`. */
export function scanMsgpack(buf: Uint8Array, limits: ScanLimits = DEFAULT_SCAN_LIMITS): void {
  const end = buf.length;
  // remaining[d] = values still expected in the container at depth d (maps count keys and values).
  const remaining = new Array<number>(limits.maxDepth + 1).fill(0);
  // isMap[d] and key parity: in a map, an even `remaining` means the next value is a key.
  const isMap = new Array<boolean>(limits.maxDepth + 1).fill(false);
  let depth = 0; // number of open containers
  let pos = 0;
  let first = true;

  const need = (n: number, at: number): void => {
    if (n > end - pos) malformed(`length ${n} exceeds the ${end - pos} bytes remaining`, at);
  };
  const readLen = (width: 1 | 2 | 4, at: number): number => {
    need(width, at);
    let n = 0;
    for (let i = 0; i < width; i++) n = n * 256 + (buf[pos + i] as number);
    pos += width;
    return n;
  };

  while (first || depth > 0) {
    if (pos >= end) malformed('truncated frame', pos);
    const at = pos;
    const b = buf[pos++] as number;
    const expectKey = depth > 0 && isMap[depth] === true && (remaining[depth] as number) % 2 === 0;
    if (first && !((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf))
      malformed('a frame must be a msgpack map', at);

    let strLen = -1;
    let container = -1; // element count of a new container, -1 if none
    let containerIsMap = false;

    if (b <= 0x7f || b >= 0xe0) {
      // fixint
    } else if (b <= 0x8f) {
      container = b & 0x0f;
      containerIsMap = true;
    } else if (b <= 0x9f) {
      container = b & 0x0f;
    } else if (b <= 0xbf) {
      strLen = b & 0x1f;
    } else {
      switch (b) {
        case 0xc2:
        case 0xc3:
          break;
        case 0xc4:
        case 0xc5:
        case 0xc6: {
          const n = readLen(b === 0xc4 ? 1 : b === 0xc5 ? 2 : 4, at);
          if (n > limits.maxBinBytes) malformed(`bin of ${n} bytes exceeds the limit ${limits.maxBinBytes}`, at);
          need(n, at);
          pos += n;
          break;
        }
        case 0xca:
          need(4, at);
          pos += 4;
          break;
        case 0xcb:
          need(8, at);
          pos += 8;
          break;
        case 0xcc:
        case 0xd0:
          need(1, at);
          pos += 1;
          break;
        case 0xcd:
        case 0xd1:
          need(2, at);
          pos += 2;
          break;
        case 0xce:
        case 0xd2:
          need(4, at);
          pos += 4;
          break;
        case 0xcf:
        case 0xd3:
          need(8, at);
          pos += 8;
          break;
        case 0xd9:
          strLen = readLen(1, at);
          break;
        case 0xda:
          strLen = readLen(2, at);
          break;
        case 0xdb:
          strLen = readLen(4, at);
          break;
        case 0xdc:
          container = readLen(2, at);
          break;
        case 0xdd:
          container = readLen(4, at);
          break;
        case 0xde:
          container = readLen(2, at);
          containerIsMap = true;
          break;
        case 0xdf:
          container = readLen(4, at);
          containerIsMap = true;
          break;
        case 0xc0:
          malformed('nil is not allowed', at);
          break;
        case 0xc1:
          malformed('byte 0xc1 is never used in msgpack', at);
          break;
        default:
          malformed(`extension type 0x${b.toString(16)} is not allowed`, at);
      }
    }

    if (expectKey && strLen < 0) malformed('map keys must be strings', at);
    if (strLen >= 0) {
      const max = expectKey ? limits.maxKeyBytes : limits.maxStrBytes;
      if (strLen > max) malformed(`string of ${strLen} bytes exceeds the limit ${max}`, at);
      need(strLen, at);
      pos += strLen;
    }

    // This value fills one slot of the enclosing container.
    if (depth > 0) remaining[depth] = (remaining[depth] as number) - 1;
    first = false;

    if (container >= 0) {
      if (container > limits.maxItems)
        malformed(`container of ${container} entries exceeds the limit ${limits.maxItems}`, at);
      const slots = containerIsMap ? container * 2 : container;
      if (slots > end - pos) malformed(`container claims ${slots} values but only ${end - pos} bytes remain`, at);
      if (slots > 0) {
        if (depth >= limits.maxDepth) malformed(`nesting deeper than ${limits.maxDepth}`, at);
        depth++;
        remaining[depth] = slots;
        isMap[depth] = containerIsMap;
      }
    }
    // Close every container that is now complete.
    while (depth > 0 && remaining[depth] === 0) depth--;
  }
  if (pos !== end) malformed(`${end - pos} trailing bytes after the frame`, pos);
}
