/**
 * A real small file system for full-disk and read-only tests: tmpfs mounted on a
 * test directory (needs root; CI runs as root). Returns false, with the reason,
 * where mounting is refused, so the test can fall back and say so.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Teardownable {
  teardown(fn: () => unknown): void;
}

export async function mountTmpfs(
  t: Teardownable,
  dir: string,
  options: string,
): Promise<{ mounted: true } | { mounted: false; reason: string }> {
  if (process.platform !== 'linux') return { mounted: false, reason: 'tmpfs mounts need Linux' };
  if (process.getuid?.() !== 0) return { mounted: false, reason: 'mounting tmpfs needs root' };
  try {
    await run('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  } catch (err) {
    return { mounted: false, reason: `mount refused: ${err instanceof Error ? err.message.trim() : String(err)}` };
  }
  t.teardown(() => run('umount', [dir]).catch(() => run('umount', ['-l', dir])));
  return { mounted: true };
}
