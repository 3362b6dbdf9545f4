/**
 * BLAKE3 of a file by b3sum, an implementation independent of ours: the system tests check archive
 * copies with it so that a bug in our own hashing cannot confirm itself. `npm test` installs b3sum
 * first (scripts/ensure-system-deps.sh); without it this throws rather than fall back to our own hash.
 */
import { spawnSync } from 'node:child_process';

export function b3sum(path: string): string {
  const r = spawnSync('b3sum', ['--no-names', path], { encoding: 'utf8' });
  if (r.error !== undefined)
    throw new Error(`b3sum is not installed (run scripts/ensure-system-deps.sh as root): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`b3sum ${path}: ${r.stderr}`);
  return r.stdout.trim();
}
