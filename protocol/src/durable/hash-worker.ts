/**
 * Worker side of the hash pool:
 *  - streaming states by id, hashing the chunks it is sent (transferred, not
 *    copied), replying to every update so the sender can bound the bytes in flight;
 *  - file lanes by id: it opens the file and reads it back itself, up to the
 *    durable mark each `lane-advance` names, to end of file on `lane-finish`
 *    (reads are synchronous: they block this worker only).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { createHasher, type Hasher } from '../hash.js';
import type { HashRequest, HashReply } from './hash-pool.js';

const port = parentPort;
if (port === null) throw new TypeError('hash-worker must run in a worker thread');
const states = new Map<number, Hasher>();

interface Lane {
  fd: number;
  hasher: Hasher;
  pos: number;
  /** A read failed: reported by lane-finish. */
  error: { message: string; code?: string } | undefined;
}
const lanes = new Map<number, Lane>();

/** One buffer for every lane: reads never overlap in this thread. */
const LANE_READ = 4 * 1024 * 1024;
const buf = Buffer.allocUnsafeSlow(LANE_READ);

/** Reads and hashes [lane.pos, upTo); stops at end of file. Returns false at end of file. */
function pump(lane: Lane, upTo: number): boolean {
  while (lane.error === undefined && lane.pos < upTo) {
    let n: number;
    try {
      n = readSync(lane.fd, buf, 0, Math.min(LANE_READ, upTo - lane.pos), lane.pos);
    } catch (err) {
      const e = err as Error & { code?: string };
      lane.error = { message: e.message, ...(e.code === undefined ? {} : { code: e.code }) };
      return false;
    }
    if (n === 0) return false;
    lane.hasher.update(n === LANE_READ ? buf : buf.subarray(0, n));
    lane.pos += n;
  }
  return true;
}

function dropLane(id: number): void {
  const lane = lanes.get(id);
  if (lane === undefined) return;
  lanes.delete(id);
  lane.hasher.dispose();
  try {
    closeSync(lane.fd);
  } catch {
    // already gone
  }
}

port.on('message', (m: HashRequest) => {
  let reply: HashReply;
  try {
    switch (m.t) {
      case 'update': {
        let h = states.get(m.id);
        if (h === undefined) {
          h = createHasher(m.engine);
          states.set(m.id, h);
        }
        h.update(m.buf);
        // Give the buffer back (transferred) for reuse: no garbage piles up in this heap.
        port.postMessage({ t: 'ack', id: m.id, buf: m.buf } satisfies HashReply, [m.buf.buffer as ArrayBuffer]);
        return;
      }
      case 'digest': {
        const h = states.get(m.id) ?? createHasher();
        states.delete(m.id);
        reply = { t: 'digest', id: m.id, hex: h.digest() };
        break;
      }
      case 'drop': {
        states.get(m.id)?.dispose();
        states.delete(m.id);
        dropLane(m.id);
        return;
      }
      case 'lane-open': {
        const fd = openSync(m.path, 'r');
        lanes.set(m.id, { fd, hasher: createHasher(m.engine), pos: 0, error: undefined });
        reply = { t: 'opened', id: m.id };
        break;
      }
      case 'lane-advance': {
        const lane = lanes.get(m.id);
        if (lane !== undefined) pump(lane, m.upTo);
        return;
      }
      case 'lane-finish': {
        const lane = lanes.get(m.id);
        if (lane === undefined) throw new Error('no such lane');
        pump(lane, Number.MAX_SAFE_INTEGER);
        const error = lane.error;
        const done = { size: lane.pos, hex: error === undefined ? lane.hasher.digest() : '' };
        if (error !== undefined) lane.hasher.dispose();
        lanes.delete(m.id);
        try {
          closeSync(lane.fd);
        } catch {
          // the digest is what was read
        }
        reply = error === undefined ? { t: 'lane', id: m.id, ...done } : { t: 'error', id: m.id, ...error };
        break;
      }
    }
  } catch (err) {
    states.get(m.id)?.dispose();
    states.delete(m.id);
    dropLane(m.id);
    const e = err as Error & { code?: string };
    reply = {
      t: 'error',
      id: m.id,
      message: e instanceof Error ? e.message : String(err),
      ...(typeof e.code === 'string' ? { code: e.code } : {}),
    };
  }
  port.postMessage(reply);
});
