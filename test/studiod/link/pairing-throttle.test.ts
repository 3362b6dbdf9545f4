/**
 * PairingThrottle with an injected clock: refusals are slowed, an address is locked out after
 * maxRefusals (PROTO_PAIRING_LOCKED, retryable, with the time it lifts), everyone after
 * maxRefusalsTotal (the caller then drops the outstanding codes), and the lockouts lift.
 */
import t from 'tap';
import { PairingThrottle, REFUSAL_DELAY_MS } from '@studio321/studiod/link';

t.test('per address, then everyone; lifted by time or by a new code', async (t) => {
  let now = 1_000_000;
  const p = new PairingThrottle({ maxRefusals: 3, maxRefusalsTotal: 5, lockoutMs: 60_000 }, () => now);
  t.same(p.refused('a'), { delayMs: REFUSAL_DELAY_MS, lockedAll: false }, 'slowed from the first refusal');
  t.same(p.refused('a').delayMs, 2 * REFUSAL_DELAY_MS, 'more with each one');
  p.check('a');
  p.refused('a');
  t.throws(() => p.check('a'), { code: 'PROTO_PAIRING_LOCKED', retryable: true }, 'address a locked');
  t.throws(() => p.check('a'), { message: /locked until 1970-01-01T00:17:40\.000Z \(60 s\)/ }, 'says until when');
  p.check('b');
  p.refused('b');
  t.equal(p.refused('b').lockedAll, true, 'the 5th refusal in all locks everyone');
  t.throws(() => p.check('c'), { code: 'PROTO_PAIRING_LOCKED', message: /from all addresses/ }, 'c too');
  p.codeCreated();
  p.check('c');
  t.throws(() => p.check('a'), { code: 'PROTO_PAIRING_LOCKED' }, 'a new code does not lift an address lockout');
  now += 60_001;
  p.check('a');
  t.equal(p.refused('a').delayMs, REFUSAL_DELAY_MS, 'after the lockout the count starts again');
});
