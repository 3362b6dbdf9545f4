/**
 * The Debian tools the tests use come from one place: scripts/ensure-system-deps.sh (npm test's
 * pretest). A test file run on its own calls `missingTools`, which runs that script when a tool is
 * not on the PATH (it installs as root) and says what is still missing, for a visible t.skip.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'ensure-system-deps.sh');

function onPath(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** undefined when every tool is on the PATH (installing them first if needed), else why not. */
export function missingTools(bins: readonly string[]): string | undefined {
  if (bins.every(onPath)) return undefined;
  try {
    execFileSync('sh', [SCRIPT], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    return `${bins.join(', ')}: scripts/ensure-system-deps.sh failed: ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err)}`;
  }
  const still = bins.filter((b) => !onPath(b));
  return still.length === 0
    ? undefined
    : `${still.join(', ')} not installed (scripts/ensure-system-deps.sh installs them as root)`;
}
