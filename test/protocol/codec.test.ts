import t from 'tap';
import { Packr, Unpackr } from 'msgpackr';
import {
  clipUtf8,
  CHUNK_HEADER_BYTES,
  CodedError,
  decodeFrame,
  encodeChunkFrame,
  encodeFrame,
  errorFrame,
  nackFrame,
  MAX_BATCH_FILES,
  MAX_CHUNK_BYTES,
  MAX_COPIES_PER_FILE,
  MAX_FRAME_BYTES,
  MAX_NAMES_PER_FILE,
  MAX_PATH_BYTES,
  MESSAGE_TYPES,
  type Message,
  ProtocolError,
  scanMsgpack,
} from '@studio321/protocol';
import { H1, H2, sampleMessages, worstCaseOffer, worstCaseReceipt } from '../lib/sample-messages.js';

// A raw msgpack encoder that does NOT validate: it builds the hostile frames a peer could send.
const raw = new Packr({ useRecords: false, structuredClone: false, moreTypes: false });
const rawFrame = (v: unknown): Buffer => raw.pack(v);
type Obj = Record<string, unknown>;
const clone = (m: Message): Obj => structuredClone(m) as unknown as Obj;

/** The two assertions throwsCode needs (any tap Test has them). */
interface Asserts {
  ok(v: unknown, message: string): unknown;
  match(v: unknown, pattern: unknown, message: string): unknown;
}

/** Assert `fn` throws a ProtocolError with `code` (and `field` when given); returns it. */
function throwsCode(tt: Asserts, fn: () => unknown, code: string, field?: string, what = code): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  tt.ok(caught instanceof ProtocolError, `${what}: throws a ProtocolError`);
  tt.match(caught, field === undefined ? { code } : { code, detail: { field } }, what);
}

t.test('round trip of every message type', async (t) => {
  const samples = sampleMessages();
  t.same(Object.keys(samples).sort(), [...MESSAGE_TYPES].sort(), 'a sample exists for every type');
  for (const msg of Object.values(samples)) {
    const frame = encodeFrame(msg);
    t.ok(frame.length <= MAX_FRAME_BYTES);
    const back = decodeFrame(frame);
    t.same(back, msg, `${msg.t} round-trips`);
    // And through a plain Uint8Array copy (ws may hand us either).
    t.same(decodeFrame(new Uint8Array(frame)), msg, `${msg.t} round-trips from a Uint8Array`);
    // And from a view at an offset inside a larger buffer (ws may hand us slices).
    const big = Buffer.concat([Buffer.alloc(13, 0xc1), frame, Buffer.alloc(7, 0xc1)]);
    t.same(decodeFrame(big.subarray(13, 13 + frame.length)), msg, `${msg.t} round-trips from a Buffer slice`);
    t.same(
      decodeFrame(new Uint8Array(big.buffer, big.byteOffset + 13, frame.length)),
      msg,
      `${msg.t} round-trips from a Uint8Array slice`,
    );
  }
  const agentHello: Message = { t: 'hello', magic: 'S321', version: 1, role: 'agent', software: 'field-agent/0.1.0' };
  t.same(decodeFrame(encodeFrame(agentHello)), agentHello, 'agent hello without window');
});

t.test('chunk data is a Buffer view into the frame, not a copy', async (t) => {
  const data = Buffer.alloc(MAX_CHUNK_BYTES, 0x5a);
  const frame = encodeFrame({ t: 'chunk', hash: H1, offset: 0, data });
  const back = decodeFrame(frame);
  if (back.t !== 'chunk') throw new Error('expected chunk');
  t.ok(Buffer.isBuffer(back.data));
  t.equal(back.data.length, MAX_CHUNK_BYTES);
  t.equal(back.data.buffer, frame.buffer, 'shares the frame memory');
  t.ok(Buffer.from(back.data).equals(data));
  // A frame returned earlier is not overwritten by later encodes.
  const f1 = encodeFrame({ t: 'ping', ts: 1 });
  const copy = Buffer.from(f1);
  encodeFrame({ t: 'ping', ts: 2 });
  t.ok(f1.equals(copy), 'encoded frames stay valid');
});

t.test('a Chunk frame built in place decodes as the Chunk encodeFrame makes', async (t) => {
  const hash = 'ab'.repeat(32);
  const frame = Buffer.alloc(CHUNK_HEADER_BYTES + MAX_CHUNK_BYTES, 0xee);
  for (const [offset, len] of [
    [0, 1],
    [127, 1000],
    [2 ** 32 + 5, MAX_CHUNK_BYTES],
    [Number.MAX_SAFE_INTEGER, 7],
  ] as const) {
    const data = frame.subarray(CHUNK_HEADER_BYTES, CHUNK_HEADER_BYTES + len);
    data.fill(offset % 251);
    const built = encodeChunkFrame(frame, hash, offset, len);
    t.equal(built.byteLength, CHUNK_HEADER_BYTES + len, 'header + data, nothing after');
    t.same(decodeFrame(built), decodeFrame(encodeFrame({ t: 'chunk', hash, offset, data: Buffer.from(data) })));
  }
  const refused = (hash: string, offset: number, len: number, code: string): void => {
    t.throws(() => encodeChunkFrame(frame, hash, offset, len), { code }, `${hash.slice(0, 4)} ${offset} ${len}`);
  };
  refused('AB'.repeat(32), 0, 1, 'PROTO_INVALID_FIELD');
  refused(hash, -1, 1, 'PROTO_INVALID_FIELD');
  refused(hash, 0.5, 1, 'PROTO_INVALID_FIELD');
  refused(hash, 0, 0, 'PROTO_INVALID_FIELD');
  refused(hash, 0, MAX_CHUNK_BYTES + 1, 'PROTO_INVALID_FIELD');
  t.throws(() => encodeChunkFrame(Buffer.alloc(CHUNK_HEADER_BYTES + 9), hash, 0, 10), TypeError);
});

t.test('unknown fields are dropped, __proto__ keys are inert', async (t) => {
  const back = decodeFrame(rawFrame({ t: 'ping', ts: 3, extra: 'x', nested: { a: 1 } }));
  t.same(back, { t: 'ping', ts: 3 });
  t.equal(Object.hasOwn(back, 'extra'), false);
  // {"__proto__": {"t": "ping", "ts": 1}} must not become a ping through the prototype chain.
  const proto = Buffer.concat([Buffer.from([0x81, 0xa9]), Buffer.from('__proto__'), rawFrame({ t: 'ping', ts: 1 })]);
  throwsCode(t, () => decodeFrame(proto), 'PROTO_UNKNOWN_TYPE');
});

t.test('limits', async (t) => {
  throwsCode(
    t,
    () => decodeFrame(Buffer.alloc(MAX_FRAME_BYTES + 1)),
    'PROTO_FRAME_TOO_LARGE',
    undefined,
    'frame over MAX_FRAME_BYTES',
  );

  const bigChunk = { t: 'chunk', hash: H1, offset: 0, data: Buffer.alloc(MAX_CHUNK_BYTES + 1) };
  throwsCode(
    t,
    () => decodeFrame(rawFrame(bigChunk)),
    'PROTO_INVALID_FIELD',
    'data',
    'decode chunk over MAX_CHUNK_BYTES',
  );
  throwsCode(
    t,
    () => encodeFrame(bigChunk as Message),
    'PROTO_INVALID_FIELD',
    'data',
    'encode chunk over MAX_CHUNK_BYTES',
  );
  throwsCode(
    t,
    () => decodeFrame(rawFrame({ ...bigChunk, data: Buffer.alloc(0) })),
    'PROTO_INVALID_FIELD',
    'data',
    'empty chunk',
  );

  const offer = clone(sampleMessages().offer);
  const file = (offer.files as Obj[])[0] as Obj;
  const files = Array.from({ length: MAX_BATCH_FILES + 1 }, (_, i) => ({
    ...file,
    hash: i.toString(16).padStart(64, '0'),
  }));
  throwsCode(
    t,
    () => decodeFrame(rawFrame({ ...offer, files })),
    'PROTO_INVALID_FIELD',
    'files',
    'batch over MAX_BATCH_FILES',
  );
  throwsCode(t, () => decodeFrame(rawFrame({ ...offer, files: [] })), 'PROTO_INVALID_FIELD', 'files', 'empty batch');
  const names = Array.from({ length: MAX_NAMES_PER_FILE + 1 }, () => (file.names as Obj[])[0]);
  throwsCode(
    t,
    () => decodeFrame(rawFrame({ ...offer, files: [{ ...file, names }] })),
    'PROTO_INVALID_FIELD',
    'files[0].names',
    'names over MAX_NAMES_PER_FILE',
  );
  const copies = Array.from({ length: MAX_COPIES_PER_FILE + 1 }, () => (file.copies as Obj[])[0]);
  throwsCode(
    t,
    () => decodeFrame(rawFrame({ ...offer, files: [{ ...file, copies }] })),
    'PROTO_INVALID_FIELD',
    'files[0].copies',
    'copies over MAX_COPIES_PER_FILE',
  );
  const longPath = [{ shoot: 's', card: 'c', path: 'p'.repeat(MAX_PATH_BYTES + 1), mtime: 0 }];
  throwsCode(
    t,
    () => decodeFrame(rawFrame({ ...offer, files: [{ ...file, names: longPath }] })),
    'PROTO_INVALID_FIELD',
    'files[0].names[0].path',
    'path over MAX_PATH_BYTES',
  );
  const longShoot = [{ shoot: 'é'.repeat(128), card: 'c', path: 'p', mtime: 0 }]; // 256 UTF-8 bytes
  throwsCode(
    t,
    () => decodeFrame(rawFrame({ ...offer, files: [{ ...file, names: longShoot }] })),
    'PROTO_INVALID_FIELD',
    'files[0].names[0].shoot',
    'segment over MAX_NAME_BYTES (UTF-8 bytes)',
  );

  // The name on the card of a renamed file is one path segment, never a path.
  const capture = { day: '2026-11-26', dateSource: 'exif' };
  for (const originalName of ['DCIM/IMG_0001.CR3', '..', 'a\\b', 'x\u0001.CR3', '', 'é'.repeat(128)]) {
    const renamed = [{ shoot: 's', card: 'c', path: 'p', mtime: 0, capture: { ...capture, originalName } }];
    throwsCode(
      t,
      () => decodeFrame(rawFrame({ ...offer, files: [{ ...file, names: renamed }] })),
      'PROTO_INVALID_FIELD',
      'files[0].names[0].capture.originalName',
      `originalName ${JSON.stringify(originalName)} refused`,
    );
  }
  const kept = [{ shoot: 's', card: 'c', path: 'p', mtime: 0, capture: { ...capture, originalName: 'IMG_0001.CR3' } }];
  t.match(
    decodeFrame(rawFrame({ ...offer, files: [{ ...file, names: kept }] })),
    { files: [{ names: [{ capture: { originalName: 'IMG_0001.CR3' } }] }] },
    'a name on the card is carried',
  );

  // Any Offer / Receipt within the count and length limits fits in one frame.
  const worst = encodeFrame(worstCaseOffer());
  t.ok(worst.length <= MAX_FRAME_BYTES, `worst-case offer is ${worst.length} bytes`);
  t.ok(encodeFrame(worstCaseReceipt()).length <= MAX_FRAME_BYTES, 'worst-case receipt fits');
  t.equal((decodeFrame(worst) as { files: unknown[] }).files.length, MAX_BATCH_FILES);
});

t.test('wrong type of every top-level field', async (t) => {
  for (const msg of Object.values(sampleMessages())) {
    for (const key of Object.keys(msg)) {
      if (key === 't') continue;
      const value = (msg as unknown as Obj)[key];
      const wrong =
        typeof value === 'string' ? 12345 : typeof value === 'number' ? 'x' : typeof value === 'boolean' ? 1 : 'x';
      const expected = msg.t === 'hello' && key === 'magic' ? 'PROTO_BAD_MAGIC' : 'PROTO_INVALID_FIELD';
      const field = expected === 'PROTO_INVALID_FIELD' ? key : undefined;
      throwsCode(
        t,
        () => decodeFrame(rawFrame({ ...clone(msg), [key]: wrong })),
        expected,
        field,
        `${msg.t}.${key} wrong type`,
      );
      const missing = clone(msg);
      delete missing[key];
      throwsCode(t, () => decodeFrame(rawFrame(missing)), expected, field, `${msg.t}.${key} missing`);
    }
  }
});

t.test('out-of-range and badly formed values', async (t) => {
  const s = sampleMessages();
  const cases: Array<[string, Obj, string]> = [
    ['negative offset', { ...clone(s.chunk), offset: -1 }, 'offset'],
    ['fractional size', { ...clone(s['file-end']), size: 1.5 }, 'size'],
    ['offset beyond 2^53', { ...clone(s.ack), offset: 2 ** 53 }, 'offset'],
    ['upper-case hash', { ...clone(s.ack), hash: H1.toUpperCase() }, 'hash'],
    ['63-char hash', { ...clone(s.ack), hash: H1.slice(1) }, 'hash'],
    ['nonce of 31 bytes', { ...clone(s['auth-challenge']), nonce: Buffer.alloc(31) }, 'nonce'],
    ['signature of 65 bytes', { ...clone(s['auth-proof']), signature: Buffer.alloc(65) }, 'signature'],
    ['agentId with a slash', { ...clone(s['auth-proof']), agentId: '../x' }, 'agentId'],
    ['lower-case error code', { ...clone(s.error), code: 'oops' }, 'code'],
    ['fingerprint without prefix', { ...clone(s['pair-accepted']), studioFingerprint: H1 }, 'studioFingerprint'],
    ['window below minimum', { ...clone(s.hello), window: 1 }, 'window'],
    [
      'studio hello without window',
      (() => {
        const h = clone(s.hello);
        delete h.window;
        return h;
      })(),
      'window',
    ],
    ['role unknown', { ...clone(s.hello), role: 'admin' }, 'role'],
    ['control char in label', { ...clone(s['pair-request']), agentName: 'a\u0007b' }, 'agentName'],
    [
      'nested path number',
      {
        ...clone(s.offer),
        files: [{ ...(clone(s.offer).files as Obj[])[0], names: [{ shoot: 's', card: 'c', path: 1, mtime: 0 }] }],
      },
      'files[0].names[0].path',
    ],
    [
      'nested copy verifiedAt string',
      { ...clone(s.receipt), copies: [{ ...(clone(s.receipt).copies as Obj[])[0], verifiedAt: 'now' }] },
      'copies[0].verifiedAt',
    ],
    [
      'duplicate hash in offer',
      { ...clone(s.offer), files: [(clone(s.offer).files as Obj[])[0], (clone(s.offer).files as Obj[])[0]] },
      'files[1]',
    ],
    ['hash in both wants and have', { ...clone(s.want), have: [H1] }, 'wants+have[1]'],
    ['have entry not a hash', { ...clone(s.want), have: [H2, 'zz'] }, 'have[1]'],
    ['files is a map', { ...clone(s.offer), files: { a: 1 } }, 'files'],
    ['file entry is a string', { ...clone(s.offer), files: ['x'] }, 'files[0]'],
  ];
  const u64 = Buffer.from([
    0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x74, 0x73, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff,
  ]);
  throwsCode(t, () => decodeFrame(u64), 'PROTO_INVALID_FIELD', 'ts', 'uint64 beyond 2^53');
  for (const [what, value, field] of cases)
    throwsCode(t, () => decodeFrame(rawFrame(value)), 'PROTO_INVALID_FIELD', field, what);
  // encodeFrame validates too.
  throwsCode(
    t,
    () => encodeFrame({ t: 'ack', hash: 'nope', offset: 0 }),
    'PROTO_INVALID_FIELD',
    'hash',
    'encode validates',
  );
});

t.test('hello: magic and version; unknown types', async (t) => {
  const hello = clone(sampleMessages().hello);
  throwsCode(t, () => decodeFrame(rawFrame({ ...hello, magic: 'S320' })), 'PROTO_BAD_MAGIC');
  throwsCode(t, () => decodeFrame(rawFrame({ ...hello, version: 2 })), 'PROTO_VERSION_UNSUPPORTED');
  throwsCode(t, () => decodeFrame(rawFrame({ ...hello, version: 0 })), 'PROTO_VERSION_UNSUPPORTED');
  // A v2 hello with v2-only fields still gets the version error, not a field error.
  throwsCode(
    t,
    () => decodeFrame(rawFrame({ t: 'hello', magic: 'S321', version: 2, role: 'agent', caps: ['x'] })),
    'PROTO_VERSION_UNSUPPORTED',
  );
  throwsCode(t, () => decodeFrame(rawFrame({ t: 'delete-everything', path: '/' })), 'PROTO_UNKNOWN_TYPE');
  throwsCode(t, () => decodeFrame(rawFrame({ t: 7 })), 'PROTO_UNKNOWN_TYPE');
  throwsCode(t, () => decodeFrame(rawFrame({ ts: 1 })), 'PROTO_UNKNOWN_TYPE');
  throwsCode(
    t,
    () => decodeFrame(rawFrame({ t: 'toString' })),
    'PROTO_UNKNOWN_TYPE',
    undefined,
    'prototype names are not types',
  );
});

t.test('malformed structure', async (t) => {
  // msgpackr itself blows the stack on this: prove the hazard is real, then that we refuse it.
  const depth = 100_000;
  const bomb = Buffer.concat([Buffer.from([0x81, 0xa1, 0x74]), Buffer.alloc(depth, 0x91), Buffer.from([0x01])]);
  t.throws(
    () => new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(bomb),
    RangeError,
    'raw msgpackr overflows the stack',
  );
  throwsCode(t, () => decodeFrame(bomb), 'PROTO_MALFORMED', undefined, '100k nested arrays inside a map');
  throwsCode(
    t,
    () => decodeFrame(Buffer.alloc(depth, 0x91)),
    'PROTO_MALFORMED',
    undefined,
    '100k nested arrays at top level',
  );

  // ~72 KB of array16 headers each claiming 1 element.
  const headers = Buffer.alloc(72 * 1024);
  for (let i = 0; i + 3 <= headers.length; i += 3) headers.set([0xdc, 0x00, 0x01], i);
  throwsCode(
    t,
    () => decodeFrame(Buffer.concat([Buffer.from([0x81, 0xa1, 0x74]), headers])),
    'PROTO_MALFORMED',
    undefined,
    '72 KB of nested array headers',
  );
  // Nesting just over the bound, and just within it (a ping with a nested unknown field).
  let nested: unknown = 1;
  for (let i = 0; i < 7; i++) nested = [nested];
  t.same(decodeFrame(rawFrame({ t: 'ping', ts: 1, x: nested })), { t: 'ping', ts: 1 }, 'depth 8 is allowed');
  throwsCode(
    t,
    () => decodeFrame(rawFrame({ t: 'ping', ts: 1, x: [nested] })),
    'PROTO_MALFORMED',
    undefined,
    'depth 9 refused',
  );

  const header2g = Buffer.from([
    0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa1, 0x78, 0xdd, 0xff, 0xff, 0xff, 0xff,
  ]);
  t.throws(
    () => new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(header2g),
    'raw msgpackr throws on a 2^32-element header',
  );
  throwsCode(t, () => decodeFrame(header2g), 'PROTO_MALFORMED', undefined, 'array32 claiming 2^32-1 elements');
  throwsCode(
    t,
    () => decodeFrame(Buffer.from([0x81, 0xa1, 0x74, 0xdd, 0x80, 0x00, 0x00, 0x00])),
    'PROTO_MALFORMED',
    undefined,
    'array32 claiming 2^31 elements',
  );
  throwsCode(
    t,
    () => decodeFrame(Buffer.from([0xdf, 0x80, 0x00, 0x00, 0x00])),
    'PROTO_MALFORMED',
    undefined,
    'map32 claiming 2^31 entries',
  );
  throwsCode(
    t,
    () => decodeFrame(Buffer.from([0x81, 0xa1, 0x74, 0xdb, 0x7f, 0xff, 0xff, 0xff])),
    'PROTO_MALFORMED',
    undefined,
    'str32 claiming 2 GB',
  );
  throwsCode(
    t,
    () => decodeFrame(Buffer.from([0x81, 0xa1, 0x74, 0xc6, 0x7f, 0xff, 0xff, 0xff])),
    'PROTO_MALFORMED',
    undefined,
    'bin32 claiming 2 GB',
  );

  const ping = encodeFrame({ t: 'ping', ts: 1 });
  throwsCode(
    t,
    () => decodeFrame(Buffer.concat([ping, Buffer.from([0x00])])),
    'PROTO_MALFORMED',
    undefined,
    'trailing byte',
  );
  throwsCode(t, () => decodeFrame(Buffer.alloc(0)), 'PROTO_MALFORMED', undefined, 'empty frame');
  throwsCode(t, () => decodeFrame(rawFrame(['ping', 1])), 'PROTO_MALFORMED', undefined, 'array frame');
  throwsCode(t, () => decodeFrame(rawFrame('ping')), 'PROTO_MALFORMED', undefined, 'string frame');
  throwsCode(
    t,
    () => decodeFrame(Buffer.from([0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0x01, 0x02])),
    'PROTO_MALFORMED',
    undefined,
    'integer map key',
  );
  throwsCode(
    t,
    () => decodeFrame(Buffer.from([0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x74, 0x73, 0xc0])),
    'PROTO_MALFORMED',
    undefined,
    'nil value',
  );
  throwsCode(
    t,
    () => decodeFrame(Buffer.from([0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x74, 0x73, 0xc1])),
    'PROTO_MALFORMED',
    undefined,
    'byte 0xc1',
  );
  // Extension types (msgpackr's Date = -1, structured clone…) are refused before msgpackr runs them.
  throwsCode(
    t,
    () =>
      decodeFrame(
        Buffer.from([0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x74, 0x73, 0xd6, 0xff, 0, 0, 0, 1]),
      ),
    'PROTO_MALFORMED',
    undefined,
    'fixext timestamp',
  );
  throwsCode(
    t,
    () => decodeFrame(Buffer.from([0x81, 0xa1, 0x74, 0xc7, 0x01, 0x72, 0x00])),
    'PROTO_MALFORMED',
    undefined,
    'ext8',
  );
  throwsCode(
    t,
    () =>
      scanMsgpack(Buffer.from([0x81, 0xa1, 0x74, 0xa1, 0x78]), {
        maxDepth: 8,
        maxItems: 4,
        maxStrBytes: 4,
        maxKeyBytes: 0,
        maxBinBytes: 4,
      }),
    'PROTO_MALFORMED',
    undefined,
    'key longer than maxKeyBytes',
  );
});

t.test('a frame cut at every byte is PROTO_MALFORMED', async (t) => {
  const s = sampleMessages();
  let cuts = 0;
  for (const msg of [s.offer, s.receipt, s.chunk, s.hello, s['pair-request']]) {
    const frame = encodeFrame(msg);
    for (let n = 0; n < frame.length; n++) {
      try {
        decodeFrame(frame.subarray(0, n));
        t.fail(`${msg.t} cut at ${n} decoded`);
      } catch (err) {
        if (!(err instanceof ProtocolError) || err.code !== 'PROTO_MALFORMED')
          t.fail(`${msg.t} cut at ${n}: ${String(err)}`);
      }
      cuts++;
    }
  }
  t.ok(cuts > 500, `${cuts} truncations refused`);
});

t.test('fuzz: random bytes and mutated frames only ever give a ProtocolError', async (t) => {
  let seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
  t.comment(`FUZZ_SEED=${seed}`);
  const rand = (): number => {
    // mulberry32: reproducible from the seed printed above.
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
  const frames = Object.values(sampleMessages()).map((m) => encodeFrame(m));
  const codes = new Map<string, number>();
  let decoded = 0;
  const attempt = (buf: Buffer): void => {
    try {
      const msg = decodeFrame(buf);
      decoded++;
      encodeFrame(msg); // whatever decodes must re-encode
    } catch (err) {
      if (!(err instanceof ProtocolError)) {
        t.fail(`non-ProtocolError ${String(err)} for ${buf.toString('hex').slice(0, 200)}`);
        return;
      }
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    }
  };
  for (let i = 0; i < 2000; i++) {
    const buf = Buffer.alloc(Math.floor(rand() * 64));
    for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rand() * 256);
    if (buf.length > 0 && rand() < 0.5) buf[0] = 0x80 | Math.floor(rand() * 16); // start like a map
    attempt(buf);
  }
  for (let i = 0; i < 4000; i++) {
    const frame = Buffer.from(frames[Math.floor(rand() * frames.length)] as Buffer);
    const edits = 1 + Math.floor(rand() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * frame.length);
      const r = rand();
      if (r < 0.6) frame[at] = Math.floor(rand() * 256);
      else if (r < 0.8) frame[at] = (frame[at] as number) ^ (1 << Math.floor(rand() * 8));
      else frame[at] = [0xdd, 0xdf, 0xdb, 0xc6, 0xc0, 0xc1, 0xd6, 0xff][Math.floor(rand() * 8)] as number;
    }
    attempt(rand() < 0.2 ? frame.subarray(0, Math.floor(rand() * frame.length)) : frame);
  }
  t.comment(`decoded ${decoded}; refused ${JSON.stringify(Object.fromEntries(codes))}`);
  t.ok(
    (codes.get('PROTO_MALFORMED') ?? 0) > 0 && (codes.get('PROTO_INVALID_FIELD') ?? 0) > 0,
    'both structural and schema checks were exercised',
  );
});

t.test('errorFrame / nackFrame stay within the wire limits', async (t) => {
  const long = new CodedError('STUDIO_TARGET_FULL', 'é'.repeat(2000), { retryable: true });
  const e = errorFrame(long);
  t.equal(Buffer.byteLength(e.message), 1024, 'clipped to 1024 UTF-8 bytes on a character boundary');
  t.same(decodeFrame(encodeFrame(e)), e);
  const n = nackFrame(H1, long, 5);
  t.same(decodeFrame(encodeFrame(n)), {
    t: 'nack',
    hash: H1,
    code: 'STUDIO_TARGET_FULL',
    message: e.message,
    retryable: true,
    resumeOffset: 5,
  });
  t.equal(errorFrame(new CodedError('ENOSPC', 'x')).code, 'ENOSPC');
  t.equal(errorFrame(new CodedError('bad code', 'x')).code, 'INTERNAL_ERROR', 'invalid codes are replaced');
  t.equal(clipUtf8('a😀b', 4), 'a', 'never splits a surrogate pair');
});
