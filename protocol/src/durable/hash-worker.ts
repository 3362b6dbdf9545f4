/**
 * Worker side of the hash pool: holds BLAKE3 states by id and hashes the chunks
 * it is sent (transferred, not copied). Replies to every update so the sender
 * can bound the bytes in flight.
 */
import { parentPort } from 'node:worker_threads';
import { createHasher, type Hasher } from '../hash.js';
import type { HashRequest, HashReply } from './hash-pool.js';

const port = parentPort;
if (port === null) throw new TypeError('hash-worker must run in a worker thread');
const states = new Map<number, Hasher>();

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
        return;
      }
    }
  } catch (err) {
    states.get(m.id)?.dispose();
    states.delete(m.id);
    reply = { t: 'error', id: m.id, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
