/**
 * The independent checks of an ASC MHL history: the standard's own schemas (ascmhl-xsd/, from
 * ascmitc/mhl) through xmllint, and xxhsum (the xxHash project's tool) for the hashes. Both are
 * Debian packages (libxml2-utils, xxhash; scripts/ensure-system-deps.sh), installed when missing.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export const ASCMHL_XSD = join(import.meta.dirname, 'ascmhl-xsd');

/** Installs Debian package `pkg` when `bin` is not on the PATH. */
export function ensureTool(bin: string, pkg: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`]);
  } catch {
    execFileSync('sh', ['-c', `apt-get install -y ${pkg} || (apt-get update && apt-get install -y ${pkg})`], {
      stdio: 'ignore',
    });
  }
}

/** `xmllint --schema` of `file` against one of the standard's schemas (ASCMHL.xsd, ASCMHLDirectory.xsd). */
export function xmllint(schema: string, file: string): { ok: boolean; out: string } {
  try {
    return {
      ok: true,
      out: execFileSync('xmllint', ['--noout', '--schema', join(ASCMHL_XSD, schema), file], {
        stdio: 'pipe',
      }).toString(),
    };
  } catch (err) {
    const e = err as { stderr?: Buffer };
    return { ok: false, out: e.stderr?.toString() ?? String(err) };
  }
}
