/**
 * Helpers for the field-agent tests: run the real CLI as a child process, hash
 * trees, mount real tmpfs volumes (the tests run as root in CI; a test that
 * needs a mount skips when mounting is refused).
 */
import { spawn, execFile } from 'node:child_process';
import { readdir, lstat, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { mountTmpfs, type Teardownable } from './tmpfs.js';
import { makeLoopDisk } from './loop-disk.js';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { hashFile } from '@studio321/protocol';
import { STORE_MARKER } from '@studio321/agent';
import { waitFor as pollFor } from './wait-for.js';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = join(here, '..', '..');
export const AGENT_BIN = join(REPO, 'agent', 'dist', 'bin', 'field-agent.js');
const execFileP = promisify(execFile);

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runAgentCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; withoutCapabilities?: boolean } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // withoutCapabilities: the same user (so the program's own files in a 0700 clone stay
    // readable) with every capability dropped, so root's DAC override no longer reads files
    // whose mode denies it: how a permission fault is made when the tests run as root.
    const argv = [AGENT_BIN, ...args];
    const [cmd, cmdArgs] =
      opts.withoutCapabilities === true
        ? ['setpriv', ['--bounding-set=-all', '--inh-caps=-all', '--', process.execPath, ...argv]]
        : [process.execPath, argv];
    const child = spawn(cmd, cmdArgs, {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** JSON lines printed by `--json`. */
export function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Every regular file under root (relative '/' paths), sorted; not the ASC MHL histories of the
 * card folders (`ascmhl/`, protocol/src/durable/mhl.ts: test/system/agent/offload/mhl.test.ts).
 */
export async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  let names: string[];
  try {
    names = await readdir(join(root, rel));
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const st = await lstat(join(root, r));
    if (st.isDirectory()) {
      if (name !== 'ascmhl') out.push(...(await listFiles(root, r)));
    } else out.push(r);
  }
  return out;
}

/** path → blake3 of every regular file under root, but a laptop store's marker (not a copy of anything). */
export async function hashTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await listFiles(root)) {
    if (f === STORE_MARKER) continue;
    const st = await lstat(join(root, f));
    if (st.isFile()) out.set(f, (await hashFile(join(root, f))).blake3);
  }
  return out;
}

/**
 * A fresh directory in /tmp (not the repo's .tap fixtures, which tap removes
 * before late teardowns run) with `names` as tmpfs mount points of `size`
 * (test/lib/tmpfs.ts mounts and unmounts them). Undefined when mounting is refused.
 */
export async function tmpfsDirs(
  t: Teardownable,
  names: Record<string, string>,
): Promise<{ base: string; dirs: Record<string, string> } | undefined> {
  const base = await mkdtemp(join(tmpdir(), 'fa-test-'));
  t.teardown(async () => {
    for (const d of Object.keys(names)) await umount(join(base, d), true);
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
  });
  const dirs: Record<string, string> = {};
  for (const [name, size] of Object.entries(names)) {
    const d = join(base, name);
    await mkdir(d);
    const r = await mountTmpfs({ teardown: () => undefined }, d, `size=${size}`);
    if (!r.mounted) return undefined;
    dirs[name] = d;
  }
  return { base, dirs };
}

/**
 * Like tmpfsDirs, but each name is an ext4 file system on a loop device of its own
 * (test/lib/loop-disk.ts): distinct PHYSICAL devices, which two tmpfs mounts are not
 * (their disk cannot be known, so their copies add no device to safe to format).
 * `sizes` in MiB. Undefined, with the reason logged by the caller, when loop devices cannot be made.
 */
export async function diskDirs(
  t: Teardownable,
  sizes: Record<string, number>,
): Promise<{ base: string; dirs: Record<string, string> } | { reason: string }> {
  const base = await mkdtemp(join(tmpdir(), 'fa-test-'));
  const dirs: Record<string, string> = {};
  const disks = { teardowns: [] as Array<() => unknown> };
  // Unmount and detach before the folder holding the images goes.
  t.teardown(async () => {
    for (const fn of disks.teardowns.reverse()) await fn();
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
  });
  for (const [name, sizeMiB] of Object.entries(sizes)) {
    const d = await makeLoopDisk({ teardown: (fn) => void disks.teardowns.push(fn) }, base, name, {
      sizeMiB,
      partitions: 0,
    });
    if ('reason' in d) return { reason: d.reason };
    dirs[name] = d.mounts[0] as string;
  }
  return { base, dirs };
}

export async function umount(dir: string, lazy = false): Promise<void> {
  await execFileP('umount', lazy ? ['-l', dir] : [dir]).catch(() => undefined);
}

export async function remountSize(dir: string, size: string): Promise<void> {
  await execFileP('mount', ['-o', `remount,size=${size}`, dir]);
}

/** Poll `cond` until true or the deadline passes (no fixed sleeps); argument order kept for the agent tests. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  await pollFor(cond, what, timeoutMs);
}
