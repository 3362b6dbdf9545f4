/**
 * Which physical disk(s) a path lives on: "distinct devices" for safe to format.
 *
 * Two folders on one file system share an st_dev, but two partitions of one SSD, or
 * two tmpfs mounts, have different st_devs and no disk between them that tells them
 * apart — counting st_devs would call a card safe to format when both copies die with
 * one disk. So a destination is identified by the whole disk(s) under it:
 *
 * Linux (sysfs): st_dev → /sys/dev/block/MAJ:MIN → from a partition to its whole disk
 * (the sysfs parent of a node with a `partition` file), through device-mapper, LVM,
 * dm-crypt and md RAID (`slaves/`, recursively) to every disk underneath; each disk is
 * named by the most stable identity it has: `wwid`, then the model + `serial`, then its
 * /dev/disk/by-id link, then a loop device's backing file, then the kernel name.
 * macOS: `diskutil info -plist` gives the whole disk (and an APFS container's physical
 * stores); each is named by its media UUID, else its identifier.
 *
 * The result is a copy's `device` string: `disk:<id>,<id>…` (ids sorted, `,` and `%`
 * percent-encoded) when the disks are known. Two devices are distinct only when they
 * share no disk (a path on md/dm over several disks is identified by the set).
 * When no disk can be found (tmpfs, overlay, a network file system, btrfs' anonymous
 * st_dev, no sysfs, an error) the device is `nodisk:<st_dev>` with the reason: such a
 * copy is verified and kept but adds no device (countDistinctDevices) — when in doubt,
 * not safe. Agent states written before this know copies as `local:<st_dev>`
 * (LEGACY_DEVICE_PREFIX): they too add no device until refreshed (agent-state.ts
 * `refreshLegacyDevices`).
 */
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

export const DISK_DEVICE_PREFIX = 'disk:';
export const NO_DISK_DEVICE_PREFIX = 'nodisk:';
export const LEGACY_DEVICE_PREFIX = 'local:';

export interface DiskIdentity {
  /** The copy's `device` string (see the header). */
  device: string;
  /** Stable ids of the whole disks underneath, sorted; empty when unknown. */
  disks: string[];
  /** Why the physical disk is not known (for status); absent when it is. */
  unknown?: string;
}

export interface DiskProbeOptions {
  /** Where sysfs is (tests build a fake tree; default /sys). */
  sysfs?: string;
  /** Where the /dev/disk links are (default /dev/disk). */
  devDisk?: string;
  platform?: NodeJS.Platform;
  /** Runs `diskutil info -plist <arg>` and returns its stdout (macOS; tests may inject one). */
  diskutil?: (arg: string) => Promise<string>;
}

const MAX_DEPTH = 16;

function encodeId(id: string): string {
  return id.replace(/%/g, '%25').replace(/,/g, '%2C');
}

function decodeId(id: string): string {
  return id.replace(/%2C/g, ',').replace(/%25/g, '%');
}

export function diskDevice(disks: readonly string[]): string {
  return `${DISK_DEVICE_PREFIX}${[...new Set(disks)].sort().map(encodeId).join(',')}`;
}

/** The disk ids of a `disk:` device string; undefined for any other device (its disk is not known). */
export function deviceDisks(device: string): string[] | undefined {
  if (!device.startsWith(DISK_DEVICE_PREFIX)) return undefined;
  const ids = device
    .slice(DISK_DEVICE_PREFIX.length)
    .split(',')
    .filter((s) => s !== '')
    .map(decodeId);
  return ids.length === 0 ? undefined : ids;
}

/** Whether two device strings are on at least one common physical disk (false when either is unknown). */
export function sharesDisk(a: string, b: string): boolean {
  const da = deviceDisks(a);
  const db = deviceDisks(b);
  if (da === undefined || db === undefined) return false;
  return da.some((d) => db.includes(d));
}

/**
 * How many distinct physical devices `devices` are on: known disks grouped so that devices
 * sharing any disk are one; devices whose disk is unknown add none.
 */
export function countDistinctDevices(devices: Iterable<string>): number {
  const groups: Array<Set<string>> = [];
  for (const device of new Set(devices)) {
    const disks = deviceDisks(device);
    if (disks === undefined) continue;
    const merged = new Set(disks);
    for (let i = groups.length - 1; i >= 0; i--) {
      const g = groups[i] as Set<string>;
      if (disks.some((d) => g.has(d))) {
        for (const d of g) merged.add(d);
        groups.splice(i, 1);
      }
    }
    groups.push(merged);
  }
  return groups.length;
}

/** The physical disk(s) under `path` (an existing file or folder). Never throws: an error makes it unknown. */
export async function diskIdentity(path: string, opts: DiskProbeOptions = {}): Promise<DiskIdentity> {
  let dev: bigint;
  try {
    dev = (await stat(path, { bigint: true })).dev;
  } catch (err) {
    return unknown(undefined, `cannot stat ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const platform = opts.platform ?? process.platform;
  try {
    if (platform === 'linux') return await linuxIdentity(dev, opts);
    if (platform === 'darwin') return await macIdentity(path, dev, opts);
    return unknown(dev, `no way to find the physical disk on ${platform}`);
  } catch (err) {
    return unknown(dev, `finding the physical disk failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function unknown(dev: bigint | undefined, why: string): DiskIdentity {
  return { device: `${NO_DISK_DEVICE_PREFIX}${dev ?? 'unknown'}`, disks: [], unknown: why };
}

function known(dev: bigint, disks: string[]): DiskIdentity {
  return disks.length === 0
    ? unknown(dev, 'no disk found under the block device')
    : { device: diskDevice(disks), disks: [...new Set(disks)].sort() };
}

/** Linux dev_t → major, minor (glibc's gnu_dev_major/minor). */
export function splitDev(dev: bigint): { major: bigint; minor: bigint } {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return { major, minor };
}

async function linuxIdentity(dev: bigint, opts: DiskProbeOptions): Promise<DiskIdentity> {
  const sysfs = opts.sysfs ?? '/sys';
  const { major, minor } = splitDev(dev);
  // Major 0: an anonymous device (tmpfs, overlay, NFS/SMB/FUSE, btrfs subvolumes): no block device to follow.
  if (major === 0n) return unknown(dev, 'the file system has no block device (tmpfs, overlay, network, FUSE or btrfs)');
  let node: string;
  try {
    node = await realpath(join(sysfs, 'dev', 'block', `${major}:${minor}`));
  } catch (err) {
    return unknown(
      dev,
      `block device ${major}:${minor} is not in ${sysfs} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return known(dev, await wholeDisks(node, opts, 0));
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The whole disks under a sysfs block node: up from a partition, down through `slaves/`. */
async function wholeDisks(node: string, opts: DiskProbeOptions, depth: number): Promise<string[]> {
  if (depth > MAX_DEPTH) throw new Error(`block devices nested deeper than ${MAX_DEPTH} under ${node}`);
  if (await exists(join(node, 'partition'))) return wholeDisks(dirname(node), opts, depth + 1);
  let slaves: string[] = [];
  try {
    slaves = await readdir(join(node, 'slaves'));
  } catch {
    // no slaves folder: a disk, not a dm/md device
  }
  if (slaves.length > 0) {
    const out: string[] = [];
    for (const s of slaves.sort())
      out.push(...(await wholeDisks(await realpath(join(node, 'slaves', s)), opts, depth + 1)));
    return out;
  }
  return [await diskName(node, opts)];
}

async function readTrimmed(p: string): Promise<string | undefined> {
  try {
    const s = (await readFile(p, 'utf8')).replace(/\0/g, '').trim();
    return s === '' ? undefined : s;
  } catch {
    return undefined;
  }
}

/** One whole disk's most stable identity (see the header for the order). */
async function diskName(node: string, opts: DiskProbeOptions): Promise<string> {
  const name = basename(node);
  const wwid = (await readTrimmed(join(node, 'device', 'wwid'))) ?? (await readTrimmed(join(node, 'wwid')));
  if (wwid !== undefined) return `wwid:${wwid}`;
  const serial = (await readTrimmed(join(node, 'device', 'serial'))) ?? (await readTrimmed(join(node, 'serial')));
  if (serial !== undefined) {
    const model = await readTrimmed(join(node, 'device', 'model'));
    return `serial:${model === undefined ? '' : `${model}:`}${serial}`;
  }
  const byId = join(opts.devDisk ?? '/dev/disk', 'by-id');
  try {
    for (const link of (await readdir(byId)).sort()) {
      if (basename(await realpath(join(byId, link)).catch(() => '')) === name) return `by-id:${link}`;
    }
  } catch {
    // no /dev/disk/by-id (no udev, e.g. in a container)
  }
  const backing = await readTrimmed(join(node, 'loop', 'backing_file'));
  if (backing !== undefined) return `loop:${backing}`;
  return `name:${name}`;
}

/** The `<key>K</key><string>V</string>` and `<key>K</key><array><string>…` pairs of a diskutil plist. */
export function parseDiskutilPlist(xml: string): Map<string, string | string[]> {
  const out = new Map<string, string | string[]>();
  const unxml = (s: string): string =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&');
  const re = /<key>([^<]*)<\/key>\s*(?:<string>([^<]*)<\/string>|<array>([\s\S]*?)<\/array>|<array\/>)/g;
  for (const m of xml.matchAll(re)) {
    const key = unxml(m[1] ?? '');
    if (out.has(key)) continue; // the top-level key comes first; nested dicts repeat some names
    if (m[2] !== undefined) out.set(key, unxml(m[2]));
    else
      out.set(
        key,
        [...(m[3] ?? '').matchAll(/<string>([^<]*)<\/string>/g)].map((s) => unxml(s[1] ?? '')),
      );
  }
  return out;
}

async function runDiskutil(arg: string): Promise<string> {
  // Loaded here, on macOS only: `status` and the other short commands need not load it.
  const { execFile } = await import('node:child_process');
  return (await promisify(execFile)('diskutil', ['info', '-plist', arg], { timeout: 10_000 })).stdout;
}

async function macIdentity(path: string, dev: bigint, opts: DiskProbeOptions): Promise<DiskIdentity> {
  const diskutil = opts.diskutil ?? runDiskutil;
  const info = parseDiskutilPlist(await diskutil(path));
  const whole = info.get('ParentWholeDisk');
  if (typeof whole !== 'string' || whole === '')
    return unknown(dev, 'diskutil names no whole disk (a network or disk-image-less volume)');
  const disks: string[] = [];
  const wholeInfo = parseDiskutilPlist(await diskutil(whole));
  // An APFS container is a synthesized disk: its physical stores are the real disks.
  const stores = wholeInfo.get('APFSPhysicalStores');
  const physical = Array.isArray(stores) && stores.length > 0 ? stores : [whole];
  for (const p of physical) {
    const pInfo = p === whole ? wholeInfo : parseDiskutilPlist(await diskutil(p));
    const pWhole = pInfo.get('ParentWholeDisk');
    const wInfo = typeof pWhole === 'string' && pWhole !== p ? parseDiskutilPlist(await diskutil(pWhole)) : pInfo;
    const id = wInfo.get('MediaUUID') ?? wInfo.get('DiskUUID') ?? wInfo.get('DeviceIdentifier');
    disks.push(typeof id === 'string' ? `mac:${id}` : `mac:${typeof pWhole === 'string' ? pWhole : p}`);
  }
  return known(dev, disks);
}
