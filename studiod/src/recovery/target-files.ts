/**
 * The committed files of a local target (mirror or RAID): everything under the
 * root except the root's dot-entries — the target marker, `.s321-staging/`,
 * `.s321-catalogue/` (snapshots), the quarantine folder — and `*.s321tmp`
 * temp files anywhere. Archive files always live under `<date>/<shoot>/<card>/`,
 * never at the root, so a root dot-entry is never one of them. A card folder's `ascmhl/`
 * is its ASC MHL history (commit/mhl-history.ts), written by studiod, not an archive file
 * (a card that brought its own `ascmhl/` is not found by a rebuild: docs/design.md).
 *
 * Walked depth-first with one directory handle open at a time and sorted
 * entries, so memory is the depth of the tree, not its size.
 */
import { opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '@studio321/protocol';
import { MHL_FOLDER, TEMP_SUFFIX } from '@studio321/protocol/durable';
import { TARGET_MARKER } from '../commit/target-check.js';

export interface TargetFile {
  /** Target-relative path with `/` separators. */
  rel: string;
  abs: string;
  size: number;
  mtimeMs: number;
}

async function sortedEntries(dir: string): Promise<Array<{ name: string; dir: boolean; file: boolean }>> {
  const out: Array<{ name: string; dir: boolean; file: boolean }> = [];
  const d = await opendir(dir);
  for await (const e of d) out.push({ name: e.name, dir: e.isDirectory(), file: e.isFile() });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every committed file under `root` (symlinks and special files are not archive files and are skipped). */
export async function* committedFiles(root: string, rel = ''): AsyncGenerator<TargetFile> {
  const dir = rel === '' ? root : join(root, rel);
  let entries: Array<{ name: string; dir: boolean; file: boolean }>;
  try {
    entries = await sortedEntries(dir);
  } catch (err) {
    if (rel !== '' && errorCode(err) === 'ENOENT') return; // removed while walking
    throw err;
  }
  // One directory's names are held (sorted) while its subtree is walked: bounded by the widest folder.
  for (const e of entries) {
    if (rel === '' && e.name.startsWith('.')) continue;
    if (e.name.endsWith(TEMP_SUFFIX)) continue;
    const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.dir && e.name === MHL_FOLDER && childRel.split('/').length === 4) continue; // studiod's MHL history
    if (e.dir) {
      yield* committedFiles(root, childRel);
    } else if (e.file) {
      const abs = join(root, childRel);
      const st = await stat(abs).catch(() => undefined);
      if (st === undefined) continue;
      yield { rel: childRel, abs, size: st.size, mtimeMs: st.mtimeMs };
    }
  }
}

/** The target marker is there (the disk was used as this target). */
export async function hasMarker(root: string): Promise<boolean> {
  try {
    return (await stat(join(root, TARGET_MARKER))).isFile();
  } catch {
    return false;
  }
}

/** The root carries its marker and at least one committed file: the target is not new. */
export async function holdsCommittedFiles(root: string): Promise<boolean> {
  if (!(await hasMarker(root))) return false;
  for await (const _ of committedFiles(root)) return true;
  return false;
}
