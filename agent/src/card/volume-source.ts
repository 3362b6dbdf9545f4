/**
 * Mounted volumes, as the card watcher sees them.
 *
 * `VolumeSource` is the seam: the agent polls `list()`; tests (and other
 * platforms) provide their own. Two real implementations:
 *  - `MountInfoVolumeSource` reads /proc/self/mountinfo (Linux; no child process);
 *  - `DfVolumeSource` runs `df -kP` asynchronously (execFile, never execSync) and
 *    parses it with `parseDfOutput`, which keeps mount points with spaces whole
 *    (`/media/anna/NO NAME`) — unlike node-disk-info, which splits on spaces and
 *    blocks the event loop; that is why it is not used here.
 * Both parsers are pure and tested against saved output (test/agent/fixtures/).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface Volume {
  /** Absolute mount point, unescaped. */
  mountPoint: string;
  /** What is mounted (e.g. /dev/sdb1, tmpfs). */
  device: string;
  /** File system type when the source knows it (mountinfo does, df does not). */
  fsType?: string;
  /** Size in bytes when the source knows it (df does). */
  sizeBytes?: number;
}

export interface VolumeSource {
  list(signal?: AbortSignal): Promise<Volume[]>;
}

// Filesystem, 1024-blocks, Used, Available, Capacity, Mounted on. The file system
// column is matched lazily and the mount point takes the rest of the line, so a
// mount point may contain spaces.
const DF_LINE = /^(.+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+%|-)\s+(\/.*)$/;

/** Parse the output of `df -kP` (POSIX format). Lines that do not parse are skipped. */
export function parseDfOutput(text: string): Volume[] {
  const out: Volume[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '');
    if (i === 0 && /^Filesystem\s/i.test(line)) continue;
    const m = DF_LINE.exec(line);
    if (m === null) continue;
    out.push({ device: m[1] ?? '', mountPoint: m[6] ?? '', sizeBytes: Number(m[2]) * 1024 });
  }
  return out;
}

/** Undo the octal escapes the kernel uses in mountinfo (`\040` space, `\011` tab, `\012` newline, `\134` backslash). */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Parse /proc/<pid>/mountinfo:
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 * fields: id parent major:minor root mount-point options [optional…] - fstype source super-options
 */
export function parseMountInfo(text: string): Volume[] {
  const out: Volume[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const parts = line.split(' ');
    const sep = parts.indexOf('-', 6);
    if (sep < 0 || parts.length < sep + 3) continue;
    const mountPoint = parts[4];
    const fsType = parts[sep + 1];
    const source = parts[sep + 2];
    if (mountPoint === undefined || fsType === undefined || source === undefined) continue;
    out.push({
      mountPoint: unescapeMountField(mountPoint),
      device: unescapeMountField(source),
      fsType: unescapeMountField(fsType),
    });
  }
  return out;
}

export class MountInfoVolumeSource implements VolumeSource {
  readonly file: string;
  constructor(file = '/proc/self/mountinfo') {
    this.file = file;
  }

  async list(signal?: AbortSignal): Promise<Volume[]> {
    const text = await readFile(this.file, { encoding: 'utf8', ...(signal === undefined ? {} : { signal }) });
    return parseMountInfo(text);
  }
}

export class DfVolumeSource implements VolumeSource {
  readonly command: string;
  constructor(command = 'df') {
    this.command = command;
  }

  list(signal?: AbortSignal): Promise<Volume[]> {
    return new Promise((resolve, reject) => {
      execFile(
        this.command,
        ['-kP'],
        {
          encoding: 'utf8',
          maxBuffer: 16 * 1024 * 1024,
          ...(signal === undefined ? {} : { signal }),
          env: { ...process.env, LC_ALL: 'C' },
        },
        (err, stdout) => {
          // df exits 1 when one file system could not be read (a stale NFS mount) but
          // still prints the others: use what it printed when there is anything.
          if (err !== null && stdout.trim() === '') {
            reject(err);
            return;
          }
          resolve(parseDfOutput(stdout));
        },
      );
    });
  }
}

/** The platform's default volume source. */
export function defaultVolumeSource(): VolumeSource {
  return process.platform === 'linux' ? new MountInfoVolumeSource() : new DfVolumeSource();
}

const PSEUDO_FS = new Set([
  'proc',
  'sysfs',
  'cgroup',
  'cgroup2',
  'devpts',
  'devtmpfs',
  'mqueue',
  'debugfs',
  'tracefs',
  'securityfs',
  'pstore',
  'bpf',
  'configfs',
  'fusectl',
  'hugetlbfs',
  'autofs',
  'binfmt_misc',
  'nsfs',
  'rpc_pipefs',
  'efivarfs',
]);
const SYSTEM_PREFIXES = ['/proc', '/sys', '/dev', '/boot', '/snap', '/var/lib/docker'];

/** Volumes that can never be a camera card (pseudo file systems, the root, system trees). */
export function isSystemVolume(v: Volume): boolean {
  if (v.mountPoint === '/' || v.mountPoint === '/run' || v.mountPoint === '/tmp') return true;
  if (v.fsType !== undefined && PSEUDO_FS.has(v.fsType)) return true;
  return SYSTEM_PREFIXES.some((p) => v.mountPoint === p || v.mountPoint.startsWith(`${p}/`));
}
