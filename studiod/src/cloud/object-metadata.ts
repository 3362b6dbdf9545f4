/**
 * The user metadata of an uploaded object (docs/design.md §Self-describing objects):
 * besides what the forwarder checks (blake3, size, sha256), where the asset came
 * from — shoot, card, name on the card, capture time — so a bucket alone can
 * rebuild the catalogue and a person finds a shoot in any S3 browser.
 *
 *   blake3, size, sha256   as before (hex, decimal, hex)
 *   shoot, card            the first name's shoot and card
 *   name                   the first name's path on the card (`DCIM/100CANON/IMG_0001.CR3`)
 *   original               the file's name as the camera wrote it, when the agent renamed it at ingest
 *   captured               ISO 8601 time of the file on the card (the camera writes it at capture), when known
 *   names                  further names of the same bytes, `<shoot>/<card>/<path>` joined by `,`
 *
 * Values are percent-encoded UTF-8 (encodeURIComponent, `/` left readable in paths):
 * HTTP headers carry ASCII only, and the name keeps its exact code points (an NFD
 * name stays NFD). S3 allows 2 KB of user metadata in all; a value that does not fit
 * is cut on a grapheme boundary and carries the marker `;truncated` (at its start when
 * its start was cut: a path keeps its file name); further names that do not fit are left
 * out and `names` ends with the marker. `;` is always encoded inside a value, so the
 * marker cannot be part of a name. The upload never fails for a long name: the full
 * names stay in the catalogue and its snapshots.
 */

/** One name an asset was offered under, as the catalogue keeps it. */
export interface AssetOrigin {
  shoot: string;
  card: string;
  path: string;
  /** Epoch ms of the file on the card; absent or 0 when unknown. */
  mtime?: number;
  /** Set when the agent renamed the file at ingest: its name on the card (one segment). */
  capture?: { originalName?: string };
}

/** An origin read back from an object's metadata. */
export interface DescribedOrigin {
  shoot: string;
  card: string;
  path: string;
  mtime?: number;
  /** The name on the card when the file was renamed at ingest (`original`). */
  originalName?: string;
  /** That name's shoot, card, path or original name was cut to fit. */
  truncated: boolean;
}

/** What a HEAD's metadata says about an object. */
export interface DescribedObject {
  blake3?: string;
  size?: number;
  sha256?: string;
  /** The names it carries; `truncated` when that name's shoot, card or path was cut. */
  origins: DescribedOrigin[];
  /** Some names were left out of `names` for want of room. */
  namesLeftOut: boolean;
}

/** S3's limit on user metadata, counted here with the `x-amz-meta-` prefix of every key (stricter than AWS). */
export const METADATA_LIMIT_BYTES = 2048;
export const TRUNCATED_MARK = ';truncated';
const PREFIX = 'x-amz-meta-';
/** At most this many bytes for the shoot and for the card; the name gets up to NAME_BYTES. */
const SHOOT_BYTES = 160;
const NAME_BYTES = 800;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

function encodePart(s: string): string {
  return encodeURIComponent(s);
}

function encodePath(s: string): string {
  return encodeURIComponent(s).replace(/%2F/g, '/');
}

/**
 * `s` encoded in at most `max` bytes: whole, or cut on grapheme boundaries (keeping
 * the start, or the end when `keepEnd`) with the marker. Never more than `max`.
 */
export function fitEncoded(s: string, max: number, encode: (s: string) => string, keepEnd = false): string {
  const whole = encode(s);
  if (whole.length <= max) return whole;
  const room = max - TRUNCATED_MARK.length;
  if (room <= 0) return '';
  const parts = [...graphemes.segment(s)].map((g) => encode(g.segment));
  if (keepEnd) parts.reverse();
  let out = '';
  for (const p of parts) {
    if (out.length + p.length > room) break;
    out = keepEnd ? p + out : out + p;
  }
  return keepEnd ? TRUNCATED_MARK + out : out + TRUNCATED_MARK;
}

function entryBytes(k: string, v: string): number {
  // Encoded values are ASCII: their length is their byte count.
  return Buffer.byteLength(PREFIX + k) + v.length;
}

/** The metadata of an object: the checked fields, then as much of its origins as fits. */
export function objectMetadata(
  fixed: { blake3: string; size: number; sha256: string },
  origins: readonly AssetOrigin[],
): Record<string, string> {
  const meta: Record<string, string> = { blake3: fixed.blake3, size: String(fixed.size), sha256: fixed.sha256 };
  const first = origins[0];
  if (first === undefined) return meta;
  let left = METADATA_LIMIT_BYTES;
  const put = (k: string, v: string): void => {
    if (v === '') return;
    meta[k] = v;
    left -= entryBytes(k, v);
  };
  for (const [k, v] of Object.entries(meta)) left -= entryBytes(k, v);
  if (first.mtime !== undefined && first.mtime > 0 && Number.isFinite(first.mtime))
    put('captured', new Date(first.mtime).toISOString());
  put('shoot', fitEncoded(first.shoot, Math.min(SHOOT_BYTES, left - entryBytes('shoot', '')), encodePart));
  put('card', fitEncoded(first.card, Math.min(SHOOT_BYTES, left - entryBytes('card', '')), encodePart));
  put('name', fitEncoded(first.path, Math.min(NAME_BYTES, left - entryBytes('name', '')), encodePath, true));
  const original = first.capture?.originalName;
  if (original !== undefined && original !== '')
    put('original', fitEncoded(original, Math.min(SHOOT_BYTES, left - entryBytes('original', '')), encodePart, true));
  if (origins.length > 1) {
    const room = left - entryBytes('names', '') - TRUNCATED_MARK.length;
    const entries: string[] = [];
    let used = 0;
    for (const o of origins.slice(1)) {
      const e = `${encodePart(o.shoot)}/${encodePart(o.card)}/${encodePath(o.path)}`;
      const cost = e.length + (entries.length > 0 ? 1 : 0);
      if (used + cost > room) break;
      entries.push(e);
      used += cost;
    }
    const value = entries.join(',') + (entries.length < origins.length - 1 ? TRUNCATED_MARK : '');
    put('names', value);
  }
  return meta;
}

/** Sum of the metadata's bytes as METADATA_LIMIT_BYTES counts them. */
export function metadataBytes(meta: Record<string, string>): number {
  let n = 0;
  for (const [k, v] of Object.entries(meta)) n += Buffer.byteLength(PREFIX + k) + Buffer.byteLength(v);
  return n;
}

function decodeValue(v: string | undefined): { value: string; truncated: boolean } | undefined {
  if (v === undefined || v === '') return undefined;
  let s = v;
  let truncated = false;
  if (s.startsWith(TRUNCATED_MARK)) {
    s = s.slice(TRUNCATED_MARK.length);
    truncated = true;
  }
  if (s.endsWith(TRUNCATED_MARK)) {
    s = s.slice(0, -TRUNCATED_MARK.length);
    truncated = true;
  }
  try {
    return { value: decodeURIComponent(s), truncated };
  } catch {
    // Not our encoding (another writer, or an old object): the value as it is.
    return { value: s, truncated };
  }
}

/** Reads what objectMetadata wrote (and what older uploads wrote: blake3, size, sha256, name only). */
export function describeObject(meta: Readonly<Record<string, string>>): DescribedObject {
  const size = meta['size'] === undefined ? undefined : Number(meta['size']);
  const out: DescribedObject = {
    ...(meta['blake3'] === undefined ? {} : { blake3: meta['blake3'] }),
    ...(size === undefined || !Number.isSafeInteger(size) ? {} : { size }),
    ...(meta['sha256'] === undefined ? {} : { sha256: meta['sha256'] }),
    origins: [],
    namesLeftOut: false,
  };
  const shoot = decodeValue(meta['shoot']);
  const card = decodeValue(meta['card']);
  const name = decodeValue(meta['name']);
  if (shoot === undefined || card === undefined || name === undefined) return out;
  const captured = meta['captured'] === undefined ? Number.NaN : Date.parse(meta['captured']);
  const original = decodeValue(meta['original']);
  out.origins.push({
    shoot: shoot.value,
    card: card.value,
    path: name.value,
    ...(Number.isNaN(captured) ? {} : { mtime: captured }),
    ...(original === undefined ? {} : { originalName: original.value }),
    truncated: shoot.truncated || card.truncated || name.truncated || original?.truncated === true,
  });
  let names = meta['names'];
  if (names?.endsWith(TRUNCATED_MARK)) {
    names = names.slice(0, -TRUNCATED_MARK.length);
    out.namesLeftOut = true;
  }
  for (const e of names === undefined || names === '' ? [] : names.split(',')) {
    const m = /^([^/]*)\/([^/]*)\/(.+)$/.exec(e);
    const [s, c, p] = [decodeValue(m?.[1]), decodeValue(m?.[2]), decodeValue(m?.[3])];
    if (s === undefined || c === undefined || p === undefined) continue;
    out.origins.push({ shoot: s.value, card: c.value, path: p.value, truncated: false });
  }
  return out;
}
