/**
 * The worker of small-read.ts: each message is a group of small card files, read whole one after
 * the other by readSmallCardFileSync; the reply holds every file's bytes (moved, not copied) or
 * the error that read gave.
 */
import { parentPort } from 'node:worker_threads';
import type { SmallReadOutcome, SmallReadReply, SmallReadRequest } from './small-read.js';
import { readSmallCardFileSync } from './source-reader.js';
import { AgentError } from '../errors.js';

const port = parentPort;
if (port === null) throw new TypeError('small-read-worker must run in a worker thread');

function outcomeOf(read: () => Uint8Array): SmallReadOutcome {
  try {
    return { ok: true, bytes: read() };
  } catch (err) {
    if (err instanceof AgentError)
      return {
        ok: false,
        agent: {
          code: err.code,
          message: err.message,
          retryable: err.retryable,
          ...(err.detail === undefined ? {} : { detail: err.detail }),
        },
      };
    const e = err as NodeJS.ErrnoException;
    return {
      ok: false,
      system: {
        message: e instanceof Error ? e.message : String(err),
        ...(typeof e.code === 'string' ? { code: e.code } : {}),
        ...(typeof e.errno === 'number' ? { errno: e.errno } : {}),
        ...(typeof e.syscall === 'string' ? { syscall: e.syscall } : {}),
        ...(typeof e.path === 'string' ? { path: e.path } : {}),
      },
    };
  }
}

port.on('message', (req: SmallReadRequest) => {
  const outcomes = req.files.map((f) => outcomeOf(() => readSmallCardFileSync(f.path, f)));
  const moved = outcomes.flatMap((o) => (o.ok && o.bytes.byteLength > 0 ? [o.bytes.buffer as ArrayBuffer] : []));
  port.postMessage({ id: req.id, outcomes } satisfies SmallReadReply, moved);
});
