/** The agent's Hello may report its studio queue; a Hello without it (older agents) is still accepted. */
import t from 'tap';
import { MAGIC, PROTOCOL_VERSION, PROTO_CODES, decodeFrame, encodeFrame, validateMessage } from '@studio321/protocol';

const base = {
  t: 'hello',
  magic: MAGIC,
  version: PROTOCOL_VERSION,
  role: 'agent',
  software: 'field-agent/0.1.0',
} as const;

t.test('queue round-trips; absent stays absent', async (t) => {
  t.same(decodeFrame(encodeFrame({ ...base, queue: { files: 3, bytes: 12_345 } })), {
    ...base,
    queue: { files: 3, bytes: 12_345 },
  });
  t.same(decodeFrame(encodeFrame(base)), base, 'an older agent without a queue report');
});

t.test('a malformed queue is refused', async (t) => {
  for (const queue of [{ files: -1, bytes: 0 }, { files: 1 }, { files: 1.5, bytes: 0 }, 'many']) {
    t.throws(() => validateMessage({ ...base, queue }), { code: PROTO_CODES.invalidField }, JSON.stringify(queue));
  }
});
