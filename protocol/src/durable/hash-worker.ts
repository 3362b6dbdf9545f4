/**
 * Worker side of the hash pool:
 *  - streaming states by id, hashing the chunks it is sent (transferred, not
 *    copied), replying to every update so the sender can bound the bytes in flight;
 *  - file lanes by id: it opens the file and reads it back itself, up to the
 *    durable mark each `lane-advance` names, to end of file on `lane-finish`
 *    (reads are synchronous: they block this worker only).
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { createHasher, type Hasher } from '../hash.js';
import type { HashRequest, HashReply } from './hash-pool.js';
import { alignedBuffer, DIRECT_ALIGN, directOk } from './direct-io.js';

const port = parentPort;
if (port === null) throw new TypeError('hash-worker must run in a worker thread');
const states = new Map<number, Hasher>();

interface Lane {
  fd: number;
  path: string;
  /** The same file with O_DIRECT, opened by the first whole-block read after lane-direct; -2 not yet, -1 none. */
  directFd: number;
  hasher: Hasher;
  pos: number;
  /** A read failed: reported by lane-finish. */
  error: { message: string; code?: string } | undefined;
}
const lanes = new Map<number, Lane>();

/** One buffer for every lane: reads never overlap in this thread. Page-aligned, for direct reads. */
const LANE_READ = 4 * 1024 * 1024;
const buf = alignedBuffer(LANE_READ);

/** Reads and hashes [lane.pos, upTo); stops at end of file. Returns false at end of file. */
function pump(lane: Lane, upTo: number): boolean {
  while (lane.error === undefined && lane.pos < upTo) {
    let n: number;
    try {
      const want = Math.min(LANE_READ, upTo - lane.pos);
      // Direct: whole blocks only (at end of file the read comes back short); a tail below the
      // durable mark that is not a whole block goes through the ordinary descriptor.
      const whole = want === LANE_READ ? want : want - (want % DIRECT_ALIGN);
      const direct = lane.directFd !== -1 && directOk(buf, lane.pos, whole);
      if (direct && lane.directFd === -2) lane.directFd = openDirectSync(lane.path);
      n =
        direct && lane.directFd >= 0
          ? readSync(lane.directFd, buf, 0, whole, lane.pos)
          : readSync(lane.fd, buf, 0, want, lane.pos);
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

function closeLane(lane: Lane): void {
  for (const fd of [lane.fd, lane.directFd]) {
    if (fd < 0) continue;
    try {
      closeSync(fd);
    } catch {
      // already gone
    }
  }
}

function openDirectSync(path: string): number {
  if (constants.O_DIRECT === undefined || constants.O_DIRECT === 0) return -1;
  try {
    return openSync(path, constants.O_RDONLY | constants.O_DIRECT);
  } catch {
    return -1; // no O_DIRECT on this file system: the ordinary descriptor reads it all
  }
}

function dropLane(id: number): void {
  const lane = lanes.get(id);
  if (lane === undefined) return;
  lanes.delete(id);
  lane.hasher.dispose();
  closeLane(lane);
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
        lanes.set(m.id, { fd, path: m.path, directFd: -1, hasher: createHasher(m.engine), pos: 0, error: undefined });
        reply = { t: 'opened', id: m.id };
        break;
      }
      case 'lane-direct': {
        // The writer wrote with O_DIRECT: the page cache holds none of it, read the disk the same way.
        const lane = lanes.get(m.id);
        if (lane !== undefined && lane.directFd === -1) lane.directFd = -2;
        return;
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
        closeLane(lane); // the digest is what was read
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
