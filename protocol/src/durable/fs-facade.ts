/**
 * The file-system seam of the durable write. Production uses `nodeFs`
 * (node:fs/promises); tests inject a facade that fails or rots bytes at a
 * chosen step. Only the calls the durable write makes are here.
 */
import * as fsp from 'node:fs/promises';
import { openDirect } from './direct-io.js';

export interface DurableFileHandle {
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  /** pwritev(2): `buffers` one after another from `position` (may write fewer bytes); optional (writeParts, direct-io.ts). */
  writev?(buffers: Uint8Array[], position: number): Promise<{ bytesWritten: number }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  sync(): Promise<void>;
  /** fdatasync(2): the data written so far is durable (used to read back while writing). */
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export interface DurableStat {
  size: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

export interface DurableFs {
  /** 'wx' creates a new file (EEXIST if present); 'r' opens a file or a directory for reading/fsync. */
  open(path: string, flags: 'wx' | 'r', mode?: number): Promise<DurableFileHandle>;
  /** link(2): never replaces; EEXIST when newPath exists. */
  link(existingPath: string, newPath: string): Promise<void>;
  /** Used only where the file system has no hard links (exFAT/FAT field drives), after checking the final name is free. */
  rename(oldPath: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Non-recursive mkdir; EEXIST when present. */
  mkdir(path: string, mode?: number): Promise<void>;
  stat(path: string): Promise<DurableStat>;
  /** An O_DIRECT write descriptor on an existing file, undefined where refused (direct-io.ts); optional. */
  openDirect?(path: string): Promise<DurableFileHandle | undefined>;
}

export const nodeFs: DurableFs = {
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  link: (a, b) => fsp.link(a, b),
  rename: (a, b) => fsp.rename(a, b),
  unlink: (p) => fsp.unlink(p),
  mkdir: async (p, mode) => {
    await fsp.mkdir(p, mode === undefined ? {} : { mode });
  },
  stat: (p) => fsp.stat(p),
  openDirect: (p) => openDirect(p, true),
};
