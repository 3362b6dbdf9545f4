/**
 * The scheduled scrub, in process: a real Catalogue, real mirror and RAID
 * folders, the real LedgerService (its Scrubber calls the same verify and heal
 * as `studioctl verify`); cloud targets are MemorySinks. The clock is the
 * fixture's, the read-rate limiter a recording fake, and the tests drive the
 * scrub a step at a time (no timers, no sleeps).
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile, type ProgressSnapshot } from '@studio321/protocol';
import { ControlSocket, controlRequest } from '@studio321/studiod';
import type { Throttle } from '@studio321/studiod/cloud';
import { QUARANTINE_DIR } from '@studio321/studiod/recovery';
import { rotByte } from '../../lib/bit-rot.js';
import { recoveryFixture, type RecoveryFixture } from '../../lib/recovery-fixture.js';

const DAY = 86_400_000;

async function open(
  t: { teardown(fn: () => unknown): void },
  opts: { cloud?: boolean; random?: () => number } = {},
): Promise<RecoveryFixture & { taken: number[] }> {
  const taken: number[] = [];
  const limiter: Throttle = {
    take: (bytes) => {
      taken.push(bytes);
      return Promise.resolve();
    },
  };
  const fx = await recoveryFixture({
    ...(opts.cloud === undefined ? {} : { cloud: opts.cloud }),
    config: { scrub: { periodDays: 30, bytesPerSecond: 1_000_000, cloudDownloadPercent: 50 } },
    service: {
      limiters: { scrub: limiter },
      scrubChunk: 3,
      ...(opts.random === undefined ? {} : { random: opts.random }),
    },
  });
  t.teardown(() => fx.close());
  return Object.assign(fx, { taken });
}

const status = (fx: RecoveryFixture, target: string) => fx.service.scrubber.statuses().find((s) => s.target === target);

/** Step one target to the end of its pass. */
async function scrubAll(fx: RecoveryFixture, target: string): Promise<void> {
  for (let i = 0; i < 1000 && fx.service.scrubber.due(target); i++) await fx.service.scrubber.stepTarget(target);
}

t.test('the scrub cursor survives a restart and the pass goes on where it stopped', async (t) => {
  const fx = await open(t, { cloud: false });
  const assets = await fx.commit(10);
  t.ok(fx.service.scrubber.due('mirror'), 'never scrubbed: due');
  await fx.service.scrubber.stepTarget('mirror');
  await fx.service.scrubber.stepTarget('mirror');
  t.match(status(fx, 'mirror'), { last: null, current: { assets: 6, ok: 6, healed: 0, lost: 0 } });
  await fx.reopen();
  t.match(status(fx, 'mirror'), { current: { assets: 6, ok: 6 } }, 'the cursor was kept');
  await scrubAll(fx, 'mirror');
  const s = status(fx, 'mirror');
  t.match(s, { current: null, last: { assets: 10, ok: 10, healed: 0, lost: 0, finishedAt: fx.clock.now } });
  t.equal(
    s?.last?.bytes,
    assets.reduce((n, a) => n + a.size, 0),
    'every byte read once',
  );
  t.equal(
    fx.taken.reduce((n, b) => n + b, 0),
    assets.reduce((n, a) => n + a.size, 0),
    'and paid the read-rate limit',
  );
  t.notOk(fx.service.scrubber.due('mirror'), 'not due again before the period');
  fx.clock.now += 30 * DAY;
  t.ok(fx.service.scrubber.due('mirror'), 'due again after periodDays');
});

t.test(
  'a rotted RAID copy found by the scrub is healed from the mirror and the damaged bytes quarantined',
  async (t) => {
    const fx = await open(t, { cloud: false });
    const [a, b] = await fx.commit(5);
    if (a === undefined || b === undefined) throw new Error('no assets');
    const file = join(fx.config.targets.raid.root, a.rel);
    await rotByte(file, 100);
    const rotted = await readFile(file);
    await scrubAll(fx, 'raid');
    t.match(status(fx, 'raid')?.last, { assets: 5, ok: 4, healed: 1, lost: 0 });
    t.equal((await hashFile(file)).blake3, a.hash, 'the RAID copy verifies again');
    t.same(
      await readFile(join(fx.config.targets.raid.root, QUARANTINE_DIR, '2024-05-01', a.rel)),
      rotted,
      'the damaged bytes are kept in the quarantine',
    );
    t.same(fx.service.quarantine.totals(), { raid: { count: 1, bytes: a.size } });
    const copy = (await fx.catalogue.copiesOf(a.hash)).find((c) => c.target === 'raid');
    t.match(copy, { healedFrom: { target: 'mirror' } });
  },
);

t.test('the scrub HEADs every cloud copy and reads a sample of the hot ones in full', async (t) => {
  let n = 0;
  // Every other asset is chosen for a full read (cloudDownloadPercent 50).
  const fx = await open(t, { random: () => (n++ % 2 === 0 ? 0.1 : 0.9) });
  const assets = await fx.commit(4);
  await scrubAll(fx, 'cloud-east');
  t.match(status(fx, 'cloud-east')?.last, { assets: 4, ok: 4, healed: 0, lost: 0 });
  // Chunks of 3 in key order: the 1st and 3rd asset are read in full (one payment), the others HEADed (free).
  const sorted = [...assets].sort((x, y) => (x.hash < y.hash ? -1 : 1));
  t.same(fx.taken, [(sorted[0]?.size ?? 0) + (sorted[2]?.size ?? 0)], 'only full reads pay the read-rate limit');
  await scrubAll(fx, 'cloud-west');
  t.match(status(fx, 'cloud-west')?.last, { assets: 4, ok: 4 }, 'the archive class is HEADed only');
});

t.test('an unmounted target keeps its cursor; nothing is counted until it is back', async (t) => {
  const fx = await open(t, { cloud: false });
  await fx.commit(4);
  await fx.service.scrubber.stepTarget('raid');
  const { rename } = await import('node:fs/promises');
  const root = fx.config.targets.raid.root;
  await rename(root, `${root}.away`);
  await fx.service.scrubber.stepTarget('raid');
  t.match(status(fx, 'raid')?.current, { assets: 3, ok: 3, blocked: { code: 'STUDIO_TARGET_MISSING' } });
  t.equal(fx.catalogue.counters().copies['raid']?.count, 4, 'no copy dropped while the disk is away');
  await rename(`${root}.away`, root);
  await scrubAll(fx, 'raid');
  t.match(status(fx, 'raid')?.last, { assets: 4, ok: 4, lost: 0 });
});

t.test('the scrub takes turns between targets until nothing is due', async (t) => {
  const fx = await open(t, { cloud: false });
  await fx.commit(2);
  t.equal(await fx.service.scrubber.step(), true);
  t.equal(await fx.service.scrubber.step(), true);
  for (let i = 0; i < 10; i++) await fx.service.scrubber.step();
  t.equal(await fx.service.scrubber.step(), false, 'nothing due after both passes');
  t.match(status(fx, 'mirror')?.last, { assets: 2, ok: 2 });
  t.match(status(fx, 'raid')?.last, { assets: 2, ok: 2 });
});

t.test('studioctl verify and target adopt over the control socket: progress lines, then the report', async (t) => {
  const fx = await open(t, { cloud: false });
  const assets = await fx.commit(4);
  const ctl = new ControlSocket(join(fx.dir, 'ctl', 'control.sock'), fx.log);
  fx.service.registerCommands(ctl);
  await ctl.open();
  t.teardown(() => ctl.close());
  // One progress line per half second of the service's clock: each asset advances it by one.
  const progress: ProgressSnapshot[] = [];
  const report = (await controlRequest(ctl.path, 'verify', {}, 60_000, (p) => {
    fx.clock.now += 1000;
    progress.push(p as ProgressSnapshot);
  })) as { assetsChecked: number };
  t.equal(report.assetsChecked, 4);
  t.ok(progress.length >= 1, `${progress.length} progress line(s)`);
  t.match(progress[0], { files: 1, totalFiles: 4, totalBytes: assets.reduce((n, a) => n + a.size, 0) });
  // The refusal travels with its code; nothing recorded.
  await t.rejects(controlRequest(ctl.path, 'target-adopt', { target: 'raid' }), {
    code: 'RECOVERY_ADOPT_CURRENT_DISK',
  });
  t.same(fx.service.adopter.statuses(), []);
});
