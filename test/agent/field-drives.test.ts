/**
 * More than one field drive: `fieldDrives` in the config (`fieldDrive` is its one-element form),
 * each drive verified and back-filled on its own, a missing or full drive reported with its code
 * without failing the others, each counted as a device only when its disk is another one.
 * Real files, real LevelDB, the drives on a real loop device (and a full tmpfs); the card on this
 * machine's disk, the laptop store on a loop device of its own.
 */
import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, ErrorRing, hashFile } from '@studio321/protocol';
import { AGENT_CODES, loadAgentConfig, resolvePaths, resolveTargets } from '@studio321/agent';
import { backfillFieldDrive, ingestFolder } from '@studio321/agent/offload';
import {
  AgentState,
  buildStatus,
  formatStatus,
  buildOffloadReport,
  offloadReportCsv,
  summariseCard,
} from '@studio321/agent/state';
import { makeTestCard } from '../../scripts/dist/make-test-card.js';
import { makeLoopDisk } from '../lib/loop-disk.js';
import { mountTmpfs } from '../lib/tmpfs.js';

t.test('config: fieldDrives, fieldDrive as its one-element form, never both, never one drive twice', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fd-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const load = async (body: object) => {
    const config = join(dir, 'agent.json');
    await writeFile(config, JSON.stringify(body));
    return loadAgentConfig(resolvePaths({ dataDir: join(dir, 'data'), config }, {}));
  };
  t.same((await load({})).fieldDrives, []);
  t.same((await load({ fieldDrive: '/media/a/T7' })).fieldDrives, ['/media/a/T7']);
  t.same((await load({ fieldDrives: ['/media/a/T7', '/media/b/X5'] })).fieldDrives, ['/media/a/T7', '/media/b/X5']);
  await t.rejects(load({ fieldDrive: '/media/a/T7', fieldDrives: ['/media/b/X5'] }), {
    code: 'CONFIG_INVALID',
    message: /together with "fieldDrives"/,
  });
  await t.rejects(load({ fieldDrives: ['/media/a/T7', '/media/a/T7/'] }), {
    code: 'CONFIG_INVALID',
    message: /twice/,
  });
  await t.rejects(load({ store: '/media/a/T7', fieldDrives: ['/media/a/T7'] }), { code: 'CONFIG_INVALID' });
  await t.rejects(load({ fieldDrives: ['relative/path'] }), { code: 'CONFIG_INVALID' });
});

t.test('two field drives and one missing: each verified, each on its own; one disk is one device', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'fd-multi-'));
  // Teardowns run last-first: this one after the unmounts.
  t.teardown(() => rm(base, { recursive: true, force: true }).catch(() => undefined));
  const laptopDisk = await makeLoopDisk(t, base, 'laptop', { sizeMiB: 24, partitions: 0 });
  if ('reason' in laptopDisk)
    return void t.skip(`no loop devices here (${laptopDisk.reason}): this case did not run`, () => undefined);
  const driveDisk = await makeLoopDisk(t, base, 'drive', { sizeMiB: 24, partitions: 0 });
  if ('reason' in driveDisk)
    return void t.skip(`no second loop device (${driveDisk.reason}): this case did not run`, () => undefined);
  const full = join(base, 'full');
  await mkdir(full);
  const tmpfs = await mountTmpfs(t, full, 'size=64k');
  if (!tmpfs.mounted) return void t.skip(`no tmpfs here (${tmpfs.reason}): this case did not run`, () => undefined);

  const store = join(laptopDisk.mounts[0] as string, 'store');
  const driveRoot = driveDisk.mounts[0] as string;
  const drive1 = join(driveRoot, 'studio321');
  const drive2 = join(base, 'not-plugged-in'); // missing: its disk is not there
  const drive3 = join(driveRoot, 'second-folder'); // another folder on drive 1's disk
  await mkdir(drive1);
  const card = join(base, 'card');
  const files = (await makeTestCard(card, { rawSize: 16 * 1024, seed: 31 })).filter((f) => f.size > 0);
  const state = await AgentState.open(join(base, 'data'));
  t.teardown(() => state.close());
  const log = createLogger({
    name: 'field-agent',
    level: 'error',
    lastErrors: new ErrorRing(4),
    stream: { write: () => true },
  });
  const ctx = {
    state,
    store,
    fieldDrives: [drive1, drive2, drive3],
    copiesNeeded: 2,
    log,
    signal: new AbortController().signal,
    sweepTemps: true,
  };

  // 1. drive 2 and drive 3 missing: drive 1 gets its verified copies, the others are reported with their code.
  const first = await ingestFolder(ctx, { root: card, shoot: 'w' });
  t.same(
    first.fieldDriveProblems?.map((p) => [p.code, (p['detail'] as { target: string }).target]),
    [
      [AGENT_CODES.fieldDriveMissing, 'field-drive-2'],
      [AGENT_CODES.fieldDriveMissing, 'field-drive-3'],
    ],
    'each missing drive reported with its code and name',
  );
  t.equal(first.safeToFormat.safe, true, `laptop + drive 1 on two disks (${first.safeToFormat.reason})`);
  const cardRec = (await state.listCards())[0];
  if (cardRec === undefined) throw new Error('no card recorded');
  for (const f of files) {
    const assetHash = (await hashFile(join(card, f.path))).blake3;
    const asset = await state.getAsset(assetHash);
    t.same(
      asset?.copies
        .filter((c) => c.verified)
        .map((c) => c.target)
        .sort(),
      ['field-drive', 'laptop'],
      `${f.path}: laptop + drive 1`,
    );
    t.equal(
      (await hashFile(asset?.paths['field-drive'] ?? '?')).blake3,
      assetHash,
      `${f.path}: drive 1 copy reads back`,
    );
  }

  // 2. Drive 3 plugged in (a folder on drive 1's disk), drive 2 still missing: back-fill fills drive 3 only.
  await mkdir(drive3);
  const { targets, fieldDriveProblems } = await resolveTargets(store, ctx.fieldDrives);
  t.same(
    targets.map((x) => x.name),
    ['laptop', 'field-drive', 'field-drive-3'],
  );
  t.equal(fieldDriveProblems.length, 1);
  const fill = await backfillFieldDrive({ state, targets, sweepTemps: true });
  const [d1, d3] = fill.drives;
  t.same([d1?.target, d1?.missing, d3?.target, d3?.stoppedBy], ['field-drive', 0, 'field-drive-3', undefined]);
  t.ok((d3?.missing ?? 0) > 0 && d3?.copied === d3?.missing, 'drive 3 got a copy of every asset');
  for (const f of files) {
    const h = (await hashFile(join(card, f.path))).blake3;
    const asset = await state.getAsset(h);
    const p3 = asset?.paths['field-drive-3'];
    t.ok(p3?.startsWith(`${drive3}/`), `${f.path}: its drive 3 copy is on drive 3`);
    t.equal((await hashFile(p3 ?? '?')).blake3, h);
  }
  const summary = await summariseCard(state, cardRec, 3);
  t.equal(summary.safeToFormat.safe, false, 'three copies, but drive 1 and drive 3 share a disk: 2 devices');
  t.match(summary.safeToFormat.reason, /the field-drive and field-drive-3 copies are on one physical disk/);
  t.equal((await summariseCard(state, cardRec, 2)).safeToFormat.safe, true);

  // 3. Status shows each destination, its disk, what waits for it.
  const st = await buildStatus(state, 2, ctx.fieldDrives, store);
  t.same(
    st.fieldDrives?.map((d) => [d.target, d.connected, d.waitingFiles > 0]),
    [
      ['field-drive', true, false],
      ['field-drive-2', false, true],
      ['field-drive-3', true, false],
    ],
  );
  t.equal(st.fieldDrives?.[0]?.device, st.fieldDrives?.[2]?.device, 'drives 1 and 3: one disk');
  t.not(st.laptop?.device, st.fieldDrives?.[0]?.device);
  const text = formatStatus(st);
  t.match(text, new RegExp(`Field drive ${drive1}: connected; every file has its copy there; on disk:loop:`));
  t.match(
    text,
    new RegExp(`Field drive \\(field-drive-2\\) ${drive2}: NOT connected; \\d+ files .* made when it is connected`),
  );
  t.match(text, /Laptop store .*: on disk:loop:/);
  const csv = offloadReportCsv(await buildOffloadReport(state, cardRec));
  t.match(
    csv.split('\r\n')[0],
    /,laptop,field-drive,field-drive-3,studio mirror,/,
    'the report has a column per drive',
  );

  // 4. Drive 2 appears on a full disk: its back-fill stops with AGENT_STORE_FULL; the others are untouched.
  const fullDrive = join(full, 'studio321');
  await mkdir(fullDrive);
  await writeFile(join(full, 'filler'), Buffer.alloc(60 * 1024));
  const withFull = await resolveTargets(store, [drive1, fullDrive, drive3]);
  const r = await backfillFieldDrive({ state, targets: withFull.targets, sweepTemps: true });
  const d2 = r.drives.find((d) => d.target === 'field-drive-2');
  t.equal(d2?.stoppedBy?.code, AGENT_CODES.storeFull, 'the full drive stops its own back-fill');
  t.same(
    r.drives.filter((d) => d.target !== 'field-drive-2').map((d) => [d.target, d.missing, d.stoppedBy]),
    [
      ['field-drive', 0, undefined],
      ['field-drive-3', 0, undefined],
    ],
  );
  for (const a of await state.listAssets()) {
    const c = a.copies.find((x) => x.target === 'field-drive-2');
    if (c !== undefined)
      t.equal((await hashFile(a.paths['field-drive-2'] ?? '?')).blake3, a.blake3, 'what was recorded is whole');
  }
});
