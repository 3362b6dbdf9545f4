/**
 * SmallSlabs (studiod/src/link/small-slabs.ts), where small files received whole wait for their
 * commit: a piece is never handed out again while it is held, a slab is reused once all its
 * pieces are released, idle slabs are bounded and dropped by trim, and the pieces are views of
 * SharedArrayBuffers that a worker thread reads in place.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { SLAB_BYTES, SmallSlabs, type SlabPiece } from '@studio321/studiod/link';

/** A deterministic pseudo-random sequence (no flaky seeds). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

t.test('held pieces never overlap; every byte written stays until its piece is released', async (t) => {
  const slabs = new SmallSlabs(2);
  const rand = lcg(7);
  const held: Array<{ piece: SlabPiece; fill: Buffer }> = [];
  let overlaps = 0;
  let damaged = 0;
  let wrongSize = 0;
  for (let i = 0; i < 5_000; i++) {
    if (held.length > 0 && rand() < 0.45) {
      // Release one at random (commits end out of order), after checking its bytes.
      const [h] = held.splice(Math.floor(rand() * held.length), 1);
      if (h === undefined) continue;
      if (!Buffer.from(h.piece.bytes).equals(h.fill)) damaged++;
      h.piece.free();
      h.piece.free(); // twice: no effect
      continue;
    }
    const size = rand() < 0.05 ? 256 * 1024 : 2_000 + Math.floor(rand() * 18_000);
    const piece = slabs.take(size);
    const fill = randomBytes(size);
    piece.bytes.set(fill);
    if (piece.bytes.byteLength !== size) wrongSize++;
    for (const h of held)
      if (h.piece.bytes.buffer === piece.bytes.buffer) {
        const a = h.piece.bytes.byteOffset;
        const b = piece.bytes.byteOffset;
        if (a < b + size && b < a + h.piece.bytes.byteLength) overlaps++;
      }
    held.push({ piece, fill });
  }
  t.equal(wrongSize, 0, 'every piece has the size asked for');
  t.equal(overlaps, 0, 'no piece handed out over a held one');
  t.equal(damaged, 0, 'no held piece was written over');
  const peak = slabs.allocated;
  for (const h of held.splice(0)) h.piece.free();
  t.equal(slabs.inUse, 0, 'every slab free once every piece is released');
  t.ok(slabs.idle <= 2, `idle slabs bounded (${slabs.idle} <= 2)`);
  t.ok(peak < 5_000 / 4, `slabs reused: ${peak} allocated for 5,000 pieces`);
  slabs.trim();
  t.equal(slabs.idle, 0, 'trim drops the idle slabs');
  const again = slabs.take(10);
  t.equal(slabs.allocated, peak + 1, 'after trim a new slab is allocated');
  again.free();
});

t.test('a slab is reused in place once its pieces are released; sizes outside 0..SLAB_BYTES are refused', async (t) => {
  const slabs = new SmallSlabs();
  const a = slabs.take(SLAB_BYTES / 2);
  const b = slabs.take(SLAB_BYTES / 2);
  t.equal(a.bytes.buffer, b.bytes.buffer, 'two halves of one slab');
  t.equal(slabs.inUse, 1);
  a.free();
  const c = slabs.take(100);
  t.not(c.bytes.buffer, a.bytes.buffer, 'a full slab with a piece held is not cut again');
  t.equal(slabs.inUse, 2);
  b.free();
  t.equal(slabs.inUse, 1, 'the first slab is free again');
  c.free();
  t.equal(slabs.allocated, 2);
  t.throws(() => slabs.take(SLAB_BYTES + 1), TypeError);
  t.throws(() => slabs.take(-1), TypeError);
});

t.test('a piece posted to a worker is read there in place (shared, not copied)', async (t) => {
  const slabs = new SmallSlabs();
  const piece = slabs.take(4096);
  piece.bytes.fill(7);
  const w = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.once('message', (v) => { const shared = v.buffer instanceof SharedArrayBuffer; v[0] = 42; parentPort.postMessage(shared); });`,
    { eval: true },
  );
  t.teardown(() => w.terminate());
  w.postMessage(piece.bytes);
  const shared = await new Promise((r) => w.once('message', r));
  t.equal(shared, true, 'the worker sees a SharedArrayBuffer');
  t.equal(piece.bytes[0], 42, 'and the same memory');
  piece.free();
});
