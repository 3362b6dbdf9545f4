/**
 * Capture metadata read from real camera files, checked against ExifTool (Debian's
 * libimage-exiftool-perl, installed by scripts/ensure-system-deps.sh) reading the same bytes.
 *
 * The samples are camera files that the `exif` npm package (0.6.0, MIT) ships in its
 * test folder: a Canon S40 and a Canon PowerShot S400 JPEG as they are, and the first
 * 128 KiB of a Sony ILCE-6000 JPEG (the whole file is 6.6 MB; its header is all a reader
 * needs, which this also proves). test/fixtures/camera/README.md says where each is from.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readCapture, parseCapture, mayHaveCapture, CAPTURE_HEAD_BYTES } from '@studio321/agent/card';
import { PROTO_CODES, decodeFrame, encodeFrame, type Message } from '@studio321/protocol';
import { REPO } from '../../lib/agent-harness.js';

const FIXTURES = join(REPO, 'test', 'fixtures', 'camera');
const execFileP = promisify(execFile);

interface ExifToolTags {
  DateTimeOriginal?: string;
  CreateDate?: string;
  OffsetTimeOriginal?: string;
  Make?: string;
  Model?: string;
  FileNumber?: number;
  ShutterCount?: number;
  InternalSerialNumber?: string;
  LensModel?: string;
}

async function exiftool(file: string): Promise<ExifToolTags> {
  const { stdout } = await execFileP('exiftool', [
    '-j',
    '-n',
    '-DateTimeOriginal',
    '-CreateDate',
    '-OffsetTimeOriginal',
    '-Make',
    '-Model',
    '-FileNumber',
    '-ShutterCount',
    '-InternalSerialNumber',
    '-LensModel',
    file,
  ]);
  return (JSON.parse(stdout) as ExifToolTags[])[0] ?? {};
}

const haveExiftool = await execFileP('exiftool', ['-ver']).then(
  () => true,
  () => false,
);

/** ExifTool's `2003:12:14 12:01:44` (+ offset) in the form the agent records. */
const iso = (dt: string, offset?: string): string =>
  `${dt.slice(0, 10).replaceAll(':', '-')}T${dt.slice(11)}${offset ?? ''}`;

t.test('capture time, body, count and lens equal what ExifTool reads', async (t) => {
  if (!haveExiftool)
    return void t.skip('exiftool is not installed (apt-get install libimage-exiftool-perl)', () => undefined);
  const cases = [
    { file: 'canon-s40.jpg', count: (x: ExifToolTags) => x.FileNumber },
    { file: 'canon-s400.jpg', count: () => undefined },
    { file: 'sony-ilce6000-head.jpg', count: (x: ExifToolTags) => x.ShutterCount },
  ];
  for (const c of cases) {
    const path = join(FIXTURES, c.file);
    const [ours, ref] = await Promise.all([readCapture(path), exiftool(path)]);
    t.ok(ref.DateTimeOriginal, `${c.file}: ExifTool finds a capture time`);
    t.equal(ours?.takenAt, iso(ref.DateTimeOriginal ?? '', ref.OffsetTimeOriginal), `${c.file}: capture time`);
    t.equal(ours?.imageNumber, c.count(ref), `${c.file}: image number / shutter count`);
    t.equal(ours?.lens, ref.LensModel, `${c.file}: lens`);
    const model = ref.Model ?? '';
    t.ok(ours?.camera?.endsWith(model), `${c.file}: camera ${ours?.camera} is the ${model}`);
    const serial = ref.InternalSerialNumber?.split(' ')
      .map((b) => Number(b).toString(16).padStart(2, '0'))
      .join('');
    t.equal(ours?.serial, serial, `${c.file}: serial number`);
  }
  // The counts the samples hold, so the comparison above is not two undefineds agreeing.
  t.equal((await readCapture(join(FIXTURES, 'canon-s40.jpg')))?.imageNumber, 1171771, 'Canon FileNumber 117-1771');
  const sony = await readCapture(join(FIXTURES, 'sony-ilce6000-head.jpg'));
  t.same(sony, {
    takenAt: '2014-04-18T20:33:53',
    camera: 'SONY ILCE-6000',
    lens: 'E PZ 16-50mm F3.5-5.6 OSS',
    serial: 'fefef80c',
    imageNumber: 885,
  });
});

/** A little-endian TIFF with one IFD of ASCII and LONG entries (what a CR3's CMT boxes hold). */
function tiff(entries: Array<[number, string | number]>): Buffer {
  const sorted = [...entries].sort((a, b) => a[0] - b[0]);
  const ifdAt = 8;
  let dataAt = ifdAt + 2 + 12 * sorted.length + 4;
  const head = Buffer.alloc(dataAt);
  const data: Buffer[] = [];
  head.write('II', 0, 'latin1');
  head.writeUInt16LE(42, 2);
  head.writeUInt32LE(ifdAt, 4);
  head.writeUInt16LE(sorted.length, ifdAt);
  sorted.forEach(([tag, v], i) => {
    const e = ifdAt + 2 + 12 * i;
    head.writeUInt16LE(tag, e);
    if (typeof v === 'number') {
      head.writeUInt16LE(4, e + 2);
      head.writeUInt32LE(1, e + 4);
      head.writeUInt32LE(v, e + 8);
      return;
    }
    const bytes = Buffer.from(`${v}\0`, 'latin1');
    head.writeUInt16LE(2, e + 2);
    head.writeUInt32LE(bytes.length, e + 4);
    if (bytes.length <= 4) bytes.copy(head, e + 8);
    else {
      head.writeUInt32LE(dataAt, e + 8);
      data.push(bytes);
      dataAt += bytes.length;
    }
  });
  return Buffer.concat([head, ...data]);
}

function box(type: string, ...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  const h = Buffer.alloc(8);
  h.writeUInt32BE(8 + b.length, 0);
  h.write(type, 4, 'latin1');
  return Buffer.concat([h, b]);
}

t.test('CR3 (ISO media boxes) and RAF (a JPEG inside): read as ExifTool reads them', async (t) => {
  if (!haveExiftool)
    return void t.skip('exiftool is not installed (apt-get install libimage-exiftool-perl)', () => undefined);
  // No CR3 or RAF ships in a registry package found here: these are built to Canon's and Fujifilm's
  // layouts (a RAF around the real Canon S40 JPEG), and ExifTool is the independent reader.
  const dir = await mkdtemp(join(tmpdir(), 'capture-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ftyp = box('ftyp', Buffer.from('crx \0\0\0\x01crx isom', 'latin1'));
  const canon = Buffer.from('85c0b687820f11e08111f4ce462b6a48', 'hex');
  const cr3 = Buffer.concat([
    ftyp,
    box(
      'moov',
      box(
        'uuid',
        canon,
        box('CNCV', Buffer.from('CanonCR3_001/00.10.00/00.00.00', 'latin1')),
        box(
          'CMT1',
          tiff([
            [0x010f, 'Canon'],
            [0x0110, 'Canon EOS R5'],
          ]),
        ),
        box(
          'CMT2',
          tiff([
            [0x9003, '2026:11:26 23:59:30'],
            [0x9291, '12'],
            [0x9011, '+01:00'],
            [0xa431, '032024001234'],
            [0xa434, 'RF24-70mm F2.8 L IS USM'],
          ]),
        ),
        box(
          'CMT3',
          tiff([
            [0x0008, 1171771],
            [0x000c, 3202400123],
          ]),
        ),
      ),
    ),
    box('mdat', Buffer.alloc(4096, 9)),
  ]);
  const cr3Path = join(dir, 'IMG_1771.CR3');
  await writeFile(cr3Path, cr3);
  const [ours, ref] = await Promise.all([readCapture(cr3Path), exiftool(cr3Path)]);
  t.equal(ref.Model, 'Canon EOS R5', 'ExifTool reads the built file as a CR3');
  t.equal(ours?.takenAt, `${iso(ref.DateTimeOriginal ?? '', ref.OffsetTimeOriginal).slice(0, 19)}.12+01:00`);
  t.equal(ours?.camera, ref.Model, 'camera');
  t.equal(ours?.lens, ref.LensModel, 'lens');
  t.equal(ours?.imageNumber, ref.FileNumber, 'Canon FileNumber');
  t.equal(ours?.imageNumber, 1171771, 'which is 117-1771');
  t.equal(ours?.serial, '032024001234', 'the body serial of the EXIF wins over the makernote one');

  const jpeg = await readFile(join(FIXTURES, 'canon-s40.jpg'));
  const header = Buffer.alloc(148);
  header.write('FUJIFILMCCD-RAW 0201FF383501X-T3', 0, 'latin1');
  header.write('0100', 60, 'latin1');
  header.writeUInt32BE(148, 84);
  header.writeUInt32BE(jpeg.length, 88);
  const rafPath = join(dir, 'DSCF0001.RAF');
  await writeFile(rafPath, Buffer.concat([header, jpeg, Buffer.alloc(2048, 3)]));
  const [raf, rafRef] = await Promise.all([readCapture(rafPath), exiftool(rafPath)]);
  t.ok(rafRef.DateTimeOriginal, 'ExifTool finds the capture time in the RAF');
  t.equal(raf?.takenAt, iso(rafRef.DateTimeOriginal ?? '', rafRef.OffsetTimeOriginal), 'RAF capture time');
  t.ok(raf?.camera?.endsWith(rafRef.Model ?? '?'), `RAF camera ${raf?.camera}`);

  // Cut short or lying: nothing, never a throw.
  t.same(await parseCapture(cr3.subarray(0, 40)), undefined, 'a CR3 cut inside its moov box');
  const lying = Buffer.from(header);
  lying.writeUInt32BE(0xffffff00, 84);
  t.equal(await parseCapture(lying), undefined, 'a RAF whose JPEG offset points past the head');
});

/** A `mvhd` box: version 0 (32-bit seconds since 1904) or 1 (64-bit), creation time `at`. */
function mvhd(at: Date, version: 0 | 1): Buffer {
  const secs = BigInt(Math.floor(at.getTime() / 1000) + 2_082_844_800);
  const b = Buffer.alloc(version === 0 ? 100 : 112);
  b[0] = version;
  if (version === 0) {
    b.writeUInt32BE(Number(secs), 4);
    b.writeUInt32BE(Number(secs), 8);
    b.writeUInt32BE(1000, 12);
  } else {
    b.writeBigUInt64BE(secs, 4);
    b.writeBigUInt64BE(secs, 12);
    b.writeUInt32BE(1000, 20);
  }
  return box('mvhd', b);
}

t.test('video: the moov box is found wherever it is, its mvhd time read as ExifTool reads it', async (t) => {
  if (!haveExiftool)
    return void t.skip('exiftool is not installed (apt-get install libimage-exiftool-perl)', () => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'capture-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const at = new Date('2026-11-26T23:59:30Z');
  // As a camera records: the media data first, the moov box (and its time) at the end, past any head read.
  const mp4 = join(dir, 'C0001.MP4');
  await writeFile(
    mp4,
    Buffer.concat([
      box('ftyp', Buffer.from('mp42\0\0\0\0mp42isom', 'latin1')),
      box('mdat', Buffer.alloc(400 * 1024, 5)),
      box('moov', mvhd(at, 0)),
    ]),
  );
  // QuickTime with moov first and a 64-bit (version 1) mvhd.
  const mov = join(dir, 'MVI_0001.MOV');
  await writeFile(
    mov,
    Buffer.concat([
      box('ftyp', Buffer.from('qt  \0\0\0\0qt  ', 'latin1')),
      box('moov', mvhd(at, 1)),
      box('mdat', Buffer.alloc(1024)),
    ]),
  );
  for (const file of [mp4, mov]) {
    const [ours, ref] = await Promise.all([readCapture(file), exiftool(file)]);
    t.equal(ref.CreateDate, '2026:11:26 23:59:30', `${file}: ExifTool reads the time`);
    t.equal(ours?.takenAt, iso(ref.CreateDate ?? ''), `${file}: the same time, no offset claimed`);
  }
  t.ok(mayHaveCapture('PRIVATE/M4ROOT/CLIP/C0001.MP4'), 'a clip is read');
  const none = join(dir, 'EMPTY.MP4');
  await writeFile(
    none,
    Buffer.concat([box('ftyp', Buffer.from('mp42', 'latin1')), box('moov', mvhd(new Date(-2_082_844_800_000), 0))]),
  );
  t.equal(await readCapture(none), undefined, 'an unset time (0) is no time');
  const cut = join(dir, 'CUT.MP4');
  await writeFile(
    cut,
    Buffer.concat([box('ftyp', Buffer.from('mp42', 'latin1')), Buffer.from([0, 0, 0xff, 0xff, 0x6d, 0x64])]),
  );
  t.equal(await readCapture(cut), undefined, 'a file cut inside a box header');
});

t.test('only images are read; files without EXIF, unreadable or cut short give nothing', async (t) => {
  t.ok(mayHaveCapture('DCIM/100CANON/IMG_0001.CR2'));
  t.ok(mayHaveCapture('DCIM/100MSDCF/DSC00001.ARW'));
  t.notOk(mayHaveCapture('DCIM/100CANON/IMG_0001.XMP'), 'a sidecar is not read');
  const dir = await mkdtemp(join(tmpdir(), 'capture-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'NOEXIF.JPG'), Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
  t.equal(await readCapture(join(dir, 'NOEXIF.JPG')), undefined, 'a JPEG without EXIF');
  await writeFile(join(dir, 'JUNK.CR2'), Buffer.alloc(1000, 7));
  t.equal(await readCapture(join(dir, 'JUNK.CR2')), undefined, 'bytes that are no TIFF');
  t.equal(await readCapture(join(dir, 'GONE.JPG')), undefined, 'a file that is not there');
  t.equal(await parseCapture(new Uint8Array(0)), undefined, 'nothing at all');
  t.ok(CAPTURE_HEAD_BYTES <= 256 * 1024, 'one small read per file');
});

t.test('the Offer carries capture optionally; a malformed one is refused', async (t) => {
  const base = { shoot: 's', card: 'c', path: 'DCIM/IMG_0001.JPG', mtime: 0 };
  const offer = (name: Record<string, unknown>): Message =>
    ({
      t: 'offer',
      batchId: 'b1',
      files: [{ hash: 'a'.repeat(64), size: 1, names: [name], copies: [] }],
    }) as unknown as Message;
  const roundTrip = (m: Message): unknown => decodeFrame(encodeFrame(m));
  t.match(roundTrip(offer(base)), { files: [{ names: [base] }] }, 'an old agent sends none: accepted');
  const capture = { day: '2026-11-26', dateSource: 'exif', takenAt: '2026-11-26T23:59:30+01:00', imageNumber: 7 };
  t.match(roundTrip(offer({ ...base, capture })), { files: [{ names: [{ capture }] }] }, 'a new agent sends it');
  for (const bad of [
    { day: '../../etc', dateSource: 'exif' },
    { day: '2026-13-01', dateSource: 'exif' },
    { day: '2026-11-26', dateSource: 'guess' },
    { day: '2026-11-26', dateSource: 'mtime', takenAt: 'yesterday' },
  ]) {
    t.throws(
      () => roundTrip(offer({ ...base, capture: bad })),
      { code: PROTO_CODES.invalidField },
      JSON.stringify(bad),
    );
  }
});
