/**
 * Chunk frames the agent frames in place (LinkClient.sendFrame writes the WebSocket
 * header into the FRAME_HEADROOM before the frame and the frame to its TLS socket as
 * one buffer) arrive byte for byte, in order with the frames `ws` sends: a real TLS
 * WebSocket server with studiod's Chunk receive path in front of `ws`'s receiver
 * (frames of 64 KiB and more) and `ws` itself (smaller ones), frame sizes at each
 * header form's edges (7-bit, 16-bit and 64-bit lengths), odd sizes and offsets,
 * and a frame without headroom (sent through `ws` instead); each frame's buffer is scribbled
 * over once sendFrame resolved (it is free then: the sync pass reads the next chunk into
 * it at once); then the same with the socket
 * read into the receive path's own buffers (Chunk data straight into its pooled buffer).
 */
import t, { type Test } from 'tap';
import { createServer } from 'node:https';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CHUNK_HEADER_BYTES,
  MAGIC,
  MAX_CHUNK_BYTES,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  createLogger,
  decodeFrame,
  encodeChunkFrame,
  encodeFrame,
} from '@studio321/protocol';
import { FRAME_HEADROOM, LinkClient } from '@studio321/agent/link';
import { ChunkPool, interceptChunkFrames, loadOrCreateTlsIdentity, type ChunkIntercept } from '@studio321/studiod/link';

const HASH = 'cd'.repeat(32);

interface Arrived {
  via: 'receive path' | 'ws';
  t: string;
  offset?: number;
  data?: Buffer;
}

/**
 * `own`: the socket is read into the receive path's own buffers (ChunkIntercept.ownReads, as
 * studiod does once an agent authenticated), and ws is paused at every Chunk the receive path
 * takes and resumed on the next turn (the receive budget's pause): nothing may be lost or reordered.
 */
async function roundTrip(t: Test, own: boolean): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'in-place-frame-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const id = await loadOrCreateTlsIdentity(join(dir, 'key.pem'), join(dir, 'cert.pem'), { pairedAgents: 0 });
  const server = createServer({ key: id.key, cert: id.cert });
  const wss = new WebSocketServer({ server, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
  const pool = new ChunkPool(4);
  const log = createLogger({ name: 'test', level: 'silent' });
  const arrived: Arrived[] = [];
  let wake: (() => void) | undefined;
  let peer: WebSocket | undefined;
  let intercept: ChunkIntercept | undefined;
  wss.on('connection', (ws) => {
    peer = ws;
    intercept = interceptChunkFrames(
      ws,
      pool,
      (m, release) => {
        arrived.push({ via: 'receive path', t: m.t, offset: m.offset, data: Buffer.from(m.data) });
        release();
        if (own) {
          ws.pause();
          setImmediate(() => ws.resume());
        }
        wake?.();
      },
      log,
    );
    t.ok(intercept, 'the receive path is in front of ws');
    if (own) intercept?.ownReads();
    ws.on('message', (d) => {
      const m = decodeFrame(d as Buffer);
      arrived.push(
        m.t === 'chunk' ? { via: 'ws', t: m.t, offset: m.offset, data: Buffer.from(m.data) } : { via: 'ws', t: m.t },
      );
      wake?.();
    });
    ws.send(
      encodeFrame({
        t: 'hello',
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        role: 'studio',
        software: 'test/0',
        window: 64 * 1024 * 1024,
      }),
    );
    ws.send(encodeFrame({ t: 'auth-challenge', nonce: randomBytes(32), sessionId: 'session-1' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    peer?.terminate();
    wss.close();
    server.close();
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const client = new LinkClient({ url: `wss://127.0.0.1:${port}` });
  t.teardown(() => client.terminate());
  await client.open();

  // Data sizes whose frames (CHUNK_HEADER_BYTES more) sit at the edges of the header forms.
  const edge = (payload: number): number => payload - CHUNK_HEADER_BYTES;
  const sizes = [1, edge(125), edge(126), 4097, edge(65535), edge(65536), 65536 + 3, 777_777, MAX_CHUNK_BYTES];
  const expected: Arrived[] = [{ via: 'ws', t: 'hello' }]; // the client's, at open()
  let written = 0;
  let offset = 2 ** 40 + 7;
  for (const [i, n] of sizes.entries()) {
    const buf = Buffer.alloc(FRAME_HEADROOM + CHUNK_HEADER_BYTES + n, 0xee);
    const data = randomBytes(n);
    data.copy(buf, FRAME_HEADROOM + CHUNK_HEADER_BYTES);
    const frame = encodeChunkFrame(buf.subarray(FRAME_HEADROOM), HASH, offset, n);
    // Every third one with a FileEnd behind it, in the same write to the socket.
    const then = i % 3 === 1 ? ({ t: 'file-end', hash: HASH, size: offset + n } as const) : undefined;
    await client.sendFrame(frame, () => written++, then);
    // Resolved: the frame was written and its buffer is free; the pass reads the next chunk
    // into it at once (sync-pass.ts #sendChunks). Scribbled over, what arrives must not change.
    t.equal(written, i + 1, `frame ${i} written when sendFrame resolved`);
    buf.fill(0x11);
    const big = CHUNK_HEADER_BYTES + n >= 65536;
    expected.push({ via: big ? 'receive path' : 'ws', t: 'chunk', offset, data });
    if (then !== undefined) expected.push({ via: 'ws', t: 'file-end' });
    offset += n + 1;
    if (i % 3 === 0) {
      await client.send({ t: 'ping', ts: i });
      expected.push({ via: 'ws', t: 'ping' });
    }
  }
  // A frame with no room before it goes through ws (and still arrives the same).
  const data = randomBytes(70_001);
  const bare = Buffer.alloc(CHUNK_HEADER_BYTES + data.length);
  data.copy(bare, CHUNK_HEADER_BYTES);
  await client.sendFrame(encodeChunkFrame(bare, HASH, 5, data.length), () => written++);
  t.equal(written, sizes.length + 1, 'the frame without headroom written when sendFrame resolved');
  bare.fill(0x11);
  expected.push({ via: 'receive path', t: 'chunk', offset: 5, data });

  while (arrived.length < expected.length) {
    await new Promise<void>((r) => {
      wake = r;
    });
  }
  t.equal(written, sizes.length + 1, 'every frame was handed to the socket');
  t.equal(arrived.length, expected.length, 'nothing more arrived');
  for (const [i, e] of expected.entries()) {
    const a = arrived[i];
    t.equal(a?.t, e.t, `#${i} type`);
    t.equal(a?.via, e.via, `#${i} taken by the ${e.via}`);
    if (e.t !== 'chunk') continue;
    t.equal(a?.offset, e.offset, `#${i} offset`);
    t.ok(a?.data?.equals(e.data as Buffer), `#${i} ${e.data?.length} bytes, byte for byte`);
  }
  t.equal(client.closedError, undefined, 'the link is still open');
  t.equal(intercept?.owned, own, own ? 'the socket was read into our own buffers' : "the socket's reads were Node's");
  if (own) t.ok((intercept?.directBytes ?? 0) > MAX_CHUNK_BYTES / 2, 'Chunk data was read straight into its buffers');
  t.equal(pool.inUse, 0, 'every pooled buffer was given back');
}

t.test('in-place framed Chunks round-trip through ws and the Chunk receive path', (t) => roundTrip(t, false));

t.test('the same with the socket read into our own buffers, ws paused at every Chunk taken', (t) => roundTrip(t, true));
