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

function reclaim(settleMs = 0) {
  const seen = { checks: 0, gcs: 0 };
  const r = new IdleReclaim({
    quietMs: 20,
    minBytes: MIN,
    settleMs,
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
    settleMs: 0,
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

t.test('a settling GC follows a reclaim once the link stayed quiet, once', async (t) => {
  const { r, seen } = reclaim(20);
  r.touch(MIN);
  await waitFor(() => seen.gcs === 2, 'the reclaim, then the settling GC');
  t.equal(r.reclaims, 1);
  t.equal(r.settles, 1);
  t.equal(seen.checks, 2, 'the pool was released before each');
  // Nothing more until the link is used again: a quiet check for a little, no GC, no settling.
  r.touch(10);
  await waitFor(() => seen.checks === 3, 'the next quiet check ran');
  t.equal(seen.gcs, 2, 'no GC for 10 bytes, and no second settling GC');
  t.equal(r.settles, 1);
});

t.test('the tail of a burst, under the reclaim threshold, still gets the settling GC', async (t) => {
  const { r, seen } = reclaim(20);
  // Less than MIN since the last GC, but more than RECLAIM_SETTLE_MIN_BYTES (1 MiB).
  r.touch(2 * 1024 * 1024);
  await waitFor(() => seen.gcs === 1, 'the settling GC');
  t.equal(r.reclaims, 0, 'no reclaim');
  t.equal(r.settles, 1);
  t.equal(seen.checks, 2, 'the quiet check, then the settling GC, each released the pool');
  // Its count starts again: a little more is left alone.
  r.touch(10);
  await waitFor(() => seen.checks === 3, 'the next quiet check ran');
  t.equal(seen.gcs, 1);
  t.equal(r.settles, 1);
});

t.test('a frame after the reclaim puts its settling GC off to the next quiet period', async (t) => {
  const seen = { checks: 0, gcs: 0 };
  const r: IdleReclaim = new IdleReclaim({
    quietMs: 20,
    minBytes: MIN,
    settleMs: 20,
    busy: () => false,
    release: () => {
      seen.checks++;
    },
    gc: () => {
      seen.gcs++;
      // Right after the reclaim's check returns (before any timer): a frame arrives.
      if (seen.gcs === 1) queueMicrotask(() => r.touch(10));
    },
  });
  t.teardown(() => r.close());
  r.touch(MIN);
  // The settling timer was armed before the touch's quiet timer, with the same delay: had the
  // touch not cleared it, it would have fired before this second check.
  await waitFor(() => seen.checks === 2, 'the quiet check after the frame ran');
  t.equal(seen.gcs, 1, 'only the reclaim');
  t.equal(r.settles, 0);
  // Put off, not away: that quiet check (10 bytes, nothing to reclaim) arms it again, and it runs.
  await waitFor(() => r.settles === 1, 'the settling GC after the next quiet period');
  t.equal(seen.gcs, 2, 'the reclaim, then its settling GC');
  t.equal(r.reclaims, 1);
});

t.test('no settling GC while work is going on', async (t) => {
  let busy = false;
  let busyAsked = 0;
  const seen = { gcs: 0 };
  const r = new IdleReclaim({
    quietMs: 20,
    minBytes: MIN,
    settleMs: 20,
    busy: () => {
      busyAsked++;
      return busy;
    },
    release: () => undefined,
    gc: () => {
      seen.gcs++;
      busy = true;
    },
  });
  t.teardown(() => r.close());
  r.touch(MIN);
  await waitFor(() => seen.gcs === 1 && busyAsked === 2, 'the reclaim, then the settling check');
  t.equal(seen.gcs, 1, 'no settling GC while busy');
  t.equal(r.settles, 0);
});

t.test('malloc_trim runs right after each GC, the reclaim’s and the settling one, and never without one', async (t) => {
  const order: string[] = [];
  const r = new IdleReclaim({
    quietMs: 20,
    minBytes: MIN,
    settleMs: 20,
    busy: () => false,
    release: () => order.push('release'),
    gc: () => order.push('gc'),
    trim: () => order.push('trim'),
  });
  t.teardown(() => r.close());
  r.touch(MIN);
  await waitFor(() => r.settles === 1, 'the reclaim, then the settling GC');
  t.same(order, ['release', 'gc', 'trim', 'release', 'gc', 'trim']);
  // A quiet check that gives nothing back trims nothing either.
  r.touch(10);
  await waitFor(() => order.length === 7, 'the next quiet check ran');
  t.same(order.slice(6), ['release'], 'no GC, no trim');
});
