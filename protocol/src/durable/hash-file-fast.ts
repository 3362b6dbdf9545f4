/**
 * hashFile with the fast engine: b3sum on the whole file when it is installed and
 * the file is at least NATIVE_MIN_BYTES (≈15x blake3-wasm here), else
 * blake3-wasm streaming (protocol/src/hash.ts). Same digest either way.
 */
import { stat } from 'node:fs/promises';
import { hashFile } from '../hash.js';
import { NATIVE_MIN_BYTES, resolveEngine, type HashEngine } from './hash-engine.js';
import { nativeHashFile } from './native-hasher.js';

export async function hashFileFast(path: string, opts: { signal?: AbortSignal; hashEngine?: HashEngine } = {}): Promise<{ blake3: string; size: number }> {
  const signalOpt = opts.signal === undefined ? {} : { signal: opts.signal };
  const before = await stat(path);
  if (before.size < NATIVE_MIN_BYTES || (await resolveEngine(opts.hashEngine)) === 'wasm') return hashFile(path, signalOpt);
  const blake3 = await nativeHashFile(path, signalOpt);
  const after = await stat(path);
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
    throw Object.assign(new Error(`${path} changed while it was hashed: hash it again once it is stable`), { code: 'EAGAIN' });
  }
  return { blake3, size: after.size };
}
