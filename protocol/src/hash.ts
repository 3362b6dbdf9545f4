/**
 * BLAKE3-256 helpers (blake3-wasm 2.1.5). One hash identity is carried from card to
 * cloud: 32-byte digest, hex, lower case.
 *
 * Nothing here holds a whole file in memory: streams are hashed chunk by chunk.
 */
import { open } from 'node:fs/promises';
import blake3 from 'blake3-wasm';

/** Length of a BLAKE3-256 digest in hex characters. */
export const HASH_HEX_LENGTH = 64;

/** Chunk size used to read files for hashing (large chunks amortise the wasm call). */
export const HASH_READ_CHUNK = 4 * 1024 * 1024;

const HEX_RE = /^[0-9a-f]{64}$/;

/** True when `s` is a BLAKE3-256 digest in lower-case hex. */
export function isBlake3Hex(s: unknown): s is string {
  return typeof s === 'string' && HEX_RE.test(s);
}

export interface Hasher {
  update(data: Uint8Array): void;
  /** Hex, lower case. The hasher cannot be used afterwards. */
  digest(): string;
  /** Release the wasm state without a digest (an abandoned hash). Safe to call twice or after digest(). */
  dispose(): void;
}

type WasmHash = ReturnType<typeof blake3.createHash>;

class Blake3Hasher implements Hasher {
  #h: WasmHash | undefined = blake3.createHash();

  update(data: Uint8Array): void {
    if (this.#h === undefined) throw new TypeError('Hasher.update() called after digest() or dispose()');
    if (data.byteLength > 0) this.#h.update(data);
  }

  digest(): string {
    if (this.#h === undefined) throw new TypeError('Hasher.digest() called twice or after dispose()');
    const h = this.#h;
    this.#h = undefined;
    return h.digest('hex'); // digest() frees the wasm state
  }

  dispose(): void {
    this.#h?.dispose();
    this.#h = undefined;
  }
}

export function createHasher(): Hasher {
  return new Blake3Hasher();
}

export function hashBytes(data: Uint8Array): string {
  const h = createHasher();
  h.update(data);
  return h.digest();
}

export async function hashStream(src: AsyncIterable<Uint8Array>): Promise<{ blake3: string; size: number }> {
  const h = createHasher();
  let size = 0;
  try {
    for await (const chunk of src) {
      h.update(chunk);
      size += chunk.byteLength;
    }
    return { blake3: h.digest(), size };
  } finally {
    h.dispose();
  }
}

export interface ReadChunksOptions {
  signal?: AbortSignal;
  /** Bytes per chunk (default 4 MiB). */
  chunkSize?: number;
  /** Start offset (default 0). */
  start?: number;
}

/**
 * Reads a file as a sequence of freshly allocated chunks (each chunk is its own
 * buffer, so a consumer may keep one while the next is read). Throws the system
 * error (ENOENT, EIO…) as is; an abort throws `signal.reason`.
 */
export async function* readFileChunks(path: string, opts: ReadChunksOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const chunkSize = opts.chunkSize ?? HASH_READ_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new TypeError('chunkSize must be a positive integer');
  opts.signal?.throwIfAborted();
  const fh = await open(path, 'r');
  try {
    let pos = opts.start ?? 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      const buf = Buffer.allocUnsafeSlow(chunkSize);
      const { bytesRead } = await fh.read(buf, 0, chunkSize, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      yield bytesRead === chunkSize ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** Hashes a file by streaming it (never the whole file in memory). */
export async function hashFile(path: string, opts: { signal?: AbortSignal } = {}): Promise<{ blake3: string; size: number }> {
  return hashStream(readFileChunks(path, opts.signal === undefined ? {} : { signal: opts.signal }));
}
