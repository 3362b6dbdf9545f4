/**
 * IdleReclaim (studiod/src/link/memory-budget.ts): once the link is quiet it gives memory back
 * with a full GC when the heap grew or the link received enough since the last time. A lull in
 * a burst used to set the floor while V8's heap was large, and the GC then never ran once the
 * burst was over (twenty agents: studiod idle at 250–300 MiB with 50 MiB of garbage in its heap).
 * Real timers; the check is observed through `release`, called on every quiet check right before
 * the GC is decided, so nothing here waits a fixed time.
 */
import t from 'tap';
import { IdleReclaim } from '@studio321/studiod/link';
import { waitFor } from '../../lib/studio-harness.js';

/** Far more than the test process' heap can grow: only the bytes received decide. */
const MIN = 2 ** 40;

function reclaim() {
  const seen = { checks: 0, gcs: 0 };
  const r = new IdleReclaim({
    quietMs: 20,
    minBytes: MIN,
    busy: () => false,
    release: () => {
      seen.checks++;
    },
    gc: () => {
      seen.gcs++;
    },
  });
  t.teardown(() => r.close());
  return { r, seen };
}

t.test('a quiet link that received little since the last time is left alone', async (t) => {
  const { r, seen } = reclaim();
  r.touch(1_000);
  await waitFor(() => seen.checks === 1, 'the quiet check ran');
  t.equal(seen.gcs, 0, 'no GC');
  t.equal(r.reclaims, 0);
});

t.test('after a burst the GC runs even though the heap did not grow past the floor', async (t) => {
  const { r, seen } = reclaim();
  // A burst of frames, in pieces: the link received MIN bytes in all.
  for (let i = 0; i < 4; i++) r.touch(MIN / 4);
  await waitFor(() => seen.checks === 1, 'the quiet check ran');
  t.equal(seen.gcs, 1, 'one full GC');
  t.equal(r.reclaims, 1);
  // The count starts again: a little more and quiet again is not worth another one.
  r.touch(10);
  await waitFor(() => seen.checks === 2, 'the next quiet check ran');
  t.equal(seen.gcs, 1, 'no second GC for 10 bytes');
  r.touch(MIN);
  await waitFor(() => seen.checks === 3, 'the third quiet check ran');
  t.equal(seen.gcs, 2, 'another burst, another GC');
});

t.test('while busy, nothing is decided; once not busy the GC runs', async (t) => {
  let busy = true;
  const seen = { checks: 0, gcs: 0 };
  const r = new IdleReclaim({
    quietMs: 20,
    minBytes: MIN,
    busy: () => {
      seen.checks++;
      return busy;
    },
    release: () => undefined,
    gc: () => {
      seen.gcs++;
    },
  });
  t.teardown(() => r.close());
  r.touch(MIN);
  await waitFor(() => seen.checks >= 2, 'checked twice while busy');
  t.equal(seen.gcs, 0, 'no GC while busy');
  busy = false;
  await waitFor(() => seen.gcs === 1, 'the GC once not busy');
  t.equal(r.reclaims, 1);
});
