/**
 * Directory durability: fsync a directory so a created/linked/removed entry
 * survives power loss (the durable write's step 9, fsyncDir), and mkdir -p that
 * fsyncs the parent of each new directory (step 2, makeDir).
 */
import { dirname, resolve } from 'node:path';
import { errorCode } from '../errors.js';
import { nodeFs, type DurableFs } from './fs-facade.js';

/**
 * fsync(2) a directory. File systems that cannot fsync a directory (EINVAL,
 * ENOTSUP: some FUSE and FAT drivers) are accepted as they are.
 */
export async function fsyncDir(dir: string, fs: DurableFs = nodeFs): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    const code = errorCode(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
  } finally {
    await fh.close();
  }
}

/** mkdir -p `dir`; each directory created (with `mode`, when given) is made durable by fsyncing its parent. */
export async function ensureDir(dir: string, fs: DurableFs = nodeFs, mode?: number): Promise<void> {
  const missing: string[] = [];
  let cur = resolve(dir);
  for (;;) {
    try {
      const st = await fs.stat(cur);
      if (!st.isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${cur}'`), { code: 'ENOTDIR', path: cur });
      }
      break;
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      const parent = dirname(cur);
      if (parent === cur) throw err;
      missing.push(cur);
      cur = parent;
    }
  }
  for (const d of missing.reverse()) {
    try {
      await fs.mkdir(d, mode);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
    }
    await fsyncDir(dirname(d), fs);
  }
}
