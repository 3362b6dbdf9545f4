/**
 * The agent's small-file worker (small-read.ts): one thread and one isolate for two lanes of
 * groups (GroupWorker's lanes) — `read`: small card files read whole one after the other
 * (answerSmallReads: the bytes moved back, not copied); `write`: the small writer's groups
 * (protocol's answerSmallGroup, as its own small-write-worker answers them).
 */
import { parentPort } from 'node:worker_threads';
import { answerSmallGroup, type SmallGroupRequest } from '@studio321/protocol/durable';
import { answerSmallReads, READ_LANE, type SmallReadRequest } from './small-read.js';

const port = parentPort;
if (port === null) throw new TypeError('small-read-worker must run in a worker thread');

port.on('message', (req: SmallReadRequest | SmallGroupRequest) => {
  if (req.lane === READ_LANE) {
    const { reply, moved } = answerSmallReads(req as SmallReadRequest);
    port.postMessage(reply, moved);
  } else void answerSmallGroup(req as SmallGroupRequest).then((reply) => port.postMessage(reply));
});
