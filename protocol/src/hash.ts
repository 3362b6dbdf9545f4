/**
 * BLAKE3-256 helpers. One hash identity is carried from card to cloud: 32-byte
 * digest, hex, lower case.
 *
 * Two engines give the same digests (test/protocol/hash-engine.test.ts):
 *  - 'native': the reference Rust implementation with SIMD, in-process through
 *    @napi-rs/blake-hash (a prebuilt N-API binary installed from npm with no
 *    install script), an order of magnitude faster per core (README, Performance);
 *  - 'wasm': blake3-wasm 2.1.5, the fallback where the native binary does not load.
 * 'auto' (the default) is 'native' whenever its binary loads on this platform;
 * S321_HASH_ENGINE=wasm|native overrides it (tests, diagnosis).
 *
 * Nothing here holds a whole file in memory: streams are hashed chunk by chunk.
 */
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type blake3 from 'blake3-wasm';

/** Length of a BLAKE3-256 digest in hex characters. */
export const HASH_HEX_LENGTH = 64;

/** Chunk size used to read files for hashing (large chunks amortise the call into the engine). */
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

let wasmModule: typeof blake3 | undefined;

/** blake3-wasm, compiled on first use only (most machines hash with the native engine). */
function loadWasm(): typeof blake3 {
  wasmModule ??= createRequire(import.meta.url)('blake3-wasm') as typeof blake3;
  return wasmModule;
}

/** What both engines' streaming states offer (blake3-wasm's must also be freed). */
interface EngineState {
  update(input: Uint8Array): unknown;
  digest(format: 'hex'): string;
  dispose?(): void;
  reset?(): void;
}

/**
 * Native hash states (BLAKE3 ≈ 2 KB, XXH3 ≈ 0.9 KB each) live outside V8's heap and V8 is not
 * told about them, so a state per file is freed only when a GC happens to run: a hash worker
 * allocates almost nothing else and rarely collects, and 100,000 small files left hundreds of
 * MB behind. Finished states are reset and kept for the next hash instead (at most this many
 * per thread; more are left to the GC).
 */
const KEPT_STATES = 64;
const nativeStates: EngineState[] = [];

function keepNative(h: EngineState): void {
  if (nativeStates.length >= KEPT_STATES) return;
  h.reset?.();
  nativeStates.push(h);
}
interface NativeModule {
  Blake3Hasher: new () => EngineState;
}

let nativeModule: NativeModule | null | undefined;

/** The native engine, or undefined when its binary does not load here (checked once, against a known digest). */
function loadNative(): NativeModule | undefined {
  if (nativeModule === undefined) {
    nativeModule = null;
    try {
      const m = createRequire(import.meta.url)('@napi-rs/blake-hash') as NativeModule;
      const h = new m.Blake3Hasher();
      h.update(new TextEncoder().encode('abc'));
      if (h.digest('hex') === '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85') nativeModule = m;
    } catch {
      // no prebuilt binary for this platform: blake3-wasm
    }
  }
  return nativeModule ?? undefined;
}

export type HashEngine = 'auto' | 'wasm' | 'native';

/** True when the native engine loads on this machine. */
export function nativeHashAvailable(): boolean {
  return loadNative() !== undefined;
}

/** The engine `engine` (default: S321_HASH_ENGINE, else 'auto') resolves to here. 'native' where it cannot load is 'wasm'. */
export function resolveHashEngine(engine?: HashEngine): 'wasm' | 'native' {
  const env = process.env.S321_HASH_ENGINE;
  const e = engine ?? (env === 'wasm' || env === 'native' ? env : 'auto');
  if (e === 'wasm') return 'wasm';
  return loadNative() === undefined ? 'wasm' : 'native';
}

class EngineHasher implements Hasher {
  #h: EngineState | undefined;
  readonly #native: boolean;

  constructor(state: EngineState, native: boolean) {
    this.#h = state;
    this.#native = native;
  }

  update(data: Uint8Array): void {
    if (this.#h === undefined) throw new TypeError('Hasher.update() called after digest() or dispose()');
    if (data.byteLength > 0) this.#h.update(data);
  }

  digest(): string {
    if (this.#h === undefined) throw new TypeError('Hasher.digest() called twice or after dispose()');
    const h = this.#h;
    this.#h = undefined;
    const hex = h.digest('hex'); // also frees blake3-wasm's state
    if (this.#native) keepNative(h);
    return hex;
  }

  dispose(): void {
    const h = this.#h;
    this.#h = undefined;
    if (h === undefined) return;
    if (this.#native) keepNative(h);
    else h.dispose?.(); // blake3-wasm's state lives in wasm memory
  }
}

/** A streaming BLAKE3 hasher on the calling thread (see the engines above). */
export function createHasher(engine?: HashEngine): Hasher {
  const m = resolveHashEngine(engine) === 'native' ? loadNative() : undefined;
  if (m === undefined) return new EngineHasher(loadWasm().createHash(), false);
  return new EngineHasher(nativeStates.pop() ?? new m.Blake3Hasher(), true);
}

export function hashBytes(data: Uint8Array, engine?: HashEngine): string {
  const h = createHasher(engine);
  h.update(data);
  return h.digest();
}

export async function hashStream(
  src: AsyncIterable<Uint8Array>,
  engine?: HashEngine,
): Promise<{ blake3: string; size: number }> {
  const h = createHasher(engine);
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
export async function* readFileChunks(
  path: string,
  opts: ReadChunksOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
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
export async function hashFile(
  path: string,
  opts: { signal?: AbortSignal; engine?: HashEngine } = {},
): Promise<{ blake3: string; size: number }> {
  return hashStream(readFileChunks(path, opts.signal === undefined ? {} : { signal: opts.signal }), opts.engine);
}

/**
 * XXH3-64, the ASC MHL hash (protocol/src/durable/mhl.ts): the standard's schema admits md5, sha1,
 * c4, xxh64, xxh3 and xxh128, not BLAKE3, so a file's MHL hash is computed in the same pass
 * as its BLAKE3 (durableWrite's `xxh3: true`). BLAKE3 stays the ledger's hash. xxh3 and not
 * xxh128: the native library (@node-rs/xxhash, a prebuilt N-API binary installed from npm
 * with no install script) streams only the 64-bit variant, and the wasm xxh128 costs three
 * times the BLAKE3 pass (README, Performance). 16 lower-case hex digits, the canonical
 * (big-endian) form other MHL tools write.
 */
export const XXH3_HEX_LENGTH = 16;

const XXH3_RE = /^[0-9a-f]{16}$/;

/** True when `s` is an XXH3-64 digest in lower-case hex. */
export function isXxh3Hex(s: unknown): s is string {
  return typeof s === 'string' && XXH3_RE.test(s);
}

interface Xxh3State {
  update(input: Uint8Array): unknown;
  digest(): bigint;
  reset(): void;
}
interface XxhModule {
  xxh3: { Xxh3: { withSeed(seed?: bigint): Xxh3State } };
}
let xxhModule: XxhModule | undefined;
/** Finished XXH3 states, reset for reuse (see KEPT_STATES). */
const xxh3States: Xxh3State[] = [];

/** A streaming XXH3-64 hasher on the calling thread. */
export function createXxh3(): Pick<Hasher, 'update' | 'digest'> {
  xxhModule ??= createRequire(import.meta.url)('@node-rs/xxhash') as XxhModule;
  let h: Xxh3State | undefined = xxh3States.pop() ?? xxhModule.xxh3.Xxh3.withSeed();
  return {
    update: (data) => {
      if (h === undefined) throw new TypeError('Xxh3.update() called after digest()');
      h.update(data);
    },
    digest: () => {
      if (h === undefined) throw new TypeError('Xxh3.digest() called twice');
      const state = h;
      h = undefined;
      const hex = state.digest().toString(16).padStart(XXH3_HEX_LENGTH, '0');
      if (xxh3States.length < KEPT_STATES) {
        state.reset();
        xxh3States.push(state);
      }
      return hex;
    },
  };
}

/** A file's XXH3-64 by streaming it. */
export async function xxh3File(path: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
  const h = createXxh3();
  for await (const chunk of readFileChunks(path, opts.signal === undefined ? {} : { signal: opts.signal }))
    h.update(chunk);
  return h.digest();
}
