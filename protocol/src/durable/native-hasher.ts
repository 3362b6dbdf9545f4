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
 * One long-lived `sh` that runs `b3sum` on the file paths it is sent, one per
 * line, and answers `OK <hex>` or `ERR <message>` per line, in order. Starting
 * b3sum from node forks the whole node process (page tables of ~100 MB RSS:
 * 3–8 ms of main-thread time per file, measured); forking from a 1 MB shell is
 * nearly free. The shell is keyed by PATH (a changed PATH gets a new shell), its
 * handles are unref'd while nothing is asked, and it ends when its stdin closes.
 */
const HELPER_SCRIPT = [
  'while IFS= read -r p; do',
  '  if h=$(b3sum --no-names --no-mmap -- "$p" 2>&1); then printf \'OK %s\\n\' "$h";',
  '  else printf \'ERR %s\\n\' "$(printf \'%s\' "$h" | tr \'\\n\' \' \')"; fi',
  'done',
].join('\n');

interface HelperRequest {
  path: string;
  resolve: (hex: string) => void;
  reject: (err: Error) => void;
}

class FileHashHelper {
  readonly path: string | undefined;
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #queue: HelperRequest[] = [];
  #buf = '';
  #dead: Error | undefined;

  constructor(pathEnv: string | undefined) {
    this.path = pathEnv;
    const child = spawn('sh', ['-c', HELPER_SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.#child = child;
    child.stdout.setEncoding('utf8').on('data', (s: string) => this.#onData(s));
    child.stdin.on('error', (e: Error) => this.#fail(e));
    child.once('error', (e: Error) => this.#fail(e));
    child.once('close', (code) => this.#fail(new Error(`b3sum helper exited (${code})`)));
    this.#idle();
  }

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  hash(path: string): Promise<string> {
    if (this.#dead !== undefined) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      this.#queue.push({ path, resolve, reject });
      this.#busy();
      this.#child.stdin.write(`${path}\n`);
    });
  }

  close(): void {
    this.#child.stdin.end();
    this.#idle();
  }

  #onData(s: string): void {
    this.#buf += s;
    for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      const req = this.#queue.shift();
      if (req === undefined) {
        this.#fail(new Error(`b3sum helper: unexpected output ${line.slice(0, 200)}`));
        return;
      }
      const hex = line.startsWith('OK ') ? line.slice(3).trim() : '';
      if (isBlake3Hex(hex)) req.resolve(hex);
      else {
        const msg = line.startsWith('ERR ') ? line.slice(4).trim() : line.trim();
        const e = new Error(`b3sum ${req.path} failed: ${msg.slice(0, 1000)}`);
        req.reject(/os error 5\b|Input\/output error/.test(msg) ? Object.assign(e, { code: 'EIO' }) : e);
      }
    }
    if (this.#queue.length === 0) this.#idle();
  }

  #fail(err: Error): void {
    this.#dead ??= err;
    const q = this.#queue.splice(0);
    for (const r of q) r.reject(err);
    this.#idle();
  }

  /** While a request is outstanding the helper keeps the process alive; idle, it never does. */
  #busy(): void {
    this.#child.ref();
    (this.#child.stdout as Readable & { ref?: () => void }).ref?.();
  }

  #idle(): void {
    this.#child.unref();
    (this.#child.stdout as Readable & { unref?: () => void }).unref?.();
    (this.#child.stdin as Writable & { unref?: () => void }).unref?.();
  }
}

let helper: FileHashHelper | undefined;

function fileHashHelper(): FileHashHelper {
  const pathEnv = process.env.PATH;
  if (helper === undefined || helper.dead || helper.path !== pathEnv) {
    helper?.close();
    helper = new FileHashHelper(pathEnv);
  }
  return helper;
}

/**
 * b3sum on a whole file (read(2), not mapped: about 2 GB/s, small RSS), run by
 * the long-lived helper shell. Rejects with an Error whose `code` is 'EIO' when
 * the file could not be read, or a plain Error when b3sum failed; an abort
 * rejects with `signal.reason` at once (the helper finishes that file and its
 * answer is dropped).
 */
export function nativeHashFile(path: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
  const { signal } = opts;
  if (signal?.aborted === true) return Promise.reject(signal.reason);
  // A path the line protocol cannot carry goes to its own b3sum.
  if (path.includes('\n') || path.includes('\r')) return spawnHashFile(path, opts);
  const p = fileHashHelper().hash(path);
  if (signal === undefined) return p;
  p.catch(() => undefined);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (hex) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) reject(signal.reason);
        else resolve(hex);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(signal.aborted ? signal.reason : err);
      },
    );
  });
}

/** One b3sum process for one file (paths with a line break). */
function spawnHashFile(path: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
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
