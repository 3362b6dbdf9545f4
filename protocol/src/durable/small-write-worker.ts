/**
 * The worker of small-writer.ts: each message is a group of small files, written by
 * writeSmallGroup over synchronous file-system calls (sync-fs.ts); the reply holds every
 * file's outcome.
 */
import { parentPort } from 'node:worker_threads';
import { answerSmallGroup, type SmallGroupRequest } from './small-writer.js';

const port = parentPort;
if (port === null) throw new TypeError('small-write-worker must run in a worker thread');
port.on('message', (req: SmallGroupRequest) => {
  void answerSmallGroup(req).then((reply) => port.postMessage(reply));
});
