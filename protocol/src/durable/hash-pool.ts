/**
 * BLAKE3 off the main thread: a small pool of worker threads, so the read-back
 * of a fresh copy is hashed on another core while the main thread hashes the
 * source. A hasher lives on one worker (its state is there); chunks are
 * transferred, and every update resolves when the worker has hashed it, which
 * bounds the memory in flight.
 *
 * The pool starts lazily on first use; its workers are unref'd while idle, so
 * they never keep a process alive. When workers cannot be started, hashing
 * falls back to the calling thread.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { createHasher, resolveHashEngine, type HashEngine } from '../hash.js';
import { detachable } from './direct-io.js';

export type HashRequest =
  | { t: 'update'; id: number; buf: Uint8Array; engine: 'wasm' | 'native' }
  | { t: 'digest'; id: number }
  | { t: 'drop'; id: number }
  /** A file lane: the worker reads the file itself (see FileLane). */
  | { t: 'lane-open'; id: number; path: string; engine: 'wasm' | 'native' }
  | { t: 'lane-direct'; id: number }
  | { t: 'lane-advance'; id: number; upTo: number }
  | { t: 'lane-finish'; id: number };
export type HashReply =
  | { t: 'ack'; id: number; buf: Uint8Array }
  | { t: 'digest'; id: number; hex: string }
  | { t: 'opened'; id: number }
  | { t: 'lane'; id: number; size: number; hex: string }
  | { t: 'error'; id: number; message: string; code?: string };

export interface AsyncHasher {
  /**
   * Hashes `chunk`. The caller must not use or change the chunk afterwards (it may be
   * transferred to a worker or kept). May resolve with a buffer the caller can reuse
   * (a pooled hasher gives the transferred buffer back, so the worker's heap does
   * not fill with garbage chunks).
   */
  update(chunk: Uint8Array): Promise<Uint8Array | undefined>;
  digest(): Promise<string>;
  /** Drops the state without a digest. Safe after digest(). */
  dispose(): void;
}

type Reply = string | Uint8Array | { size: number; blake3: string } | undefined;

interface Waiter {
  resolve: (v: Reply) => void;
  reject: (e: Error) => void;
}

class PoolWorker {
  readonly worker: Worker;
  readonly waiters = new Map<number, Waiter[]>();
  outstanding = 0;
  /** FileLanes open on this worker: their reads come from one-way messages, so no waiter shows them. */
  lanes = 0;
  dead: Error | undefined;

  constructor(url: URL) {
    // Plain JS worker: do not inherit loaders/hooks (test runners, coverage) from the parent.
    this.worker = new Worker(url, { execArgv: [] });
    this.worker.on('message', (m: HashReply) => {
      const q = this.waiters.get(m.id);
      const w = q?.shift();
      if (q !== undefined && q.length === 0) this.waiters.delete(m.id);
      if (w === undefined) return;
      this.#done();
      if (m.t === 'error')
        w.reject(Object.assign(new Error(`hash worker: ${m.message}`), m.code === undefined ? {} : { code: m.code }));
      else if (m.t === 'lane') w.resolve({ size: m.size, blake3: m.hex });
      else if (m.t === 'opened') w.resolve(undefined);
      else w.resolve(m.t === 'digest' ? m.hex : m.buf);
    });
    const fail = (err: Error): void => {
      this.dead = err;
      for (const q of this.waiters.values()) for (const w of q) w.reject(err);
      this.waiters.clear();
      this.outstanding = 0;
      this.worker.unref();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`hash worker exited (code ${code})`)));
    // After the listeners: adding a 'message' listener refs the worker again.
    this.worker.unref();
  }

  #done(): void {
    this.outstanding--;
    if (this.outstanding === 0) this.worker.unref();
  }

  request(m: HashRequest, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      let q = this.waiters.get(m.id);
      if (q === undefined) this.waiters.set(m.id, (q = []));
      q.push({ resolve, reject });
      if (this.outstanding++ === 0) this.worker.ref(); // keep the process alive while a reply is due
      this.worker.postMessage(m, transfer);
    });
  }

  post(m: HashRequest): void {
    if (this.dead === undefined) this.worker.postMessage(m);
  }
}

let nextId = 1;

class PooledHasher implements AsyncHasher {
  readonly #w: PoolWorker;
  readonly #id = nextId++;
  readonly #engine: 'wasm' | 'native';
  #open = true;

  constructor(w: PoolWorker, engine: 'wasm' | 'native') {
    this.#w = w;
    this.#engine = engine;
  }

  async update(chunk: Uint8Array): Promise<Uint8Array | undefined> {
    if (!this.#open) throw new TypeError('AsyncHasher.update() after digest() or dispose()');
    if (chunk.byteLength === 0) return undefined;
    // Transfer only a buffer that is exactly this chunk; otherwise copy it.
    const own = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && detachable(chunk.buffer);
    const buf = own ? chunk : Uint8Array.from(chunk);
    const back = await this.#w.request({ t: 'update', id: this.#id, buf, engine: this.#engine }, [
      buf.buffer as ArrayBuffer,
    ]);
    return back instanceof Uint8Array ? back : undefined;
  }

  async digest(): Promise<string> {
    if (!this.#open) throw new TypeError('AsyncHasher.digest() twice or after dispose()');
    this.#open = false;
    const hex = await this.#w.request({ t: 'digest', id: this.#id });
    if (typeof hex !== 'string') throw new Error('hash worker returned no digest');
    return hex;
  }

  dispose(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#w.post({ t: 'drop', id: this.#id });
  }
}

/**
 * A read-back lane run by a worker that reads the file itself: the calling
 * thread sends one small message per durable mark (`advance`) and one at the
 * end (`finish`), instead of reading every chunk and posting it. Same contract
 * as ReadBackLane (read-back-lane.ts): only bytes below the last `advance` are
 * read until `finish`, which reads to end of file and answers size and BLAKE3.
 */
export class FileLane {
  readonly #w: PoolWorker;
  readonly #id = nextId++;
  readonly #path: string;
  readonly #engine: 'wasm' | 'native';
  readonly #signal: AbortSignal | undefined;
  #open = false;
  #done = false;

  constructor(w: PoolWorker, path: string, engine: 'wasm' | 'native', signal: AbortSignal | undefined) {
    this.#w = w;
    this.#path = path;
    this.#engine = engine;
    this.#signal = signal;
  }

  async open(): Promise<void> {
    this.#w.lanes++;
    try {
      await this.#w.request({ t: 'lane-open', id: this.#id, path: this.#path, engine: this.#engine });
    } catch (err) {
      this.#w.lanes--;
      throw err;
    }
    this.#open = true;
  }

  advance(upTo: number): void {
    if (this.#open && !this.#done && upTo > 0)
      this.#w.post({ t: 'lane-advance', id: this.#id, upTo: Number.isFinite(upTo) ? upTo : Number.MAX_SAFE_INTEGER });
  }

  /** Messages are in order: the worker reads direct from the next advance or finish on. */
  readDirect(): void {
    if (this.#open && !this.#done) this.#w.post({ t: 'lane-direct', id: this.#id });
  }

  async finish(): Promise<{ size: number; blake3: string }> {
    if (!this.#open || this.#done) throw new TypeError('FileLane.finish(): not open, or finished');
    this.#done = true;
    // An abort while the worker reads is raced by the caller (durableWrite's raceAbort).
    this.#signal?.throwIfAborted();
    return (await this.#w.request({ t: 'lane-finish', id: this.#id })) as { size: number; blake3: string };
  }

  /** Stops and releases the worker's handle and state; never throws. */
  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    this.#done = true;
    this.#w.lanes--;
    this.#w.post({ t: 'drop', id: this.#id });
  }
}

/** Same interface, hashing on the calling thread (fallback, or when asked for). */
export function createLocalAsyncHasher(engine?: HashEngine): AsyncHasher {
  const h = createHasher(engine);
  return {
    update: async (chunk) => {
      h.update(chunk);
      return chunk; // hashed before update() returns: the caller may reuse it
    },
    digest: async () => h.digest(),
    dispose: () => h.dispose(),
  };
}

export class HashPool {
  readonly size: number;
  #workers: PoolWorker[] = [];
  #broken = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new TypeError('HashPool size must be a positive integer');
    this.size = size;
  }

  /**
   * Starts the workers now (a worker takes ≈ 60 ms to boot and load BLAKE3 here), so the
   * first read-back does not wait for it. Idle workers never keep the process alive.
   */
  warm(): void {
    for (let i = 0; i < this.size && this.#workers.length < this.size && !this.#broken; i++) this.#pick();
  }

  /** A hasher on the least busy worker (workers start on first use). */
  createHasher(engine?: HashEngine): AsyncHasher {
    const w = this.#pick();
    return w === undefined ? createLocalAsyncHasher(engine) : new PooledHasher(w, resolveHashEngine(engine));
  }

  /** The least busy worker (workers start on first use); undefined when none can start here. */
  #pick(): PoolWorker | undefined {
    if (this.#broken) return undefined;
    this.#workers = this.#workers.filter((w) => w.dead === undefined);
    try {
      if (this.#workers.length < this.size)
        this.#workers.push(new PoolWorker(new URL('./hash-worker.js', import.meta.url)));
    } catch {
      this.#broken = true; // cannot start workers here: hash on this thread
      return undefined;
    }
    const load = (w: PoolWorker): number => w.waiters.size + w.lanes;
    let best = this.#workers[0]!;
    for (const w of this.#workers) if (load(w) < load(best)) best = w;
    return best;
  }

  /** A FileLane on the least busy worker; undefined when workers cannot run here. */
  createFileLane(path: string, engine: HashEngine | undefined, signal: AbortSignal | undefined): FileLane | undefined {
    const w = this.#pick();
    return w === undefined ? undefined : new FileLane(w, path, resolveHashEngine(engine), signal);
  }

  /** Stops the workers (tests, orderly shutdown). Pending hashes reject. */
  async close(): Promise<void> {
    const ws = this.#workers;
    this.#workers = [];
    await Promise.all(ws.map((w) => w.worker.terminate()));
  }
}

let shared: HashPool | undefined;

/** The process-wide pool: one worker per core but one, at least one, at most four. */
export function sharedHashPool(): HashPool {
  shared ??= new HashPool(Math.max(1, Math.min(4, availableParallelism() - 1)));
  return shared;
}
