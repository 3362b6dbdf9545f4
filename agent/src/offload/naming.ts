/**
 * Store names: sidecar groups and distinct names for clashes.
 *
 * A group is an image and its sidecars: the files of one folder that share a
 * stem (IMG_0001.CR3, IMG_0001.JPG, IMG_0001.XMP, IMG_0001.THM; Sony C0001.MP4 +
 * C0001M01.XML; GoPro GX010001.MP4 + GX010001.THM + GL010001.LRV). When a name
 * in the store is taken by different content, the whole group moves to the
 * next free suffix (`IMG_0001~2.CR3`, `IMG_0001~2.XMP`) so sidecars stay next to
 * their image.
 *
 * Card names are opened as readdir returned them (bytes on disk), but store names
 * are NFC: two card names that differ only by Unicode form (NFC, NFD, NFKC, NFKD
 * of one text) are one store name, so the second one gets a suffix like any other
 * clash, on every filesystem (macOS and exFAT would see them as one name).
 */

export interface SplitName {
  dir: string;
  stem: string;
  /** Everything after the stem, e.g. `.CR3` or `M01.XML`. */
  rest: string;
}

export function splitName(path: string): SplitName {
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '' : path.slice(0, slash);
  const name = slash < 0 ? path : path.slice(slash + 1);
  const sony = /^(.+?)(M01\.XML)$/i.exec(name);
  if (sony !== null && sony[1] !== undefined && sony[2] !== undefined) return { dir, stem: sony[1], rest: sony[2] };
  const dot = name.indexOf('.', 1);
  if (dot < 0) return { dir, stem: name, rest: '' };
  return { dir, stem: name.slice(0, dot), rest: name.slice(dot) };
}

/** Key shared by an image and its sidecars (case-insensitive; GoPro GX/GH/GL chapters are one group). */
export function groupKey(path: string): string {
  const { dir, stem } = splitName(storeName(path));
  const gopro = /^G[XHL](\d{6})$/i.exec(stem);
  const s = gopro !== null ? `G_${gopro[1] ?? ''}` : stem;
  return `${dir}/${s.toUpperCase()}`;
}

/** The store name of a card path: NFC (see above). */
export function storeName(path: string): string {
  return path.normalize('NFC');
}

/** The name with suffix k (k = 1: unchanged; k >= 2: `stem~k` + rest). */
export function suffixedPath(path: string, k: number): string {
  if (!Number.isInteger(k) || k < 1) throw new TypeError('suffix must be an integer >= 1');
  if (k === 1) return path;
  const { dir, stem, rest } = splitName(path);
  return `${dir === '' ? '' : `${dir}/`}${stem}~${k}${rest}`;
}
