/**
 * The durable write of a small file a program keeps for itself (identity, keys,
 * tokens, pairings, markers, generated config): the archive's discipline without
 * its read-back, for bytes already in memory.
 *
 *   1. mkdir -p the directory, fsyncing the parent of each new directory (ensureDir);
 *   2. write a temp in the same directory (`.<name>.<random>.s321tmp`, O_EXCL), mode set
 *      with fchmod (never left to the umask), fsync it;
 *   3. rename over the final name (`replace`, the default: a reader sees the old or
 *      the new file, never a mix) or link(2) to it (`replace: false`: EEXIST when it
 *      exists, the first writer wins), then fsync the directory.
 *
 * So after a power cut the final name holds either the previous content or all
 * of the new, never an empty or truncated file. A crash may leave a temp behind;
 * it never carries a final name.
 */
import { link, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ensureDir, fsyncDir } from './fsync-dir.js';
import { tempNameFor } from './target-name.js';

export interface SmallFileOptions {
  /** File mode, set exactly (default 0600). */
  mode?: number;
  /** Mode of directories created on the way (default 0700). */
  dirMode?: number;
  /** false: never replace an existing file (EEXIST). Default true. */
  replace?: boolean;
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: SmallFileOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await ensureDir(dir, undefined, opts.dirMode ?? 0o700);
  const tmp = join(dir, tempNameFor(basename(path)));
  try {
    const fh = await open(tmp, 'wx', opts.mode ?? 0o600);
    try {
      await fh.chmod(opts.mode ?? 0o600);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.replace === false) await link(tmp, path);
    else await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  await fsyncDir(dir);
}
