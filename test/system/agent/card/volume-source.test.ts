/**
 * Volume detection: the df and mountinfo parsers against saved output
 * (mount points with spaces, octal escapes), and one conformance suite run
 * against both real VolumeSources with a real tmpfs mounted at a path with a space.
 */
import t from 'tap';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  parseDfOutput,
  parseMountInfo,
  DfVolumeSource,
  MountInfoVolumeSource,
  isSystemVolume,
  type VolumeSource,
} from '@studio321/agent/card';
import { detectCameraLayouts } from '@studio321/agent/card';
import { VolumeWatcher } from '@studio321/agent/card';
import { tmpfsDirs, umount } from '../../../lib/agent-harness.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

t.test('df -kP parser keeps mount points with spaces whole', async (t) => {
  const vols = parseDfOutput(await readFile(join(fixtures, 'df-spaces.txt'), 'utf8'));
  t.same(
    vols.map((v) => v.mountPoint),
    [
      '/',
      '/dev/shm',
      '/media/anna/NO NAME',
      '/media/anna/EOS_DIGITAL',
      '/media/anna/My Card 2  (backup)',
      '/mnt/nas photos',
    ],
  );
  t.equal(vols.find((v) => v.mountPoint === '/media/anna/NO NAME')?.device, '/dev/sdb1');
  t.equal(
    vols.find((v) => v.mountPoint === '/mnt/nas photos')?.device,
    '//nas/photos share',
    'a device name with a space too',
  );
  t.equal(vols[2]?.sizeBytes, 31154688 * 1024);
  const real = parseDfOutput(await readFile(join(fixtures, 'df-linux.txt'), 'utf8'));
  t.ok(
    real.some((v) => v.mountPoint === '/'),
    'saved output of this machine parses',
  );
  t.same(parseDfOutput('garbage\n\nFilesystem x\n'), [], 'junk lines are skipped');
});

t.test('mountinfo parser undoes octal escapes', async (t) => {
  const vols = parseMountInfo(await readFile(join(fixtures, 'mountinfo.txt'), 'utf8'));
  t.same(
    vols.map((v) => v.mountPoint),
    ['/proc', '/', '/media/anna/NO NAME', '/media/anna/tab\tand\\slash', '/run/user/1000'],
  );
  t.same(vols[2], { mountPoint: '/media/anna/NO NAME', device: '/dev/sdb1', fsType: 'vfat' });
  t.equal(vols[4]?.fsType, 'tmpfs', 'optional fields before the separator are skipped');
  t.ok(isSystemVolume(vols[0]!) && isSystemVolume(vols[1]!));
  t.notOk(isSystemVolume(vols[2]!));
});

for (const [name, make] of [
  ['MountInfoVolumeSource', () => new MountInfoVolumeSource()],
  ['DfVolumeSource', () => new DfVolumeSource()],
] as Array<[string, () => VolumeSource]>) {
  t.test(`${name} conformance: sees a card mounted at a path with a space, with its layout`, async (t) => {
    const m = await tmpfsDirs(t, { 'NO NAME': '8m' });
    if (m === undefined)
      return void t.skip('cannot mount tmpfs here (it needs root): this case did not run', () => undefined);
    const mp = m.dirs['NO NAME'] as string;
    await mkdir(join(mp, 'DCIM', '100CANON'), { recursive: true });
    await writeFile(join(mp, 'DCIM', '100CANON', 'IMG_0001.CR3'), 'x');
    const source = make();
    const vols = await source.list();
    const v = vols.find((x) => x.mountPoint === mp);
    t.ok(v, `${mp} listed`);
    t.same(await detectCameraLayouts(mp), ['DCIM']);
    // the watcher reports it appearing and disappearing
    const watcher = new VolumeWatcher(source, 1000);
    const seen: string[] = [];
    watcher.on('mounted', (x) => {
      if (x.mountPoint === mp) seen.push('mounted');
    });
    watcher.on('unmounted', (x) => {
      if (x.mountPoint === mp) seen.push('unmounted');
    });
    await watcher.pollOnce();
    await umount(mp);
    await watcher.pollOnce();
    t.same(seen, ['mounted', 'unmounted']);
  });
}

t.test('camera layouts are recognised', async (t) => {
  const dir = t.testdir({
    a: { DCIM: {} },
    b: { PRIVATE: { M4ROOT: {}, AVCHD: {} } },
    c: { XDROOT: {} },
    d: { CLIP: {} },
    e: { Documents: {} },
    f: { dcim: {} },
  });
  t.same(await detectCameraLayouts(join(dir, 'a')), ['DCIM']);
  t.same(await detectCameraLayouts(join(dir, 'b')), ['PRIVATE/M4ROOT', 'PRIVATE/AVCHD']);
  t.same(await detectCameraLayouts(join(dir, 'c')), ['XDROOT']);
  t.same(await detectCameraLayouts(join(dir, 'd')), ['CLIP']);
  t.same(await detectCameraLayouts(join(dir, 'e')), []);
  t.same(await detectCameraLayouts(join(dir, 'f')), ['DCIM'], 'case-insensitive (FAT)');
  t.same(await detectCameraLayouts(join(dir, 'missing')), []);
});
