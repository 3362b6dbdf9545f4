/**
 * The Chunk receive path (studiod/src/link/chunk-receive.ts): a stream of real
 * client WebSocket frames (masked with zero and with random keys, Chunks in
 * field-agent's fixed layout and in msgpackr's shortest one, control frames,
 * fragmented messages, Chunk-like frames it must leave to ws) fed in reads split
 * at every awkward place: 1-byte reads, every cut through a taken frame's
 * header and msgpack prefix, random splits. Whatever the split, ws must get
 * exactly the bytes of the frames not taken, and the taken Chunks must carry
 * exactly the sent data, in the stream's order, in pooled buffers that go back
 * to the pool.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { pack } from 'msgpackr';
import {
  CHUNK_HEADER_BYTES,
  MAX_FRAME_BYTES,
  encodeChunkFrame,
  encodeFrame,
  type MessageOf,
} from '@studio321/protocol';
import { CHUNK_FRAME_MIN_BYTES, ChunkFrameParser, ChunkPool } from '@studio321/studiod/link';
import { waitFor } from '../../lib/wait-for.js';

const KiB = 1024;
const HASH = 'ab'.repeat(32);

/** One client → server frame as RFC 6455 §5.2 lays it out, masked with `mask` (4 bytes). */
function wsFrame(opcode: number, payload: Uint8Array, mask: Uint8Array, fin = true): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + 4);
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = 0x80 | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  head.set(mask, 2 + ext);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (mask[i & 3] as number);
  return Buffer.concat([head, body]);
}

const ZERO = Buffer.alloc(4);
const key = (): Buffer => randomBytes(4);

function agentChunk(offset: number, data: Buffer): Buffer {
  const frame = Buffer.alloc(CHUNK_HEADER_BYTES + data.length);
  data.copy(frame, CHUNK_HEADER_BYTES);
  return Buffer.from(encodeChunkFrame(frame, HASH, offset, data.length));
}

interface Part {
  bytes: Buffer;
  /** The Chunk the parser must take from it; undefined: ws must get these bytes. */
  chunk?: { offset: number; data: Buffer };
}

/** The stream of frames, each with what should become of it. */
function stream(dataSize: number): Part[] {
  const d = (n: number): Buffer => randomBytes(n);
  const parts: Part[] = [];
  const taken = (offset: number, data: Buffer, mask: Buffer, agentLayout: boolean): void => {
    const payload = agentLayout ? agentChunk(offset, data) : encodeFrame({ t: 'chunk', hash: HASH, offset, data });
    parts.push({ bytes: wsFrame(2, payload, mask), chunk: { offset, data } });
  };
  const toWs = (bytes: Buffer): void => {
    parts.push({ bytes });
  };
  toWs(wsFrame(2, encodeFrame({ t: 'ping', ts: 1 }), key()));
  taken(0, d(dataSize), ZERO, true);
  toWs(wsFrame(9, Buffer.from('ping!'), key())); // a control frame between Chunks
  taken(dataSize, d(dataSize + 3), key(), false); // shortest widths, a random mask
  // A small Chunk stays ws's (a view, no copy there).
  toWs(wsFrame(2, encodeFrame({ t: 'chunk', hash: HASH, offset: 9, data: d(100) }), key()));
  // A fragmented message: both frames are ws's, the first one large enough to be taken otherwise.
  const big = encodeFrame({ t: 'chunk', hash: HASH, offset: 7, data: d(CHUNK_FRAME_MIN_BYTES + 10) });
  toWs(wsFrame(2, big.subarray(0, big.length - 5), key(), false));
  toWs(wsFrame(0, big.subarray(big.length - 5), key(), true));
  // `data` not the last field; an extra field after it; a bad hash; not a map: all ws's, whole.
  toWs(wsFrame(2, pack({ data: d(CHUNK_FRAME_MIN_BYTES), t: 'chunk', hash: HASH, offset: 1 }), key()));
  toWs(wsFrame(2, pack({ t: 'chunk', hash: HASH, offset: 1, data: d(CHUNK_FRAME_MIN_BYTES), x: 1 }), ZERO));
  toWs(wsFrame(2, pack({ t: 'chunk', hash: 'nothex', offset: 1, data: d(CHUNK_FRAME_MIN_BYTES) }), ZERO));
  toWs(wsFrame(2, d(CHUNK_FRAME_MIN_BYTES + 1), key()));
  // Unknown fields before the data are validated and dropped, as decodeFrame does.
  const extra = pack({ t: 'chunk', note: 'x', hash: HASH, offset: 2 * dataSize + 3, data: d(dataSize) });
  parts.push({
    bytes: wsFrame(2, extra, key()),
    chunk: { offset: 2 * dataSize + 3, data: Buffer.from(extra.subarray(extra.length - dataSize)) },
  });
  return parts;
}

interface Seen {
  forwarded: Buffer;
  chunks: Array<{ msg: MessageOf<'chunk'>; data: Buffer; forwardedBefore: number }>;
}

/** A parser whose forwarded bytes (copied as they come) and Chunks are collected. */
function collecting(pool: ChunkPool): { parser: ChunkFrameParser; seen: () => Seen } {
  const forwarded: Buffer[] = [];
  let forwardedBytes = 0;
  const chunks: Seen['chunks'] = [];
  const parser = new ChunkFrameParser(pool, {
    forward: (b) => {
      forwarded.push(Buffer.from(b));
      forwardedBytes += b.length;
    },
    chunk: (msg, release) => {
      chunks.push({ msg, data: Buffer.from(msg.data), forwardedBefore: forwardedBytes });
      release();
    },
  });
  return { parser, seen: () => ({ forwarded: Buffer.concat(forwarded), chunks }) };
}

/** Feed `bytes` in reads cut at `cuts` (ascending offsets), as the socket would deliver them. */
function feed(pool: ChunkPool, bytes: Buffer, cuts: number[]): Seen {
  const { parser, seen } = collecting(pool);
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    // Each read a fresh buffer, as TLS hands them over.
    if (cut > at) parser.feed(Buffer.from(bytes.subarray(at, cut)));
    at = Math.max(at, cut);
  }
  return seen();
}

/**
 * Feed `bytes` as Node delivers a socket's reads into buffers of ours (readIntoOwnBuffers): each
 * read of `cuts` lands in the buffer the parser names (`directTarget`, the rest of a Chunk's
 * pooled buffer) or in one reused scratch buffer, split where the buffer it lands in ends. The
 * scratch's bytes are forwarded as copies (interceptChunkFrames does so: ws may keep a view).
 */
function feedOwned(pool: ChunkPool, bytes: Buffer, cuts: number[]): Seen & { direct: number } {
  const { parser, seen } = collecting(pool);
  const scratch = Buffer.alloc(16 * KiB);
  let direct = 0;
  let at = 0;
  for (const cut of [...cuts.map((c) => Math.min(c, bytes.length)), bytes.length]) {
    while (at < cut) {
      const target = parser.directTarget() ?? scratch;
      const n = Math.min(cut - at, target.length);
      bytes.copy(target, 0, at, at + n);
      at += n;
      if (target === scratch) {
        parser.feed(scratch.subarray(0, n));
        scratch.fill(0xa5, 0, n); // the next read overwrites it: nothing may still point into it
      } else {
        parser.fedDirect(n);
        direct += n;
      }
    }
  }
  return { ...seen(), direct };
}

function expected(parts: Part[]): {
  forwarded: Buffer;
  chunks: Array<{ offset: number; data: Buffer; forwardedBefore: number }>;
} {
  const fwd: Buffer[] = [];
  let n = 0;
  const chunks: Array<{ offset: number; data: Buffer; forwardedBefore: number }> = [];
  for (const p of parts) {
    if (p.chunk === undefined) {
      fwd.push(p.bytes);
      n += p.bytes.length;
    } else chunks.push({ ...p.chunk, forwardedBefore: n });
  }
  return { forwarded: Buffer.concat(fwd), chunks };
}

/** What differs from `want` (empty: nothing). */
function differences(seen: Seen, want: ReturnType<typeof expected>): string[] {
  const out: string[] = [];
  if (!seen.forwarded.equals(want.forwarded)) out.push('ws did not get exactly the frames not taken');
  if (seen.chunks.length !== want.chunks.length)
    out.push(`${seen.chunks.length} Chunks taken, not ${want.chunks.length}`);
  for (const [i, w] of want.chunks.entries()) {
    const s = seen.chunks[i];
    if (
      s === undefined ||
      s.msg.t !== 'chunk' ||
      s.msg.hash !== HASH ||
      s.msg.offset !== w.offset ||
      !s.data.equals(w.data) ||
      s.forwardedBefore !== w.forwardedBefore
    )
      out.push(`Chunk ${i}: wrong offset, bytes or order`);
  }
  return out;
}

function check(t: Test, seen: Seen, want: ReturnType<typeof expected>, what: string): boolean {
  return t.same(
    differences(seen, want),
    [],
    `${what}: ws gets exactly the frames not taken; every Chunk its bytes, in order`,
  );
}

t.test('1-byte reads, whole reads and random splits', async (t) => {
  const parts = stream(CHUNK_FRAME_MIN_BYTES);
  const bytes = Buffer.concat(parts.map((p) => p.bytes));
  const want = expected(parts);
  const pool = new ChunkPool(4);
  check(t, feed(pool, bytes, []), want, 'one read');
  // 1-byte reads through every frame's header and first 600 bytes (the prefix and the start of the data).
  const oneByte: number[] = [];
  let start = 0;
  for (const p of parts) {
    for (let i = 1; i <= Math.min(600, p.bytes.length); i++) oneByte.push(start + i);
    start += p.bytes.length;
  }
  check(t, feed(pool, bytes, oneByte), want, '1-byte reads');
  check(
    t,
    feed(
      pool,
      bytes,
      Array.from({ length: 70 * KiB }, (_, i) => i),
    ),
    want,
    '1-byte reads for 70 KiB',
  );
  for (let run = 0; run < 20; run++) {
    const cuts: number[] = [];
    for (let at = 0; at < bytes.length; ) {
      at += 1 + Math.floor(Math.random() * (run % 2 === 0 ? 300 : 40 * KiB));
      cuts.push(at);
    }
    if (!check(t, feed(pool, bytes, cuts), want, `random splits ${run}`)) break;
  }
  t.equal(pool.allocated, 1, 'one pooled buffer served every Chunk (each released before the next)');
  t.equal(pool.idle, 1, 'and it is back in the pool');
});

t.test(
  'reads into our own buffers: a zero-masked Chunk straight into its pooled buffer, the rest through scratch',
  async (t) => {
    const parts = stream(CHUNK_FRAME_MIN_BYTES + 5 * KiB);
    const bytes = Buffer.concat(parts.map((p) => p.bytes));
    const want = expected(parts);
    const pool = new ChunkPool(4);
    // Node's TLS hands over a record (16 KiB at most) a read; plain TCP reads can be larger.
    const splits: Array<[string, number[]]> = [
      ['one read', []],
      ['16 KiB reads', Array.from({ length: Math.ceil(bytes.length / (16 * KiB)) }, (_, i) => (i + 1) * 16 * KiB)],
      ['1-byte reads for 70 KiB', Array.from({ length: 70 * KiB }, (_, i) => i)],
    ];
    for (let run = 0; run < 20; run++) {
      const cuts: number[] = [];
      for (let at = 0; at < bytes.length; ) {
        at += 1 + Math.floor(Math.random() * (run % 2 === 0 ? 300 : 40 * KiB));
        cuts.push(at);
      }
      splits.push([`random splits ${run}`, cuts]);
    }
    for (const [what, cuts] of splits) {
      const seen = feedOwned(pool, bytes, cuts);
      if (!check(t, seen, want, what)) break;
      // The zero-masked agent-layout Chunk: all but what came in the read of its header, straight in.
      t.ok(seen.direct > 0 && seen.direct <= CHUNK_FRAME_MIN_BYTES + 5 * KiB, `${what}: data read straight in`);
    }
    t.equal(pool.idle, pool.allocated, 'every pooled buffer is back in the pool');
  },
);

t.test('a read straight into a Chunk that was dropped (its connection closed) goes nowhere', async (t) => {
  const pool = new ChunkPool(4);
  const frame = wsFrame(2, agentChunk(0, randomBytes(CHUNK_FRAME_MIN_BYTES)), ZERO);
  const chunks: unknown[] = [];
  const parser = new ChunkFrameParser(pool, { forward: () => undefined, chunk: (m) => chunks.push(m) });
  parser.feed(frame.subarray(0, 1000));
  const target = parser.directTarget();
  t.equal(target?.length, frame.length - 1000, 'the rest of the frame can be read straight into its buffer');
  parser.drop();
  t.equal(parser.directTarget(), undefined, 'no longer once dropped');
  parser.fedDirect(target?.length ?? 0);
  t.equal(chunks.length, 0, 'no Chunk delivered');
  t.equal(pool.idle, 1, 'the buffer went back to the pool once');
  t.equal(pool.inUse, 0);
});

t.test('every cut through the WebSocket header and msgpack prefix of each taken frame', async (t) => {
  // The taken frames with a small frame between them (the rest adds nothing to a cut here).
  const parts = stream(CHUNK_FRAME_MIN_BYTES).filter((p) => p.chunk !== undefined || p.bytes.length < 64);
  const bytes = Buffer.concat(parts.map((p) => p.bytes));
  const want = expected(parts);
  const pool = new ChunkPool(4);
  let start = 0;
  const failed: string[] = [];
  for (const p of parts) {
    if (p.chunk !== undefined) {
      // 14 header bytes at most, then the msgpack map before the data, and a little of the data.
      for (let k = 0; k <= 14 + CHUNK_HEADER_BYTES + 8; k++) {
        for (const cuts of [[start + k], [start + k, start + k + 1, start + k + 3]])
          for (const d of differences(feed(pool, bytes, cuts), want)) failed.push(`cuts ${cuts.join(',')}: ${d}`);
      }
    }
    start += p.bytes.length;
  }
  t.same(failed, [], 'every cut: ws gets exactly the frames not taken; every Chunk its bytes, in order');
});

t.test('a frame ws must refuse (too large, unmasked, RSV bits) makes every later byte ws’s', async (t) => {
  const pool = new ChunkPool(4);
  const chunk = wsFrame(2, agentChunk(0, randomBytes(CHUNK_FRAME_MIN_BYTES)), ZERO);
  const tooLarge = Buffer.alloc(14);
  tooLarge[0] = 0x82;
  tooLarge[1] = 0x80 | 127;
  tooLarge.writeBigUInt64BE(BigInt(MAX_FRAME_BYTES + 1), 2);
  const unmasked = Buffer.from(wsFrame(2, Buffer.from('x'), ZERO));
  unmasked[1] = (unmasked[1] as number) & 0x7f;
  const rsv = Buffer.from(wsFrame(2, Buffer.from('x'), ZERO));
  rsv[0] = (rsv[0] as number) | 0x40;
  for (const [what, bad] of [
    ['larger than MAX_FRAME_BYTES', tooLarge],
    ['unmasked', unmasked.subarray(0, 2)],
    ['RSV1 set', rsv],
  ] as const) {
    const bytes = Buffer.concat([bad, chunk]);
    const seen = feed(pool, bytes, [1, bad.length + 3]);
    t.equal(seen.chunks.length, 0, `${what}: no Chunk taken after it`);
    t.ok(seen.forwarded.equals(bytes), `${what}: ws gets every byte, and refuses the frame itself`);
  }
});

t.test('a cut in the middle of a taken frame: the partial Chunk is dropped and its buffer released', async (t) => {
  const pool = new ChunkPool(4);
  const frame = wsFrame(2, agentChunk(0, randomBytes(CHUNK_FRAME_MIN_BYTES)), key());
  const chunks: unknown[] = [];
  const parser = new ChunkFrameParser(pool, { forward: () => undefined, chunk: (m) => chunks.push(m) });
  parser.feed(frame.subarray(0, frame.length - 1));
  t.equal(pool.idle, 0, 'the buffer is in use while the data arrives');
  parser.drop();
  t.equal(chunks.length, 0, 'no Chunk delivered');
  t.equal(pool.idle, 1, 'the buffer went back to the pool');
});

t.test('the pool drops its idle buffers once none has been in use for idleMs, and reuses them before', async (t) => {
  const pool = new ChunkPool(4, 50);
  const a = pool.take(100);
  const b = pool.take(100);
  a.release();
  t.equal(pool.idle, 1, 'a buffer given back is kept while another is in use');
  const c = pool.take(100);
  t.equal(pool.allocated, 2, 'and reused');
  c.release();
  b.release();
  t.equal(pool.idle, 2, 'both kept right after the last is given back');
  const d = pool.take(100); // in use again before the idle time: nothing is dropped
  d.release();
  t.equal(pool.trims, 0);
  await waitFor(() => pool.trims === 1, 'the idle pool trimmed');
  t.equal(pool.idle, 0, 'no buffer kept once idle');
  const e = pool.take(100);
  t.equal(pool.allocated, 3, 'the next transfer allocates again');
  e.release();
  pool.trim();
  t.equal(pool.idle, 0);
});
