/**
 * Bit rot on disk, for tests: one byte of an existing file flipped in place
 * (same size, same inode), as a failing disk returns it.
 */
import { open } from 'node:fs/promises';

/** Flips the bits of `mask` in the byte at `offset` of `path`; returns the byte's new value. */
export async function rotByte(path: string, offset: number, mask = 0x01): Promise<number> {
  const fh = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    const { bytesRead } = await fh.read(byte, 0, 1, offset);
    if (bytesRead !== 1) throw new Error(`rotByte: ${path} has no byte at ${offset}`);
    byte[0] = (byte[0] ?? 0) ^ mask;
    await fh.write(byte, 0, 1, offset);
    return byte[0] ?? 0;
  } finally {
    await fh.close();
  }
}
