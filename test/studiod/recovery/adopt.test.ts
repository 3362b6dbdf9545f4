/**
 * Adopting a new disk, in process: a real Catalogue, real mirror and RAID
 * folders, the real LedgerService (its Adopter runs the refill); cloud targets
 * are MemorySinks. The RAID's disk "dies" (its root replaced by an empty
 * folder); `adopt` writes a new marker (raid-2), marks the old copies lost and
 * refills the new disk through remake-copy, verified. The read-rate limiter is
 * a recording fake (no waiting in tests); its real token bucket is tested on a
 * fake clock.
 */
import t, { type Test } from 'tap';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CodedError, hashFile } from '@studio321/protocol';
import { TARGET_MARKER } from '@studio321/studiod/commit';
import { RateLimiter, type Throttle } from '@studio321/studiod/cloud';
import type { AdoptEvent } from '@studio321/studiod/recovery';
import { recoveryFixture, type FixtureAsset, type RecoveryFixture } from '../../lib/recovery-fixture.js';

function recordingLimiter(): Throttle & { taken: number[] } {
  const taken: number[] = [];
  return {
    taken,
    take: (bytes: number) => {
      taken.push(bytes);
      return Promise.resolve();
    },
  };
}

async function open(
  t: { teardown(fn: () => unknown): void },
  opts: { cloud?: boolean } = {},
): Promise<RecoveryFixture & { limiter: ReturnType<typeof recordingLimiter> }> {
  const limiter = recordingLimiter();
  const fx = await recoveryFixture({ ...opts, service: { limiters: { refill: limiter } } });
  t.teardown(() => fx.close());
  return Object.assign(fx, { limiter });
}

const root = (fx: RecoveryFixture, target: 'mirror' | 'raid'): string => fx.config.targets[target].root;

/** The RAID's disk dies: a new, empty disk is mounted at its root (with the dot-folder a desktop leaves). */
async function replaceRaid(fx: RecoveryFixture): Promise<void> {
  await rm(root(fx, 'raid'), { recursive: true, force: true });
  await mkdir(join(root(fx, 'raid'), '.Trash-1000'), { recursive: true });
}

async function expectCode(t: Test, p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
    t.fail(`expected ${code}`);
  } catch (err) {
    t.equal(err instanceof CodedError ? err.code : String(err), code, code);
  }
}

async function raidCopies(fx: RecoveryFixture): Promise<Array<{ hash: string; device: string }>> {
  const out = [];
  for await (const c of fx.catalogue.copies()) if (c.target === 'raid') out.push({ hash: c.hash, device: c.device });
  return out;
}

async function sameOnBoth(t: Test, fx: RecoveryFixture, assets: FixtureAsset[]): Promise<void> {
  for (const a of assets) {
    const raid = await hashFile(join(root(fx, 'raid'), a.rel));
    t.equal(raid.blake3, a.hash, `${a.rel}: the RAID copy verifies`);
    t.same(await readFile(join(root(fx, 'raid'), a.rel)), await readFile(join(root(fx, 'mirror'), a.rel)));
  }
}

t.test('adopt refuses a root that is not a new, empty disk, and changes nothing', async (t) => {
  const fx = await open(t, { cloud: false });
  await fx.commit(2);
  await expectCode(t, fx.service.adopter.adopt('raid'), 'RECOVERY_ADOPT_CURRENT_DISK');
  await replaceRaid(fx);
  await writeFile(join(root(fx, 'raid'), 'notes.txt'), 'not empty');
  await expectCode(t, fx.service.adopter.adopt('raid'), 'RECOVERY_ADOPT_NOT_EMPTY');
  await expectCode(t, fx.service.adopter.adopt('laptop'), 'RECOVERY_BAD_ARGUMENT');
  t.same(fx.service.adopter.statuses(), [], 'no adoption recorded');
  t.equal(fx.config.targets.raid.device, 'raid-1', 'the device is unchanged');
  t.equal((await raidCopies(fx)).length, 2, 'the old copies are still recorded');
  t.same((await readdir(root(fx, 'raid'))).sort(), ['.Trash-1000', 'notes.txt'], 'no marker written');
});

t.test('adopt → old copies lost at once → refill from the mirror → every RAID file verified', async (t) => {
  const fx = await open(t, { cloud: false });
  const assets = await fx.commit(5);
  await replaceRaid(fx);
  await fx.service.availability.check();
  t.same(fx.service.availability.unavailable(), ['raid'], 'the RAID is unavailable at once');
  const view = await fx.service.assetView({ hash: assets[0]?.hash ?? '', size: 0, committedAt: 0 });
  t.equal(view.copies.find((c) => c.target === 'raid')?.counted, false, 'its copies do not count');

  const events: AdoptEvent[] = [];
  fx.service.adopter.on((e) => events.push(e));
  const rec = await fx.service.adopter.adopt('raid');
  t.match(rec, { target: 'raid', device: 'raid-2', previous: 'raid-1' }, 'returned at once with the new identity');
  await fx.service.adopter.whenIdle('raid');

  const [status] = fx.service.adopter.statuses();
  t.match(status, { phase: 'done', markedLost: 5, filesDone: 5, totalFiles: 5, failed: 0 });
  t.equal(
    status?.bytesDone,
    assets.reduce((n, a) => n + a.size, 0),
  );
  const marker = JSON.parse(await readFile(join(root(fx, 'raid'), TARGET_MARKER), 'utf8'));
  t.match(marker, { target: 'raid', device: 'raid-2' }, 'the new marker names the new device');
  t.same(
    (await raidCopies(fx)).map((c) => c.device),
    ['raid-2', 'raid-2', 'raid-2', 'raid-2', 'raid-2'],
    'every RAID copy names the device it is on',
  );
  await sameOnBoth(t, fx, assets);
  t.same(fx.service.availability.unavailable(), [], 'the RAID is available again');
  t.same(fx.catalogue.counters(), await fx.catalogue.recountCounters(), 'catalogue counters consistent');
  t.equal(fx.service.ledger.counters().lacking['raid']?.count ?? 0, 0, 'nothing lacks a RAID copy');
  t.same([...fx.limiter.taken].sort(), assets.map((a) => a.size).sort(), 'every byte read paid the rate limit');
  t.ok(events.some((e) => e.t === 'done'));
  const copy = (await fx.catalogue.copiesOf(assets[0]?.hash ?? '')).find((c) => c.target === 'raid');
  t.match(copy, { healedFrom: { target: 'mirror', kind: 'studio' } }, 'where its bytes came from');

  // New files are committed to the new disk as before; status shows the done adoption.
  const more = await fx.commit(1);
  t.equal((await raidCopies(fx)).length, 6);
  await sameOnBoth(t, fx, more);
  await expectCode(t, fx.service.adopter.adopt('raid'), 'RECOVERY_ADOPT_CURRENT_DISK');
});

t.test('the refill reads from the hot cloud copy when the mirror copy is gone', async (t) => {
  const fx = await open(t);
  const assets = await fx.commit(3);
  const [a] = assets;
  if (a === undefined) throw new Error('no asset');
  await rm(join(root(fx, 'mirror'), a.rel));
  await replaceRaid(fx);
  await fx.service.adopter.adopt('raid');
  await fx.service.adopter.whenIdle('raid');
  const copy = (await fx.catalogue.copiesOf(a.hash)).find((c) => c.target === 'raid');
  t.match(copy, { device: 'raid-2', healedFrom: { target: 'cloud-east', kind: 'cloud' } });
  t.equal((await hashFile(join(root(fx, 'raid'), a.rel))).blake3, a.hash, 'its RAID copy verifies');
  t.match(fx.service.adopter.statuses()[0], { phase: 'done', filesDone: 3, failed: 0 });
});

t.test('a refill stopped midway goes on after a restart; nothing counted twice or unverified', async (t) => {
  const fx = await open(t, { cloud: false });
  const assets = await fx.commit(8);
  await replaceRaid(fx);
  let seen = 0;
  const stopAfter = new Promise<void>((resolve) => {
    fx.service.adopter.on((e) => {
      if (e.t === 'refilled' && ++seen === 3) resolve();
    });
  });
  await fx.service.adopter.adopt('raid');
  await stopAfter;
  await fx.reopen(); // closing aborts the refill mid-file, as a stop would
  fx.config.targets.raid.device = 'raid-1'; // a fresh process reads its config: the adoption comes from the catalogue
  await fx.reopen();
  t.equal(fx.config.targets.raid.device, 'raid-2', 'the adopted device is restored at open');
  const mid = fx.service.adopter.statuses()[0];
  t.equal(mid?.phase, 'refilling');
  t.ok((mid?.filesDone ?? 0) >= 3 && (mid?.filesDone ?? 0) < 8, `stopped midway (${mid?.filesDone})`);
  // Every copy counted so far is on disk and verifies.
  for (const c of await raidCopies(fx)) {
    const a = assets.find((x) => x.hash === c.hash);
    t.equal((await hashFile(join(root(fx, 'raid'), a?.rel ?? ''))).blake3, c.hash);
  }
  // An asset written but not yet counted (a kill after the write): found verified in place, counted once.
  fx.service.adopter.resume();
  await fx.service.adopter.whenIdle('raid');
  t.match(fx.service.adopter.statuses()[0], { phase: 'done', filesDone: 8, totalFiles: 8, failed: 0 });
  await sameOnBoth(t, fx, assets);
  t.same(fx.catalogue.counters(), await fx.catalogue.recountCounters(), 'counters consistent');
  t.same(await temps(root(fx, 'raid')), [], 'no temp file left');
});

t.test('the refill and scrub limiter paces reads on its clock', async (t) => {
  let now = 0;
  const waits: number[] = [];
  const b = new RateLimiter({
    bytesPerSec: 1000,
    burstBytes: 250,
    now: () => now,
    sleep: async (ms) => {
      waits.push(ms);
      now += ms;
    },
  });
  await b.take(250); // the bucket starts full: a quarter second's budget
  now += 250;
  await b.take(250);
  t.same(waits, [], 'no wait within the rate');
  await b.take(1000); // a second's worth: waits until it is paid
  t.equal(
    waits.reduce((a, w) => a + w, 0),
    1000,
    'waits one second in all for 1000 bytes at 1000 B/s',
  );
  now += 60_000; // a long idle: no burst beyond the bucket's depth
  waits.length = 0;
  await b.take(1250);
  t.equal(
    waits.reduce((a, w) => a + w, 0),
    1000,
    'after an idle minute only the bucket (250 bytes) is free',
  );
});

async function temps(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile() && e.name.endsWith('.s321tmp')) out.push(e.name);
  return out;
}
