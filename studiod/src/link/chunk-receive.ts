/**
 * The receive path for Chunk frames: studiod parses the link's binary WebSocket
 * frames that carry a Chunk itself and copies each socket read's payload bytes
 * into a pooled buffer, instead of `ws` joining every 1 MiB message into a fresh
 * buffer (docs/design.md "Studio", receive path). Fresh 1 MiB buffers are
 * external memory that V8 collects with full GCs; TLS's 16 KiB read buffers,
 * copied at once, die young and cost a scavenge. Everything else (the handshake,
 * control frames, small and fragmented messages, any frame that is not exactly a
 * Chunk in the expected shape) still goes to `ws` byte for byte, so its checks
 * (maxPayload → 1009, masking, RSV bits, opcodes, close handshake) are unchanged.
 *
 * A frame is taken here only when it is a final, unfragmented, masked binary
 * frame of CHUNK_FRAME_MIN_BYTES..MAX_FRAME_BYTES whose msgpack map ends with a
 * `data` bin that runs exactly to the frame's end. Before any data byte is
 * copied, the map without its data (the header, at most PREFIX_MAX_BYTES) is
 * decoded and validated by decodeFrame with a one-byte stand-in for the data, so
 * the scan and the schema check every field as for a whole frame. A header that
 * fails, or a frame of another shape, is handed to `ws` whole (its header bytes
 * as received), and decodeFrame refuses it there with its coded error.
 */
import { MAX_CHUNK_BYTES, MAX_FRAME_BYTES, decodeFrame, type Logger, type MessageOf } from '@studio321/protocol';
import { alignedBuffer } from '@studio321/protocol/durable';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** Smaller binary frames go to `ws`, which hands a frame inside one read over as a view (no copy). */
export const CHUNK_FRAME_MIN_BYTES = 64 * 1024;
/** A Chunk's fields before its data; field-agent's fixed header is 106 bytes (codec.ts CHUNK_HEADER_BYTES). */
const PREFIX_MAX_BYTES = 512;

/** One lease on a pooled buffer: the buffer goes back to its pool when the last holder releases it. */
interface Lease {
  holders: number;
  buf: Buffer;
  pool: ChunkPool;
}

const leases = new WeakMap<Uint8Array, Lease>();
const noop = (): void => undefined;

function oneShot(lease: Lease): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--lease.holders === 0) lease.pool.give(lease.buf);
  };
}

/**
 * Another holder of `data` (its staging write, queued behind the writes in flight): the returned
 * function releases this hold, once. For bytes not from a ChunkPool it does nothing.
 */
export function holdChunk(data: Uint8Array): () => void {
  const lease = leases.get(data);
  if (lease === undefined) return noop;
  lease.holders++;
  return oneShot(lease);
}

/** How long a pool with no buffer in use keeps its idle ones (then they are dropped, and freed by the GC). */
export const CHUNK_POOL_IDLE_MS = 10_000;

/**
 * MAX_CHUNK_BYTES buffers reused across frames and sessions. In use at once: what the
 * sessions' windows and streamed-commit queues hold; at most `maxFree` are kept idle, and
 * none once no buffer has been in use for `idleMs` (a studio no agent sends to holds no
 * pool: the buffers are allocated again by the next transfer, one per MiB in flight).
 */
export class ChunkPool {
  readonly maxFree: number;
  readonly idleMs: number;
  #free: Buffer[] = [];
  #allocated = 0;
  #inUse = 0;
  #trimTimer: NodeJS.Timeout | undefined;
  #trims = 0;

  constructor(maxFree: number, idleMs: number = CHUNK_POOL_IDLE_MS) {
    this.maxFree = maxFree;
    this.idleMs = idleMs;
  }

  /** Times the idle buffers were dropped. */
  get trims(): number {
    return this.#trims;
  }

  /** Drop the idle buffers now (their memory goes with the next GC). */
  trim(): void {
    clearTimeout(this.#trimTimer);
    this.#trimTimer = undefined;
    if (this.#free.length === 0) return;
    this.#free = [];
    this.#trims++;
  }

  /** Buffers ever allocated (a pool that keeps up allocates about window / chunk size of them). */
  get allocated(): number {
    return this.#allocated;
  }

  get idle(): number {
    return this.#free.length;
  }

  /** Buffers taken and not given back yet. */
  get inUse(): number {
    return this.#inUse;
  }

  /** A view of `length` bytes and the release of its first hold. */
  take(length: number): { data: Buffer; release: () => void } {
    if (length > MAX_CHUNK_BYTES) throw new TypeError(`ChunkPool.take(${length}): more than MAX_CHUNK_BYTES`);
    let buf = this.#free.pop();
    if (buf === undefined) {
      buf = alignedBuffer(MAX_CHUNK_BYTES); // page-aligned: staged and written to the RAID with O_DIRECT
      this.#allocated++;
    }
    this.#inUse++;
    clearTimeout(this.#trimTimer);
    this.#trimTimer = undefined;
    const data = buf.subarray(0, length);
    const lease: Lease = { holders: 1, buf, pool: this };
    leases.set(data, lease);
    return { data, release: oneShot(lease) };
  }

  give(buf: Buffer): void {
    this.#inUse--;
    if (this.#free.length < this.maxFree) this.#free.push(buf);
    if (this.#inUse === 0 && this.#free.length > 0) {
      this.#trimTimer = setTimeout(() => this.trim(), this.idleMs);
      this.#trimTimer.unref();
    }
  }
}

type Prefix =
  | { kind: 'more' }
  | { kind: 'other' }
  | { kind: 'chunk'; msg: MessageOf<'chunk'>; dataStart: number; dataLength: number };

/** The byte length of the msgpack scalar at `at` (its whole encoding), -1: need more bytes, -2: not a scalar we skip. */
function scalarLength(b: Uint8Array, at: number, end: number): number {
  if (at >= end) return -1;
  const x = b[at] as number;
  if (x <= 0x7f || x >= 0xe0 || x === 0xc2 || x === 0xc3) return 1;
  if (x >= 0xa0 && x <= 0xbf) return 1 + (x & 0x1f);
  // uint 8/16/32/64, int 8/16/32/64, float 32/64
  if (x === 0xcc || x === 0xd0) return 2;
  if (x === 0xcd || x === 0xd1) return 3;
  if (x === 0xce || x === 0xd2 || x === 0xca) return 5;
  if (x === 0xcf || x === 0xd3 || x === 0xcb) return 9;
  // str 8/16/32 and bin 8/16/32: a length, then that many bytes
  const lenBytes = x === 0xd9 || x === 0xc4 ? 1 : x === 0xda || x === 0xc5 ? 2 : x === 0xdb || x === 0xc6 ? 4 : 0;
  if (lenBytes === 0) return -2;
  if (at + 1 + lenBytes > end) return -1;
  let n = 0;
  for (let i = 0; i < lenBytes; i++) n = n * 256 + (b[at + 1 + i] as number);
  return 1 + lenBytes + n;
}

const DATA_KEY = [0xa4, 0x64, 0x61, 0x74, 0x61]; // fixstr "data"

/**
 * Parse the unmasked start of a binary frame's payload (`b[0, end)`, the frame being
 * `payloadLength` bytes): is it a Chunk whose `data` bin is its last field, running to the frame's end?
 */
export function parseChunkPrefix(b: Uint8Array, end: number, payloadLength: number): Prefix {
  if (end < 1) return { kind: 'more' };
  const head = b[0] as number;
  let entries: number;
  let at: number;
  if (head >= 0x81 && head <= 0x8f) {
    entries = head & 0x0f; // fixmap
    at = 1;
  } else if (head === 0xde) {
    if (end < 3) return { kind: 'more' };
    entries = ((b[1] as number) << 8) | (b[2] as number); // map 16 (msgpackr writes this one)
    at = 3;
  } else return { kind: 'other' };
  for (let i = 0; i < entries; i++) {
    const keyLen = scalarLength(b, at, end);
    if (keyLen === -1) return end >= PREFIX_MAX_BYTES ? { kind: 'other' } : { kind: 'more' };
    if (keyLen < 0 || at + keyLen > PREFIX_MAX_BYTES) return { kind: 'other' };
    if (at + keyLen > end) return { kind: 'more' };
    const isData = keyLen === DATA_KEY.length && DATA_KEY.every((v, k) => b[at + k] === v);
    at += keyLen;
    if (isData) {
      if (i !== entries - 1) return { kind: 'other' };
      if (at >= end) return { kind: 'more' };
      const x = b[at] as number;
      const lenBytes = x === 0xc4 ? 1 : x === 0xc5 ? 2 : x === 0xc6 ? 4 : 0;
      if (lenBytes === 0) return { kind: 'other' };
      if (at + 1 + lenBytes > end) return { kind: 'more' };
      let dataLength = 0;
      for (let k = 0; k < lenBytes; k++) dataLength = dataLength * 256 + (b[at + 1 + k] as number);
      const dataStart = at + 1 + lenBytes;
      if (dataStart + dataLength !== payloadLength || dataLength < 1 || dataLength > MAX_CHUNK_BYTES)
        return { kind: 'other' };
      // The header with a one-byte stand-in for the data: decodeFrame's scan and schema check every field.
      const probe = Buffer.allocUnsafe(at + 3);
      probe.set(b.subarray(0, at), 0);
      probe[at] = 0xc4;
      probe[at + 1] = 1;
      probe[at + 2] = 0;
      let msg;
      try {
        msg = decodeFrame(probe);
      } catch {
        return { kind: 'other' }; // ws buffers it and decodeFrame refuses it there, with its code
      }
      if (msg.t !== 'chunk') return { kind: 'other' };
      return { kind: 'chunk', msg, dataStart, dataLength };
    }
    const valueLen = scalarLength(b, at, end);
    if (valueLen === -1) return end >= PREFIX_MAX_BYTES ? { kind: 'other' } : { kind: 'more' };
    if (valueLen < 0 || at + valueLen > PREFIX_MAX_BYTES) return { kind: 'other' };
    if (at + valueLen > end) return { kind: 'more' };
    at += valueLen;
  }
  return { kind: 'other' }; // no data field
}

/** What the parser does with the bytes: `forward` to ws in order, `chunk` for a Chunk frame taken here. */
export interface ChunkFrameSink {
  forward(bytes: Buffer): void;
  chunk(msg: MessageOf<'chunk'>, release: () => void): void;
}

type Mode = 'header' | 'prefix' | 'data' | 'forward' | 'passthrough';

/**
 * Splits the bytes of a WebSocket client→server stream (after the upgrade) into the
 * Chunk frames it takes and the bytes it forwards. Knows nothing of sockets: feed it reads.
 */
export class ChunkFrameParser {
  readonly #sink: ChunkFrameSink;
  readonly #pool: ChunkPool;
  #mode: Mode = 'header';
  readonly #hdr = Buffer.alloc(14);
  #hdrLen = 0;
  #hdrNeed = 2;
  #payloadLength = 0;
  /** Payload bytes still to forward (mode forward) or to copy (mode data). */
  #remaining = 0;
  /** Inside a fragmented data message (its continuation frames go to ws). */
  #fragmented = false;
  readonly #mask = Buffer.alloc(4);
  #maskZero = true;
  /** The prefix as received (masked: forwarded like this when the frame is ws's after all) and unmasked. */
  readonly #rawPrefix = Buffer.alloc(PREFIX_MAX_BYTES);
  readonly #prefix = Buffer.alloc(PREFIX_MAX_BYTES);
  #prefixLen = 0;
  #data: Buffer | undefined;
  #release: () => void = noop;
  #dataAt = 0;
  #msg: MessageOf<'chunk'> | undefined;
  /** The WebSocket header of the frame whose prefix is being read (forwarded as is if ws gets the frame). */
  #pendingHeader: Buffer | undefined;

  constructor(pool: ChunkPool, sink: ChunkFrameSink) {
    this.#pool = pool;
    this.#sink = sink;
  }

  /** Frames taken here whose data is still arriving: a cut loses it (its pooled buffer is released). */
  drop(): void {
    if (this.#mode === 'data') this.#release();
    this.#release = noop;
    this.#data = undefined;
    this.#mode = 'passthrough';
  }

  /**
   * Where the next socket read may go straight in: the rest of the Chunk's pooled buffer while
   * its data is arriving unmasked (an all-zero masking key, as field-agent sends), else
   * undefined (the read goes to a scratch buffer and `feed`).
   */
  directTarget(): Buffer | undefined {
    if (this.#mode !== 'data' || !this.#maskZero || this.#remaining === 0) return undefined;
    const data = this.#data as Buffer;
    return data.subarray(this.#dataAt, this.#dataAt + this.#remaining);
  }

  /** `n` bytes were read into `directTarget()`'s buffer: they are the Chunk's next data bytes. */
  fedDirect(n: number): void {
    if (this.#mode !== 'data') return; // dropped: the read of a connection that closed goes nowhere
    this.#dataAt += n;
    this.#remaining -= n;
    if (this.#remaining === 0) this.#emit();
  }

  feed(read: Buffer): void {
    let at = 0;
    let fwdFrom = -1; // start of a run of bytes to forward
    const flush = (to: number): void => {
      if (fwdFrom >= 0 && to > fwdFrom) this.#sink.forward(read.subarray(fwdFrom, to));
      fwdFrom = -1;
    };
    while (at < read.length) {
      switch (this.#mode) {
        case 'passthrough':
          if (fwdFrom < 0) fwdFrom = at;
          at = read.length;
          break;
        case 'forward': {
          if (fwdFrom < 0) fwdFrom = at;
          const n = Math.min(this.#remaining, read.length - at);
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#mode = 'header';
          break;
        }
        case 'header': {
          flush(at);
          const n = Math.min(this.#hdrNeed - this.#hdrLen, read.length - at);
          read.copy(this.#hdr, this.#hdrLen, at, at + n);
          this.#hdrLen += n;
          at += n;
          if (this.#hdrLen < this.#hdrNeed) break;
          if (this.#hdrNeed === 2) {
            const len7 = (this.#hdr[1] as number) & 0x7f;
            const masked = ((this.#hdr[1] as number) & 0x80) !== 0;
            this.#hdrNeed = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
            if (this.#hdrLen < this.#hdrNeed) break;
          }
          this.#frameHeader();
          break;
        }
        case 'prefix': {
          flush(at);
          const n = Math.min(
            PREFIX_MAX_BYTES - this.#prefixLen,
            this.#payloadLength - this.#prefixLen,
            read.length - at,
          );
          read.copy(this.#rawPrefix, this.#prefixLen, at, at + n);
          this.#unmaskInto(read, at, at + n, this.#prefix, this.#prefixLen, this.#prefixLen);
          this.#prefixLen += n;
          at += n;
          this.#onPrefix();
          break;
        }
        case 'data': {
          flush(at);
          const data = this.#data as Buffer;
          const n = Math.min(this.#remaining, read.length - at);
          this.#unmaskInto(read, at, at + n, data, this.#dataAt, this.#payloadLength - this.#remaining);
          this.#dataAt += n;
          this.#remaining -= n;
          at += n;
          if (this.#remaining === 0) this.#emit();
          break;
        }
      }
    }
    flush(at);
  }

  /** The frame header is complete in #hdr: take the frame, or forward it to ws. */
  #frameHeader(): void {
    const h = this.#hdr;
    const b0 = h[0] as number;
    const b1 = h[1] as number;
    const fin = (b0 & 0x80) !== 0;
    const rsv = b0 & 0x70;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    let length = len7;
    let at = 2;
    if (len7 === 126) {
      length = h.readUInt16BE(2);
      at = 4;
    } else if (len7 === 127) {
      length = h.readUInt32BE(2) * 2 ** 32 + h.readUInt32BE(6);
      at = 10;
    }
    const headerBytes = Buffer.from(h.subarray(0, this.#hdrLen));
    this.#hdrLen = 0;
    this.#hdrNeed = 2;
    const known = opcode <= 2 || (opcode >= 8 && opcode <= 10);
    if (rsv !== 0 || !masked || !known || length > MAX_FRAME_BYTES || !Number.isSafeInteger(length)) {
      // ws refuses this frame and closes; from here on every byte is its.
      this.#mode = 'passthrough';
      this.#sink.forward(headerBytes);
      return;
    }
    h.copy(this.#mask, 0, at, at + 4);
    this.#maskZero = this.#mask.readUInt32BE(0) === 0;
    this.#payloadLength = length;
    if (opcode === 2 && fin && !this.#fragmented && length >= CHUNK_FRAME_MIN_BYTES) {
      this.#pendingHeader = headerBytes;
      this.#prefixLen = 0;
      this.#mode = 'prefix';
      return;
    }
    if (opcode === 1 || opcode === 2) this.#fragmented = !fin;
    else if (opcode === 0 && fin) this.#fragmented = false;
    this.#sink.forward(headerBytes);
    this.#remaining = length;
    this.#mode = length === 0 ? 'header' : 'forward';
  }

  #onPrefix(): void {
    const p = parseChunkPrefix(this.#prefix, this.#prefixLen, this.#payloadLength);
    if (p.kind === 'more' && this.#prefixLen < PREFIX_MAX_BYTES && this.#prefixLen < this.#payloadLength) return;
    if (p.kind !== 'chunk') {
      this.#toWs();
      return;
    }
    const { data, release } = this.#pool.take(p.dataLength);
    // Bytes of the data already read with the prefix.
    const early = this.#prefixLen - p.dataStart;
    this.#prefix.copy(data, 0, p.dataStart, this.#prefixLen);
    this.#data = data;
    this.#release = release;
    this.#dataAt = early;
    this.#remaining = p.dataLength - early;
    this.#msg = { ...p.msg, data };
    this.#pendingHeader = undefined;
    this.#mode = 'data';
    if (this.#remaining === 0) this.#emit();
  }

  /** Not a Chunk of the expected shape: ws gets the frame as received. */
  #toWs(): void {
    this.#sink.forward(this.#pendingHeader as Buffer);
    this.#pendingHeader = undefined;
    this.#sink.forward(Buffer.from(this.#rawPrefix.subarray(0, this.#prefixLen)));
    this.#remaining = this.#payloadLength - this.#prefixLen;
    this.#mode = this.#remaining === 0 ? 'header' : 'forward';
  }

  #emit(): void {
    const msg = this.#msg as MessageOf<'chunk'>;
    const release = this.#release;
    this.#msg = undefined;
    this.#data = undefined;
    this.#release = noop;
    this.#mode = 'header';
    this.#sink.chunk(msg, release);
  }

  /** Copy src[from, to) to dst at `dstAt`, unmasked; `pos` is the payload offset of src[from]. */
  #unmaskInto(src: Buffer, from: number, to: number, dst: Buffer, dstAt: number, pos: number): void {
    src.copy(dst, dstAt, from, to);
    if (this.#maskZero) return;
    const m = this.#mask;
    for (let i = 0, n = to - from; i < n; i++)
      dst[dstAt + i] = (dst[dstAt + i] as number) ^ (m[(pos + i) & 3] as number);
  }
}

interface WsInternals {
  _receiver?: { write(chunk: Buffer): boolean };
  _socket?: Socket;
}

/** A socket's stream handle, as Node's `net` sees it (`useUserBuffer`: its `onread.buffer` option). */
interface StreamHandle {
  useUserBuffer?: (buf: Uint8Array) => void;
}

/** The size of the buffer the socket's reads go to when they cannot go straight into a Chunk's buffer. */
const SCRATCH_BYTES = 16 * 1024; // Node's TLS hands over at most one 16 KiB record per read

/**
 * Make Node read `socket` into buffers of ours, as `net.Socket`'s `onread` option does (which a
 * server-side TLS socket does not take: Node passes it only to sockets it connects itself): after
 * each read, `onRead(n, buf)` gets the `n` bytes read into `buf`, and `next()` names the buffer the
 * next read goes into. Node's internals for this are its stream handle's `useUserBuffer` and three
 * symbol-keyed fields every `net.Socket` has; when any is missing (another Node), nothing changes and
 * this returns false.
 */
export function readIntoOwnBuffers(
  socket: Socket,
  onRead: (n: number, buf: Buffer) => boolean,
  next: () => Buffer,
): boolean {
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  if (handle == null || typeof handle.useUserBuffer !== 'function') return false;
  const symbols = Object.getOwnPropertySymbols(socket);
  const field = (name: string): symbol | undefined => symbols.find((s) => s.description === name);
  const kBuffer = field('kBuffer');
  const kBufferCb = field('kBufferCb');
  const kBufferGen = field('kBufferGen');
  const fields = socket as unknown as Record<symbol, unknown>;
  if (kBuffer === undefined || kBufferCb === undefined || kBufferGen === undefined) return false;
  if (fields[kBuffer] !== null || fields[kBufferCb] !== null || fields[kBufferGen] !== null) return false;
  const first = next();
  fields[kBufferGen] = next;
  fields[kBufferCb] = onRead;
  fields[kBuffer] = first;
  handle.useUserBuffer(first);
  return true;
}

/** What interceptChunkFrames put in front of `ws`. */
export interface ChunkIntercept {
  /**
   * Read the socket into the receive path's own buffers from now on (once the peer has
   * authenticated: the pre-auth byte count listens to the socket's `data` events, which stop):
   * a Chunk's data straight into its pooled buffer, everything else into one scratch buffer.
   * Done at the first moment nothing is buffered in the socket's stream and it is not paused.
   */
  ownReads(): void;
  /** Whether the socket is read into our own buffers now. */
  readonly owned: boolean;
  /** Chunk data bytes read straight into their pooled buffers so far. */
  readonly directBytes: number;
}

/**
 * Put a ChunkFrameParser in front of `ws`'s own receiver: every read reaches it
 * first, and `ws` gets the bytes of the frames it does not take, in order, through
 * its receiver's write (the same call its socket listener and its close path make).
 * Returns undefined, and changes nothing, when this `ws` has no such receiver.
 */
export function interceptChunkFrames(
  ws: WebSocket,
  pool: ChunkPool,
  onChunk: ChunkFrameSink['chunk'],
  log: Logger,
): ChunkIntercept | undefined {
  const internals = ws as unknown as WsInternals;
  const receiver = internals._receiver;
  if (receiver === undefined || typeof receiver.write !== 'function') {
    log.warn({}, 'ws has no receiver to put the Chunk receive path in front of: Chunks go through ws');
    return undefined;
  }
  const write = receiver.write.bind(receiver);
  let ok = true;
  /** Bytes read into the scratch buffer are forwarded as copies (ws may keep a view of what it gets). */
  let fromScratch = false;
  const parser = new ChunkFrameParser(pool, {
    forward: (bytes) => {
      ok = write(fromScratch ? Buffer.from(bytes) : bytes);
    },
    chunk: onChunk,
  });
  let wanted = false;
  let owned = false;
  let directBytes = 0;
  const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  const onRead = (n: number, buf: Buffer): boolean => {
    ok = true;
    if (buf === scratch) {
      fromScratch = true;
      try {
        parser.feed(scratch.subarray(0, n));
      } finally {
        fromScratch = false;
      }
    } else {
      directBytes += n;
      parser.fedDirect(n);
    }
    // False: Node stops reading until ws (its receiver drained) or the budget resumes the socket. A
    // paused socket can be read once more (Node's stream may start a read while paused; the rest of
    // a TLS read already decrypted is handed over after the pause): this stops it again.
    return ok && internals._socket?.isPaused() !== true;
  };
  const tryOwn = (): void => {
    const socket = internals._socket;
    if (!wanted || owned || socket === undefined || socket.destroyed) return;
    if (socket.readableLength !== 0 || socket.readableFlowing !== true) return;
    owned = readIntoOwnBuffers(socket, onRead, () => parser.directTarget() ?? scratch);
    wanted = owned;
    if (!owned) log.warn({}, "Node's socket takes no read buffers of ours: the link's reads stay Node's");
  };
  receiver.write = (chunk: Buffer): boolean => {
    ok = true;
    parser.feed(chunk);
    tryOwn();
    return ok;
  };
  ws.once('close', () => parser.drop());
  return {
    ownReads: () => {
      wanted = true;
      tryOwn();
    },
    get owned() {
      return owned;
    },
    get directBytes() {
      return directBytes;
    },
  };
}
