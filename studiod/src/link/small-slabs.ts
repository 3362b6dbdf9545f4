/**
 * The memory a small file received whole is kept in until its commit ends (file-receiver.ts),
 * cut from slabs of SLAB_BYTES instead of one Buffer a file (docs/design.md "Link server", memory).
 *
 * One Buffer a file is one malloc of 2–256 KiB that lives for seconds (until the commit's group
 * is written), interleaved with TLS's and `ws`'s short-lived reads in glibc's arenas, and freed
 * only when V8 collects its (by then old) wrapper: with twenty agents the arenas grew by the
 * hundred MiB and kept the holes once idle, and the dead Buffers waited for a full GC. A slab is
 * one allocation of SLAB_BYTES (above the service unit's MALLOC_MMAP_THRESHOLD_, so mmap'd and
 * unmapped whole), reused as soon as every file cut from it has been released, and dropped by
 * `trim` once the link is quiet (memory-budget.ts IdleReclaim). Slabs are SharedArrayBuffers:
 * the small-commit worker reads a file's bytes in place (no copy into its own heap).
 *
 * A file's piece is released only after its commit settled (the worker may still read it until
 * then); until it is, its bytes are never handed out again.
 */

/** One slab: four of the largest small files (SMALL_COMMIT_BYTES), ~90 of 2–20 KB. */
export const SLAB_BYTES = 1024 * 1024;
/** Idle slabs kept for reuse while the link is busy (the rest are dropped when released). */
export const SLAB_MAX_IDLE = 8;

interface Slab {
  bytes: Uint8Array;
  /** Bytes cut from it so far (the next piece starts here, 8-aligned). */
  used: number;
  /** Pieces not released yet. */
  live: number;
}

/** A file's bytes in a slab, and their release (once). */
export interface SlabPiece {
  bytes: Uint8Array;
  free: () => void;
}

export class SmallSlabs {
  readonly maxIdle: number;
  /** The slab pieces are cut from now. */
  #current: Slab | undefined;
  #idle: Slab[] = [];
  #allocated = 0;
  #inUse = 0;

  constructor(maxIdle: number = SLAB_MAX_IDLE) {
    this.maxIdle = maxIdle;
  }

  /** Slabs ever allocated; holding a piece not released yet; kept idle for reuse. */
  get allocated(): number {
    return this.#allocated;
  }

  get inUse(): number {
    return this.#inUse;
  }

  get idle(): number {
    return this.#idle.length;
  }

  /** `size` bytes (at most SLAB_BYTES) of a slab, not shared with any other piece not yet released. */
  take(size: number): SlabPiece {
    if (!Number.isSafeInteger(size) || size < 0 || size > SLAB_BYTES)
      throw new TypeError(`SmallSlabs.take(${size}): not 0..SLAB_BYTES`);
    let s = this.#current;
    if (s !== undefined && s.used + size > SLAB_BYTES) {
      // Full: it is reused once its last piece is released (#release).
      this.#current = undefined;
      if (s.live === 0) this.#retire(s);
      s = undefined;
    }
    if (s === undefined) {
      s = this.#idle.pop();
      if (s === undefined) {
        s = { bytes: new Uint8Array(new SharedArrayBuffer(SLAB_BYTES)), used: 0, live: 0 };
        this.#allocated++;
      }
      this.#current = s;
    }
    const slab = s;
    const at = slab.used;
    slab.used = Math.min(SLAB_BYTES, at + ((size + 7) & ~7));
    if (slab.live++ === 0) this.#inUse++;
    let done = false;
    return {
      bytes: slab.bytes.subarray(at, at + size),
      free: () => {
        if (done) return;
        done = true;
        this.#release(slab);
      },
    };
  }

  /** Drop the idle slabs (and the one being cut, if no piece of it is held): their memory goes with the next GC. */
  trim(): void {
    this.#idle = [];
    if (this.#current?.live === 0) this.#current = undefined;
  }

  #release(s: Slab): void {
    if (--s.live > 0) return;
    this.#inUse--;
    if (s === this.#current) s.used = 0;
    else this.#retire(s);
  }

  /** A slab no piece is cut from and none is held: kept for reuse, or dropped. */
  #retire(s: Slab): void {
    s.used = 0;
    if (this.#idle.length < this.maxIdle) this.#idle.push(s);
  }
}
