/**
 * StagedRead: a staged file read back behind its fsyncs while it is still arriving, the source of
 * a streamed commit's RAID copy and, by the same read, the mirror copy's read-back (docs/design.md
 * "Write order of a commit", streamed commit).
 *
 * Each byte is read once, from the disk (O_DIRECT where the file system allows it), only after an
 * fdatasync covered it (`advance`, called by StagedFile.sync), hashed here in order, and then handed
 * to the RAID durableWrite as part of a run of up to WRITE_RUN_BYTES (written there with one
 * pwritev). So the RAID copy follows the mirror copy at the disk's pace instead of holding the link
 * (the chunks are not kept in memory for it), and the mirror copy needs no second read: four passes
 * over the disk for two verified copies (two writes, two read-backs), as before.
 *
 * Reads stay below the durable offset rounded down to whole blocks (the last block of the file
 * once it is all durable), so an O_DIRECT read never reaches bytes not yet fsynced. While the file
 * is still arriving, a run is read only when the RAID write asks for it (read, then write: the
 * staged writes that the agent's Acks wait for get the disk first; reading ahead then kept the RAID
 * copy level with the link and took the disk from them, README "Session 23"); after `end()` one
 * run is read ahead while the consumer writes the last. A run's buffers are lent until the
 * consumer asks for the next (durableWrite has written them by then). The stream ends only after
 * `end()` (its FileEnd checked and every byte fsynced): until then a complete file is not reported
 * done. `fail(err)` makes the next pull throw (a cut; durableWrite then removes its temps). `finish()` reads whatever the consumer left unread (a RAID write that failed part way)
 * and returns the size and BLAKE3 of what the staged file holds.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createHasher, MAX_CHUNK_BYTES, resolveHashEngine } from '@studio321/protocol';
import { DIRECT_ALIGN, openDirect } from '@studio321/protocol/durable';

/** A buffer of MAX_CHUNK_BYTES to read into (page-aligned for O_DIRECT), and how to give it back. */
export interface ReadBuffer {
  data: Buffer;
  release: () => void;
}

/** Where a StagedRead takes its buffers (studiod: the link's chunk pool, chunk-receive.ts). */
export type TakeReadBuffer = () => ReadBuffer;

/** One read: the parts (views of lent buffers) and the buffers' releases. */
interface Run {
  parts: Buffer[];
  releases: Array<() => void>;
}

/**
 * Staged files read back at once, all commits together. A reader holds its turn while it reads,
 * and while a run it read is lent to its RAID write or waits as the next one (at most two runs of
 * buffers each); one that waits for bytes not yet fsynced gives it back (those bytes may come from
 * a link that is paused until a commit behind this turn ends: the receive budget). A file whose
 * RAID copy lags waits for a turn, in the order they asked (its bytes are on the mirror disk
 * meanwhile, not in memory), so a burst of fully received files does not become dozens of reads and
 * writes side by side on one disk.
 */
export const STAGED_READS_AT_ONCE = 2;

/** First come, first served turns to read (STAGED_READS_AT_ONCE). */
class Turns {
  #free: number;
  readonly #queue: Array<() => void> = [];

  constructor(n: number) {
    this.#free = n;
  }

  /** Resolves true with a turn, or false once `cancel` ran first (then no turn is held). */
  take(): { granted: Promise<boolean>; cancel: () => void } {
    if (this.#free > 0) {
      this.#free--;
      return { granted: Promise.resolve(true), cancel: () => undefined };
    }
    let settle!: (granted: boolean) => void;
    const granted = new Promise<boolean>((r) => {
      settle = r;
    });
    const entry = (): void => settle(true);
    this.#queue.push(entry);
    const cancel = (): void => {
      const i = this.#queue.indexOf(entry);
      if (i < 0) return; // granted already
      this.#queue.splice(i, 1);
      settle(false);
    };
    return { granted, cancel };
  }

  give(): void {
    const next = this.#queue.shift();
    if (next !== undefined) next();
    else this.#free++;
  }
}

const turns = new Turns(STAGED_READS_AT_ONCE);

function releaseRun(run: Run | undefined): void {
  if (run === undefined) return;
  for (const r of run.releases.splice(0)) r();
}

export class StagedRead implements AsyncIterable<readonly Uint8Array[]> {
  readonly path: string;
  readonly size: number;
  readonly #runBytes: number;
  readonly #take: TakeReadBuffer;
  readonly #ioError: (err: unknown) => Error;
  readonly #hasher = createHasher(resolveHashEngine());
  #fh: FileHandle | undefined;
  #opening: Promise<FileHandle> | undefined;
  /** Bytes fsynced (what may be read). */
  #durable: number;
  /** Bytes read and hashed. */
  #read = 0;
  #ended = false;
  #error: Error | undefined;
  /** The consumer stopped (returned, or never started and the commit failed). */
  #gone = false;
  #iterated = false;
  #waiters: Array<() => void> = [];
  /** The run read ahead (or being read), not yet lent. */
  #ahead: Promise<Run | undefined> | undefined;
  /** The read in flight, if any (one at a time: each starts where the last ended). */
  #reading: Promise<unknown> = Promise.resolve();
  /** The run the consumer has now. */
  #lent: Run | undefined;
  #digest: string | undefined;
  #closed = false;
  /** Its turn to read (Turns): asked for by a read, given back after the last, or when no read is to come. */
  #turn: 'none' | 'asked' | 'held' = 'none';
  /** Stops waiting for a turn (fail, abandon, close). */
  #cancelTurn: (() => void) | undefined;

  constructor(
    path: string,
    size: number,
    durable: number,
    take: TakeReadBuffer,
    ioError: (err: unknown) => Error,
    runBytes: number,
  ) {
    if (!Number.isSafeInteger(runBytes) || runBytes < MAX_CHUNK_BYTES || runBytes % MAX_CHUNK_BYTES !== 0)
      throw new TypeError('StagedRead: runBytes must be a positive multiple of MAX_CHUNK_BYTES');
    this.path = path;
    this.size = size;
    this.#durable = durable;
    this.#take = take;
    this.#ioError = ioError;
    this.#runBytes = runBytes;
  }

  /** Bytes read back and hashed so far. */
  get read(): number {
    return this.#read;
  }

  /** The staged file is durable up to `durable` (StagedFile.sync). */
  advance(durable: number): void {
    if (durable <= this.#durable) return;
    this.#durable = durable;
    this.#wake();
  }

  /** FileEnd came, checked, and every byte is fsynced: the stream may end after the last one. */
  end(): void {
    if (this.#error !== undefined) return;
    this.#ended = true;
    this.#wake();
  }

  /** The file will not complete (a cut, a bad FileEnd, studiod stopping). */
  fail(err: Error): void {
    if (this.#ended || this.#error !== undefined) return;
    this.#error = err;
    this.#wake();
    this.#cancelTurn?.();
    this.#dropAhead();
    void this.#reading.then(() => this.#giveTurn());
  }

  /**
   * The consumer will not read on (its write failed or the commit ended before it started): its
   * buffers go back, and so does its turn (`finish` asks again if it must read the rest).
   */
  abandon(): void {
    this.#gone = true;
    releaseRun(this.#lent);
    this.#lent = undefined;
    this.#dropAhead();
    this.#wake();
    this.#cancelTurn?.();
    void this.#reading.then(() => {
      if (this.#gone) this.#giveTurn();
    });
  }

  #dropAhead(): void {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    void ahead?.then(releaseRun, () => undefined);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  #wait(): Promise<void> {
    return new Promise<void>((r) => this.#waiters.push(r));
  }

  /** How far a read may go now: whole blocks below the durable offset, or the file's end once all of it is durable. */
  #limit(): number {
    const d = Math.min(this.#durable, this.size);
    return d === this.size ? d : d - (d % DIRECT_ALIGN);
  }

  async #handle(): Promise<FileHandle> {
    if (this.#fh !== undefined) return this.#fh;
    this.#opening ??= (async () => (await openDirect(this.path, false)) ?? (await open(this.path, 'r')))();
    this.#fh = await this.#opening;
    return this.#fh;
  }

  /** Reads and hashes the next run once some of it is durable; undefined at the file's end. */
  #readRun(lend: boolean): Promise<Run | undefined> {
    const p = this.#reading.then(() => this.#readNext(lend));
    this.#reading = p.catch(() => undefined);
    return p;
  }

  async #readNext(lend: boolean): Promise<Run | undefined> {
    while (this.#read < this.size && this.#limit() <= this.#read) {
      if (this.#error !== undefined) throw this.#error;
      if (lend && this.#gone) return undefined;
      // Waiting for bytes holds no turn: they may come from a link that waits for this very turn.
      this.#giveTurn();
      await this.#wait();
    }
    if (this.#error !== undefined) throw this.#error;
    if (this.#read >= this.size) return undefined;
    if (this.#turn === 'none') {
      if (this.#closed) throw new TypeError('StagedRead read after close');
      this.#turn = 'asked';
      const t = turns.take();
      this.#cancelTurn = t.cancel;
      const granted = await t.granted;
      this.#cancelTurn = undefined;
      this.#turn = granted ? 'held' : 'none';
    }
    if (this.#error !== undefined) throw this.#error;
    if (lend && this.#gone) return undefined;
    if (this.#turn !== 'held') throw new TypeError('StagedRead: no turn to read');
    const from = this.#read;
    const bytes = Math.min(this.#runBytes, this.#limit() - from);
    const run: Run = { parts: [], releases: [] };
    const iov: Buffer[] = [];
    try {
      for (let left = bytes; left > 0; left -= MAX_CHUNK_BYTES) {
        const b = this.#take();
        run.releases.push(b.release);
        const n = Math.min(left, MAX_CHUNK_BYTES);
        // O_DIRECT reads whole blocks: the file's unaligned end is asked for rounded up and comes back short.
        iov.push(b.data.subarray(0, Math.min(b.data.byteLength, Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN)));
        run.parts.push(b.data.subarray(0, n));
      }
      const fh = await this.#handle();
      let got = 0;
      while (got < bytes) {
        // A short read mid-run (rare): the rest is read on from where it stopped.
        const { bytesRead } =
          got === 0 ? await fh.readv(iov, from) : await fh.read(this.#rest(run, got), 0, undefined, from + got);
        if (bytesRead === 0) throw Object.assign(new Error(`${this.path} ends at ${from + got}`), { code: 'EIO' });
        got += Math.min(bytesRead, bytes - got);
      }
    } catch (err) {
      releaseRun(run);
      if (err === this.#error) throw err;
      throw this.#ioError(err);
    }
    for (const p of run.parts) this.#hasher.update(p);
    this.#read = from + bytes;
    if (this.#read === this.size) this.#giveTurn();
    if (!lend) releaseRun(run);
    return run;
  }

  /** The part of a run's buffers from byte `at` on, as one view when it lies in one buffer (short reads). */
  #rest(run: Run, at: number): Buffer {
    const i = Math.floor(at / MAX_CHUNK_BYTES);
    const p = run.parts[i] as Buffer;
    return p.subarray(at - i * MAX_CHUNK_BYTES);
  }

  [Symbol.asyncIterator](): AsyncIterator<readonly Uint8Array[]> {
    if (this.#iterated) throw new TypeError('StagedRead can be iterated once');
    this.#iterated = true;
    return {
      next: async (): Promise<IteratorResult<readonly Uint8Array[]>> => {
        releaseRun(this.#lent); // asked for the next one: the consumer is done with the last
        this.#lent = undefined;
        if (this.#gone) return { done: true, value: undefined };
        const run = await (this.#ahead ?? this.#readRun(true));
        this.#ahead = undefined;
        if (run === undefined) {
          while (!this.#ended && !this.#gone) {
            if (this.#error !== undefined) throw this.#error;
            await this.#wait();
          }
          return { done: true, value: undefined };
        }
        if (this.#gone) {
          releaseRun(run);
          return { done: true, value: undefined };
        }
        this.#lent = run;
        // Once the file is all here, the next run is read while this one is written (before, the
        // staged writes the Acks wait for come first: a run is read when the RAID write asks).
        if (this.#read < this.size && this.#ended) {
          const ahead = this.#readRun(true);
          ahead.catch(() => undefined); // seen by the next pull
          this.#ahead = ahead;
        }
        return { done: false, value: run.parts };
      },
      return: async (): Promise<IteratorResult<readonly Uint8Array[]>> => {
        this.abandon();
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * The size and BLAKE3 of what the staged file holds (after `end()`): the rest is read here when
   * the consumer stopped before the end. Once.
   */
  async finish(): Promise<{ size: number; blake3: string }> {
    if (this.#digest === undefined) {
      if (!this.#ended && this.#error === undefined) throw new TypeError('StagedRead.finish() before end() or fail()');
      if (this.#error !== undefined) throw this.#error;
      if (!this.#gone && this.#read < this.size) this.abandon(); // the consumer stopped part way
      await this.#reading;
      while (this.#read < this.size) await this.#readRun(false);
      this.#giveTurn();
      this.#digest = this.#hasher.digest();
    }
    return { size: this.#read, blake3: this.#digest };
  }

  #giveTurn(): void {
    if (this.#turn === 'held') turns.give();
    if (this.#turn !== 'asked') this.#turn = 'none';
  }

  /** Closes the descriptor (after the last read), gives back its turn; the hasher is let go. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.abandon();
    await this.#reading;
    this.#giveTurn();
    if (this.#digest === undefined) this.#hasher.dispose();
    const fh = this.#fh ?? (await this.#opening?.catch(() => undefined));
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
  }
}
