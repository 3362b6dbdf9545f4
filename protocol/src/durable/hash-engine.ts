/**
 * Which BLAKE3 implementation hashes a durable write's source and read-backs.
 *
 *  - 'wasm': blake3-wasm; the source on the calling thread, read-backs on the hash pool's workers.
 *  - 'native': b3sum through a pipe for anything larger than NATIVE_MIN_BYTES; smaller
 *    files stay on blake3-wasm (starting a process would cost more than hashing them).
 *  - 'auto' (default): 'native' when b3sum is installed and S321_HASH_ENGINE is not 'wasm'.
 */
import { createLocalAsyncHasher, type AsyncHasher, type HashPool } from './hash-pool.js';
import { nativeHashAvailable, startStreamHasher } from './native-hasher.js';

export type HashEngine = 'auto' | 'wasm' | 'native';

/** Below this many bytes a file is hashed with blake3-wasm even when b3sum is there. */
export const NATIVE_MIN_BYTES = 2 * 1024 * 1024;

export async function resolveEngine(engine: HashEngine | undefined): Promise<'wasm' | 'native'> {
  const e = engine ?? (process.env.S321_HASH_ENGINE === 'wasm' ? 'wasm' : process.env.S321_HASH_ENGINE === 'native' ? 'native' : 'auto');
  if (e === 'wasm') return 'wasm';
  if (e === 'native') return 'native';
  return (await nativeHashAvailable()) ? 'native' : 'wasm';
}

/**
 * Keeps the first chunks (up to NATIVE_MIN_BYTES) without hashing them; a small
 * input is then hashed by `small()`, a larger one by b3sum, fed the kept chunks
 * first. A chunk kept past its update() is copied (sources may reuse their
 * buffers once the update resolved, see agent/src/source-reader.ts); a chunk
 * that reaches the threshold goes to b3sum before update() resolves, uncopied.
 */
class DeferredHasher implements AsyncHasher {
  readonly #small: () => AsyncHasher;
  #kept: Uint8Array[] = [];
  #keptBytes = 0;
  #inner: AsyncHasher | undefined;

  constructor(small: () => AsyncHasher) {
    this.#small = small;
  }

  async update(chunk: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.#inner !== undefined) return this.#inner.update(chunk);
    if (chunk.byteLength === 0) return undefined;
    this.#keptBytes += chunk.byteLength;
    if (this.#keptBytes < NATIVE_MIN_BYTES) {
      this.#kept.push(chunk.slice());
      return undefined;
    }
    this.#kept.push(chunk);
    const native = await startStreamHasher();
    this.#inner = native;
    const kept = this.#kept;
    this.#kept = [];
    for (const c of kept) await native.update(c);
    return undefined;
  }

  async digest(): Promise<string> {
    if (this.#inner === undefined) {
      const h = this.#small();
      this.#inner = h;
      const kept = this.#kept;
      this.#kept = [];
      for (const c of kept) await h.update(c);
    }
    return this.#inner.digest();
  }

  dispose(): void {
    this.#kept = [];
    this.#inner?.dispose();
  }
}

/** The hasher for the source stream. */
export function sourceHasher(engine: 'wasm' | 'native'): AsyncHasher {
  return engine === 'native' ? new DeferredHasher(createLocalAsyncHasher) : createLocalAsyncHasher();
}

/** The hasher for one read-back. */
export function readBackHasher(engine: 'wasm' | 'native', pool: HashPool | false): AsyncHasher {
  const small = (): AsyncHasher => (pool === false ? createLocalAsyncHasher() : pool.createHasher());
  return engine === 'native' ? new DeferredHasher(small) : small();
}
