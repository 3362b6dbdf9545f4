/**
 * IdleReclaim (studiod/src/link/idle-memory.ts): one full collection once the link had sessions
 * and then none for idleMs, none while sessions are there or before any came; again after the
 * next sessions leave. The session count is the test's own (the LinkServer gives sessions().length).
 */
import t from 'tap';
import { IdleReclaim } from '@studio321/studiod/link';
import { waitFor } from '../../lib/wait-for.js';

t.test('a full collection once the sessions are gone for idleMs, not before, once per idle period', async (t) => {
  let sessions = 0;
  const r = new IdleReclaim(() => sessions, 40);
  r.start();
  t.teardown(() => r.stop());
  let ticks = 0;
  const tick = setInterval(() => ticks++, 20); // the reclaim's own tick is idleMs / 2
  t.teardown(() => clearInterval(tick));
  await waitFor(() => ticks >= 6, 'idle from the start for a while');
  t.equal(r.collections, 0, 'a studio idle from its start collects nothing');
  sessions = 3;
  const busyFrom = ticks;
  await waitFor(() => ticks >= busyFrom + 6, 'sessions for a while');
  t.equal(r.collections, 0, 'none while sessions are connected');
  sessions = 0;
  await waitFor(() => r.collections === 1, 'collected once idle');
  const idleFrom = ticks;
  await waitFor(() => ticks >= idleFrom + 6, 'idle for longer');
  t.equal(r.collections, 1, 'once per idle period');
  sessions = 1;
  await waitFor(() => ticks >= idleFrom + 12, 'a session again');
  sessions = 0;
  await waitFor(() => r.collections === 2, 'collected again after the next sessions left');
});
