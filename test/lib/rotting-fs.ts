/**
 * A durable-write file-system facade for tests: the synchronous one of the small writer
 * (syncFs), except that a file opened for reading whose path contains `match` reads back with
 * its first byte flipped (a disk, cable or RAM corrupting data after the write).
 */
import { syncFs, type DurableFs } from '@studio321/protocol/durable';

export function rottingReadBack(match: string): DurableFs {
  return {
    ...syncFs,
    open: async (path, flags, mode) => {
      const fh = await syncFs.open(path, flags, mode);
      if (flags !== 'r' || !path.includes(match)) return fh;
      return {
        ...fh,
        read: async (buffer, offset, length, position) => {
          const r = await fh.read(buffer, offset, length, position);
          if (r.bytesRead > 0) buffer[offset] = (buffer[offset] ?? 0) ^ 0x01;
          return r;
        },
      };
    },
  };
}
