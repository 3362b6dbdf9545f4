/**
 * Small card files (under SMALL_FILE) read whole on the agent's small-file worker
 * (small-read-worker.ts), with synchronous calls: open, fstat, read, stat, close are five system
 * calls there, where readCardFile makes five round trips through libuv's thread pool (each a wake-up
 * of a pool thread and of this thread), and those queue behind the fsyncs of the files being
 * written. The checks are readCardFile's (readSmallCardFileSync).
 *
 * The same worker writes the small files (sharedSmallFileWriter: protocol's SmallWriter on another
 * lane of it), so reading costs no isolate of its own; the reads have their own lane (GroupWorker's
 * lanes), so they never wait for a write group's fsyncs. Reads asked for while a group is being read
 * form the next group (one message each way per group; the bytes are moved back, not copied). The
 * worker reads one file at a time: a card that is slow to read waits there, not on this thread. It
 * starts on first use (or at `warm()`) and is unref'd while idle; if it cannot start or dies, the
 * files of its groups are read by readCardFile here.
 */
import { GroupWorker, SmallWriter, type GroupReply, type GroupRequest } from '@studio321/protocol/durable';
import type { AgentCode } from '../errors.js';
import { AgentError } from '../errors.js';
import { readCardFile, readSmallCardFileSync, SMALL_FILE, type SourceExpectation } from './source-reader.js';

/** The agent's small-file worker (small-read-worker.ts) and its two lanes. */
const WORKER = new URL('./small-read-worker.js', import.meta.url);
export const READ_LANE = 'read';
const WRITE_LANE = 'write';

export interface SmallRead extends SourceExpectation {
  path: string;
}

/** A read's failure, to cross the thread: an AgentError's fields, or a system error's. */
export type SmallReadOutcome =
  | { ok: true; bytes: Uint8Array }
  | {
      ok: false;
      agent?: { code: AgentCode; message: string; retryable: boolean; detail?: Record<string, unknown> };
      system?: { message: string; code?: string; errno?: number; syscall?: string; path?: string };
    };

export type SmallReadRequest = GroupRequest<SmallRead>;
export type SmallReadReply = GroupReply<SmallReadOutcome>;

function outcomeOf(read: () => Uint8Array): SmallReadOutcome {
  try {
    return { ok: true, bytes: read() };
  } catch (err) {
    if (err instanceof AgentError)
      return {
        ok: false,
        agent: {
          code: err.code,
          message: err.message,
          retryable: err.retryable,
          ...(err.detail === undefined ? {} : { detail: err.detail }),
        },
      };
    const e = err as NodeJS.ErrnoException;
    return {
      ok: false,
      system: {
        message: e instanceof Error ? e.message : String(err),
        ...(typeof e.code === 'string' ? { code: e.code } : {}),
        ...(typeof e.errno === 'number' ? { errno: e.errno } : {}),
        ...(typeof e.syscall === 'string' ? { syscall: e.syscall } : {}),
        ...(typeof e.path === 'string' ? { path: e.path } : {}),
      },
    };
  }
}

/** The worker's answer to a group of reads (readSmallCardFileSync each), and the buffers to move with it. */
export function answerSmallReads(req: SmallReadRequest): { reply: SmallReadReply; moved: ArrayBuffer[] } {
  const outcomes = req.files.map((f) => outcomeOf(() => readSmallCardFileSync(f.path, f)));
  const moved = outcomes.flatMap((o) => (o.ok && o.bytes.byteLength > 0 ? [o.bytes.buffer as ArrayBuffer] : []));
  return { reply: { id: req.id, outcomes, lane: READ_LANE }, moved };
}

/** Groups sent before the first one's reply: the worker starts the next as soon as it answered one. */
const GROUPS_IN_FLIGHT = 2;

function errorOf(o: Extract<SmallReadOutcome, { ok: false }>): Error {
  if (o.agent !== undefined) {
    const a = o.agent;
    return new AgentError(a.code, a.message, {
      retryable: a.retryable,
      ...(a.detail === undefined ? {} : { detail: a.detail }),
    });
  }
  const s = o.system ?? { message: 'the small-file reader gave no outcome' };
  const { message, ...fields } = s;
  return Object.assign(new Error(message), fields);
}

/** The whole file through readCardFile (on this thread, through libuv's pool). */
async function readHere(path: string, expect: SourceExpectation, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of readCardFile(path, expect, signal === undefined ? {} : { signal })) chunks.push(c);
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
}

export class SmallCardReader {
  readonly #group: GroupWorker<SmallRead, SmallReadOutcome>;

  constructor() {
    this.#group = new GroupWorker({
      url: WORKER,
      lane: READ_LANE,
      groupsInFlight: GROUPS_IN_FLIGHT,
      fault: (message) => new Error(`the small-file reader stopped (${message})`),
    });
  }

  /** Starts the worker now (GroupWorker.warm): `field-agent ingest` boots it while it loads the CLI. */
  warm(): void {
    this.#group.warm();
  }

  /** Groups read and files in them (tests and the benches read these). */
  get groups(): number {
    return this.#group.groups;
  }

  get files(): number {
    return this.#group.files;
  }

  /**
   * The file's bytes, read whole (a buffer of its own), or readCardFile's error for it
   * (AGENT_SOURCE_CHANGED, ELOOP for a link, ENOENT…). Larger files: readCardFile's chunks.
   */
  async read(path: string, expect: SourceExpectation, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const signal = opts.signal;
    signal?.throwIfAborted();
    if (expect.size >= SMALL_FILE) return readHere(path, expect, signal);
    let o: SmallReadOutcome;
    try {
      o = await this.#group.run({ path, size: expect.size, mtimeMs: expect.mtimeMs });
    } catch {
      // The worker could not start or died: this file is read here instead.
      return readHere(path, expect, signal);
    }
    signal?.throwIfAborted();
    if (o.ok) return o.bytes;
    throw errorOf(o);
  }

  /** Stops the worker (tests); reads waiting or in flight are read here. */
  close(): Promise<void> {
    return this.#group.close(new Error('the small-file reader was closed'));
  }
}

let shared: SmallCardReader | undefined;
let writer: SmallWriter | undefined;

/** The process's small card file reader (the small-file worker's read lane). */
export function sharedSmallCardReader(): SmallCardReader {
  shared ??= new SmallCardReader();
  return shared;
}

/** The process's small-file writer on the same worker as the reader (its write lane): one isolate for both. */
export function sharedSmallFileWriter(): SmallWriter {
  writer ??= new SmallWriter({ worker: { url: WORKER, lane: WRITE_LANE } });
  return writer;
}
