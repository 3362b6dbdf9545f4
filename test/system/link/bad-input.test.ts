/**
 * Hostile and broken input: every case gets its coded error,
 * the daemon keeps serving the other session, and nothing is written outside
 * the target roots (nor anything partial inside them).
 */
import t, { type Test } from 'tap';
import { pack } from 'msgpackr';
import { randomBytes } from 'node:crypto';
import { readdir, rename, readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes, MAX_FRAME_BYTES, type FileName } from '@studio321/protocol';
import {
  listFiles,
  makeAgent,
  pairAgent,
  startStudiod,
  waitFor,
  type StudiodProcess,
} from '../../lib/studio-harness.js';
import { WireClient, authedClient } from '../../lib/studio-wire.js';

const name = (path: string, extra: Partial<FileName> = {}): FileName => ({
  shoot: 'shoot',
  card: 'CARD',
  path,
  mtime: Date.UTC(2026, 10, 26),
  ...extra,
});

async function sendFile(c: WireClient, data: Buffer, names: FileName[], hash = hashBytes(data)): Promise<string> {
  const batchId = `b${Math.random().toString(16).slice(2, 10)}`;
  c.send({ t: 'offer', batchId, files: [{ hash, size: data.length, names, copies: [] }] });
  const want = await c.next('want');
  const w = want.wants.find((x) => x.hash === hash);
  if (w !== undefined) {
    for (let off = w.offset; off < data.length; off += 65536)
      c.send({ t: 'chunk', hash, offset: off, data: data.subarray(off, Math.min(data.length, off + 65536)) });
    c.send({ t: 'file-end', hash, size: data.length });
  }
  return hash;
}

async function expectAlive(t: Test, c: WireClient, what: string): Promise<void> {
  const ts = Date.now();
  c.send({ t: 'ping', ts });
  const p = await c.next('pong');
  t.equal(p.ts, ts, `${what}: the other session is still served`);
}

async function nothingOutside(t: Test, studio: StudiodProcess, what: string): Promise<void> {
  t.same(
    (await readdir(studio.dirs.base)).sort(),
    ['mirror', 'raid', 'state', 'studiod.json'],
    `${what}: nothing written outside the roots`,
  );
}

t.test('malformed, oversized, nested, text, unknown frames', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  // The well-behaved session belongs to another agent (a reconnect of the same
  // agent supersedes its older session by design).
  const other = await makeAgent(t);
  await pairAgent(studio, other);
  const good = await authedClient(studio.url, other.dataDir);
  t.teardown(() => good.close());

  const cases: Array<[string, (c: WireClient) => void, string, number]> = [
    ['random bytes', (c) => c.sendRaw(randomBytes(100)), 'PROTO_MALFORMED', 1002],
    ['truncated map', (c) => c.sendRaw(Buffer.from([0x82, 0xa1, 0x74])), 'PROTO_MALFORMED', 1002],
    [
      'nested-array bomb',
      (c) => c.sendRaw(Buffer.concat([Buffer.alloc(200_000, 0x91), Buffer.from([0x01])])),
      'PROTO_MALFORMED',
      1002,
    ],
    ['lying length header', (c) => c.sendRaw(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff])), 'PROTO_MALFORMED', 1002],
    ['text message', (c) => c.sendRaw('{"t":"ping"}', false), 'PROTO_MALFORMED', 1002],
    [
      'unknown type',
      (c) => c.sendRaw(Buffer.from([0x81, 0xa1, 0x74, 0xa3, 0x66, 0x6f, 0x6f])),
      'PROTO_UNKNOWN_TYPE',
      1002,
    ],
  ];
  for (const [what, send, code, closeCode] of cases) {
    const bad = await authedClient(studio.url, agent.dataDir);
    send(bad);
    t.match(await bad.errorAndClose(), { code, closeCode }, `${what}: ${code}`);
    await expectAlive(t, good, what);
  }
  // More unacknowledged bytes than the 2 MiB window: refused. The studio counts chunk bytes as they
  // arrive and releases them with its Acks, so it sees the excess only while it is behind the
  // sender; a studio that happens to stage and ack every chunk as fast as they come (a CPU-starved
  // sender) is within its window. Such an attempt ends with every byte acked and is repeated with
  // a new file; a studio without the check would never refuse, so 5 attempts without a refusal fail.
  let refusal: { code: string; closeCode: number } | undefined;
  let keptUp = 0;
  for (let attempt = 0; attempt < 5 && refusal === undefined; attempt++) {
    const greedy = await authedClient(studio.url, agent.dataDir);
    const blob = randomBytes(8 * 1024 * 1024);
    const blobHash = hashBytes(blob);
    greedy.send({
      t: 'offer',
      batchId: `bw${attempt}`,
      files: [{ hash: blobHash, size: blob.length, names: [name(`DCIM/W${attempt}.MOV`)], copies: [] }],
    });
    await greedy.next('want');
    for (let off = 0; off < blob.length; off += 1024 * 1024)
      greedy.send({ t: 'chunk', hash: blobHash, offset: off, data: blob.subarray(off, off + 1024 * 1024) });
    let acked = 0;
    try {
      while (acked < blob.length) acked = (await greedy.next('ack')).offset;
    } catch {
      // closed: refused (below), or a failure the assertion below reports
    }
    if (acked === blob.length) {
      keptUp++;
      greedy.close();
      continue;
    }
    refusal = await greedy.errorAndClose();
  }
  t.match(
    refusal,
    { code: 'PROTO_WINDOW_EXCEEDED' },
    `window exceeded: PROTO_WINDOW_EXCEEDED (after ${keptUp} attempt(s) the studio kept up with)`,
  );
  await expectAlive(t, good, 'window exceeded');
  // Over the frame limit: ws refuses it before buffering (close 1009).
  const big = await authedClient(studio.url, agent.dataDir);
  big.sendRaw(Buffer.alloc(MAX_FRAME_BYTES + 1024));
  t.equal(await big.closed, 1009, 'oversized frame: closed with 1009 (PROTO_FRAME_TOO_LARGE)');
  await expectAlive(t, good, 'oversized frame');
  // Before auth too.
  const pre = new WireClient(studio.url);
  await pre.open();
  pre.sendRaw(Buffer.from([0xc1]));
  t.match(await pre.errorAndClose(), { code: 'PROTO_MALFORMED' }, 'malformed before auth: PROTO_MALFORMED');
  t.same(await listFiles(studio.dirs.mirror), [], 'nothing stored');
  await nothingOutside(t, studio, 'frames');
});

t.test('wrong offsets, duplicated chunks, hash mismatch', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const data = randomBytes(300_000);
  const hash = hashBytes(data);

  const c1 = await authedClient(studio.url, agent.dataDir);
  c1.send({ t: 'offer', batchId: 'b1', files: [{ hash, size: data.length, names: [name('DCIM/A.CR3')], copies: [] }] });
  t.same((await c1.next('want')).wants, [{ hash, offset: 0 }], 'wanted from 0');
  c1.send({ t: 'chunk', hash, offset: 1000, data: data.subarray(1000, 2000) });
  t.match(await c1.errorAndClose(), { code: 'PROTO_UNEXPECTED_MESSAGE' }, 'wrong offset: PROTO_UNEXPECTED_MESSAGE');

  const c2 = await authedClient(studio.url, agent.dataDir);
  c2.send({ t: 'offer', batchId: 'b2', files: [{ hash, size: data.length, names: [name('DCIM/A.CR3')], copies: [] }] });
  t.same((await c2.next('want')).wants, [{ hash, offset: 0 }], 'nothing was staged from the wrong chunk');
  c2.send({ t: 'chunk', hash, offset: 0, data: data.subarray(0, 100_000) });
  c2.send({ t: 'chunk', hash, offset: 0, data: data.subarray(0, 100_000) });
  t.match(await c2.errorAndClose(), { code: 'PROTO_UNEXPECTED_MESSAGE' }, 'duplicated chunk: PROTO_UNEXPECTED_MESSAGE');

  const c3 = await authedClient(studio.url, agent.dataDir);
  t.teardown(() => c3.close());
  c3.send({ t: 'offer', batchId: 'b3', files: [{ hash, size: data.length, names: [name('DCIM/A.CR3')], copies: [] }] });
  t.same(
    (await c3.next('want')).wants,
    [{ hash, offset: 100_000 }],
    'the first chunk stayed durable: resume at 100000',
  );
  // The rest with one flipped bit: the staged file does not hash to the offer.
  const rest = Buffer.from(data.subarray(100_000));
  rest[5000] = (rest[5000] ?? 0) ^ 1;
  c3.send({ t: 'chunk', hash, offset: 100_000, data: rest });
  c3.send({ t: 'file-end', hash, size: data.length });
  const nack = await c3.next('nack');
  t.match(
    nack,
    { hash, code: 'PROTO_HASH_MISMATCH', retryable: true, resumeOffset: 0 },
    'hash mismatch: Nack, staging discarded',
  );
  t.same(await listFiles(studio.stagingDir), [], 'staged file discarded');
  t.same(await listFiles(studio.dirs.mirror), [], 'nothing under a final name on mirror');
  t.same(await listFiles(studio.dirs.raid), [], 'nothing under a final name on raid');
  // The agent sends it again from 0: committed.
  await sendFile(c3, data, [name('DCIM/A.CR3')]);
  const receipt = await c3.next('receipt');
  t.equal(receipt.hash, hash, 'sent again, committed');
  t.ok((await readFile(join(studio.dirs.mirror, receipt.copies[0]?.path ?? ''))).equals(data), 'mirror copy correct');
  t.ok((await readFile(join(studio.dirs.raid, receipt.copies[1]?.path ?? ''))).equals(data), 'raid copy correct');
  await nothingOutside(t, studio, 'chunks');
});

t.test('hostile and clashing names', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const c = await authedClient(studio.url, agent.dataDir);
  t.teardown(() => c.close());

  const hostile: Array<[string, FileName]> = [
    ['../ traversal', name('../../etc/passwd')],
    ['inner ..', name('DCIM/../../x.CR3')],
    ['absolute path', name('/etc/passwd')],
    ['NUL', name('DCIM/a\u0000b.CR3')],
    ['backslash', name('DCIM\\..\\x.CR3')],
    ['very long segment', name(`DCIM/${'x'.repeat(300)}.CR3`)],
    ['shoot with slash', name('DCIM/a.CR3', { shoot: '../up' })],
    ['card ..', name('DCIM/a.CR3', { card: '..' })],
  ];
  for (const [what, n] of hostile) {
    const data = randomBytes(1000);
    const hash = hashBytes(data);
    c.send({ t: 'offer', batchId: 'bn', files: [{ hash, size: data.length, names: [n], copies: [] }] });
    const nack = await c.next('nack');
    t.match(nack, { hash, code: 'PROTO_BAD_NAME', retryable: false }, `${what}: PROTO_BAD_NAME`);
    const want = await c.next('want');
    t.same([want.wants, want.have], [[], []], `${what}: left out of the Want`);
  }
  // A path over MAX_PATH_BYTES never reaches the name check: the codec refuses the frame.
  const agent2 = await makeAgent(t);
  await pairAgent(studio, agent2);
  const longPath = await authedClient(studio.url, agent2.dataDir);
  longPath.sendRaw(
    pack({
      t: 'offer',
      batchId: 'bl',
      files: [{ hash: 'a'.repeat(64), size: 1, names: [name(`${'x/'.repeat(600)}a.CR3`)], copies: [] }],
    }),
  );
  t.match(
    await longPath.errorAndClose(),
    { code: 'PROTO_INVALID_FIELD' },
    'very long path: PROTO_INVALID_FIELD, session closed',
  );
  t.same(await listFiles(studio.dirs.mirror), [], 'nothing stored for hostile names');
  await nothingOutside(t, studio, 'names');

  // Same name, different content; names differing only by case; by Unicode normalisation.
  const variants = [
    name('DCIM/100CANON/IMG_0001.CR3'),
    name('DCIM/100CANON/IMG_0001.CR3'),
    name('DCIM/100CANON/img_0001.cr3'),
    name('DCIM/100CANON/Caf\u00e9.CR3'),
    name('DCIM/100CANON/Cafe\u0301.CR3'),
  ];
  const contents: Buffer[] = [];
  for (const n of variants) {
    const data = randomBytes(2000);
    contents.push(data);
    await sendFile(c, data, [n]);
    await c.next('receipt');
  }
  const stored = await listFiles(studio.dirs.mirror);
  t.equal(stored.length, variants.length, 'every different content stored, none overwritten');
  t.equal(
    new Set(stored.map((p) => p.normalize('NFC').toLowerCase())).size,
    stored.length,
    'no two stored names differ only by case or normalisation',
  );
  for (const data of contents) {
    let found = 0;
    for (const rel of stored) if ((await readFile(join(studio.dirs.mirror, rel))).equals(data)) found++;
    t.equal(found, 1, 'each content stored exactly once');
  }
  t.ok(
    stored.some((p) => p.endsWith('IMG_0001~2.CR3')),
    'a clash gets a distinct name (~2)',
  );
});

t.test('a target unmounted: no receipt, clear status, resumes when it returns', async (t) => {
  const studio = await startStudiod(t);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const c = await authedClient(studio.url, agent.dataDir);
  t.teardown(() => c.close());
  // First commit writes the target markers.
  await sendFile(c, randomBytes(1000), [name('DCIM/first.CR3')]);
  await c.next('receipt');

  const away = `${studio.dirs.raid}-unmounted`;
  await rename(studio.dirs.raid, away);
  // A small file is held in memory, never staged (small-commit.ts): it is sent again whole.
  const data = randomBytes(50_000);
  const hash = await sendFile(c, data, [name('DCIM/second.CR3')]);
  t.match(
    await c.next('nack'),
    { hash, code: 'STUDIO_TARGET_MISSING', retryable: true, resumeOffset: 0 },
    'raid missing, a small file: Nack STUDIO_TARGET_MISSING, to be sent again whole',
  );
  // A larger file is staged as it arrives: the Nack keeps what staging holds.
  const big = randomBytes(300_000);
  const bigHash = await sendFile(c, big, [name('DCIM/third.CR3')]);
  t.match(
    await c.next('nack'),
    { hash: bigHash, code: 'STUDIO_TARGET_MISSING', retryable: true, resumeOffset: big.length },
    'raid missing, a staged file: Nack STUDIO_TARGET_MISSING, staging kept',
  );
  t.notOk(
    (await listFiles(studio.dirs.mirror)).some((p) => p.endsWith('second.CR3') || p.endsWith('third.CR3')),
    'mirror not reported nor written on its own',
  );
  const st = JSON.parse((await studio.ctl(['--json', 'status'])).stdout) as {
    targets: Record<string, { available: boolean }>;
    lastErrors: Array<{ code: string }>;
  };
  t.equal(st.targets['raid']?.available, false, 'status: raid not available');
  t.ok(
    st.lastErrors.some((e) => e.code === 'STUDIO_TARGET_MISSING'),
    'status: last error says STUDIO_TARGET_MISSING',
  );

  // An empty mount point (root exists, marker gone) is not the disk either.
  await mkdir(studio.dirs.raid);
  const again = await sendFile(c, data, [name('DCIM/second.CR3')]);
  t.match(
    await c.next('nack'),
    { hash: again, code: 'STUDIO_TARGET_MISSING' },
    'empty mount point: STUDIO_TARGET_MISSING',
  );
  t.same(await listFiles(studio.dirs.raid), [], 'nothing written to the empty mount point');
  await (await import('node:fs/promises')).rmdir(studio.dirs.raid);

  await rename(away, studio.dirs.raid);
  await sendFile(c, data, [name('DCIM/second.CR3')]);
  const receipt = await c.next('receipt');
  t.equal(receipt.hash, hash, 'disk back: the small file committed');
  t.equal(receipt.copies.length, 2, 'receipt lists both targets');
  await sendFile(c, big, [name('DCIM/third.CR3')]);
  const bigReceipt = await c.next('receipt');
  t.equal(bigReceipt.hash, bigHash, 'disk back: the staged file committed');
  t.equal(bigReceipt.copies.length, 2, 'its receipt lists both targets');
  await waitFor(
    async () => (await listFiles(studio.dirs.raid)).filter((p) => /(second|third)\.CR3$/.test(p)).length === 2,
    'raid copies',
  );
});
