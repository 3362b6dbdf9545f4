import t from 'tap';
import { backoffDelay, formatBytes } from '@studio321/protocol';

t.test('backoffDelay: equal jitter between half the cap and the cap, capped at maxMs', async (t) => {
  t.equal(
    backoffDelay(0, 100, 10_000, () => 0),
    50,
    'first retry, lowest jitter: half of base',
  );
  t.equal(
    backoffDelay(0, 100, 10_000, () => 1),
    100,
    'first retry, highest jitter: base',
  );
  t.equal(
    backoffDelay(3, 100, 10_000, () => 0.5),
    600,
    'grows exponentially: 800 cap → 400 + 200',
  );
  t.equal(
    backoffDelay(50, 100, 10_000, () => 1),
    10_000,
    'never above maxMs however many attempts',
  );
  t.equal(
    backoffDelay(-5, 100, 10_000, () => 0),
    50,
    'a negative attempt is treated as the first',
  );
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(i % 12, 20, 5_000);
    if (d <= 0 || d > 5_000) t.fail(`out of range: ${d}`);
  }
});

t.test('formatBytes: decimal SI units, one format everywhere', async (t) => {
  t.equal(formatBytes(0), '0 B');
  t.equal(formatBytes(999), '999 B');
  t.equal(formatBytes(52_100_000), '52.1 MB');
  t.equal(formatBytes(2_160_000_000), '2.2 GB');
  t.equal(formatBytes(180_000_000), '180 MB');
});
