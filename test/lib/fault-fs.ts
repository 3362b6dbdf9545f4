/**
 * A DurableFs that behaves like the real one (it IS the real one underneath)
 * except for the faults a test asks for: fail the Nth call of an operation with a
 * system error code, or rot bytes read back from a temp file (a disk that
 * corrupts data between write and read-back).
 */
import { nodeFs, type DurableFileHandle, type DurableFs } from '@studio321/protocol/durable';
import { systemError } from './lying-source.js';

export type FsOp =
  | 'open-wx'
  | 'open-r'
  | 'write'
  | 'read'
  | 'sync'
  | 'datasync'
  | 'link'
  | 'rename'
  | 'unlink'
  | 'mkdir'
  | 'stat';

export interface FaultFsOptions {
  /** Fail the Nth (1-based) call of `op` (default: the first) with `code`. */
  fail?: { op: FsOp; code: string; nth?: number };
  /** Flip one bit of the data read back from files whose name matches (default: temp files). */
  rotOnRead?: RegExp;
}

export interface FaultFs extends DurableFs {
  calls: Record<FsOp, number>;
}

export function faultFs(opts: FaultFsOptions = {}): FaultFs {
  const calls: Record<FsOp, number> = {
    'open-wx': 0,
    'open-r': 0,
    write: 0,
    read: 0,
    sync: 0,
    datasync: 0,
    link: 0,
    rename: 0,
    unlink: 0,
    mkdir: 0,
    stat: 0,
  };
  const hit = (op: FsOp): void => {
    calls[op]++;
    const f = opts.fail;
    if (f !== undefined && f.op === op && calls[op] === (f.nth ?? 1))
      throw systemError(f.code, `${f.code}: injected on ${op} #${calls[op]}`);
  };
  const wrap = (fh: DurableFileHandle, rot: boolean): DurableFileHandle => ({
    write: async (b, o, l, p) => {
      hit('write');
      return fh.write(b, o, l, p);
    },
    read: async (b, o, l, p) => {
      hit('read');
      const r = await fh.read(b, o, l, p);
      if (rot && r.bytesRead > 0 && p === 0) b[o] = b[o]! ^ 0x01;
      return r;
    },
    sync: async () => {
      hit('sync');
      return fh.sync();
    },
    datasync: async () => {
      hit('datasync');
      return fh.datasync();
    },
    close: () => fh.close(),
  });
  return {
    calls,
    open: async (path, flags, mode) => {
      hit(flags === 'wx' ? 'open-wx' : 'open-r');
      const rot = flags === 'r' && (opts.rotOnRead ?? /\.s321tmp$/).test(path) && opts.rotOnRead !== undefined;
      return wrap(await nodeFs.open(path, flags, mode), rot);
    },
    link: async (a, b) => {
      hit('link');
      return nodeFs.link(a, b);
    },
    rename: async (a, b) => {
      hit('rename');
      return nodeFs.rename(a, b);
    },
    unlink: async (p) => {
      hit('unlink');
      return nodeFs.unlink(p);
    },
    mkdir: async (p, m) => {
      hit('mkdir');
      return nodeFs.mkdir(p, m);
    },
    stat: async (p) => {
      hit('stat');
      return nodeFs.stat(p);
    },
  };
}
