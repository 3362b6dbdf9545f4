/**
 * Removes temp files (`*.s321tmp`) a crash left behind (from the durable write's
 * step 3, openTemp, until the unlink of step 8, linkFinal). Call at start, before
 * any durable write into `dir` begins: a live write's temp would be removed too.
 */
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '../errors.js';
import { fsyncDir } from './fsync-dir.js';
import { TEMP_SUFFIX } from './target-name.js';

export async function sweepStaleTemps(dir: string, opts: { recursive?: boolean } = {}): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return 0;
    throw err;
  }
  let removed = 0;
  let removedHere = 0;
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isFile() && e.name.endsWith(TEMP_SUFFIX)) {
      try {
        await unlink(p);
        removedHere++;
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
      }
    } else if (opts.recursive === true && e.isDirectory()) {
      removed += await sweepStaleTemps(p, opts);
    }
  }
  if (removedHere > 0) await fsyncDir(dir);
  return removed + removedHere;
}
