/**
 * Real block devices for the physical-disk tests: a sparse image file attached as a
 * loop device (`losetup -fP`), optionally partitioned (sfdisk), each file system
 * ext4 and mounted under the test's directory. Needs Linux and root (the tests run
 * as root in CI). Teardown unmounts and detaches even when the setup failed half-way.
 * Returns the reason instead when loop devices cannot be made here, so the test can
 * skip visibly.
 */
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import type { Teardownable } from './tmpfs.js';
import { missingTools } from './system-deps.js';
import { waitFor } from './wait-for.js';

const run = promisify(execFile);

export interface LoopDisk {
  /** `/dev/loopN` */
  device: string;
  /** The mount point of each file system: one per partition, or the whole disk's when `partitions` is 0. */
  mounts: string[];
}

async function has(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** /dev/loop-control (and the loop module) when a container lacks them. */
async function ensureLoopControl(): Promise<void> {
  if (await has('/dev/loop-control')) return;
  await run('modprobe', ['loop']).catch(() => undefined);
  if (!(await has('/dev/loop-control')))
    await run('mknod', ['/dev/loop-control', 'c', '10', '237']).catch(() => undefined);
}

/** The device node for a sysfs block device, made with mknod when /dev is not a devtmpfs. */
async function ensureNode(name: string): Promise<string> {
  const node = `/dev/${name}`;
  if (await has(node)) return node;
  const [major, minor] = (await readFile(`/sys/class/block/${name}/dev`, 'utf8')).trim().split(':');
  await run('mknod', [node, 'b', major ?? '', minor ?? '']);
  return node;
}

async function attach(image: string): Promise<string> {
  try {
    return (await run('losetup', ['-fP', '--show', image])).stdout.trim();
  } catch (first) {
    // No free /dev/loopN node (a /dev that is not devtmpfs): make the next one and try again.
    await ensureLoopControl();
    const next = (await run('losetup', ['-f']).catch(() => ({ stdout: '' }))).stdout.trim();
    const m = /^\/dev\/loop(\d+)$/.exec(next);
    if (m === null) throw first;
    if (!(await has(next))) await run('mknod', [next, 'b', '7', m[1] ?? '0']);
    return (await run('losetup', ['-fP', '--show', image])).stdout.trim();
  }
}

/**
 * A loop disk of `sizeMiB` under `dir` with `partitions` ext4 partitions of equal size
 * (0: ext4 on the whole disk), mounted at `<dir>/<name>-p<k>` (or `<dir>/<name>`).
 */
export async function makeLoopDisk(
  t: Teardownable,
  dir: string,
  name: string,
  opts: { sizeMiB: number; partitions: number },
): Promise<LoopDisk | { reason: string }> {
  if (process.platform !== 'linux') return { reason: 'loop devices need Linux' };
  if (process.getuid?.() !== 0) return { reason: 'loop devices need root' };
  const missing = missingTools(['sfdisk', 'mkfs.ext4', 'losetup']);
  if (missing !== undefined) return { reason: missing };
  await ensureLoopControl();
  // The image lives in RAM (/dev/shm) when it can: the loop device is still a real block device
  // under a real ext4, but its fsyncs then cost what a tmpfs' do, not a flush of this machine's disk.
  const imageDir = await mkdtemp(join((await has('/dev/shm')) ? '/dev/shm' : dir, 'loop-disk-')).catch(() => dir);
  const image = join(imageDir, `${name}.img`);
  await writeFile(image, '');
  await truncate(image, opts.sizeMiB * 1024 * 1024); // sparse
  let device: string;
  try {
    device = await attach(image);
  } catch (err) {
    await rm(image, { force: true });
    return { reason: `losetup refused: ${err instanceof Error ? err.message.trim() : String(err)}` };
  }
  const mounts: string[] = [];
  t.teardown(async () => {
    for (const m of mounts) await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => undefined));
    await run('losetup', ['-d', device]).catch(() => undefined);
    await rm(image, { force: true });
    if (imageDir !== dir) await rm(imageDir, { recursive: true, force: true });
  });
  const loop = basename(device);
  const fileSystems: string[] = [];
  if (opts.partitions === 0) fileSystems.push(device);
  else {
    const each = Math.floor((opts.sizeMiB - 2) / opts.partitions);
    const table = ['label: dos', ...Array.from({ length: opts.partitions }, () => `,${each}M`)].join('\n');
    await run('sh', ['-c', `printf '%s\\n' "$1" | sfdisk -q "$2"`, 'sh', table, device]);
    // sfdisk's re-read of the table does not always reach a loop device: ask the kernel again.
    await run('partx', ['-u', device]).catch(() => run('partx', ['-a', device]).catch(() => undefined));
    for (let k = 1; k <= opts.partitions; k++) {
      const part = `${loop}p${k}`;
      await waitFor(() => has(`/sys/class/block/${part}/dev`), `partition ${part} in sysfs`, 10_000);
      fileSystems.push(await ensureNode(part));
    }
  }
  for (const [i, fs] of fileSystems.entries()) {
    await run('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', fs]); // no journal: fsyncs cost less, the disk is thrown away
    const at = join(dir, opts.partitions === 0 ? name : `${name}-p${i + 1}`);
    await mkdir(at, { recursive: true });
    await run('mount', [fs, at]);
    mounts.push(at);
  }
  return { device, mounts };
}
