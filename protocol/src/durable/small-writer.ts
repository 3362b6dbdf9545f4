/**
 * Small files written in groups on one worker thread (small-write-worker.ts): each file whole in
 * memory, its durable write — temp, write, fsync, read back and hash, link under its final name,
 * never replacing — run there over synchronous file-system calls (sync-fs.ts), then ONE fsync per
 * folder for the group. The same durableWrite as every other archive write; what changes is
 * where it runs: one message per group instead of a hash-worker round trip and a thread-pool
 * round trip per call of every file. The field agent's offload uses it for files it read whole
 * (agent/src/offload/offloader.ts).
 *
 * Files asked for while a group is being written form the next group (a lone file waits for
 * nothing), at most GROUPS_IN_FLIGHT at a time. Each file's outcome is its own: a taken name, a damaged
 * read-back or a full disk fails that file only (as a DurableWriteError with the code the write
 * gave), and it leaves no temp and no final name of its own (durableWrite's clean-up). A file
 * counts once its caller recorded it: until then a final name may exist that nothing records,
 * as after any durable write.
 *
 * The worker starts on first use and is unref'd while idle; if it cannot start, groups are
 * written on the calling thread (node:fs/promises); if it dies, the files of its group fail
 * (retryable) and the next group starts a new one.
 */
import { DurableWriteError } from '../errors.js';
import { durableWrite, fsyncTargetDir, type DurableTarget, type DurableWriteResult } from './durable-write.js';
import { abortedError, durableError, DURABLE_CODES, isAborted } from './errors.js';
import { nodeFs, type DurableFs } from './fs-facade.js';
import { GroupWorker, type GroupReply, type GroupRequest } from './group-worker.js';
import { syncFs } from './sync-fs.js';

/** One file: its bytes, the targets (as durableWrite's) and the options that cross a thread. */
export interface SmallWrite {
  bytes: Uint8Array;
  targets: DurableTarget[];
  expected?: { size: number; blake3: string };
  /** mkdir -p the target folders (default true). */
  createDirs?: boolean;
  xxh3?: boolean;
  mode?: number;
  /**
   * Default true: the folders of the group's written files are fsync'd once, before their
   * outcomes come back. False: the caller does, before it counts the copy (a group commit,
   * group-commit.ts, as durableWrite's `fsyncDir: false`).
   */
  fsyncDir?: boolean;
}

/** A DurableWriteError's fields, to cross the thread (errno: its cause's system code). */
export interface SmallWriteError {
  code: string;
  message: string;
  retryable: boolean;
  detail?: Record<string, unknown>;
  errno?: string;
}

export type SmallWriteOutcome = { ok: true; result: DurableWriteResult } | { ok: false; error: SmallWriteError };

export type SmallGroupRequest = GroupRequest<SmallWrite>;
export type SmallGroupReply = GroupReply<SmallWriteOutcome>;

/** Files of a group written side by side: their fsyncs overlap in libuv's pool, and the read-back buffers stay few. */
const FILES_AT_ONCE = 8;

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  if (bytes.byteLength > 0) yield bytes;
}

function errorOf(err: unknown): SmallWriteError {
  if (err instanceof DurableWriteError) {
    const errno = (err.cause as { code?: unknown } | undefined)?.code;
    return {
      code: err.code,
      message: err.message,
      retryable: err.retryable,
      ...(err.detail === undefined ? {} : { detail: err.detail }),
      ...(typeof errno === 'string' ? { errno } : {}),
    };
  }
  // A TypeError is a programmer's mistake; anything else unexpected is an I/O failure of the write.
  const e = err as Error & { code?: unknown };
  return {
    code: DURABLE_CODES.ioError,
    message: `Writing a small file failed: ${e instanceof Error ? e.message : String(err)}`,
    retryable: !(err instanceof TypeError),
    ...(typeof e.code === 'string' ? { errno: e.code } : {}),
  };
}

/** The error a SmallWriteError stands for, on the caller's side. */
export function smallWriteError(e: SmallWriteError): DurableWriteError {
  const cause = e.errno === undefined ? undefined : Object.assign(new Error(e.errno), { code: e.errno });
  return new DurableWriteError(e.code, e.message, {
    retryable: e.retryable,
    detail: { ...(e.detail ?? {}) },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Writes one group: every file's durable write (FILES_AT_ONCE side by side, no directory fsync),
 * then each folder a written file was linked in fsync'd once (but for files with `fsyncDir:
 * false`); a folder that cannot be fsync'd fails the files in it. Runs in the worker over syncFs, or on the calling thread over `fs`.
 */
export async function writeSmallGroup(files: readonly SmallWrite[], fs: DurableFs): Promise<SmallWriteOutcome[]> {
  const outcomes: SmallWriteOutcome[] = new Array(files.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < files.length) {
      const i = next++;
      const f = files[i] as SmallWrite;
      try {
        const result = await durableWrite(once(f.bytes), {
          targets: f.targets,
          ...(f.expected === undefined ? {} : { expected: f.expected }),
          ...(f.mode === undefined ? {} : { mode: f.mode }),
          createDirs: f.createDirs ?? true,
          xxh3: f.xxh3 === true,
          hashPool: false, // this thread hashes
          fsyncDir: false, // once per folder below
          fs,
        });
        outcomes[i] = { ok: true, result };
      } catch (err) {
        outcomes[i] = { ok: false, error: errorOf(err) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILES_AT_ONCE, files.length) }, lane));
  const dirs = new Set<string>();
  outcomes.forEach((o, i) => {
    const f = files[i] as SmallWrite;
    if (o.ok && f.fsyncDir !== false) for (const t of f.targets) dirs.add(t.dir);
  });
  const badDir = new Map<string, SmallWriteError>();
  await Promise.all(
    [...dirs].map((dir) =>
      fsyncTargetDir(dir, fs).catch((err: unknown) => {
        badDir.set(dir, errorOf(err));
      }),
    ),
  );
  if (badDir.size === 0) return outcomes;
  return outcomes.map((o, i) => {
    const f = files[i] as SmallWrite;
    const bad = f.fsyncDir === false ? undefined : f.targets.find((t) => badDir.has(t.dir));
    return o.ok && bad !== undefined ? { ok: false, error: badDir.get(bad.dir) as SmallWriteError } : o;
  });
}

/**
 * Groups sent to the worker before the first one's reply: while one group waits on its folders'
 * fsyncs, the next one's files are being written.
 */
const GROUPS_IN_FLIGHT = 2;

/**
 * A worker's answer to one group (small-write-worker.ts, and a worker that serves other lanes too):
 * every file's outcome, or the fault that stopped the group.
 */
export async function answerSmallGroup(req: SmallGroupRequest): Promise<SmallGroupReply> {
  const lane = req.lane === undefined ? {} : { lane: req.lane };
  try {
    return { id: req.id, outcomes: await writeSmallGroup(req.files, syncFs), ...lane };
  } catch (err) {
    return { id: req.id, fault: err instanceof Error ? err.message : String(err), ...lane };
  }
}

export class SmallWriter {
  readonly #group: GroupWorker<SmallWrite, SmallWriteOutcome>;

  /**
   * `fs`: groups are written on this thread over this facade (no worker; tests inject faults here).
   * `worker`: another worker module that answers this writer's groups (answerSmallGroup) on a lane
   * of its own, beside other work (GroupWorker's lanes); default small-write-worker.js.
   */
  constructor(opts: { fs?: DurableFs; worker?: { url: URL; lane: string } } = {}) {
    const fs = opts.fs;
    this.#group = new GroupWorker({
      url: opts.worker?.url ?? new URL('./small-write-worker.js', import.meta.url),
      ...(opts.worker === undefined ? {} : { lane: opts.worker.lane }),
      groupsInFlight: GROUPS_IN_FLIGHT,
      fault: (message) =>
        durableError(DURABLE_CODES.ioError, `The small-file writer stopped (${message}): the write will be retried.`, {
          retryable: true,
          detail: { op: 'small write' },
        }),
      aborted: abortedError,
      // No worker here: the same writes on this thread, through libuv's pool.
      fallback: (files) => writeSmallGroup(files, nodeFs),
      ...(fs === undefined ? {} : { inThread: (files: SmallWrite[]) => writeSmallGroup(files, fs) }),
    });
  }

  /** Groups written and files in them (tests and the benches read these). */
  get groups(): number {
    return this.#group.groups;
  }

  get files(): number {
    return this.#group.files;
  }

  /** The file's durable write (see the header); rejects with a DurableWriteError. */
  async write(file: SmallWrite, opts: { signal?: AbortSignal } = {}): Promise<DurableWriteResult> {
    if (isAborted(opts.signal)) throw abortedError(opts.signal);
    const o = await this.#group.run(file, opts.signal === undefined ? {} : { signal: opts.signal });
    if (o.ok) return o.result;
    throw smallWriteError(o.error);
  }

  /** Stops the worker (tests, orderly shutdown); files waiting fail as aborted. */
  close(): Promise<void> {
    return this.#group.close(abortedError(undefined));
  }
}

let shared: SmallWriter | undefined;

/** The process's small-file writer (one worker). */
export function sharedSmallWriter(): SmallWriter {
  shared ??= new SmallWriter();
  return shared;
}
