/**
 * KeyedLocks (protocol/src/keyed-locks.ts): holders of one key run one after another, of other
 * keys at once; several keys taken in opposite orders by two takers do not deadlock; `run` gives
 * its key back when its function throws.
 */
import t from 'tap';
import { KeyedLocks } from '@studio321/protocol';

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

t.test('one key: one holder at a time, in order; other keys at once', async (t) => {
  const locks = new KeyedLocks();
  const order: string[] = [];
  const first = await locks.take(['a']);
  const second = locks.take(['a']).then((give) => {
    order.push('second a');
    give();
  });
  const other = locks.take(['b']).then((give) => {
    order.push('b');
    give();
  });
  await other;
  t.same(order, ['b'], 'b is held while a is');
  order.push('first a given back');
  first();
  first(); // twice: no effect
  await second;
  t.same(order, ['b', 'first a given back', 'second a']);
});

t.test('two takers of the same keys in opposite orders both get them', async (t) => {
  const locks = new KeyedLocks();
  const held = gate();
  const one = locks.take(['x', 'y']).then(async (give) => {
    await held.promise;
    give();
    return 'one';
  });
  const two = locks.take(['y', 'x']).then((give) => {
    give();
    return 'two';
  });
  held.open();
  t.same(await Promise.all([one, two]), ['one', 'two']);
  t.same(await locks.run('x', async () => 'free again'), 'free again');
});

t.test('run gives the key back when its function throws', async (t) => {
  const locks = new KeyedLocks();
  await t.rejects(
    locks.run('k', async () => {
      throw Object.assign(new Error('boom'), { code: 'TEST_BOOM' });
    }),
    { code: 'TEST_BOOM' },
  );
  t.equal(await locks.run('k', async () => 42), 42, 'the next holder runs');
});
