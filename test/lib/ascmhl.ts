/**
 * The independent checks of an ASC MHL history: the standard's own schemas (ascmhl-xsd/, from
 * ascmitc/mhl) through xmllint, and xxhsum (the xxHash project's tool) for the hashes. Both are
 * Debian packages (libxml2-utils, xxhash), from scripts/ensure-system-deps.sh (test/lib/system-deps.ts).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export const ASCMHL_XSD = join(import.meta.dirname, 'ascmhl-xsd');

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
