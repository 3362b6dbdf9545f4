/**
 * "Distinct physical devices" is decided by the disk, not the file system.
 *
 * 1. The sysfs walk against fake sysfs trees built in a temp dir: a test double, because
 *    partitions on SATA/NVMe disks with a WWID, device-mapper over two disks and md RAID
 *    cannot be made in this container. The tree hangs off the temp dir's REAL st_dev.
 * 2. macOS: the `diskutil info -plist` path with an injected diskutil (a test double: it
 *    runs only on macOS; the parser and the whole-disk/APFS logic are what is checked here).
 * 3. Real block devices: one loop device with two ext4 partitions (store on one, field
 *    drive on the other) is ONE device and the card is not safe to format; a second loop
 *    device makes it safe; copies an older agent recorded as `local:<st_dev>` count once
 *    refreshed.
 */
import t from 'tap';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Level } from 'level';
import { makeTestCard } from '../../scripts/dist/make-test-card.js';
import {
  countDistinctDevices,
  diskDevice,
  diskIdentity,
  parseDiskutilPlist,
  resolveTargets,
  sharesDisk,
  splitDev,
  type AgentTarget,
} from '@studio321/agent';
import { scanCard } from '@studio321/agent/card';
import { offloadCard } from '@studio321/agent/offload';
import { AgentState, summariseCard } from '@studio321/agent/state';
import { makeLoopDisk } from '../lib/loop-disk.js';
import { mountTmpfs, type Teardownable } from '../lib/tmpfs.js';

async function tempDir(t: Teardownable, prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(d, { recursive: true, force: true }).catch(() => undefined));
  return d;
}

/** Files (path → content) and symlinks (path → { link }) under root. */
async function tree(root: string, spec: Record<string, string | { link: string }>): Promise<void> {
  for (const [p, v] of Object.entries(spec)) {
    const abs = join(root, p);
    await mkdir(dirname(abs), { recursive: true });
    if (typeof v === 'string') await writeFile(abs, v);
    else await symlink(v.link, abs);
  }
}

t.test('fake sysfs: partition to whole disk, dm/md to every disk, the most stable name', async (t) => {
  const base = await tempDir(t, 'disk-id-');
  const probeDir = join(base, 'probe');
  await mkdir(probeDir);
  const { major, minor } = splitDev((await stat(probeDir, { bigint: true })).dev);
  const at = `dev/block/${major}:${minor}`;
  const cases: Array<{ what: string; spec: Record<string, string | { link: string }>; want: string[] }> = [
    {
      what: 'a partition of a SATA disk with a wwid: the whole disk, by wwid',
      spec: {
        'devices/pci0/ata1/block/sda/device/wwid': 'naa.5002538e4000abcd\n',
        'devices/pci0/ata1/block/sda/device/serial': 'S4EVNX0N\n',
        'devices/pci0/ata1/block/sda/sda2/partition': '2\n',
        [at]: { link: '../../devices/pci0/ata1/block/sda/sda2' },
      },
      want: ['wwid:naa.5002538e4000abcd'],
    },
    {
      what: 'no wwid: model and serial',
      spec: {
        'devices/usb/block/sdb/device/serial': 'ABC123\n',
        'devices/usb/block/sdb/device/model': 'T7 Shield  \n',
        'devices/usb/block/sdb/sdb1/partition': '1\n',
        [at]: { link: '../../devices/usb/block/sdb/sdb1' },
      },
      want: ['serial:T7 Shield:ABC123'],
    },
    {
      what: 'dm-crypt on LVM on md RAID1 of two partitions: both disks',
      spec: {
        'devices/pci0/block/sda/wwid': 'eui.aaaa\n',
        'devices/pci0/block/sda/sda1/partition': '1\n',
        'devices/pci0/block/sdc/wwid': 'eui.cccc\n',
        'devices/pci0/block/sdc/sdc1/partition': '1\n',
        'devices/virtual/block/md0/slaves/sda1': { link: '../../../../pci0/block/sda/sda1' },
        'devices/virtual/block/md0/slaves/sdc1': { link: '../../../../pci0/block/sdc/sdc1' },
        'devices/virtual/block/dm-0/slaves/md0': { link: '../../md0' },
        'devices/virtual/block/dm-1/slaves/dm-0': { link: '../../dm-0' },
        [at]: { link: '../../devices/virtual/block/dm-1' },
      },
      want: ['wwid:eui.aaaa', 'wwid:eui.cccc'],
    },
    {
      what: 'a loop device: its backing file',
      spec: {
        'devices/virtual/block/loop3/loop/backing_file': '/var/lib/images/field.img\n',
        'devices/virtual/block/loop3/loop3p1/partition': '1\n',
        [at]: { link: '../../devices/virtual/block/loop3/loop3p1' },
      },
      want: ['loop:/var/lib/images/field.img'],
    },
    {
      what: 'nothing stable: the kernel name',
      spec: {
        'devices/platform/block/mmcblk0/mmcblk0p1/partition': '1\n',
        [at]: { link: '../../devices/platform/block/mmcblk0/mmcblk0p1' },
      },
      want: ['name:mmcblk0'],
    },
  ];
  for (const [i, c] of cases.entries()) {
    const sysfs = join(base, `sys-${i}`);
    await tree(sysfs, c.spec);
    const id = await diskIdentity(probeDir, { sysfs, devDisk: join(base, 'no-dev-disk'), platform: 'linux' });
    t.same(id.disks, c.want, c.what);
    t.equal(id.device, diskDevice(c.want), `${c.what}: device string`);
    t.equal(id.unknown, undefined);
  }

  // /dev/disk/by-id names a disk that has no wwid or serial.
  const sysfs = join(base, 'sys-by-id');
  await tree(sysfs, {
    'devices/pci0/block/nvme0n1/nvme0n1p3/partition': '3\n',
    [at]: { link: '../../devices/pci0/block/nvme0n1/nvme0n1p3' },
  });
  const devDisk = join(base, 'dev-disk');
  await tree(devDisk, {
    'by-id/nvme-Samsung_SSD_980_S64ANS0T-part3': { link: '../../nvme0n1p3' },
    'by-id/nvme-Samsung_SSD_980_S64ANS0T': { link: '../../nvme0n1' },
  });
  await tree(base, { nvme0n1: '', nvme0n1p3: '' });
  t.same((await diskIdentity(probeDir, { sysfs, devDisk, platform: 'linux' })).disks, [
    'by-id:nvme-Samsung_SSD_980_S64ANS0T',
  ]);

  // No entry for the block device (no sysfs, or another namespace): not known, said why.
  const none = await diskIdentity(probeDir, { sysfs: join(base, 'empty-sys'), platform: 'linux' });
  t.equal(none.disks.length, 0);
  t.match(none.device, /^nodisk:/);
  t.match(none.unknown, /not in .*empty-sys/);
});

t.test('distinct devices: sharing any disk is one device; an unknown disk adds none', async (t) => {
  const a = diskDevice(['wwid:a']);
  const b = diskDevice(['wwid:b']);
  const raid = diskDevice(['wwid:b', 'wwid:c']);
  t.equal(countDistinctDevices([a, b]), 2);
  t.equal(countDistinctDevices([a, a]), 1, 'two folders (or partitions) of one disk');
  t.equal(countDistinctDevices([b, raid]), 1, 'a disk and a RAID set holding it');
  t.equal(countDistinctDevices([a, raid, diskDevice(['wwid:c'])]), 2);
  t.equal(countDistinctDevices([a, diskDevice(['wwid:d']), diskDevice(['wwid:d', 'wwid:a'])]), 1, 'merged groups');
  t.equal(countDistinctDevices(['nodisk:41', 'nodisk:42']), 0, 'two tmpfs mounts add no device');
  t.equal(countDistinctDevices([a, 'local:2049']), 1, 'a copy from before disk identities adds none');
  t.ok(sharesDisk(raid, b));
  t.notOk(sharesDisk('nodisk:1', 'nodisk:1'));
  t.same(diskDevice(['loop:/x,y%z.img']), 'disk:loop:/x%2Cy%25z.img', 'commas and % escaped');
  t.equal(countDistinctDevices([diskDevice(['loop:/x,y.img']), diskDevice(['loop:/x'])]), 2);
});

t.test('a real tmpfs has no physical disk: not known, and said why', async (t) => {
  const d = await tempDir(t, 'disk-id-');
  const m = await mountTmpfs(t, d, 'size=1m');
  if (!m.mounted) return void t.skip(`no tmpfs here (${m.reason}): this case did not run`, () => undefined);
  const id = await diskIdentity(d);
  t.same(id.disks, []);
  t.match(id.device, /^nodisk:\d+$/);
  t.match(id.unknown, /no block device \(tmpfs/);
});

t.test('macOS: diskutil plist, the whole disk, an APFS container’s physical store (injected diskutil)', async (t) => {
  const plist = (pairs: Record<string, string | string[]>): string =>
    `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>${Object.entries(pairs)
      .map(([k, v]) =>
        typeof v === 'string'
          ? `<key>${k}</key>\n\t<string>${v}</string>`
          : `<key>${k}</key><array>${v.map((s) => `<string>${s}</string>`).join('')}</array>`,
      )
      .join('\n')}</dict></plist>`;
  const infos: Record<string, string> = {
    '/Volumes/T7': plist({ DeviceIdentifier: 'disk5s1', ParentWholeDisk: 'disk5', MediaName: 'T7 &amp; co' }),
    disk5: plist({ DeviceIdentifier: 'disk5', ParentWholeDisk: 'disk5', MediaUUID: 'AAAA-5' }),
    '/': plist({ DeviceIdentifier: 'disk3s1s1', ParentWholeDisk: 'disk3' }),
    disk3: plist({ DeviceIdentifier: 'disk3', ParentWholeDisk: 'disk3', APFSPhysicalStores: ['disk0s2'] }),
    disk0s2: plist({ DeviceIdentifier: 'disk0s2', ParentWholeDisk: 'disk0' }),
    disk0: plist({ DeviceIdentifier: 'disk0', ParentWholeDisk: 'disk0', MediaUUID: 'BBBB-0' }),
  };
  t.equal(parseDiskutilPlist(infos['/Volumes/T7'] as string).get('MediaName'), 'T7 & co');
  const probeDir = await tempDir(t, 'disk-id-');
  const via = (path: string) => ({
    platform: 'darwin' as const,
    diskutil: async (arg: string) => infos[arg === probeDir ? path : arg] ?? '<plist></plist>',
  });
  t.same((await diskIdentity(probeDir, via('/Volumes/T7'))).disks, ['mac:AAAA-5']);
  t.same((await diskIdentity(probeDir, via('/'))).disks, ['mac:BBBB-0'], 'APFS: the physical store’s disk');
  const net = await diskIdentity(probeDir, via('/Volumes/share'));
  t.match(net.unknown, /no whole disk/);
  const failing = await diskIdentity(probeDir, {
    platform: 'darwin',
    diskutil: async () => {
      throw new Error('diskutil: command not found');
    },
  });
  t.match(failing.unknown, /command not found/, 'an error makes it unknown, never a device');
});

/** Store + field drive → offload a small card → the card's safe-to-format verdict. */
async function offloadTo(
  state: AgentState,
  card: string,
  id: string,
  store: string,
  fieldDrive: string,
  mapTargets: (ts: AgentTarget[]) => AgentTarget[] = (ts) => ts,
) {
  await mkdir(fieldDrive, { recursive: true });
  const { targets } = await resolveTargets(store, [fieldDrive]);
  const input = { id, label: id, kind: 'card' as const, source: card, shoot: 's' };
  await offloadCard({ state, targets: mapTargets(targets) }, { root: card, card: input, scan: await scanCard(card) });
  return { targets, summary: await summariseCard(state, (await state.getCard(id))!, 2) };
}

t.test('real loop devices: two partitions of one disk are one device; a second disk makes it safe', async (t) => {
  const base = await tempDir(t, 'disk-loop-');
  const one = await makeLoopDisk(t, base, 'one', { sizeMiB: 40, partitions: 2 });
  if ('reason' in one)
    return void t.skip(`no loop devices here (${one.reason}): this case did not run`, () => undefined);
  const two = await makeLoopDisk(t, base, 'two', { sizeMiB: 24, partitions: 0 });
  if ('reason' in two)
    return void t.skip(`no second loop device (${two.reason}): this case did not run`, () => undefined);
  const [p1, p2] = one.mounts as [string, string];
  const [other] = two.mounts as [string];
  const card = join(base, 'card');
  const files = await makeTestCard(card, { rawSize: 16 * 1024 });

  const idP1 = await diskIdentity(p1);
  t.match(idP1.disks, [/^loop:\/.*\/one\.img$/], 'a partition is its loop disk (by its backing file)');
  t.equal((await diskIdentity(p2)).device, idP1.device, 'both partitions: one device');
  t.not((await stat(p1)).dev, (await stat(p2)).dev, 'yet two file systems (st_dev differs)');

  const state = await AgentState.open(join(base, 'data'));
  t.teardown(() => state.close());
  const a = await offloadTo(state, card, 'C-one-disk', join(p1, 'store'), join(p2, 'field'));
  t.equal(a.targets[0]?.device, a.targets[1]?.device);
  t.equal(a.summary.verifiedFiles, files.length);
  t.equal(a.summary.safeToFormat.safe, false, 'store and field drive on two partitions of one disk: not safe');
  t.equal(a.summary.safeToFormat.short, files.length);
  t.match(a.summary.safeToFormat.reason, /the field-drive and laptop copies are on one physical disk/);
  t.match(
    a.summary.safeToFormat.examples[0],
    /1 of 2 copies on distinct devices \(laptop \+ field-drive; .*one physical disk/,
  );

  // The field drive on a second loop device: safe.
  const cardB = join(base, 'card-b');
  await makeTestCard(cardB, { rawSize: 16 * 1024, seed: 2 }); // other bytes: not deduplicated against card A
  const b = await offloadTo(state, cardB, 'C-two-disks', join(p1, 'store-b'), join(other, 'field'));
  t.not(b.targets[0]?.device, b.targets[1]?.device);
  t.equal(b.summary.safeToFormat.safe, true, b.summary.safeToFormat.reason);

  // A state written before disk identities: copies carry `local:<st_dev>`, and no `meta:devices`.
  const dataC = join(base, 'data-c');
  const old = await AgentState.open(dataC);
  const legacy = (ts: AgentTarget[]) => ts.map((x) => ({ ...x, device: x.legacyDevice }));
  const c = await offloadTo(old, card, 'C-old', join(p1, 'store-c'), join(other, 'field-c'), legacy);
  t.equal(c.summary.safeToFormat.safe, false, 'old `local:` devices add no device');
  await old.close();
  const raw = new Level<string, unknown>(join(dataC, 'state'), { valueEncoding: 'json' });
  await raw.del('meta:devices');
  await raw.close();
  const reopened = await AgentState.open(dataC);
  t.teardown(() => reopened.close());
  const { targets } = await resolveTargets(join(p1, 'store-c'), [join(other, 'field-c')]);
  // A target elsewhere with the same name does not take copies that are not under its root.
  t.equal(await reopened.refreshLegacyDevices(targets.map((x) => ({ ...x, root: join(x.root, 'elsewhere') }))), 0);
  t.equal(await reopened.refreshLegacyDevices(targets), 2 * files.length, 'every copy refreshed');
  t.equal(await reopened.refreshLegacyDevices(targets), 0, 'then recorded as done');
  const after = await summariseCard(reopened, (await reopened.getCard('C-old'))!, 2);
  t.equal(after.safeToFormat.safe, true, after.safeToFormat.reason);
});
