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
 */

import { holdChunk } from './chunk-receive.js';

export class LiveChunks implements AsyncIterable<Uint8Array> {
  readonly maxBytes: number;
  #queue: Uint8Array[] = [];
  /** The holds of the queued chunks, in the same order. */
  #holds: Array<() => void> = [];
  /** The hold of the chunk the consumer has now. */
  #lent: (() => void) | undefined;
  #queued = 0;
  #ended = false;
  #error: Error | undefined;
  #gone = false;
  #iterated = false;
  #pullWaiter: (() => void) | undefined;
  #roomWaiters: Array<() => void> = [];

  constructor(maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0)
      throw new TypeError('LiveChunks: maxBytes must be a positive integer');
    this.maxBytes = maxBytes;
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
    const release = this.#lent;
    this.#lent = undefined;
    release?.();
  }

  #wakePull(): void {
    const w = this.#pullWaiter;
    this.#pullWaiter = undefined;
    w?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.#iterated) throw new TypeError('LiveChunks can be iterated once');
    this.#iterated = true;
    return {
      next: async (): Promise<IteratorResult<Uint8Array>> => {
        this.#returnLent(); // asked for the next one: the consumer is done with the last
        for (;;) {
          if (this.#error !== undefined) throw this.#error;
          const chunk = this.#queue.shift();
          if (chunk !== undefined) {
            this.#lent = this.#holds.shift();
            this.#queued -= chunk.byteLength;
            if (this.#queued <= this.maxBytes) for (const r of this.#roomWaiters.splice(0)) r();
            return { done: false, value: chunk };
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
