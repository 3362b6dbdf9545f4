/**
 * The self-describing metadata of a cloud object: what a bucket alone tells a
 * catalogue rebuild (and a person with an S3 browser), within S3's 2 KB.
 */
import t from 'tap';
import {
  METADATA_LIMIT_BYTES,
  TRUNCATED_MARK,
  describeObject,
  metadataBytes,
  objectMetadata,
  type AssetOrigin,
} from '@studio321/studiod/cloud';

const fixed = { blake3: 'a'.repeat(64), size: 123_456_789, sha256: 'b'.repeat(64) };
const captured = Date.parse('2026-11-26T10:31:07.250Z');

t.test('a short name: every field, ASCII only, read back exactly', async (t) => {
  const o: AssetOrigin = {
    shoot: 'wedding',
    card: 'CARD1-c375e040',
    path: 'DCIM/100CANON/IMG 0001.CR3',
    mtime: captured,
  };
  const meta = objectMetadata(fixed, [o]);
  t.same(meta, {
    blake3: fixed.blake3,
    size: '123456789',
    sha256: fixed.sha256,
    captured: '2026-11-26T10:31:07.250Z',
    shoot: 'wedding',
    card: 'CARD1-c375e040',
    name: 'DCIM/100CANON/IMG%200001.CR3',
  });
  t.same(describeObject(meta), {
    ...fixed,
    origins: [{ ...o, truncated: false }],
    namesLeftOut: false,
  });
});

t.test('NFD, emoji and separators survive as exact code points; values stay ASCII', async (t) => {
  const o: AssetOrigin = {
    shoot: 'Hochzeit Müller'.normalize('NFD'),
    card: 'KARTE/1;2,3',
    path: 'DCIM/Café 👩‍👩‍👧 ;truncated, %41.HEIC'.normalize('NFD'),
  };
  const other: AssetOrigin = { shoot: 'shoot,2', card: 'c/2', path: 'a/b,c;d.JPG' };
  const meta = objectMetadata(fixed, [o, other]);
  for (const v of Object.values(meta)) t.match(v, /^[\x21-\x7e]*$/, 'printable ASCII, no space');
  t.notOk('captured' in meta, 'no capture time when unknown');
  const back = describeObject(meta);
  t.same(back.origins, [
    { ...o, truncated: false },
    { ...other, truncated: false },
  ]);
  t.equal(back.origins[0]?.path, o.path, 'NFD kept as NFD (not normalised)');
});

t.test('long names: cut on a grapheme boundary with the marker; never over 2 KB; the upload never fails', async (t) => {
  // Every grapheme is a family emoji (7 code points, 25 UTF-8 bytes, 75 encoded) or an NFD é.
  const family = '👩‍👩‍👧‍👦';
  const long = (n: number): string =>
    Array.from({ length: n }, (_, i) => (i % 2 === 0 ? family : 'é'.normalize('NFD'))).join('');
  const first: AssetOrigin = { shoot: long(400), card: long(400), path: `DCIM/${long(800)}/END.CR3`, mtime: captured };
  const others: AssetOrigin[] = Array.from({ length: 200 }, (_, i) => ({
    shoot: 'wedding',
    card: `CARD${i}`,
    path: `DCIM/${long(3)}_${i}.CR3`,
  }));
  const meta = objectMetadata(fixed, [first, ...others]);
  t.ok(metadataBytes(meta) <= METADATA_LIMIT_BYTES, `${metadataBytes(meta)} bytes, with the x-amz-meta- prefixes`);
  t.equal(meta.blake3, fixed.blake3, 'the checked fields are always whole');
  t.equal(meta.sha256, fixed.sha256);
  t.equal(meta.size, String(fixed.size));
  t.ok(meta.shoot?.endsWith(TRUNCATED_MARK), 'the shoot keeps its start');
  t.ok(meta.name?.startsWith(TRUNCATED_MARK), 'the name keeps its end (the file name)');
  t.ok(meta.name?.endsWith('/END.CR3'));
  const back = describeObject(meta);
  const o0 = back.origins[0];
  t.equal(o0?.truncated, true);
  t.ok(first.shoot.startsWith(o0?.shoot ?? '?'), 'a prefix of the shoot, whole graphemes');
  t.ok(first.path.endsWith(o0?.path ?? '?'), 'a suffix of the path, whole graphemes');
  for (const s of [o0?.shoot ?? '', o0?.path ?? '']) {
    t.notOk(/^[\u0300-\u036f\u200d]/.test(s) || /[\ud800-\udbff\u200d]$/.test(s), 'no grapheme split');
  }
  t.equal(back.namesLeftOut, true, 'further names that do not fit are left out, and said so');
  t.ok(back.origins.length < 201);
  for (const [i, o] of back.origins.slice(1).entries()) t.same(o, { ...others[i], truncated: false });
});

t.test('room is shared: many short names fill the rest of the 2 KB', async (t) => {
  const names = Array.from({ length: 200 }, (_, i) => ({ shoot: 's', card: 'c', path: `IMG_${i}.JPG` }));
  const meta = objectMetadata(fixed, names);
  t.ok(metadataBytes(meta) <= METADATA_LIMIT_BYTES);
  t.ok(metadataBytes(meta) > METADATA_LIMIT_BYTES - 40, `${metadataBytes(meta)} bytes: nearly all the room used`);
  const back = describeObject(meta);
  t.ok(back.origins.length > 100 && back.origins.length < 200, `${back.origins.length} of 200 names`);
  t.same(back.origins.at(-1), { ...names[back.origins.length - 1], truncated: false }, 'whole names, in order');
  t.equal(back.namesLeftOut, true);
});

t.test('older objects and foreign ones: what they carry, nothing invented', async (t) => {
  t.same(describeObject({ blake3: fixed.blake3, size: '5', sha256: fixed.sha256, name: 'DCIM%2FIMG.JPG' }), {
    blake3: fixed.blake3,
    size: 5,
    sha256: fixed.sha256,
    origins: [],
    namesLeftOut: false,
  });
  t.same(describeObject({ shoot: '%E0%A4', card: 'c', name: 'n', size: 'x' }).origins, [
    { shoot: '%E0%A4', card: 'c', path: 'n', truncated: false },
  ]);
  t.same(objectMetadata(fixed, []), { blake3: fixed.blake3, size: '123456789', sha256: fixed.sha256 });
});

t.test('a file renamed at ingest carries its name on the card, read back with its origin', async (t) => {
  const o: AssetOrigin = {
    shoot: 'wedding',
    card: 'CARD1',
    path: '2026-11-26/Smith_0001.CR3',
    mtime: captured,
    capture: { originalName: 'IMG 0001.CR3' },
  };
  const meta = objectMetadata(fixed, [o]);
  t.equal(meta['original'], 'IMG%200001.CR3');
  const { capture: _, ...plain } = o;
  t.same(describeObject(meta).origins, [{ ...plain, originalName: 'IMG 0001.CR3', truncated: false }]);
  t.notOk('original' in objectMetadata(fixed, [plain]), 'a file not renamed has no original name');
  const long = objectMetadata(fixed, [{ ...o, capture: { originalName: `${'x'.repeat(300)}.CR3` } }]);
  t.ok(long['original']?.startsWith(TRUNCATED_MARK), 'a long original name keeps its end');
  t.ok(long['original']?.endsWith('.CR3'));
  t.ok(metadataBytes(long) <= METADATA_LIMIT_BYTES);
  t.equal(describeObject(long).origins[0]?.truncated, true, 'and the origin says it was cut');
});
