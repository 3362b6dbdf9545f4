/**
 * Upload windows: the schedule math (weekday sets, windows that cross midnight, the
 * first-listed window's bandwidth, DST days in a named zone) and the strict config
 * checks (every mistake a coded error naming its key path).
 */
import t from 'tap';
import { parseStudiodConfig } from '@studio321/studiod';
import {
  RateLimiter,
  UploadSchedule,
  parseBandwidth,
  windowStatus,
  type CloudTargetStatus,
} from '@studio321/studiod/cloud';
import { conditionsOf, FreeSpaceTrend, type OpsFigures } from '@studio321/studiod/ops';
import { target } from '../../lib/cloud-fixture.js';

const MiB = 1024 * 1024;
const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function schedule(windows: unknown, timeZone: string | undefined = 'UTC'): UploadSchedule {
  const s = UploadSchedule.parse(windows, timeZone, 'cloud-east');
  if (s === null) throw new TypeError('expected a schedule');
  return s;
}

// 2026-12-07 is a Monday.
const studio = schedule([{ days: 'mon-fri', from: '19:00', to: '07:00', bandwidth: '20MiB/s' }, { days: 'sat,sun' }]);

t.test('weekday evenings that cross midnight, and whole weekend days', async (t) => {
  const cases: Array<[string, boolean, number | undefined]> = [
    ['2026-12-07T03:00:00Z', false, undefined], // Monday before dawn: Sunday's whole day ended at midnight
    ['2026-12-07T18:59:00Z', false, undefined],
    ['2026-12-07T19:00:00Z', true, 20 * MiB],
    ['2026-12-08T06:59:59Z', true, 20 * MiB], // Monday's window, Tuesday morning
    ['2026-12-08T07:00:00Z', false, undefined],
    ['2026-12-12T06:30:00Z', true, 20 * MiB], // Friday's window runs into Saturday; listed first, its rate wins
    ['2026-12-12T07:00:00Z', true, undefined], // Saturday's whole day: the target's own rate
    ['2026-12-13T23:59:00Z', true, undefined],
    ['2026-12-14T00:00:00Z', false, undefined],
  ];
  for (const [when, open, rate] of cases) t.same(studio.at(at(when)), { open, bytesPerSec: rate }, when);
});

t.test('the next boundary, the next opening and the closing', async (t) => {
  t.equal(iso(studio.nextChange(at('2026-12-07T10:00:00Z'))), '2026-12-07T19:00:00.000Z');
  t.equal(iso(studio.nextOpen(at('2026-12-07T10:00:00Z'))), '2026-12-07T19:00:00.000Z');
  t.equal(iso(studio.nextOpen(at('2026-12-07T20:00:00Z'))), '2026-12-07T20:00:00.000Z', 'open: now');
  // Friday night: the rate changes at Saturday 07:00, uploads stop only on Monday at midnight.
  t.equal(iso(studio.nextChange(at('2026-12-11T20:00:00Z'))), '2026-12-12T07:00:00.000Z');
  t.equal(iso(studio.closesAt(at('2026-12-11T20:00:00Z'))), '2026-12-14T00:00:00.000Z');
  t.equal(studio.local(at('2026-12-07T19:00:00Z')), 'Mon 2026-12-07 19:00');
  const s = windowStatus(studio, at('2026-12-07T10:00:00Z'), 0);
  t.same(s, {
    open: false,
    bytesPerSec: 0,
    timeZone: 'UTC',
    nextOpen: { at: '2026-12-07T19:00:00.000Z', local: 'Mon 2026-12-07 19:00' },
    closesAt: null,
  });
  const every = schedule([{ days: 'mon-sun' }]);
  t.equal(every.nextChange(at('2026-12-07T10:00:00Z')), null, 'always open: no boundary');
  t.equal(every.closesAt(at('2026-12-07T10:00:00Z')), null);
  const wrap = schedule([{ days: 'fri-mon', from: '22:00', to: '24:00' }]);
  t.ok(wrap.at(at('2026-12-13T22:30:00Z')).open, 'a range wraps past Sunday');
  t.notOk(wrap.at(at('2026-12-09T22:30:00Z')).open, 'Wednesday is not in fri-mon');
  t.equal(iso(wrap.closesAt(at('2026-12-13T22:30:00Z'))), '2026-12-14T00:00:00.000Z', '24:00 is midnight');
});

t.test('DST in a named zone: the skipped hour and the repeated hour (Europe/Berlin)', async (t) => {
  // 2026-03-29: clocks jump from 02:00 to 03:00 (01:00Z). A window from 02:30 opens at the jump.
  const night = schedule([{ from: '02:30', to: '05:00' }], 'Europe/Berlin');
  t.equal(iso(night.nextOpen(at('2026-03-28T00:00:00Z'))), '2026-03-28T01:30:00.000Z', 'the day before: UTC+1');
  t.equal(iso(night.nextOpen(at('2026-03-29T00:00:00Z'))), '2026-03-29T01:00:00.000Z', 'the day itself: at the jump');
  t.equal(iso(night.closesAt(at('2026-03-29T01:30:00Z'))), '2026-03-29T03:00:00.000Z', '05:00 CEST');
  t.equal(iso(night.nextOpen(at('2026-03-29T04:00:00Z'))), '2026-03-30T00:30:00.000Z', 'the day after: UTC+2');
  // 2026-10-25: clocks go back from 03:00 to 02:00 (01:00Z). A boundary in the repeated hour applies twice.
  const evening = schedule([{ from: '19:00', to: '02:30' }], 'Europe/Berlin');
  t.equal(iso(evening.closesAt(at('2026-10-24T18:00:00Z'))), '2026-10-25T00:30:00.000Z', '02:30 CEST');
  t.equal(iso(evening.nextOpen(at('2026-10-25T00:31:00Z'))), '2026-10-25T01:00:00.000Z', '02:00 CET again');
  t.equal(iso(evening.closesAt(at('2026-10-25T01:00:00Z'))), '2026-10-25T01:30:00.000Z', '02:30 CET');
  t.equal(iso(evening.nextOpen(at('2026-10-25T02:00:00Z'))), '2026-10-25T18:00:00.000Z', '19:00 CET');
  t.equal(night.local(at('2026-03-29T01:00:00Z')), 'Sun 2026-03-29 03:00');
  t.equal(
    UploadSchedule.parse([{ days: 'sat' }], undefined, 'x')?.timeZone,
    new Intl.DateTimeFormat().resolvedOptions().timeZone,
    'no timeZone: the server local zone',
  );
});

t.test('bandwidth strings', async (t) => {
  t.equal(parseBandwidth('20MiB/s'), 20 * MiB);
  t.equal(parseBandwidth('500kB/s'), 500_000);
  t.equal(parseBandwidth('1.5 MB/s'), 1_500_000);
  t.equal(parseBandwidth('unlimited'), 0);
  for (const bad of ['20MB', '20 mb/s', '0MiB/s', '-1MiB/s', 'fast']) t.equal(parseBandwidth(bad), undefined, bad);
  const l = new RateLimiter({ bytesPerSec: MiB });
  l.setRate(20 * MiB);
  t.equal(l.bytesPerSec, 20 * MiB);
  t.equal(l.burstBytes, 5 * MiB, 'the default burst follows the rate');
  l.setRate(0);
  t.ok(l.unlimited);
});

t.test('strict config: every mistake is refused with its code and key path', async (t) => {
  const base = {
    stateDir: '/var/lib/studiod',
    targets: {
      mirror: { root: '/srv/mirror', media: 'hdd-mirror', location: 'calgary', device: 'mirror-1' },
      raid: { root: '/srv/raid', media: 'hdd-raid', location: 'calgary', device: 'raid-1' },
    },
  };
  const cloud = target('cloud-east', 'http://127.0.0.1:9', 'b');
  const withTarget = (extra: Record<string, unknown>): unknown => ({ ...base, cloud: [{ ...cloud, ...extra }] });
  const ok = parseStudiodConfig(
    withTarget({
      windows: [{ days: 'mon-fri', from: '19:00', to: '07:00', bandwidth: '20MiB/s' }, { days: 'sat,sun' }],
      timeZone: 'America/Edmonton',
    }),
  );
  t.ok(ok, 'the documented example is accepted');
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ window: [{ days: 'sat' }] }, 'cloud[0].window', /did you mean windows/],
    [{ windows: [{ days: 'mon-fri', form: '19:00', to: '07:00' }] }, 'cloud[0].windows[0].form', /did you mean from/],
    [{ windows: [{ days: 'mon-fry' }] }, 'cloud[0].windows[0].days', /unknown day "fry".*did you mean fri/],
    [{ windows: [{ days: 'mon-tue-wed' }] }, 'cloud[0].windows[0].days', /bad day range/],
    [{ windows: [{ from: '25:00', to: '07:00' }] }, 'cloud[0].windows[0].from', /HH:MM/],
    [{ windows: [{ from: '7:00', to: '19:00' }] }, 'cloud[0].windows[0].from', /HH:MM/],
    [{ windows: [{ from: '19:00', to: '19:00' }] }, 'cloud[0].windows[0].to', /equals "from"/],
    [{ windows: [{ from: '19:00' }] }, 'cloud[0].windows[0].to', /required/],
    [{ windows: [{ bandwidth: '20MB' }] }, 'cloud[0].windows[0].bandwidth', /20MiB\/s/],
    [{ windows: [{ bandwidth: 20_000_000 }] }, 'cloud[0].windows[0].bandwidth', /20MiB\/s/],
    [{ windows: [] }, 'cloud[0].windows', /non-empty/],
    [{ windows: [{ days: 'sat' }], timeZone: 'Europe/Berln' }, 'cloud[0].timeZone', /IANA/],
  ];
  for (const [extra, field, message] of cases) {
    t.throws(
      () => parseStudiodConfig(withTarget(extra)),
      { code: 'CONFIG_INVALID', message, detail: { field } },
      `${JSON.stringify(extra)} → ${field}`,
    );
  }
});

t.test('an unprotected alert says when a closed window lets the waiting uploads go', async (t) => {
  const now = at('2026-12-07T10:00:00Z'); // Monday morning: the window opens at 19:00
  const cloud = (pending: number, window: ReturnType<typeof windowStatus> | null): CloudTargetStatus => ({
    target: 'cloud-east',
    pending,
    pendingBytes: pending * MiB,
    parked: 0,
    oldestQueuedAt: null,
    lastError: null,
    uploading: 0,
    window,
  });
  const figures = (c: CloudTargetStatus[]): OpsFigures =>
    ({ at: now, local: [], copies: {}, cloud: c, scrub: [], agents: [] }) as unknown as OpsFigures;
  const cfg = parseStudiodConfig({
    stateDir: '/var/lib/studiod',
    targets: {
      mirror: { root: '/srv/mirror', media: 'hdd-mirror', location: 'calgary', device: 'mirror-1' },
      raid: { root: '/srv/raid', media: 'hdd-raid', location: 'calgary', device: 'raid-1' },
    },
  }).alerts;
  const overdue = new Map([['wedding', { count: 3, bytes: 3 * MiB, oldestCommittedAt: now - 50 * 3_600_000 }]]);
  const alertOf = (c: CloudTargetStatus[]) =>
    conditionsOf(figures(c), cfg, new FreeSpaceTrend(), overdue).find((a) => a.id === 'unprotected:wedding');

  const closed = alertOf([cloud(3, windowStatus(studio, now, 0))]);
  t.match(
    closed?.summary,
    /Uploads to cloud-east wait for their upload window, which opens .*\(2026-12-07T19:00:00\.000Z\)/,
  );
  t.same(closed?.detail['waitingForWindow'], [
    {
      target: 'cloud-east',
      nextOpen: { at: '2026-12-07T19:00:00.000Z', local: studio.local(at('2026-12-07T19:00:00Z')) },
    },
  ]);
  t.equal(closed?.severity, 'critical', 'still below 3-2-1 past the grace: still critical');
  for (const [what, c] of [
    ['window open', [cloud(3, windowStatus(studio, at('2026-12-07T20:00:00Z'), 0))]],
    ['no windows', [cloud(3, null)]],
    ['nothing waiting', [cloud(0, windowStatus(studio, now, 0))]],
  ] as const) {
    const a = alertOf([...c]);
    t.notMatch(a?.summary, /upload window/, `${what}: no window sentence`);
    t.notOk(a !== undefined && 'waitingForWindow' in a.detail, what);
  }
});
