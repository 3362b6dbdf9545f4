/**
 * Which card is this?
 *
 * A card id is `<LABEL>-<8 hex>`, e.g. `EOS_DIGITAL-7f3a9c2b`: the label for people,
 * the hex for uniqueness. The hex is BLAKE3 over the volume UUID (when the
 * system knows it), the label, and a fingerprint of the card's first
 * FINGERPRINT_FILES files in path order (name, size, mtime to the second).
 * A folder given by hand that is not a mount point has no volume UUID: its
 * absolute path (`folder`) is part of the identity instead, so two copies of a
 * card in two folders are two cards.
 * So the same card re-inserted (even with more images shot since) gets the same
 * id and resumes, and two cards both labelled "NO NAME" are two cards.
 */
import { readdir, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createHasher } from '@studio321/protocol';
import type { ScannedFile } from './scanner.js';

export const FINGERPRINT_FILES = 32;

export interface VolumeLabels {
  uuid?: string;
  label?: string;
}

/** `/dev/disk/by-label` escapes bytes as \xHH (`NO\x20NAME`). */
export function unescapeUdevName(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

async function findLink(dir: string, target: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    try {
      if ((await realpath(join(dir, name))) === target) return unescapeUdevName(name);
    } catch {
      // a dangling link: not ours
    }
  }
  return undefined;
}

/** UUID and label of a block device, from udev's /dev/disk/by-uuid and by-label (Linux). */
export async function readVolumeLabels(device: string, diskDir = '/dev/disk'): Promise<VolumeLabels> {
  if (!device.startsWith('/dev/')) return {};
  let dev: string;
  try {
    dev = await realpath(device);
  } catch {
    return {};
  }
  const [uuid, label] = await Promise.all([
    findLink(join(diskDir, 'by-uuid'), dev),
    findLink(join(diskDir, 'by-label'), dev),
  ]);
  return { ...(uuid === undefined ? {} : { uuid }), ...(label === undefined ? {} : { label }) };
}

/** A label made safe as one folder name: letters, digits, - and _ (spaces become _). */
export function labelSlug(label: string | undefined): string {
  const s = (label ?? '')
    .normalize('NFC')
    .replace(/\s+/g, '_')
    .replace(/[^\p{L}\p{N}_-]/gu, '')
    .slice(0, 40);
  return s === '' ? 'CARD' : s;
}

/** The label a card shows: the volume label, else the mount point's last segment. */
export function cardLabel(labels: VolumeLabels, mountPoint: string, override?: string): string {
  return override ?? labels.label ?? (basename(mountPoint) || 'CARD');
}

export function fingerprintFiles(files: readonly ScannedFile[]): string {
  const h = createHasher();
  for (const f of files.slice(0, FINGERPRINT_FILES)) {
    h.update(Buffer.from(`${f.path}\0${f.size}\0${Math.floor(f.mtimeMs / 1000)}\n`, 'utf8'));
  }
  return h.digest();
}

export interface CardIdentity {
  id: string;
  label: string;
  uuid?: string;
  fingerprint: string;
}

/** `files` must be sorted by path (scanCard's order). */
export function cardIdentity(input: {
  label: string;
  uuid?: string;
  files: readonly ScannedFile[];
  folder?: string;
}): CardIdentity {
  const fingerprint = fingerprintFiles(input.files);
  const h = createHasher();
  h.update(
    Buffer.from(
      `studio321-card-v1\0${input.uuid ?? ''}\0${input.label}\0${fingerprint}\0${input.folder ?? ''}`,
      'utf8',
    ),
  );
  const id = `${labelSlug(input.label)}-${h.digest().slice(0, 8)}`;
  return { id, label: input.label, fingerprint, ...(input.uuid === undefined ? {} : { uuid: input.uuid }) };
}

/** A hot folder is one "card" for its whole life: its id comes from its path. */
export function hotFolderIdentity(dir: string): CardIdentity {
  const h = createHasher();
  h.update(Buffer.from(`studio321-hot-v1\0${dir}`, 'utf8'));
  const digest = h.digest();
  const label = basename(dir) || 'HOT';
  return { id: `HOT-${labelSlug(label)}-${digest.slice(0, 8)}`, label, fingerprint: digest };
}
