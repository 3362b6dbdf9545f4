/**
 * BLAKE3 by the native `b3sum` tool (Debian/Homebrew package `b3sum`, the
 * reference Rust implementation with SIMD), fed through a pipe: about 15x the
 * speed of blake3-wasm on this class of machine, which is what lets a verified
 * copy keep pace with `cp`. Optional: when b3sum is not installed, or
 * S321_HASH_ENGINE=wasm, everything hashes with blake3-wasm. Both engines give
 * the same digest (test/protocol/hash-engine.test.ts checks it).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { isBlake3Hex } from '../hash.js';
import type { AsyncHasher } from './hash-pool.js';

export const B3SUM = 'b3sum';

let probe: Promise<boolean> | undefined;

/** True when `b3sum` runs here and hashes "abc" correctly (checked once per process). */
export function nativeHashAvailable(): Promise<boolean> {
  probe ??= new NativeHasher()
    .start()
    .then(async (h) => {
      await h.update(new TextEncoder().encode('abc'));
      return (await h.digest()) === '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85';
    })
    .catch(() => false);
  return probe;
}

export class NativeHasher implements AsyncHasher {
  #child: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
  #out = '';
  #err = '';
  #exit: Promise<number | null> | undefined;
  #failure: Error | undefined;

  /** Spawns b3sum reading stdin; rejects when it cannot be started. */
  start(): Promise<this> {
    return new Promise((resolve, reject) => {
      const child = spawn(B3SUM, ['--no-names', '--num-threads', '1'], { stdio: ['pipe', 'pipe', 'pipe'] });
      this.#child = child;
      child.stdout.setEncoding('utf8').on('data', (s: string) => (this.#out += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (this.#err += s.slice(0, 1000)));
      child.stdin.on('error', (e: Error) => (this.#failure ??= e));
      this.#exit = new Promise((res) => child.on('close', (code) => res(code)));
      child.once('error', (e) => {
        this.#failure ??= e;
        reject(e);
      });
      child.once('spawn', () => resolve(this));
    });
  }

  /** Resolves with the chunk once b3sum has taken it: the caller may reuse it. */
  update(chunk: Uint8Array): Promise<Uint8Array | undefined> {
    const child = this.#child;
    if (child === undefined) return Promise.reject(new TypeError('NativeHasher: start() first'));
    if (this.#failure !== undefined) return Promise.reject(this.#fail());
    if (chunk.byteLength === 0) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      child.stdin.write(chunk, (err) => (err === null || err === undefined ? resolve(chunk) : reject(this.#fail(err))));
    });
  }

  async digest(): Promise<string> {
    const child = this.#child;
    if (child === undefined) throw new TypeError('NativeHasher: start() first');
    child.stdin.end();
    const code = await this.#exit;
    this.#child = undefined;
    const hex = this.#out.trim();
    if (code !== 0 || !isBlake3Hex(hex)) throw this.#fail(undefined, code);
    return hex;
  }

  dispose(): void {
    const child = this.#child;
    this.#child = undefined;
    if (child !== undefined && child.exitCode === null) {
      child.stdin.destroy();
      child.kill('SIGKILL');
    }
  }

  #fail(cause?: Error, code?: number | null): Error {
    return new Error(`b3sum failed${code === undefined ? '' : ` (exit ${code})`}: ${this.#err.trim() || (cause ?? this.#failure)?.message || 'no output'}`, {
      cause: cause ?? this.#failure,
    });
  }
}

/**
 * b3sum on a whole file (read(2), not mapped: about 2 GB/s, small RSS). Rejects
 * with an Error whose `code` is 'EIO' when the file could not be read, or a plain
 * Error when b3sum failed; an abort kills b3sum and rejects with `signal.reason`.
 */
export function nativeHashFile(path: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const { signal } = opts;
    if (signal?.aborted === true) return reject(signal.reason);
    // '--' so a path starting with '-' is never read as an option.
    // --no-mmap: read(2) instead of mapping, so the mapped file never shows up as b3sum's RSS.
    const child = spawn(B3SUM, ['--no-names', '--no-mmap', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s.slice(0, 1000)));
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      reject(e);
    });
    child.once('close', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted === true) return reject(signal.reason);
      const hex = out.trim();
      if (code === 0 && isBlake3Hex(hex)) return resolve(hex);
      const e = new Error(`b3sum ${path} failed (exit ${code}): ${err.trim()}`);
      reject(/os error 5\b|Input\/output error/.test(err) ? Object.assign(e, { code: 'EIO' }) : e);
    });
  });
}
