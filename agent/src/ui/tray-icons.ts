/**
 * Tray icons, drawn at start instead of shipped as files: a filled disc in
 * the state's colour on a transparent 32×32 PNG (base64, what systray2 takes
 * on Linux and macOS). No image library: a minimal PNG encoder (IHDR, one
 * zlib IDAT, IEND).
 */
import { deflateSync } from 'node:zlib';

export type TrayState = 'idle' | 'offloading' | 'syncing' | 'attention';

/** idle green (all safe), offloading blue, syncing amber, attention red. */
export const TRAY_COLOURS: Record<TrayState, readonly [number, number, number]> = {
  idle: [0x1a, 0x7f, 0x37],
  offloading: [0x1f, 0x6f, 0xeb],
  syncing: [0xd2, 0x99, 0x22],
  attention: [0xc6, 0x28, 0x28],
};

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A size×size RGBA PNG of a disc in `rgb` with a soft edge. */
export function discPng(rgb: readonly [number, number, number], size = 32): Buffer {
  const raw = Buffer.alloc((size * 4 + 1) * size);
  const r = size / 2 - 1;
  const c = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    const row = y * (size * 4 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x - c, y - c);
      const alpha = Math.max(0, Math.min(1, r - d + 0.5));
      const o = row + 1 + x * 4;
      raw[o] = rgb[0];
      raw[o + 1] = rgb[1];
      raw[o + 2] = rgb[2];
      raw[o + 3] = Math.round(alpha * 255);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const cache = new Map<TrayState, string>();
export function trayIcon(state: TrayState): string {
  let icon = cache.get(state);
  if (icon === undefined) {
    icon = discPng(TRAY_COLOURS[state]).toString('base64');
    cache.set(state, icon);
  }
  return icon;
}
