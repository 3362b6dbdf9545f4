/**
 * The durable write's file-system seam over synchronous calls, for a worker thread that writes
 * many small files (small-writer.ts, studiod's small commits): a small file's thirty calls cost
 * thirty system calls there, not thirty round trips through libuv's thread pool. The waits on
 * the disk (fsync, fdatasync) still go through the pool, so the files a worker writes side by
 * side wait for theirs together. No O_DIRECT: small files are buffered.
 */
import { promisify } from 'node:util';
import {
  closeSync,
  fdatasync,
  fsync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import type { DurableFileHandle, DurableFs } from './fs-facade.js';

const fdatasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);

function handle(fd: number): DurableFileHandle {
  return {
    write: async (buffer, offset, length, position) => ({
      bytesWritten: writeSync(fd, buffer, offset, length, position),
    }),
    read: async (buffer, offset, length, position) => ({ bytesRead: readSync(fd, buffer, offset, length, position) }),
    sync: () => fsyncAsync(fd),
    datasync: () => fdatasyncAsync(fd),
    close: async () => closeSync(fd),
  };
}

export const syncFs: DurableFs = {
  open: async (path, flags, mode) => handle(openSync(path, flags, mode)),
  link: async (a, b) => linkSync(a, b),
  rename: async (a, b) => renameSync(a, b),
  unlink: async (p) => unlinkSync(p),
  mkdir: async (p, mode) => {
    mkdirSync(p, mode === undefined ? {} : { mode });
  },
  stat: async (p) => statSync(p),
};
