import t from 'tap';
import path from 'node:path';
import {
  MAX_NAME_BYTES,
  MAX_PATH_BYTES,
  nameKey,
  ProtocolError,
  safeJoin,
  validateRelativePath,
  validateSegment,
} from '@studio321/protocol';

function refused(fn: () => unknown): { code?: string; reason?: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return { code: err.code, reason: err.detail?.reason as string };
    return { code: `not a ProtocolError: ${String(err)}` };
  }
  return {};
}

t.test('hostile relative paths are refused with PROTO_BAD_NAME and a reason', async (t) => {
  const cases: Array<[unknown, string]> = [
    ['', 'empty'],
    ['/etc/passwd', 'absolute'],
    ['//server/share', 'absolute'],
    ['C:/Windows/x', 'drive-prefix'],
    ['c:x', 'drive-prefix'],
    ['../x', 'dot-segment'],
    ['DCIM/../../x', 'dot-segment'],
    ['DCIM/..', 'dot-segment'],
    ['./DCIM', 'dot-segment'],
    ['DCIM/./x', 'dot-segment'],
    ['DCIM//x', 'empty-segment'],
    ['DCIM/', 'empty-segment'],
    ['DCIM\\..\\x', 'backslash'],
    ['a\\b', 'backslash'],
    ['a\u0000b', 'control-character'],
    ['a\nb', 'control-character'],
    ['a\u001fb', 'control-character'],
    ['a\u007fb', 'control-character'],
    ['a\u0085b', 'control-character'],
    [`DCIM/${'x'.repeat(MAX_NAME_BYTES + 1)}`, 'segment-too-long'],
    [`DCIM/${'é'.repeat(128)}`, 'segment-too-long'], // 256 UTF-8 bytes, 128 characters
    [Array.from({ length: 9 }, () => 'y'.repeat(120)).join('/'), 'path-too-long'], // 1088 bytes
    ['DCIM/IMG_0001.CR3.s321tmp', 'temp-suffix'], // the start sweep would take it for a leftover temp
    ['DCIM.s321tmp/IMG_0001.CR3', 'temp-suffix'],
    [42, 'not-a-string'],
  ];
  for (const [p, reason] of cases) {
    t.same(
      refused(() => validateRelativePath(p)),
      { code: 'PROTO_BAD_NAME', reason },
      `${JSON.stringify(p).slice(0, 40)} → ${reason}`,
    );
  }
});

t.test('valid paths are accepted and NFC-normalised', async (t) => {
  t.equal(validateRelativePath('DCIM/100CANON/IMG_0001.CR3'), 'DCIM/100CANON/IMG_0001.CR3');
  t.equal(validateRelativePath('PRIVATE/M4ROOT/CLIP/C0001M01.XML'), 'PRIVATE/M4ROOT/CLIP/C0001M01.XML');
  t.equal(validateRelativePath('NO NAME/..hidden/a..b/x.'), 'NO NAME/..hidden/a..b/x.', 'dots inside names are fine');
  const nfd = 'Cafe\u0301/Mu\u0308ller.jpg';
  t.equal(validateRelativePath(nfd), 'Caf\u00e9/M\u00fcller.jpg', 'NFD becomes NFC');
  t.equal(
    validateRelativePath('x'.repeat(MAX_NAME_BYTES)).length,
    MAX_NAME_BYTES,
    'a segment of exactly MAX_NAME_BYTES',
  );
  const atLimit = ['z'.repeat(255), 'z'.repeat(255), 'z'.repeat(255), 'z'.repeat(254), 'a'].join('/'); // 1019 + 1 + 4 slashes = 1024
  t.equal(Buffer.byteLength(atLimit), MAX_PATH_BYTES);
  t.equal(validateRelativePath(atLimit), atLimit, 'a path of exactly MAX_PATH_BYTES');
});

t.test('segments (shoot, card)', async (t) => {
  t.equal(validateSegment('2026-11-26-wedding'), '2026-11-26-wedding');
  t.equal(validateSegment('CARD 7F3A'), 'CARD 7F3A');
  const cases: Array<[unknown, string]> = [
    ['', 'empty'],
    ['.', 'dot-segment'],
    ['..', 'dot-segment'],
    ['a/b', 'slash-in-segment'],
    ['/', 'slash-in-segment'],
    ['a\\b', 'backslash'],
    ['a\u0000', 'control-character'],
    ['C:', 'drive-prefix'],
    ['x'.repeat(MAX_NAME_BYTES + 1), 'segment-too-long'],
    ['card.s321tmp', 'temp-suffix'],
    [null, 'not-a-string'],
  ];
  for (const [s, reason] of cases)
    t.same(
      refused(() => validateSegment(s)),
      { code: 'PROTO_BAD_NAME', reason },
      `${JSON.stringify(s)} → ${reason}`,
    );
});

t.test('nameKey folds case and normalisation', async (t) => {
  t.equal(nameKey('DCIM/IMG_0001.CR3'), nameKey('dcim/img_0001.cr3'));
  t.equal(nameKey('Cafe\u0301.jpg'), nameKey('CAF\u00c9.JPG'), 'NFD vs NFC and case');
  t.equal(nameKey('Stra\u00dfe'), nameKey('STRASSE'), 'German sharp s folds to ss');
  t.not(nameKey('IMG_0001.CR3'), nameKey('IMG_0002.CR3'));
});

t.test('safeJoin keeps every result under its root', async (t) => {
  const root = t.testdir();
  t.equal(safeJoin(root, 'shoot/card/DCIM/IMG_0001.CR3'), path.join(root, 'shoot/card/DCIM/IMG_0001.CR3'));
  t.equal(safeJoin(`${root}/`, 'a'), path.join(root, 'a'), 'trailing separator on root');
  for (const rel of ['../x', 'a/../../x', '/etc/passwd', 'a\\..\\..\\x', '', 'a\u0000']) {
    t.equal(refused(() => safeJoin(root, rel)).code, 'PROTO_BAD_NAME', `${JSON.stringify(rel)} refused`);
  }
  // A sibling directory whose name starts with root's name is outside root.
  t.equal(refused(() => safeJoin(path.join(root, 'ab'), '../abc/x')).code, 'PROTO_BAD_NAME');
});
