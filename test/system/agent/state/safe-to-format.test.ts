/**
 * Safe to format is never "yes" while a copy is missing; the studio queue API
 * (pendingForStudio / recordStudioReceipt / queueDepth) against a real LevelDB.
 */
import t from 'tap';
import { join } from 'node:path';
import { makeTestCard } from '../../../../scripts/dist/make-test-card.js';
import { AgentState } from '@studio321/agent/state';
import { offloadCard } from '@studio321/agent/offload';
import { scanCard } from '@studio321/agent/card';
import { resolveTargets } from '@studio321/agent';
import { summariseCard } from '@studio321/agent/state';
import {
  evaluateSafeToFormat,
  tallyOfFiles,
  type AssetRecord,
  type CardRecord,
  type FileRecord,
} from '@studio321/agent/state';

/** The verdict on these files, tallied as the card's status summary counts them. */
const evaluate = (card: CardRecord, files: FileRecord[], assets: ReadonlyMap<string, AssetRecord>, n: number) =>
  evaluateSafeToFormat(card, tallyOfFiles(card, files, assets, n), n);
import { tmpfsDirs } from '../../../lib/agent-harness.js';

t.test('one device is not enough; two folders on one disk are one device; a studio receipt adds devices', async (t) => {
  const m = await tmpfsDirs(t, { store: '32m' });
  if (m === undefined)
    return void t.skip('cannot mount tmpfs here (it needs root): this case did not run', () => undefined);
  const store = m.dirs['store'] as string;
  const card = join(m.base, 'card');
  const files = await makeTestCard(card, { rawSize: 16 * 1024 });
  const state = await AgentState.open(join(m.base, 'data'));
  t.teardown(() => state.close());
  // field drive folder on the SAME tmpfs as the store: one device
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(store, '..', 'store', 'field'), { recursive: true });
  const { targets } = await resolveTargets(join(store, 'laptop'), [join(store, 'field')]);
  t.equal(targets.length, 2);
  t.equal(targets[0]?.device, targets[1]?.device, 'same st_dev');
  const input = { id: 'C-1', label: 'C', kind: 'card' as const, source: card, shoot: 's' };
  const r = await offloadCard({ state, targets }, { root: card, card: input, scan: await scanCard(card) });
  t.equal(r.copied, files.length);
  let s = await summariseCard(state, (await state.getCard('C-1'))!, 2);
  t.equal(s.safeToFormat.safe, false, 'laptop + field drive on one disk is one device');
  t.equal(s.safeToFormat.short, files.length);
  t.match(s.safeToFormat.reason, /fewer than 2 verified copies on distinct devices/);

  // The studio receipts all but one asset: still not safe; then the last: safe.
  t.same(await state.queueDepth(), { files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) });
  const pending = await state.pendingForStudio(100);
  t.equal(pending.length, files.length);
  t.ok(pending.every((p) => p.copies.length === 2 && p.storePath.startsWith(join(store, 'laptop'))));
  const firstTwo = await state.pendingForStudio(2);
  const nextTwo = await state.pendingForStudio(2, firstTwo[1]!.blake3);
  t.same(
    nextTwo.map((p) => p.blake3),
    pending.slice(2, 4).map((p) => p.blake3),
    'paging with after',
  );
  const receipt = (blake3: string, size: number) => ({
    blake3,
    size,
    committedAt: new Date().toISOString(),
    copies: [
      {
        target: 'mirror',
        device: 'mirror-a',
        path: `x/${blake3}`,
        media: 'hdd',
        location: 'studio',
        verifiedAt: new Date().toISOString(),
        method: 'readback-blake3',
      },
      {
        target: 'raid',
        device: 'raid-1',
        path: `x/${blake3}`,
        media: 'raid-hdd',
        location: 'studio',
        verifiedAt: new Date().toISOString(),
        method: 'readback-blake3',
      },
    ],
  });
  for (const p of pending.slice(0, -1)) await state.recordStudioReceipt(receipt(p.blake3, p.size));
  s = await summariseCard(state, (await state.getCard('C-1'))!, 2);
  t.equal(s.safeToFormat.safe, false, 'one file still short');
  t.equal(s.safeToFormat.short, 1);
  const last = pending.at(-1)!;
  await state.recordStudioReceipt(receipt(last.blake3, last.size));
  s = await summariseCard(state, (await state.getCard('C-1'))!, 2);
  t.equal(s.safeToFormat.safe, true, s.safeToFormat.reason);
  t.equal(s.atStudioFiles, files.length);
  t.same(await state.queueDepth(), { files: 0, bytes: 0 });
  t.same(await state.pendingForStudio(10), []);
  // policy of 4 copies: laptop + mirror + raid = 3 → no
  s = await summariseCard(state, (await state.getCard('C-1'))!, 4);
  t.equal(s.safeToFormat.safe, false);
});

t.test('pure verdict: when in doubt, not safe', async (t) => {
  const card = {
    id: 'C',
    label: 'C',
    kind: 'card' as const,
    source: '/x',
    shoot: 's',
    firstSeen: '',
    lastSeen: '',
    scan: 1,
    scanEntries: 1,
    scanComplete: true,
    dev: 5,
    disk: 'disk:wwid:card',
  };
  const file = {
    card: 'C',
    path: 'DCIM/A.CR3',
    size: 1,
    mtimeMs: 0,
    scan: 1,
    state: 'verified' as const,
    blake3: 'b'.repeat(64),
  };
  const copy = (device: string) => ({
    target: device,
    device,
    media: 'ssd',
    location: 'field',
    offsite: false,
    verified: true,
  });
  const asset = (devices: string[]) =>
    new Map([
      [
        file.blake3,
        {
          blake3: file.blake3,
          size: 1,
          storePath: 'x',
          paths: {},
          copies: devices.map(copy),
          names: [],
          verifiedAt: '',
        },
      ],
    ]);
  t.equal(evaluate(card, [file], asset(['disk:wwid:1', 'disk:wwid:2']), 2).safe, true);
  t.equal(
    evaluate(card, [file], asset(['disk:wwid:1', 'disk:wwid:card']), 2).safe,
    false,
    'a copy on the card itself does not count',
  );
  t.equal(
    evaluate(card, [file], asset(['disk:wwid:1', 'local:5']), 2).safe,
    false,
    'nor one on the card’s file system, as an older agent recorded it',
  );
  t.equal(evaluate(card, [file], asset(['disk:wwid:1', 'disk:wwid:1,wwid:2']), 2).safe, false, 'one disk shared');
  t.equal(evaluate(card, [file], asset(['nodisk:40', 'nodisk:41']), 2).safe, false, 'disks not known');
  t.equal(evaluate(card, [file], asset(['local:1', 'local:2']), 2).safe, false, 'not refreshed since');
  t.equal(
    evaluate({ ...card, scanComplete: false }, [file], asset(['disk:wwid:1', 'disk:wwid:2']), 2).safe,
    false,
    'listing never finished',
  );
  t.equal(
    evaluate(
      { ...card, lastRun: { state: 'running', startedAt: '' } },
      [file],
      asset(['disk:wwid:1', 'disk:wwid:2']),
      2,
    ).safe,
    false,
    'offload interrupted',
  );
  t.equal(evaluate(card, [{ ...file, state: 'failed' }], asset(['disk:wwid:1', 'disk:wwid:2']), 2).safe, false);
  t.equal(evaluate(card, [file], new Map(), 2).safe, false, 'asset record missing');
  t.equal(evaluate({ ...card, scanEntries: 0 }, [], new Map(), 2).safe, false, 'no files at all');
  t.equal(
    evaluate(
      card,
      [{ ...file, warning: { code: 'AGENT_ZERO_BYTE_FILE', message: '' } }],
      asset(['disk:wwid:1', 'disk:wwid:2']),
      2,
    ).safe,
    false,
  );
});
