/**
 * Capture metadata of a camera file: when it was taken (with the camera's UTC
 * offset when it wrote one), the body's make, model and serial number, the image
 * or shutter count, and the lens.
 *
 * Only the file's first CAPTURE_HEAD_BYTES are read (one read, never the whole
 * RAW): JPEG, HEIC and the TIFF-based RAWs (CR2, NEF, ARW, DNG, ORF, RW2, PEF)
 * keep their EXIF there; so do Canon's CR3 (ISO media boxes: the TIFFs CMT1,
 * CMT2 and CMT3 in the `moov` box's Canon `uuid` box, read here) and Fujifilm's
 * RAF (a JPEG preview near the start carries the EXIF). Video (MP4, MOV): the
 * top-level boxes are walked by their headers (a few 16-byte reads, wherever
 * the camera put its `moov`, often at the end), then the start of `moov` is read:
 * `mvhd`'s creation time, kept as written (cameras write local time or UTC
 * there, depending on the body, so no offset is claimed), and Canon's CMT boxes
 * when present. exifr parses the standard tags (pure JS, ~2 ms a file
 * here, where exiftool-vendored took ~60 ms through its perl process); the
 * makernote counters it does not decode are read here for the bodies whose
 * layout is known: Canon (FileNumber, SerialNumber) and Sony (the enciphered
 * 0x9050 block: ShutterCount, InternalSerialNumber), at the offsets ExifTool uses.
 *
 * Times are kept as the camera wrote them (wall clock + offset when present),
 * never converted through this machine's time zone: the shoot's date is the
 * date the photographer's camera showed.
 */
import { open } from 'node:fs/promises';
import exifr from 'exifr';

export interface CaptureMeta {
  /** `YYYY-MM-DDTHH:mm:ss[.sss]`, plus `±HH:MM` when the camera recorded its offset. */
  takenAt?: string;
  /** Make and model, e.g. `Canon EOS R5`. */
  camera?: string;
  /** Body serial number. */
  serial?: string;
  /** The camera's image number (Canon FileNumber, EXIF ImageNumber) or shutter count (Sony). */
  imageNumber?: number;
  lens?: string;
}

/** Bytes read from the start of a file: the EXIF of every supported format lies within them. */
export const CAPTURE_HEAD_BYTES = 256 * 1024;

/** Extensions whose header exifr reads (JPEG, HEIF, TIFF-based RAW). */
const EXIF_EXTENSIONS = new Set([
  'JPG',
  'JPEG',
  'HEIC',
  'HEIF',
  'HIF',
  'CR2',
  'NEF',
  'NRW',
  'ARW',
  'SR2',
  'DNG',
  'TIF',
  'TIFF',
  'ORF',
  'RW2',
  'PEF',
  'SRW',
  'CR3',
  'RAF',
]);

/** ISO base media (QuickTime) video: the time is in the `moov` box, wherever it is in the file. */
const VIDEO_EXTENSIONS = new Set(['MP4', 'MOV', 'M4V']);

const extensionOf = (path: string): string => {
  const dot = path.lastIndexOf('.');
  return dot >= 0 ? path.slice(dot + 1).toUpperCase() : '';
};

export function mayHaveCapture(path: string): boolean {
  const ext = extensionOf(path);
  return EXIF_EXTENSIONS.has(ext) || VIDEO_EXTENSIONS.has(ext);
}

/** The capture metadata of the file at `abs`, or undefined (not a supported format, no EXIF, unreadable). */
export async function readCapture(abs: string, whole?: Uint8Array): Promise<CaptureMeta | undefined> {
  if (!mayHaveCapture(abs)) return undefined;
  if (VIDEO_EXTENSIONS.has(extensionOf(abs))) return readVideoCapture(abs);
  // The whole file, already read by the caller (a small file read once for its copy too).
  if (whole !== undefined) return parseCapture(whole.subarray(0, CAPTURE_HEAD_BYTES));
  let head: Uint8Array;
  try {
    const fh = await open(abs, 'r');
    try {
      const buf = Buffer.allocUnsafe(CAPTURE_HEAD_BYTES);
      const { bytesRead } = await fh.read(buf, 0, CAPTURE_HEAD_BYTES, 0);
      head = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch {
    // Unreadable here: the copy reports the card's read errors; the date falls back to mtime.
    return undefined;
  }
  return parseCapture(head);
}

const EXIFR_OPTIONS = {
  tiff: true,
  exif: true,
  ifd1: false,
  gps: false,
  interop: false,
  xmp: false,
  icc: false,
  iptc: false,
  jfif: false,
  ihdr: false,
  makerNote: false,
  userComment: false,
  // Strings as the camera wrote them: revived Dates would be read in this machine's time zone.
  reviveValues: false,
  sanitize: true,
  mergeOutput: true,
  silentErrors: true,
} as const;

type Tags = Record<string, unknown>;

/** Parse the capture metadata from a file's first bytes (see readCapture). */
export async function parseCapture(head: Uint8Array): Promise<CaptureMeta | undefined> {
  const cr3 = cr3Tags(head);
  if (cr3 !== undefined) return metaOf(cr3.tags, cr3.maker);
  const raf = rafJpeg(head);
  if (raf !== undefined) return parseCapture(raf);
  let tags: Tags | undefined;
  try {
    tags = (await exifr.parse(head, EXIFR_OPTIONS)) as Tags | undefined;
  } catch {
    return undefined;
  }
  if (tags === undefined || tags === null) return undefined;
  return metaOf(tags, makerNoteFields(head, text(tags.Make) ?? '', text(tags.Model) ?? ''));
}

/** The fields the agent keeps, from EXIF tags by name and the makernote's counters. */
function metaOf(tags: Tags, maker: { serial?: string; imageNumber?: number }): CaptureMeta | undefined {
  const meta: CaptureMeta = {};
  const takenAt = exifTime(
    text(tags.DateTimeOriginal) ?? text(tags.CreateDate),
    text(tags.SubSecTimeOriginal),
    text(tags.OffsetTimeOriginal) ?? text(tags.OffsetTime),
  );
  if (takenAt !== undefined) meta.takenAt = takenAt;
  const make = text(tags.Make);
  const model = text(tags.Model);
  const camera = model === undefined ? make : make === undefined || model.startsWith(make) ? model : `${make} ${model}`;
  if (camera !== undefined) meta.camera = camera;
  const lens = text(tags.LensModel);
  if (lens !== undefined) meta.lens = lens;
  const serial = text(tags.BodySerialNumber) ?? text(tags.CameraSerialNumber) ?? text(tags.SerialNumber);
  if (serial !== undefined) meta.serial = serial;
  if (typeof tags.ImageNumber === 'number' && Number.isSafeInteger(tags.ImageNumber))
    meta.imageNumber = tags.ImageNumber;
  if (meta.serial === undefined && maker.serial !== undefined) meta.serial = maker.serial;
  if (meta.imageNumber === undefined && maker.imageNumber !== undefined) meta.imageNumber = maker.imageNumber;
  return Object.keys(meta).length === 0 ? undefined : meta;
}

/** EXIF strings are NUL-padded; control characters never belong in a name shown to a person. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/g;

function text(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.replace(CONTROL_CHARS, '').trim();
  return t === '' ? undefined : t;
}

/** `2026:11:26 23:59:30` + sub-seconds + `+01:00` → `2026-11-26T23:59:30.12+01:00`; undefined when not a real time. */
function exifTime(dt: string | undefined, subSec: string | undefined, offset: string | undefined): string | undefined {
  if (dt === undefined) return undefined;
  const m = /^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(dt);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  const month = Number(mo);
  const day = Number(d);
  // All zeros (`0000:00:00 00:00:00`) is what a camera writes when its clock was never set.
  if (Number(y) < 1900 || month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return undefined;
  let out = `${y}-${mo}-${d}T${h}:${mi}:${s}`;
  if (subSec !== undefined && /^\d{1,9}$/.test(subSec)) out += `.${subSec}`;
  if (offset !== undefined && /^[+-]\d{2}:\d{2}$/.test(offset)) out += offset;
  return out;
}

/** The calendar day (`YYYY-MM-DD`) the camera's clock showed at capture. */
export function captureDay(takenAt: string): string {
  return takenAt.slice(0, 10);
}

// --- CR3 and RAF containers ---------------------------------------------------

/** Canon's `uuid` box in a CR3's `moov` (85c0b687-820f-11e0-8111-f4ce462b6a48). */
const CANON_CR3_UUID = '85c0b687820f11e08111f4ce462b6a48';

const latin1 = (head: Uint8Array, at: number, n: number): string =>
  Buffer.from(head.subarray(at, at + n)).toString('latin1');

/** The ISO media boxes between `start` and `end` (a box cut off by the end of the head is clipped). */
function* boxes(head: Uint8Array, start: number, end: number): Generator<{ type: string; body: number; end: number }> {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let o = start;
  while (o + 8 <= end) {
    let size = view.getUint32(o, false);
    let header = 8;
    if (size === 1) {
      if (o + 16 > end) return;
      size = Number(view.getBigUint64(o + 8, false));
      header = 16;
    } else if (size === 0) size = end - o;
    if (size < header) return;
    yield { type: latin1(head, o + 4, 4), body: o + header, end: Math.min(o + size, end) };
    o += size;
  }
}

/** A TIFF structure (`II*\0` / `MM\0*`) starting at `base`, or undefined. */
function tiffAt(head: Uint8Array, base: number): Tiff | undefined {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (base + 8 > head.length) return undefined;
  if (head[base] === 0x49 && head[base + 1] === 0x49 && view.getUint16(base + 2, true) === 42)
    return { view, base, le: true };
  if (head[base] === 0x4d && head[base + 1] === 0x4d && view.getUint16(base + 2, false) === 42)
    return { view, base, le: false };
  return undefined;
}

function ascii(t: Tiff, e: Entry | undefined): string | undefined {
  if (e === undefined || e.type !== 2) return undefined;
  return text(Buffer.from(t.view.buffer, t.view.byteOffset + e.at, e.count).toString('latin1'));
}

/**
 * A CR3's EXIF, by tag name as exifr names them: CMT1 is IFD0 (Make, Model), CMT2 the EXIF IFD
 * (times, body serial, lens), CMT3 Canon's makernote (FileNumber, SerialNumber); each is a TIFF of
 * its own, offsets from its own header. Undefined when the head is not a CR3.
 */
function cr3Tags(head: Uint8Array): { tags: Tags; maker: { serial?: string; imageNumber?: number } } | undefined {
  if (head.length < 16 || latin1(head, 4, 4) !== 'ftyp' || latin1(head, 8, 4) !== 'crx ') return undefined;
  for (const moov of boxes(head, 0, head.length)) if (moov.type === 'moov') return canonMoovTags(head, moov);
  return { tags: {}, maker: {} };
}

/** The Canon `uuid` box's CMT1–CMT3 TIFFs inside a `moov` box (CR3, and Canon's MP4 clips). */
function canonMoovTags(
  head: Uint8Array,
  moov: { body: number; end: number },
): { tags: Tags; maker: { serial?: string; imageNumber?: number } } {
  const tags: Tags = {};
  const maker: { serial?: string; imageNumber?: number } = {};
  const ifd0 = (t: Tiff): Entry[] => readIfd(t, t.base + t.view.getUint32(t.base + 4, t.le));
  for (const uuid of boxes(head, moov.body, moov.end)) {
    if (
      uuid.type !== 'uuid' ||
      Buffer.from(head.subarray(uuid.body, uuid.body + 16)).toString('hex') !== CANON_CR3_UUID
    )
      continue;
    for (const cmt of boxes(head, uuid.body + 16, uuid.end)) {
      const t = tiffAt(head.subarray(0, cmt.end), cmt.body);
      if (t === undefined) continue;
      const entries = ifd0(t);
      const get = (tag: number): Entry | undefined => entries.find((e) => e.tag === tag);
      if (cmt.type === 'CMT1') {
        tags.Make = ascii(t, get(0x010f));
        tags.Model = ascii(t, get(0x0110));
      } else if (cmt.type === 'CMT2') {
        tags.DateTimeOriginal = ascii(t, get(0x9003));
        tags.SubSecTimeOriginal = ascii(t, get(0x9291));
        tags.OffsetTimeOriginal = ascii(t, get(0x9011));
        tags.BodySerialNumber = ascii(t, get(0xa431));
        tags.LensModel = ascii(t, get(0xa434));
      } else if (cmt.type === 'CMT3') {
        const fileNumber = uint32(t, get(0x0008));
        const serial = uint32(t, get(0x000c));
        if (fileNumber !== undefined) maker.imageNumber = fileNumber;
        if (serial !== undefined) maker.serial = String(serial).padStart(10, '0');
      }
    }
    return { tags, maker };
  }
  return { tags, maker };
}

/** Seconds from 1904-01-01 (QuickTime's epoch) to 1970-01-01. */
const QT_EPOCH_OFFSET = 2_082_844_800;

/** `mvhd`'s creation time (version 0: 32-bit, 1: 64-bit seconds since 1904), as written; undefined when unset. */
function mvhdTime(head: Uint8Array, moov: { body: number; end: number }): string | undefined {
  for (const b of boxes(head, moov.body, moov.end)) {
    if (b.type !== 'mvhd' || b.body + 12 > b.end) continue;
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    const secs = head[b.body] === 1 ? Number(view.getBigUint64(b.body + 4, false)) : view.getUint32(b.body + 4, false);
    if (secs === 0) return undefined;
    const d = new Date((secs - QT_EPOCH_OFFSET) * 1000);
    if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1900) return undefined;
    return d.toISOString().slice(0, 19);
  }
  return undefined;
}

/** Bytes of `moov` read from its start: `mvhd` comes first, Canon's CMT boxes right after. */
const MOOV_HEAD_BYTES = 64 * 1024;

/** A video's capture metadata: top-level boxes walked by their 16-byte headers to `moov`, then its start read. */
async function readVideoCapture(abs: string): Promise<CaptureMeta | undefined> {
  try {
    const fh = await open(abs, 'r');
    try {
      const { size } = await fh.stat();
      const hdr = Buffer.alloc(16);
      let at = 0;
      for (let n = 0; n < 64 && at + 8 <= size; n++) {
        const { bytesRead } = await fh.read(hdr, 0, 16, at);
        if (bytesRead < 8) return undefined;
        let boxSize = hdr.readUInt32BE(0);
        if (boxSize === 1) {
          if (bytesRead < 16) return undefined;
          boxSize = Number(hdr.readBigUInt64BE(8));
        } else if (boxSize === 0) boxSize = size - at;
        if (boxSize < 8) return undefined;
        if (hdr.toString('latin1', 4, 8) === 'moov') {
          const buf = Buffer.alloc(Math.min(boxSize, MOOV_HEAD_BYTES));
          const got = (await fh.read(buf, 0, buf.length, at)).bytesRead;
          const head = buf.subarray(0, got);
          const [moov] = [...boxes(head, 0, head.length)];
          if (moov === undefined) return undefined;
          const canon = canonMoovTags(head, moov);
          if (canon.tags.DateTimeOriginal === undefined) {
            const t = mvhdTime(head, moov);
            if (t !== undefined) canon.tags.DateTimeOriginal = t.replace(/-/g, ':').replace('T', ' ');
          }
          return metaOf(canon.tags, canon.maker);
        }
        at += boxSize;
      }
      return undefined;
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

/** A Fujifilm RAF's JPEG preview (it carries the EXIF), from the offset in the RAF header; else undefined. */
function rafJpeg(head: Uint8Array): Uint8Array | undefined {
  if (head.length < 92 || latin1(head, 0, 16) !== 'FUJIFILMCCD-RAW ') return undefined;
  const at = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(84, false);
  return at >= 92 && at < head.length ? head.subarray(at) : new Uint8Array(0);
}

// --- Makernotes -------------------------------------------------------------

interface Tiff {
  view: DataView;
  /** Offset of the TIFF header in the head buffer (IFD offsets are relative to it). */
  base: number;
  le: boolean;
}

/** The TIFF structure holding the EXIF: at 0 for TIFF-based RAWs, in the APP1 `Exif` segment for JPEG. */
function findTiff(head: Uint8Array): Tiff | undefined {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const isTiffAt = (o: number): boolean | undefined => {
    if (o + 8 > head.length) return undefined;
    if (head[o] === 0x49 && head[o + 1] === 0x49 && view.getUint16(o + 2, true) === 42) return true;
    if (head[o] === 0x4d && head[o + 1] === 0x4d && view.getUint16(o + 2, false) === 42) return false;
    return undefined;
  };
  const at0 = isTiffAt(0);
  if (at0 !== undefined) return { view, base: 0, le: at0 };
  if (head[0] !== 0xff || head[1] !== 0xd8) return undefined;
  let o = 2;
  while (o + 4 <= head.length && head[o] === 0xff) {
    const marker = head[o + 1] ?? 0;
    const len = view.getUint16(o + 2, false);
    if (
      marker === 0xe1 &&
      o + 10 <= head.length &&
      Buffer.from(head.subarray(o + 4, o + 10)).toString('latin1') === 'Exif\0\0'
    ) {
      const le = isTiffAt(o + 10);
      return le === undefined ? undefined : { view, base: o + 10, le };
    }
    if (marker === 0xda) return undefined;
    o += 2 + len;
  }
  return undefined;
}

interface Entry {
  tag: number;
  type: number;
  count: number;
  /** Absolute offset of the value in the head buffer (inline or pointed to). */
  at: number;
}

const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8 };

/** The entries of the IFD at absolute offset `at`; offsets pointing out of the head are dropped. */
function readIfd(t: Tiff, at: number): Entry[] {
  const { view, le } = t;
  if (at < 0 || at + 2 > view.byteLength) return [];
  const n = view.getUint16(at, le);
  const out: Entry[] = [];
  for (let i = 0; i < n && at + 2 + 12 * (i + 1) <= view.byteLength; i++) {
    const e = at + 2 + 12 * i;
    const type = view.getUint16(e + 2, le);
    const count = view.getUint32(e + 4, le);
    const size = (TYPE_SIZE[type] ?? 1) * count;
    const valueAt = size <= 4 ? e + 8 : t.base + view.getUint32(e + 8, le);
    if (valueAt + size > view.byteLength) continue;
    out.push({ tag: view.getUint16(e, le), type, count, at: valueAt });
  }
  return out;
}

function uint32(t: Tiff, e: Entry | undefined): number | undefined {
  if (e === undefined || e.type !== 4 || e.count < 1) return undefined;
  return t.view.getUint32(e.at, t.le);
}

/** The MakerNote entry of the EXIF IFD, or undefined. */
function makerNote(t: Tiff): Entry | undefined {
  const ifd0 = readIfd(t, t.base + t.view.getUint32(t.base + 4, t.le));
  const exifPtr = uint32(
    t,
    ifd0.find((e) => e.tag === 0x8769),
  );
  if (exifPtr === undefined) return undefined;
  return readIfd(t, t.base + exifPtr).find((e) => e.tag === 0x927c);
}

/** Sony's 0x9050 cipher: each byte b (2..247) is stored as b³ mod 249. */
const SONY_DECIPHER: Uint8Array = (() => {
  const table = new Uint8Array(256);
  for (let b = 0; b < 256; b++) table[b] = b;
  for (let b = 2; b < 249; b++) table[(b * b * b) % 249] = b;
  return table;
})();

/** The models whose 0x9050 block has ExifTool's `Tag9050a` layout (ShutterCount at 0x32; serial at 0x7c for ILCE/NEX). */
const SONY_9050A_EXCLUDED =
  /^(DSC-|Stellar|ILCE-(1|6100|6300|6400|6500|6600|7C|7M3|7M4|7RM2|7RM3A?|7RM4A?|7RM5|7SM2|7SM3|9|9M2)|ILCA-99M2|ILME-FX3|ZV-)/;

function makerNoteFields(head: Uint8Array, make: string, model: string): { serial?: string; imageNumber?: number } {
  const t = findTiff(head);
  if (t === undefined) return {};
  const note = makerNote(t);
  if (note === undefined) return {};
  if (/^canon/i.test(make)) {
    // A Canon makernote is a plain IFD in the file's byte order, offsets from the TIFF header.
    const ifd = readIfd(t, note.at);
    const fileNumber = uint32(
      t,
      ifd.find((e) => e.tag === 0x0008),
    );
    const serial = uint32(
      t,
      ifd.find((e) => e.tag === 0x000c),
    );
    return {
      ...(fileNumber === undefined ? {} : { imageNumber: fileNumber }),
      ...(serial === undefined ? {} : { serial: String(serial).padStart(10, '0') }),
    };
  }
  if (/^sony/i.test(make) && /^(ILCE|NEX)-/.test(model) && !SONY_9050A_EXCLUDED.test(model)) {
    // `SONY DSC \0\0\0` then an IFD; its offsets are from the TIFF header.
    const sig = Buffer.from(head.subarray(note.at, note.at + 12)).toString('latin1');
    const ifd = readIfd(t, note.at + (sig.startsWith('SONY') ? 12 : 0));
    const block = ifd.find((e) => e.tag === 0x9050);
    if (block === undefined || block.count < 0x80) return {};
    const b = (i: number): number => SONY_DECIPHER[head[block.at + i] ?? 0] ?? 0;
    const shutter = (b(0x32) | (b(0x33) << 8) | (b(0x34) << 16) | (b(0x35) << 24)) >>> 0;
    const serialBytes = [0, 1, 2, 3].map((i) => b(0x7c + i));
    return {
      ...(shutter === 0 ? {} : { imageNumber: shutter }),
      serial: Buffer.from(serialBytes).toString('hex'),
    };
  }
  return {};
}
