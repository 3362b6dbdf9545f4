/**
 * BLAKE3 by the native `b3sum` tool (Debian/Homebrew package `b3sum`, the
 * reference Rust implementation with SIMD), fed through a pipe: about 15x the
 * speed of blake3-wasm on this class of machine, which is what lets a verified
 * copy keep pace with `cp`. Optional: when b3sum is not installed, or
 * S321_HASH_ENGINE=wasm, everything hashes with blake3-wasm. Both engines give
 * the same digest (test/protocol/hash-engine.test.ts checks it).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants, mkdtempSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 * One long-lived `sh` that runs `b3sum` for this process. Starting b3sum from
 * node forks the whole node process: with ~150 MB RSS that was 3–8 ms of
 * main-thread time per file and ~3,000 copy-on-write page faults afterwards
 * (measured: ~370,000 faults and ~1.5 s of system time per 2 GB card); forking
 * from a 1 MB shell is nearly free. Requests are lines `<id> <op> <arg>`:
 *
 *   F <path>  b3sum the file; answers `<id> OK <hex>` or `<id> ERR <message>`.
 *   S <fifo>  mkfifo (mode 600, in the helper's private directory), answers
 *             `<id> MADE`; once b3sum's side has it open, `<id> OPEN`; b3sum
 *             hashes whatever is written to it until its last writer closes it,
 *             and answers `<id> OK <hex>` / `<id> ERR …`.
 *
 * Every job runs in the background, so answers come in any order. The shell runs
 * in its own process group and, when its stdin closes (this process ended, even
 * by kill -9), kills its jobs, then removes its directory. It is keyed by PATH (a
 * changed PATH gets a new shell) and its handles are unref'd while idle.
 */
const HELPER_SCRIPT = `
trap 'trap - EXIT; trap "" TERM; kill 0; rm -rf "$0"' EXIT
fail() { printf '%s ERR %s\\n' "$1" "$(printf '%s' "$2" | tr '\\n' ' ' | cut -c1-500)"; }
while IFS= read -r line; do
  id=\${line%% *}; rest=\${line#* }; op=\${rest%% *}; arg=\${rest#* }
  case $op in
    F) ( if h=$(b3sum --no-names --no-mmap -- "$arg" 2>&1); then printf '%s OK %s\\n' "$id" "$h"; else fail "$id" "$h"; fi ) & ;;
    S) if e=$(mkfifo -m 600 -- "$arg" 2>&1); then
         ( if command exec 3<"$arg" 2>/dev/null; then printf '%s OPEN\\n' "$id"
             if h=$(b3sum --no-names --num-threads 1 <&3 2>&1); then printf '%s OK %s\\n' "$id" "$h"; else fail "$id" "$h"; fi
           else fail "$id" "cannot open the FIFO"; fi; rm -f -- "$arg" ) &
         printf '%s MADE\\n' "$id"
       else fail "$id" "mkfifo: $e"; fi ;;
  esac
done
`;

interface HelperWaiter {
  path: string;
  onMade?: () => void;
  onOpen?: () => void;
  resolve: (hex: string) => void;
  reject: (err: Error) => void;
}

/** The helper shell is not running (could not start, or exited): not an answer about any file. */
class HelperDown extends Error {
  override name = 'HelperDown';
}

class B3Helper {
  readonly path: string | undefined;
  readonly dir: string;
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #waiting = new Map<number, HelperWaiter>();
  #nextId = 1;
  #buf = '';
  #dead: Error | undefined;

  constructor(pathEnv: string | undefined) {
    this.path = pathEnv;
    this.dir = mkdtempSync(join(tmpdir(), 's321-b3-'));
    const child = spawn('sh', ['-c', HELPER_SCRIPT, this.dir], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
    this.#child = child;
    child.stdout.setEncoding('utf8').on('data', (s: string) => this.#onData(s));
    child.stdin.on('error', (e: Error) => this.#fail(new HelperDown(`b3sum helper: ${e.message}`, { cause: e })));
    child.once('error', (e: Error) => this.#fail(new HelperDown(`b3sum helper: ${e.message}`, { cause: e })));
    child.once('close', (code) => this.#fail(new HelperDown(`b3sum helper exited (${code})`)));
    this.#idle();
  }

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  /** Sends one request; the waiter is called with its answers. Returns the request id. */
  request(op: 'F' | 'S', arg: (id: number) => string, waiter: Omit<HelperWaiter, 'path'>): { id: number; path: string } {
    const id = this.#nextId++;
    const path = arg(id);
    if (this.#dead !== undefined) {
      waiter.reject(this.#dead);
      return { id, path };
    }
    this.#waiting.set(id, { ...waiter, path });
    this.#busy();
    this.#child.stdin.write(`${id} ${op} ${path}\n`);
    return { id, path };
  }

  /** The answer to `id` is no longer wanted. */
  forget(id: number): void {
    this.#waiting.delete(id);
    if (this.#waiting.size === 0) this.#idle();
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
      const m = /^(\d+) (OK|ERR|MADE|OPEN) ?(.*)$/.exec(line);
      const w = m === null ? undefined : this.#waiting.get(Number(m[1]));
      if (m === null || w === undefined) continue; // a forgotten request
      const [, id, kind, rest = ''] = m;
      if (kind === 'MADE' || kind === 'OPEN') {
        (kind === 'MADE' ? w.onMade : w.onOpen)?.();
        continue;
      }
      this.#waiting.delete(Number(id));
      const hex = rest.trim();
      if (kind === 'OK' && isBlake3Hex(hex)) w.resolve(hex);
      else {
        const e = new Error(`b3sum ${w.path} failed: ${rest.trim().slice(0, 1000) || 'no output'}`);
        w.reject(/os error 5\b|Input\/output error/.test(rest) ? Object.assign(e, { code: 'EIO' }) : e);
      }
    }
    if (this.#waiting.size === 0) this.#idle();
  }

  #fail(err: Error): void {
    this.#dead ??= err;
    const q = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const w of q) w.reject(err);
    this.#idle();
  }

  /** While an answer is awaited the helper keeps the process alive; idle, it never does. */
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

let helper: B3Helper | undefined;

function b3Helper(): B3Helper {
  const pathEnv = process.env.PATH;
  if (helper === undefined || helper.dead || helper.path !== pathEnv) {
    helper?.close();
    try {
      helper = new B3Helper(pathEnv);
    } catch (err) {
      // No private directory (TMPDIR not writable) or no shell: callers fall back to a b3sum of their own.
      helper = undefined;
      throw new HelperDown(`b3sum helper: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  return helper;
}

/**
 * A NativeHasher fed through a FIFO of the helper shell instead of a pipe to a
 * b3sum started from node. This process opens the FIFO read-write and
 * non-blocking (never waits for b3sum to open it, and the FIFO cannot be left
 * without a writer before b3sum opened it); b3sum sees the end when that one
 * descriptor is closed (digest), also when this process dies.
 */
export class FifoHasher implements AsyncHasher {
  #helper: B3Helper | undefined;
  #id = 0;
  #sock: Socket | undefined;
  #answer: Promise<string> | undefined;
  #opened: Promise<void> | undefined;
  #failure: Error | undefined;
  readonly #pending = new Set<(e: Error) => void>();

  /** Asks the helper for a FIFO and opens it; rejects when the helper cannot give one. */
  async start(): Promise<this> {
    const h = b3Helper();
    this.#helper = h;
    let made!: () => void;
    let madeFail!: (e: Error) => void;
    const madeP = new Promise<void>((res, rej) => {
      made = res;
      madeFail = rej;
    });
    let path = '';
    let opened!: () => void;
    let openFail!: (e: Error) => void;
    this.#opened = new Promise<void>((res, rej) => {
      opened = res;
      openFail = rej;
    });
    this.#opened.catch(() => undefined);
    this.#answer = new Promise<string>((resolve, reject) => {
      const r = h.request('S', (id) => join(h.dir, String(id)), {
        onMade: made,
        onOpen: opened,
        resolve,
        reject: (e) => {
          madeFail(e);
          openFail(e);
          this.#failure ??= e;
          for (const f of this.#pending) f(e);
          this.#pending.clear();
          this.#sock?.destroy();
          reject(e);
        },
      });
      this.#id = r.id;
      path = r.path;
    });
    this.#answer.catch(() => undefined);
    await madeP;
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    const sock = new Socket({ fd, readable: false, writable: true });
    sock.on('error', (e: Error) => {
      this.#failure ??= e;
      for (const f of this.#pending) f(e);
      this.#pending.clear();
    });
    this.#sock = sock;
    return this;
  }

  /** Resolves once the chunk is in the FIFO: the caller may reuse it. */
  update(chunk: Uint8Array): Promise<Uint8Array | undefined> {
    const sock = this.#sock;
    if (sock === undefined) return Promise.reject(new TypeError('FifoHasher: start() first'));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (chunk.byteLength === 0) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const onFail = (e: Error): void => reject(e);
      this.#pending.add(onFail);
      sock.write(chunk, (err) => {
        this.#pending.delete(onFail);
        if (err === null || err === undefined) resolve(chunk);
        else reject(err);
      });
    });
  }

  async digest(): Promise<string> {
    const sock = this.#sock;
    const answer = this.#answer;
    if (sock === undefined || answer === undefined) throw new TypeError('FifoHasher: start() first');
    if (this.#failure !== undefined) throw this.#failure;
    // Closing before b3sum's side opened the FIFO would drop what is still buffered in it.
    await this.#opened;
    await new Promise<void>((resolve) => sock.end(resolve));
    sock.destroy();
    this.#sock = undefined;
    return answer;
  }

  dispose(): void {
    this.#sock?.destroy();
    this.#sock = undefined;
    if (this.#helper !== undefined && this.#id !== 0) this.#helper.forget(this.#id);
  }
}

/** A b3sum for one stream: through the helper's FIFO when possible, else a b3sum of its own. */
export async function startStreamHasher(): Promise<AsyncHasher> {
  const fifo = new FifoHasher();
  try {
    return await fifo.start();
  } catch {
    fifo.dispose();
    return new NativeHasher().start();
  }
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
  const p = new Promise<string>((resolve, reject) => b3Helper().request('F', () => path, { resolve, reject })).catch((err: unknown) => {
    // The helper shell itself could not run (not b3sum failing on this file): a b3sum of its own.
    if (err instanceof HelperDown) return spawnHashFile(path, opts);
    throw err;
  });
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
