/**
 * An upload window boundary crossed mid-upload, against a real s3rver process behind a
 * counting HTTP proxy: the window closes (an injected clock moves) after part 2 of a
 * 4-part upload; no request reaches the server while it is closed; it resumes when the
 * next window opens and completes with the same UploadId, parts 1-2 not sent again.
 */
import t from 'tap';
import { setTimeout as delay } from 'node:timers/promises';
import { createLogger } from '@studio321/protocol';
import { objectKey, type CloudTargetStatus } from '@studio321/studiod/cloud';
import { formatUploadWindow } from '@studio321/studiod/ledger';
import { Metrics, type OpsFigures } from '@studio321/studiod/ops';
import { S3rverProcess } from '../../../lib/s3rver.js';
import { FaultProxy } from '../../../lib/fault-proxy.js';
import {
  CloudFixture,
  target,
  independentClient,
  downloadSha256,
  fileSha256,
  waitFor,
} from '../../../lib/cloud-fixture.js';

const MiB = 1024 * 1024;

/** The studiod_cloud_window_open sample a scrape would show for this status (only the cloud figures matter). */
async function windowGauge(st: CloudTargetStatus | undefined): Promise<number | undefined> {
  if (st === undefined) return undefined;
  const m = new Metrics(createLogger({ name: 'test', level: 'silent' }));
  const ledger = { assets: 0, compliant: 0, notCompliant: 0, notCompliantBytes: 0 } as OpsFigures['ledger'];
  m.set({ at: 0, local: [], copies: {}, cloud: [st], ledger, recounting: null, scrub: [], agents: [] });
  const line = (await m.registry.metrics()).split('\n').find((l) => l.startsWith('studiod_cloud_window_open{'));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

const s3 = new S3rverProcess({ buckets: ['hot'] });
await s3.start();
t.teardown(() => s3.close());

t.test('the window closes after part 2: paused, nothing sent, resumed with the same upload', async (t) => {
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  const proxy = new FaultProxy(() => s3.port);
  await proxy.start();
  t.teardown(() => proxy.close());
  const requests: string[] = [];
  proxy.rule = (req) => {
    requests.push(`${req.method} ${req.url}`);
    return null;
  };

  // Monday 19:00 UTC: the weekday evening window has just opened (2026-12-07 is a Monday).
  let now = Date.parse('2026-12-07T19:00:00Z');
  const cfg = target('nightly', proxy.endpoint, 'hot', {
    concurrency: 1,
    windows: [{ days: 'mon-fri', from: '19:00', to: '07:00', bandwidth: '400MiB/s' }],
    timeZone: 'UTC',
  });
  const fw = await fx.start([cfg], {
    clock: () => now,
    // The clock jumps in this test; a short recheck notices it at once (the default is a minute).
    windowRecheckMs: 20,
    log: (e) => {
      fx.events.push(e);
      // Tuesday 07:00: the window ends while part 3 is due.
      if (e.event === 'cloud.part' && e.part === 2) now = Date.parse('2026-12-08T07:00:00Z');
    },
  });
  const a = await fx.asset(18 * MiB, 'A001.MOV'); // 4 parts of 5 MiB
  await fw.enqueue(a);
  await waitFor(() => fx.events.some((e) => e.event === 'cloud.paused'), 'the upload pauses');
  await fw.idle(); // jobs waiting for a window do not hold idle(), like parked ones

  const parts = (): string[] => requests.filter((r) => r.startsWith('PUT ') && r.includes('partNumber='));
  t.equal(parts().length, 2, 'parts 1 and 2 were sent before the window closed');
  const [st] = await fw.status();
  t.match(
    st,
    {
      pending: 1,
      pendingBytes: 18 * MiB,
      parked: 0,
      uploading: 0,
      lastError: null,
      window: {
        open: false,
        timeZone: 'UTC',
        nextOpen: { at: '2026-12-08T19:00:00.000Z', local: 'Tue 2026-12-08 19:00' },
        closesAt: null,
      },
    },
    'status: closed, the next opening, the queue held; not a failure',
  );
  t.match(
    fx.events.find((e) => e.event === 'cloud.window-closed'),
    { nextOpen: '2026-12-08T19:00:00.000Z' },
  );
  t.equal(
    st?.window === null || st === undefined ? '' : formatUploadWindow(st.window),
    'upload window: closed, next opens Tue 2026-12-08 19:00 UTC (2026-12-08T19:00:00.000Z)',
    'studioctl status: the next opening in local time and ISO',
  );
  t.equal(await windowGauge(st), 0, 'studiod_cloud_window_open is 0');

  // Proving that nothing happens needs a span of time: ~15 rechecks of the window timer.
  const before = requests.length;
  await delay(300);
  t.equal(requests.length, before, 'no request reaches the server while the window is closed');
  t.notOk(
    fx.events.some((e) => e.event === 'cloud.retry' || e.event === 'cloud.parked'),
    'pausing is neither a retry nor a parked job',
  );

  now = Date.parse('2026-12-08T19:00:00Z');
  await waitFor(
    () => fx.events.some((e) => e.event === 'cloud.window-open' && e.closesAt !== null),
    'the window opens',
  );
  await waitFor(() => fx.copies.length === 1, 'the upload completes');
  await fw.idle();

  t.match(
    fx.events.find((e) => e.event === 'cloud.resume'),
    { partsDone: 2, parts: 4 },
    'resumed from part 3',
  );
  const numbers = parts().map((r) => new URL(r.slice(4), 'http://x').searchParams.get('partNumber'));
  t.same(numbers, ['1', '2', '3', '4'], 'every part sent once: 1-2 were not sent again');
  const ids = new Set(parts().map((r) => new URL(r.slice(4), 'http://x').searchParams.get('uploadId')));
  t.equal(ids.size, 1, 'one UploadId for all parts');
  t.equal(
    requests.filter((r) => r.startsWith('POST ') && r.includes('uploads')).length,
    1,
    'one CreateMultipartUpload',
  );
  const c = independentClient(s3.endpoint);
  t.teardown(() => c.destroy());
  t.equal(await downloadSha256(c, 'hot', objectKey(cfg, a.blake3)), await fileSha256(a.path), 'the object is whole');
  const [done] = await fw.status();
  t.match(done, { pending: 0, window: { open: true, bytesPerSec: 400 * MiB, nextOpen: null } });
  t.equal(await windowGauge(done), 1, 'studiod_cloud_window_open is 1');
});
