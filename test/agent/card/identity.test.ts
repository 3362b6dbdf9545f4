/** Card identity: the same card resumes, two cards with one label are two cards. */
import t from 'tap';
import { cardIdentity, hotFolderIdentity, unescapeUdevName, labelSlug, FINGERPRINT_FILES } from '@studio321/agent/card';
import { groupKey, suffixedPath } from '@studio321/agent/offload';

const files = (n: number, seed = 0) =>
  Array.from({ length: n }, (_, i) => ({
    path: `DCIM/100CANON/IMG_${String(i + 1).padStart(4, '0')}.CR3`,
    size: 30_000_000 + i * 17 + seed,
    mtimeMs: 1_790_000_000_000 + i * 2000,
  }));

t.test('same card re-inserted (even with more images) keeps its id', async (t) => {
  const a = cardIdentity({ label: 'EOS_DIGITAL', uuid: '1234-ABCD', files: files(40) });
  const b = cardIdentity({ label: 'EOS_DIGITAL', uuid: '1234-ABCD', files: files(60) });
  t.equal(a.id, b.id);
  t.match(a.id, /^EOS_DIGITAL-[0-9a-f]{8}$/);
  t.ok(FINGERPRINT_FILES <= 40);
});

t.test('two cards named NO NAME are not confused', async (t) => {
  const byUuid = [
    cardIdentity({ label: 'NO NAME', uuid: 'AAAA-0001', files: files(5) }),
    cardIdentity({ label: 'NO NAME', uuid: 'AAAA-0002', files: files(5) }),
  ];
  t.not(byUuid[0]!.id, byUuid[1]!.id, 'different volume UUIDs');
  const byFiles = [
    cardIdentity({ label: 'NO NAME', files: files(5, 0) }),
    cardIdentity({ label: 'NO NAME', files: files(5, 1) }),
  ];
  t.not(byFiles[0]!.id, byFiles[1]!.id, 'no UUID: different file fingerprints');
  const byFolder = [
    cardIdentity({ label: 'NO NAME', files: files(5), folder: '/a/NO NAME' }),
    cardIdentity({ label: 'NO NAME', files: files(5), folder: '/b/NO NAME' }),
  ];
  t.not(byFolder[0]!.id, byFolder[1]!.id, 'folders given by hand: the path tells identical copies apart');
  t.match(byUuid[0]!.id, /^NO_NAME-/);
  t.not(hotFolderIdentity('/a/Tether').id, hotFolderIdentity('/b/Tether').id);
});

t.test('udev label unescaping and slugs', async (t) => {
  t.equal(unescapeUdevName('NO\\x20NAME'), 'NO NAME');
  t.equal(labelSlug('My Card/../x'), 'My_Cardx');
  t.equal(labelSlug(''), 'CARD');
});

t.test('sidecar groups and suffixes', async (t) => {
  t.equal(groupKey('DCIM/100CANON/IMG_0001.CR3'), groupKey('DCIM/100CANON/img_0001.xmp'));
  t.equal(groupKey('PRIVATE/M4ROOT/CLIP/C0001.MP4'), groupKey('PRIVATE/M4ROOT/CLIP/C0001M01.XML'));
  t.equal(groupKey('DCIM/100GOPRO/GX010001.MP4'), groupKey('DCIM/100GOPRO/GL010001.LRV'));
  t.not(groupKey('DCIM/100CANON/IMG_0001.CR3'), groupKey('DCIM/101CANON/IMG_0001.CR3'));
  t.equal(suffixedPath('DCIM/100CANON/IMG_0001.CR3', 2), 'DCIM/100CANON/IMG_0001~2.CR3');
  t.equal(suffixedPath('PRIVATE/M4ROOT/CLIP/C0001M01.XML', 3), 'PRIVATE/M4ROOT/CLIP/C0001~3M01.XML');
  t.equal(suffixedPath('A.B.C', 1), 'A.B.C');
});
