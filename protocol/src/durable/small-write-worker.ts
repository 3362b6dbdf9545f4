/**
 * The worker of small-writer.ts: each message is a group of small files, written by
 * writeSmallGroup over synchronous file-system calls (sync-fs.ts); the reply holds every
 * file's outcome.
 */
import { parentPort } from 'node:worker_threads';
import { writeSmallGroup, type SmallGroupReply, type SmallGroupRequest } from './small-writer.js';
import { syncFs } from './sync-fs.js';

const port = parentPort;
if (port === null) throw new TypeError('small-write-worker must run in a worker thread');
port.on('message', (req: SmallGroupRequest) => {
  void writeSmallGroup(req.files, syncFs).then(
    (outcomes) => port.postMessage({ id: req.id, outcomes } satisfies SmallGroupReply),
    (err: unknown) =>
      port.postMessage({
        id: req.id,
        fault: err instanceof Error ? err.message : String(err),
      } satisfies SmallGroupReply),
  );
});
