/**
 * A source that lies, for durable-write and transfer tests: short, long, one
 * flipped bit, failing on the Nth chunk, or hanging after the Nth chunk (until
 * its iterator is returned). Every chunk is a fresh buffer.
 */

export interface LyingSourceOptions {
  /** The true content. */
  data: Uint8Array;
  /** Bytes per chunk (default 64 KiB). */
  chunkSize?: number;
  /** Drop this many bytes from the end (a short source). */
  truncateBy?: number;
  /** Append this many extra bytes (a long source). */
  extendBy?: number;
  /** Flip the lowest bit of the byte at this offset. */
  flipBitAt?: number;
  /** Throw `failWith` instead of yielding chunk number N (0-based). */
  failOnChunk?: number;
  failWith?: Error;
  /** After yielding chunk N (0-based), never yield again (a stalled card or socket). */
  hangAfterChunk?: number;
}

/** An Error shaped like Node's system errors (ENOSPC, EIO…). */
export function systemError(code: string, message = `${code}: injected by the test`): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

export function lyingBytes(opts: LyingSourceOptions): Uint8Array {
  let out = Uint8Array.from(opts.data);
  if (opts.truncateBy !== undefined) out = out.subarray(0, Math.max(0, out.byteLength - opts.truncateBy));
  if (opts.extendBy !== undefined) {
    const longer = new Uint8Array(out.byteLength + opts.extendBy);
    longer.set(out);
    longer.fill(0x5a, out.byteLength);
    out = longer;
  }
  if (opts.flipBitAt !== undefined) {
    if (opts.flipBitAt >= out.byteLength) throw new RangeError('flipBitAt is past the end of the data');
    out[opts.flipBitAt] = out[opts.flipBitAt]! ^ 1;
  }
  return out;
}

export async function* lyingSource(opts: LyingSourceOptions): AsyncGenerator<Uint8Array, void, undefined> {
  const bytes = lyingBytes(opts);
  const size = opts.chunkSize ?? 64 * 1024;
  let n = 0;
  for (let off = 0; off < bytes.byteLength || (off === 0 && opts.failOnChunk === 0); off += size, n++) {
    if (opts.failOnChunk === n) throw opts.failWith ?? systemError('EIO', 'EIO: i/o error, read (card pulled)');
    yield Uint8Array.from(bytes.subarray(off, off + size));
    if (opts.hangAfterChunk === n) await new Promise<never>(() => {});
  }
}

/** Deterministic pseudo-random bytes (xorshift), so failures are reproducible. */
export function testBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
