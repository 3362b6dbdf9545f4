/**
 * Direct I/O (O_DIRECT) for the studio's large-file path: a chunk written from a
 * page-aligned buffer at an aligned offset goes from that buffer to the disk, not
 * through a copy into fresh page-cache pages, and a read-back with O_DIRECT reads
 * what the disk holds into one reused buffer. On a VM the page-cache copy into
 * freshly allocated pages was the largest CPU cost of a commit (docs/design.md,
 * "Durable write", direct I/O).
 *
 * Alignment is known only for buffers made here (`alignedBuffer`): JavaScript cannot
 * see a buffer's address, and malloc'd ArrayBuffers are 16-byte aligned. A
 * WebAssembly.Memory is mmap'd, so its bytes start on a page. Anything else
 * (a chunk from elsewhere, an unaligned offset or length: a file's last chunk)
 * goes through the ordinary descriptor; the kernel keeps the two views of the file
 * coherent, and fdatasync on either descriptor covers both.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Offsets, lengths and addresses of direct transfers are multiples of this (the largest common logical block). */
export const DIRECT_ALIGN = 4096;

const WASM_PAGE = 64 * 1024;
/** The one WebAssembly API used here (the project's TypeScript libs have no WebAssembly types). */
const { Memory } = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };
  }
).WebAssembly;
const aligned = new WeakSet<ArrayBufferLike>();

/** `bytes` (a multiple of 64 KiB) starting on a page: usable for direct I/O. Never detachable. */
export function alignedBuffer(bytes: number): Buffer {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % WASM_PAGE !== 0)
    throw new TypeError(`alignedBuffer(${bytes}): a positive multiple of ${WASM_PAGE}`);
  const pages = bytes / WASM_PAGE;
  const mem = new Memory({ initial: pages, maximum: pages });
  aligned.add(mem.buffer);
  return Buffer.from(mem.buffer, 0, bytes);
}

/** False for the buffers of `alignedBuffer` (WebAssembly memory cannot be transferred to a worker). */
export function detachable(buffer: ArrayBufferLike): boolean {
  return buffer instanceof ArrayBuffer && !aligned.has(buffer);
}

/** May `data` be written at `position` (or read into there) with direct I/O? */
export function directOk(data: Uint8Array, position: number, length: number = data.byteLength): boolean {
  return (
    length > 0 &&
    length % DIRECT_ALIGN === 0 &&
    position % DIRECT_ALIGN === 0 &&
    data.byteOffset % DIRECT_ALIGN === 0 &&
    aligned.has(data.buffer)
  );
}

/**
 * A second descriptor on `path` with O_DIRECT (`write`: O_WRONLY, else O_RDONLY), or undefined
 * where the file system refuses it (tmpfs: EINVAL) or the platform has no O_DIRECT.
 */
export async function openDirect(path: string, write: boolean): Promise<FileHandle | undefined> {
  const direct = constants.O_DIRECT;
  if (direct === undefined || direct === 0) return undefined;
  try {
    return await open(path, (write ? constants.O_WRONLY : constants.O_RDONLY) | direct);
  } catch {
    return undefined; // the ordinary descriptor does all the I/O
  }
}

/**
 * The O_DIRECT descriptor of one file being written, opened by its first chunk that may use it
 * (`directOk`), so small files open none; `opened` runs once it is (the read-back then reads the
 * same way). Where `open` answers undefined (no O_DIRECT there), the ordinary descriptor does all.
 */
export class DirectWriter<H extends { close(): Promise<void> }> {
  readonly #open: () => Promise<H | undefined>;
  readonly #opened: () => void;
  /** undefined: not opened yet; null: not to be used (none, or closed). */
  #handle: Promise<H | undefined> | null | undefined;

  constructor(open: (() => Promise<H | undefined>) | undefined, opened: () => void) {
    this.#open = open ?? (() => Promise.resolve(undefined));
    this.#opened = opened;
    this.#handle = open === undefined ? null : undefined;
  }

  /** The direct descriptor to write `data` at `position` with, or undefined: the ordinary one writes it. */
  async for(data: Uint8Array, position: number): Promise<H | undefined> {
    if (this.#handle === null || !directOk(data, position)) return undefined;
    if (this.#handle === undefined) {
      this.#handle = this.#open();
      if ((await this.#handle) !== undefined) this.#opened();
    }
    const h = await this.#handle;
    if (h === undefined) this.#handle = null;
    return h;
  }

  /** Closes the descriptor (if one was opened); no direct writes after. */
  async close(): Promise<void> {
    const h = this.#handle;
    this.#handle = null;
    await (await h)?.close().catch(() => undefined);
  }
}

/** A descriptor `writeParts` writes with: positional writes, and pwritev(2) where it has it. */
export interface PartsHandle {
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  writev?(buffers: Uint8Array[], position: number): Promise<{ bytesWritten: number }>;
  close(): Promise<void>;
}

/**
 * The largest write the ordinary descriptor is given at once: a 4 MiB chunk goes in 512 KiB
 * pwrites. The kernel sizes the page-cache folios a buffered write makes by the write (ext4's
 * large folios), and large folios come from the large free blocks that a VM with free page
 * reporting (virtio-balloon, this one's) has handed back to its host, so the first touch of each
 * page faults in the host: a copy of a 1.1 GB card in 4 MiB writes took 1.6–2.9 CPU-s in 4 of 6
 * runs, in 512 KiB writes 0.64–0.71 in every one (README, session 21); on a laptop the two cost
 * the same, 2,100 pwrites a GB instead of 275. O_DIRECT writes make no page-cache pages and are
 * not split.
 */
export const BUFFERED_WRITE_MAX = 512 * 1024;

/** The most chunks one `writeParts` call hands to one pwritev (far below any IOV_MAX). */
const MAX_PARTS = 64;

/**
 * Writes `parts`, contiguous in the file from `position`, in full (short writes completed), for the
 * large-file writers (studiod's staging, durableWrite's temps). Chunks that may all go direct
 * (`directOk` at their offsets) go in ONE pwritev on the O_DIRECT descriptor: one thread-pool round
 * trip and one completion for several MiB instead of one each. A lone chunk goes in one pwrite
 * when it may go direct, else in pwrites of at most `BUFFERED_WRITE_MAX` on the ordinary
 * descriptor; after a short write the rest goes part by part, the ordinary descriptor writing what
 * is no longer aligned. `written` is told the bytes of each write as it ends, so a
 * caller knows how far the file holds them when a later write fails. Throws the system error of a
 * failed write (EIO for a write that wrote nothing).
 */
export async function writeParts<H extends PartsHandle>(
  direct: DirectWriter<H>,
  plain: H,
  parts: readonly Uint8Array[],
  position: number,
  written?: (bytes: number) => void,
): Promise<void> {
  let i = 0; // the part being written
  let off = 0; // bytes of it written
  let pos = position;
  const advance = (n: number): void => {
    if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    written?.(n);
    pos += n;
    off += n;
    while (i < parts.length && off >= (parts[i] as Uint8Array).byteLength) {
      off -= (parts[i] as Uint8Array).byteLength;
      i++;
    }
  };
  if (parts.length > 1 && parts.length <= MAX_PARTS && allDirect(parts, position)) {
    const fh = await direct.for(parts[0] as Uint8Array, position);
    if (fh?.writev !== undefined) advance((await fh.writev(parts as Uint8Array[], position)).bytesWritten);
  }
  while (i < parts.length) {
    const p = parts[i] as Uint8Array;
    // After a short write the rest may no longer be aligned: the ordinary descriptor writes it.
    const fh = (off === 0 ? await direct.for(p, pos) : undefined) ?? plain;
    const len = fh === plain ? Math.min(p.byteLength - off, BUFFERED_WRITE_MAX) : p.byteLength - off;
    advance((await fh.write(p, off, len, pos)).bytesWritten);
  }
}

/** May every one of `parts`, written one after another from `position`, go direct? */
function allDirect(parts: readonly Uint8Array[], position: number): boolean {
  let pos = position;
  for (const p of parts) {
    if (!directOk(p, pos)) return false;
    pos += p.byteLength;
  }
  return true;
}
