/**
 * LiveChunks: the chunks of one file as they arrive on the link, handed to a
 * commit's durableWrite as its source while the transfer is still running
 * (docs/design.md "Studio", streamed commit). Bounded: `push` waits while more
 * than `maxBytes` are queued and not yet pulled, so the session's frame queue
 * (itself bounded by the window) absorbs the difference.
 *
 * Producer side: push(chunk)* then end() (FileEnd checked) or fail(err) (cut,
 * size mismatch). Consumer side: one async iterator (durableWrite); its
 * return() (the write failed or was aborted) or abandon() (the commit failed
 * before it started reading) makes further pushes no-ops.
 *
 * A chunk from the receive path's pool (chunk-receive.ts) is held from `push`
 * until the consumer asks for the next one (durableWrite has written it by then)
 * or the chunk is dropped, so its buffer is not reused while the write reads it.
 *
 * With `batchBytes`, each pull takes every chunk queued by then, up to that many bytes (at least
 * one), as one run (an array: durableWrite writes it with one pwritev, direct-io.ts `writeParts`);
 * all of them are held until the next pull.
 */

import { holdChunk } from './chunk-receive.js';

export class LiveChunks implements AsyncIterable<Uint8Array | readonly Uint8Array[]> {
  readonly maxBytes: number;
  /** A pull takes up to this many queued bytes as one run; 0: one chunk a pull. */
  readonly batchBytes: number;
  #queue: Uint8Array[] = [];
  /** The holds of the queued chunks, in the same order. */
  #holds: Array<() => void> = [];
  /** The holds of the chunks the consumer has now. */
  #lent: Array<() => void> = [];
  #queued = 0;
  #ended = false;
  #error: Error | undefined;
  #gone = false;
  #iterated = false;
  #pullWaiter: (() => void) | undefined;
  #roomWaiters: Array<() => void> = [];

  constructor(maxBytes: number, batchBytes = 0) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0)
      throw new TypeError('LiveChunks: maxBytes must be a positive integer');
    if (!Number.isSafeInteger(batchBytes) || batchBytes < 0)
      throw new TypeError('LiveChunks: batchBytes must be a non-negative integer');
    this.maxBytes = maxBytes;
    this.batchBytes = batchBytes;
  }

  /** True once the consumer stopped reading (its write failed, was aborted, or never started). */
  get consumerGone(): boolean {
    return this.#gone;
  }

  /** Queue `chunk` (not copied: it must not be modified afterwards); resolves when there is room again. */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.#ended || this.#error !== undefined) throw new TypeError('LiveChunks.push() after end() or fail()');
    if (this.#gone || chunk.byteLength === 0) return;
    this.#queue.push(chunk);
    this.#holds.push(holdChunk(chunk));
    this.#queued += chunk.byteLength;
    this.#wakePull();
    while (this.#queued > this.maxBytes && !this.#gone) {
      await new Promise<void>((r) => this.#roomWaiters.push(r));
    }
  }

  /** Every chunk was pushed: the consumer sees the end after the queued ones. */
  end(): void {
    if (this.#error !== undefined) return;
    this.#ended = true;
    this.#wakePull();
  }

  /** The stream will not complete: the consumer's next pull throws `err` (its write removes its temps). */
  fail(err: Error): void {
    if (this.#ended || this.#error !== undefined) return;
    this.#error = err;
    this.#dropQueued();
    this.#wakePull();
  }

  /** The consumer will never read (the commit failed before reading): pushes become no-ops. */
  abandon(): void {
    this.#gone = true;
    this.#dropQueued();
    this.#returnLent();
    for (const r of this.#roomWaiters.splice(0)) r();
  }

  #dropQueued(): void {
    for (const release of this.#holds.splice(0)) release();
    this.#queue = [];
    this.#queued = 0;
  }

  #returnLent(): void {
    if (this.#lent.length === 0) return;
    const lent = this.#lent;
    this.#lent = [];
    for (const release of lent) release();
  }

  /** Takes the next chunk off the queue, its hold lent to the consumer. */
  #take(): Uint8Array {
    const chunk = this.#queue.shift() as Uint8Array;
    this.#lent.push(this.#holds.shift() as () => void);
    this.#queued -= chunk.byteLength;
    return chunk;
  }

  #wakePull(): void {
    const w = this.#pullWaiter;
    this.#pullWaiter = undefined;
    w?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array | readonly Uint8Array[]> {
    if (this.#iterated) throw new TypeError('LiveChunks can be iterated once');
    this.#iterated = true;
    return {
      next: async (): Promise<IteratorResult<Uint8Array | readonly Uint8Array[]>> => {
        this.#returnLent(); // asked for the next one: the consumer is done with the last
        for (;;) {
          if (this.#error !== undefined) throw this.#error;
          if (this.#queue.length > 0) {
            const first = this.#take();
            let value: Uint8Array | Uint8Array[] = first;
            if (this.batchBytes > 0) {
              const run = [first];
              let bytes = first.byteLength;
              for (let next = this.#queue[0]; next !== undefined; next = this.#queue[0]) {
                if (bytes + next.byteLength > this.batchBytes) break;
                run.push(this.#take());
                bytes += next.byteLength;
              }
              value = run;
            }
            if (this.#queued <= this.maxBytes) for (const r of this.#roomWaiters.splice(0)) r();
            return { done: false, value };
          }
          if (this.#ended) return { done: true, value: undefined };
          if (this.#gone) return { done: true, value: undefined };
          await new Promise<void>((r) => {
            this.#pullWaiter = r;
          });
        }
      },
      return: async (): Promise<IteratorResult<Uint8Array>> => {
        this.abandon();
        return { done: true, value: undefined };
      },
    };
  }
}
