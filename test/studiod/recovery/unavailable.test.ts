/**
 * Unavailable targets and what the verdict counts, in process (real Catalogue,
 * real target folders, the real LedgerService; MemorySink cloud targets):
 *  - only archive copies count; agent copies are field copies, shown apart;
 *  - a local target whose marker is gone (its root replaced by an empty
 *    folder) is unavailable at once: its copies stop counting, status says
 *    since when and why; the state survives a restart; when it comes back the
 *    counters are what they were — and always equal a full recount;
 *  - a commit's target check and the periodic check notice it too.
 */
import t from 'tap';
import { mkdir, rename } from 'node:fs/promises';
import type { CopyRecord } from '@studio321/studiod';
import { Committer } from '@studio321/studiod/commit';
import { formatAsset, formatStatusReport, type StudioStatus } from '@studio321/studiod/ledger';
import { recoveryFixture, type RecoveryFixture } from '../../lib/recovery-fixture.js';
import { recountLedger, stripCounters, type Counted } from '../../lib/ledger-recount.js';

async function open(t: { teardown(fn: () => unknown): void }): Promise<RecoveryFixture> {
  const fx = await recoveryFixture();
  t.teardown(() => fx.close());
  return fx;
}

function base(fx: RecoveryFixture): StudioStatus {
  const targets: StudioStatus['targets'] = {};
  for (const n of ['mirror', 'raid'] as const) {
    const c = fx.config.targets[n];
    targets[n] = {
      root: c.root,
      device: c.device,
      media: c.media,
      location: c.location,
      freeBytes: 1,
      available: true,
    };
  }
  return {
    software: 'test',
    startedAt: 0,
    port: 0,
    fingerprint: 'x',
    counters: fx.catalogue.counters(),
    sessions: [],
    targets,
    staging: { files: 0, bytes: 0 },
    commitsInFlight: 0,
    lastErrors: [],
  };
}

const recount = (fx: RecoveryFixture): Promise<Counted> => recountLedger(fx.catalogue, fx.service.ledger);
const strip = stripCounters;

async function dropCopy(fx: RecoveryFixture, hash: string, target: string): Promise<void> {
  const c = (await fx.catalogue.copiesOf(hash)).find((x) => x.target === target) as CopyRecord;
  await fx.catalogue.removeCopy(c);
}

t.test('field copies never count: mirror + one cloud + the laptop is NOT 3-2-1', async (t) => {
  const fx = await open(t);
  const [a] = await fx.commit(2);
  if (a === undefined) throw new Error('no asset');
  await dropCopy(fx, a.hash, 'raid');
  await dropCopy(fx, a.hash, 'cloud-west');
  const copies = await fx.catalogue.copiesOf(a.hash);
  t.same(copies.map((c) => c.target).sort(), ['cloud-east', 'laptop', 'mirror']);
  const v = fx.service.ledger.verdict(copies);
  t.notOk(v.compliant, 'three devices with the laptop, two archive copies without it: not compliant');
  t.match(v.reasons.join(' | '), /has 2 of 3/);
  t.same(strip(fx.service.ledger.counters()), await recount(fx));
  t.equal(fx.service.ledger.counters().notCompliant, 1);

  const view = await fx.service.assetView((await fx.catalogue.getAsset(a.hash)) as never);
  t.same(
    view.copies.map((c) => c.target),
    ['cloud-east', 'mirror'],
    'asset: archive copies',
  );
  t.same(
    view.fieldCopies.map((c) => [c.target, c.kind]),
    [['laptop', 'agent']],
    'asset: field copies apart',
  );
  t.match(formatAsset({ assets: [view] }), /field copies \(reported by agents; not counted toward 3-2-1\):\n\s+laptop/);
  const report = await fx.service.report(base(fx));
  t.same(report.fieldCopies, [
    { agentId: 'agent-1', agentName: null, target: 'laptop', copies: 2, bytes: report.fieldCopies[0]?.bytes },
  ]);
  t.notOk(
    report.targetReport.some((r) => r.target === 'laptop'),
    'the laptop is not an archive target row',
  );
  t.match(formatStatusReport(report), /Field copies \(reported by agents; not counted toward 3-2-1\):\n\s+laptop/);
});

t.test(
  'the RAID root replaced by an empty folder: unavailable at once, since/why, counters honest both ways',
  async (t) => {
    const fx = await open(t);
    const assets = await fx.commit(4);
    const first = assets[0];
    if (first === undefined) throw new Error('no asset');
    await dropCopy(fx, first.hash, 'cloud-west'); // mirror + raid + east: compliant only while the RAID counts
    const before = strip(fx.service.ledger.counters());
    t.equal(before.compliant, 4, 'compliant while the RAID is there');

    const raid = fx.config.targets.raid.root;
    await rename(raid, `${raid}.old-disk`);
    await mkdir(raid); // a new empty disk mounted at the root: no marker
    fx.clock.now += 60_000;
    const since = fx.clock.now;
    const report = await fx.service.report(base(fx)); // status checks the targets: no waiting for the timer
    const row = report.targetReport.find((r) => r.target === 'raid');
    t.match(row, {
      available: false,
      unavailable: { since: new Date(since).toISOString(), code: 'STUDIO_TARGET_MISSING', reason: /marker is gone/ },
    });
    t.same(report.unavailableTargets, ['raid']);
    t.equal(report.ledger.compliant, 3, 'the asset that needed the RAID copy is no longer compliant');
    t.equal(report.ledger.notCompliant, 1);
    t.same(strip(fx.service.ledger.counters()), await recount(fx), 'counters equal a full recount');
    t.equal(fx.service.ledger.counters().lacking.raid?.count, 4, 'every asset lacks a counted RAID copy');
    const text = formatStatusReport(report);
    t.notMatch(text, /compliant: \d+ of \d+/, 'status no longer says "N of N compliant"');
    t.match(text, /TARGET RAID UNAVAILABLE since/);
    t.match(text, /why: STUDIO_TARGET_MISSING/);
    const view = await fx.service.assetView((await fx.catalogue.getAsset(first.hash)) as never);
    t.match(
      view.copies.find((c) => c.target === 'raid'),
      { counted: false },
      'asset: the RAID copy is shown, not counted',
    );

    // A restart keeps the state and its "since".
    await fx.reopen();
    t.match(fx.service.availability.state('raid'), { available: false, since, code: 'STUDIO_TARGET_MISSING' });
    t.same(strip(fx.service.ledger.counters()), await recount(fx), 'after reopen: counters equal a recount');
    t.equal(fx.service.ledger.counters().notCompliant, 1);

    // The old disk is back.
    await rename(raid, `${raid}.empty`);
    await rename(`${raid}.old-disk`, raid);
    await fx.service.availability.check();
    t.match(fx.service.availability.state('raid'), { available: true });
    t.same(strip(fx.service.ledger.counters()), before, 'counters exactly as before it went away');
  },
);

t.test('a commit and verify notice an unavailable target; verify does not read it as lost', async (t) => {
  const fx = await open(t);
  await fx.commit(2);
  const mirror = fx.config.targets.mirror.root;
  await rename(mirror, `${mirror}.away`);
  const committer = new Committer({
    catalogue: fx.catalogue,
    targets: fx.config.targets,
    onTargetCheck: (target, err) => fx.service.availability.note(target, err),
  });
  await t.rejects(committer.checkTargets(), { code: 'STUDIO_TARGET_MISSING' }, 'the commit is refused');
  t.match(fx.service.availability.state('mirror'), { available: false, code: 'STUDIO_TARGET_MISSING' });
  t.same(fx.service.ledger.unavailable(), ['mirror'], 'the ledger recounted without the mirror');
  const r = await fx.service.verify();
  t.same(r.lost, [], 'nothing lost');
  t.same(
    r.unchecked.map((u) => u.target),
    ['mirror'],
  );
  await rename(`${mirror}.away`, mirror);
  await fx.service.verify({ target: 'mirror' });
  t.match(fx.service.availability.state('mirror'), { available: true }, 'verify noticed it came back');
  t.same(fx.service.ledger.unavailable(), []);
});

t.test('the periodic check notices a target going and coming back (event-driven, no sleeps)', async (t) => {
  const fx = await open(t);
  await fx.commit(1);
  const { TargetAvailability } = await import('@studio321/studiod/recovery');
  // The interval is injected: the test ticks it (a real one fires every 60 s and is unref'd).
  let tick: () => void = () => undefined;
  let period = 0;
  const av = new TargetAvailability({
    catalogue: fx.catalogue,
    targets: fx.config.targets,
    now: () => fx.clock.now,
    schedule: (fn, ms) => {
      tick = fn;
      period = ms;
      return () => {
        tick = () => undefined;
      };
    },
  });
  await av.open();
  const changes: string[][] = [];
  let wake: () => void = () => undefined;
  av.onChange((down) => {
    changes.push(down);
    wake();
  });
  const next = (): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
    });
  av.start();
  t.equal(period, 60_000, 'every 60 s by default');
  t.teardown(() => av.close());
  const raid = fx.config.targets.raid.root;
  let p = next();
  await rename(raid, `${raid}.away`);
  tick();
  await p;
  p = next();
  await rename(`${raid}.away`, raid);
  tick();
  await p;
  t.same(changes, [['raid'], []], 'gone, then back');
});

t.test(
  'a recount longer than the wait: status answers at once with its progress and no verdicts; the list refuses',
  async (t) => {
    const fx = await recoveryFixture({ service: { recountWaitMs: 0 } });
    t.teardown(() => fx.close());
    const assets = await fx.commit(3);
    const first = assets[0];
    if (first === undefined) throw new Error('no asset');
    await dropCopy(fx, first.hash, 'cloud-west'); // compliant only while the RAID counts
    const before = await fx.service.report(base(fx));
    t.match(before.ledger, { assets: 3, compliant: 3, notCompliant: 0 });
    t.equal(before.recount, null);

    // Catalogue writes held (a long commit batch stands for the catalogue a recount has to get
    // through): the recount that the RAID's loss asks for cannot start until they are released.
    let release: () => void = () => undefined;
    const held = fx.catalogue.exclusive(
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    const raid = fx.config.targets.raid.root;
    await rename(raid, `${raid}.old-disk`);
    await mkdir(raid); // no marker
    const during = await fx.service.report(base(fx));
    t.match(during.recount, { phase: 'waiting', unavailable: ['raid'] }, 'the recount is pending, and says so');
    // Answers about one asset follow the targets available now, before the recount has even started:
    // the asset that needs its RAID copy is not safe (an agent must not be told to format its card).
    const copies = await fx.catalogue.copiesOf(first.hash);
    t.notOk(fx.service.ledger.verdict(copies).compliant, 'its verdict counts no RAID copy');
    t.match(
      await fx.service.agentVerdicts('agent-1', [first.hash]),
      [{ hash: first.hash, known: true, compliant: false }],
      "the agent's verdict too",
    );
    t.match(
      (await fx.service.assetView((await fx.catalogue.getAsset(first.hash)) as never)).copies.find(
        (c) => c.target === 'raid',
      ),
      { counted: false },
    );
    t.same(during.unavailableTargets, ['raid']);
    t.match(
      during.ledger,
      {
        assets: 3,
        groups: 3,
        compliant: null,
        compliantBytes: null,
        notCompliant: null,
        notCompliantBytes: null,
        missing: null,
        groupsCompliant: null,
      },
      'no verdict from before the change: unknown, not "3 compliant"',
    );
    for (const row of during.targetReport)
      if (row.missing !== null) t.same(row.missing, { count: null, bytes: null, oldestCommittedAt: null }, row.target);
    const text = formatStatusReport(during);
    t.match(
      text,
      /3-2-1 verdicts: RECOUNTING after a target's availability changed: waiting for the commits in flight/,
    );
    t.match(text, /not known until it ends/);
    t.match(text, /TARGET RAID UNAVAILABLE since/);
    t.notMatch(text, /every asset is 3-2-1 safe|3-2-1 compliant:/, 'nothing reads as safe');
    t.match(text, /missing here: being recounted/);

    // `assets --unprotected` reads the index the recount rewrites: it refuses rather than list wrong.
    const handlers = new Map<string, (args: Record<string, unknown>, ctx: unknown) => Promise<unknown>>();
    fx.service.registerCommands({ register: (name: string, fn: never) => handlers.set(name, fn) } as never);
    const list = handlers.get('assets');
    if (list === undefined) throw new Error('no assets command');
    await t.rejects(list({ unprotected: true }, {}), {
      code: 'LEDGER_RECOUNTING',
      retryable: true,
      message: /recounted .*waiting for the commits in flight.*Run the command again/,
    });

    release();
    await held;
    await fx.service.ledger.settled();
    t.equal(fx.service.ledger.recounting(), null, 'nothing pending once it ended');
    const after = await fx.service.report(base(fx));
    t.equal(after.recount, null);
    t.match(after.ledger, { assets: 3, compliant: 2, notCompliant: 1 }, 'the verdicts without the RAID');
    t.same(strip(fx.service.ledger.counters()), await recount(fx), 'counters equal a full recount');
    t.notMatch(formatStatusReport(after), /RECOUNTING/);
    const listed = (await list({ unprotected: true }, {})) as { total: number; items: Array<{ hash: string }> };
    t.same(
      listed.items.map((i) => i.hash),
      [first.hash],
      'the list once the recount ended',
    );
    t.equal(listed.total, 1);
  },
);

t.test('the recount progress reads as a share of the assets', async (t) => {
  const { recountShare } = await import('@studio321/studiod/ledger');
  const r = { since: 0, unavailable: ['raid'] };
  t.equal(
    recountShare({ ...r, phase: 'assets', done: 450_000, total: 1_000_000 }),
    '45 % (450,000 of 1,000,000 assets)',
  );
  t.equal(
    recountShare({ ...r, phase: 'assets', done: 5, total: 5 }),
    '99 % (5 of 5 assets)',
    'never 100 % before it ends',
  );
  t.equal(recountShare({ ...r, phase: 'assets', done: 0, total: 0 }), '0 % (0 of 0 assets)');
  t.equal(recountShare({ ...r, phase: 'groups', done: 5, total: 5 }), 'adding up the sidecar groups');
  t.equal(recountShare({ ...r, phase: 'clearing', done: 0, total: 0 }), 'clearing the old verdicts');
});
