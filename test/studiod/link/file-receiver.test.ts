/**
 * FileReceiver (studiod/src/link/file-receiver.ts) driven in-process. The peer
 * is a FAKE: the test hands the receiver the frames a session would (offer,
 * admit + chunk, file-end) and a FakeLink records what it sends back; real
 * sessions over real sockets are covered by test/system/link/*. Everything
 * behind the receiver is real: Staging in the mirror's file system, the
 * Committer writing both targets, the LevelDB Catalogue, all in temp dirs.
 */
import t, { type Test } from 'tap';
import { EventEmitter, once } from 'node:events';
import { open as open_, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createLogger,
  hashBytes,
  type CodedError,
  type FileName,
  type Message,
  type MessageOf,
} from '@studio321/protocol';
import type { Catalogue, LocalTargetConfig, LocalTargetName } from '@studio321/studiod';
import { committerFixture } from '../../lib/committer-fixture.js';
import { checkTarget, type Committer, Staging, STAGING_DIR } from '@studio321/studiod/commit';
import { FileReceiver, type FileLink } from '@studio321/studiod/link';
import { testBytes } from '../../lib/lying-source.js';
import { mountTmpfs } from '../../lib/tmpfs.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const AGENT = 'agt_test';
const MTIME = Date.UTC(2026, 10, 26);

/** FAKE peer: records what the receiver sends and the session failures it asks for. */
class FakeLink implements FileLink {
  readonly sent: Message[] = [];
  readonly failures: CodedError[] = [];
  readonly log = createLogger({ name: 'file-receiver-test', level: 'silent' });
  readonly #events = new EventEmitter();

  send(msg: Message): void {
    this.sent.push(msg);
    this.#events.emit('sent');
  }

  fail(err: CodedError): void {
    this.failures.push(err);
  }

  of<T extends Message['t']>(type: T, hash?: string): Array<MessageOf<T>> {
    return this.sent.filter(
      (m): m is MessageOf<T> => m.t === type && (hash === undefined || !('hash' in m) || m.hash === hash),
    );
  }

  /** Resolves once `done()` holds (checked now and after each frame sent). */
  async until(done: () => boolean): Promise<void> {
    while (!done()) await once(this.#events, 'sent');
  }

  /** The first frame of `type` (for `hash`), already sent or the next one. */
  async next<T extends Message['t']>(type: T, hash?: string): Promise<MessageOf<T>> {
    for (;;) {
      const m = this.of(type, hash)[0];
      if (m !== undefined) return m;
      await once(this.#events, 'sent');
    }
  }
}

interface Studio {
  catalogue: Catalogue;
  staging: Staging;
  committer: Committer;
  targets: Record<LocalTargetName, LocalTargetConfig>;
}

async function studio(t: Test): Promise<Studio> {
  const { catalogue, committer, targets } = await committerFixture(t);
  // Wired as studio.ts wires them: nothing is staged on a mirror that fails its check.
  const staging = new Staging(targets.mirror.root, () =>
    checkTarget('mirror', targets.mirror, (catalogue.counters().copies.mirror?.count ?? 0) > 0),
  );
  return { catalogue, staging, committer, targets };
}

function receiver(s: Studio, sessionId: string, windowBytes = 16 * MiB): { files: FileReceiver; link: FakeLink } {
  const link = new FakeLink();
  const files = new FileReceiver(link, {
    sessionId,
    catalogue: s.catalogue,
    staging: s.staging,
    committer: s.committer,
    windowBytes,
    now: Date.now,
  });
  return { files, link };
}

const name = (path: string, card = 'CARD1'): FileName => ({ shoot: 'shoot', card, path, mtime: MTIME });

function offer(hash: string, size: number, names: FileName[], batchId = 'b1'): MessageOf<'offer'> {
  return { t: 'offer', batchId, files: [{ hash, size, names, copies: [] }] };
}

/** What a session does with a Chunk: count it against the window at arrival, then hand it over. */
async function chunk(files: FileReceiver, hash: string, offset: number, data: Uint8Array): Promise<void> {
  const msg: MessageOf<'chunk'> = { t: 'chunk', hash, offset, data };
  files.admit(msg);
  await files.chunk(msg);
}

async function chunks(files: FileReceiver, hash: string, data: Uint8Array, from: number, to: number): Promise<void> {
  for (let off = from; off < to; off += 64 * KiB)
    await chunk(files, hash, off, data.subarray(off, Math.min(to, off + 64 * KiB)));
}

/** Every file under `root` but the target marker, `dir/name` relative (staging and temps included). */
async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || e.name === '.studio321-target.json') continue;
    out.push(join(e.parentPath, e.name).slice(root.length + 1));
  }
  return out.sort();
}

/** Nothing under a final name and no temp on either target; the mirror's staging holds `staged` (hash → bytes). */
async function nothingKept(t: Test, s: Studio, staged: Record<string, number>, what: string): Promise<void> {
  t.same(await tree(s.targets.raid.root), [], `${what}: nothing on the RAID target`);
  const partPath = (hash: string): string => join(STAGING_DIR, `${hash}.part`);
  t.same(
    await tree(s.targets.mirror.root),
    Object.keys(staged).map(partPath).sort(),
    `${what}: nothing on the mirror target but ${Object.keys(staged).length === 0 ? 'no' : 'the'} staged part`,
  );
  for (const [hash, bytes] of Object.entries(staged))
    t.equal((await stat(join(s.targets.mirror.root, partPath(hash)))).size, bytes, `${what}: ${bytes} bytes staged`);
}

/** The receipt's path holds exactly `data` on both targets. */
async function storedOnBoth(t: Test, s: Studio, receipt: MessageOf<'receipt'>, data: Uint8Array): Promise<void> {
  t.same(receipt.copies.map((c) => c.target).sort(), ['mirror', 'raid'], 'the receipt lists both local targets');
  for (const c of receipt.copies) {
    const root = s.targets[c.target as LocalTargetName].root;
    t.equal(Buffer.compare(await readFile(join(root, c.path)), data), 0, `${c.target}: ${c.path} holds the bytes`);
  }
}

t.test('a new file: wanted from 0, staged, committed to both targets, then Ack and Receipt', async (t) => {
  const s = await studio(t);
  const { files, link } = receiver(s, 's1');
  const data = testBytes(300 * KiB, 1);
  const hash = hashBytes(data);
  await files.offer(offer(hash, data.byteLength, [name('DCIM/100CANON/IMG_0001.CR3')]), AGENT);
  t.same(link.of('want'), [{ t: 'want', batchId: 'b1', wants: [{ hash, offset: 0 }], have: [] }], 'wanted from 0');
  await chunks(files, hash, data, 0, data.byteLength);
  await files.fileEnd({ t: 'file-end', hash, size: data.byteLength });
  const receipt = await link.next('receipt', hash);
  const acks = link.of('ack', hash);
  t.equal(acks.at(-1)?.offset, data.byteLength, 'the last Ack covers the whole file');
  t.ok(link.sent.indexOf(acks.at(-1)!) < link.sent.indexOf(receipt), 'the Ack before the Receipt');
  t.equal(receipt.size, data.byteLength);
  await storedOnBoth(t, s, receipt, data);
  t.equal(receipt.copies[0]?.path, '2026-11-26/shoot/CARD1/DCIM/100CANON/IMG_0001.CR3', 'laid out by date/shoot/card');
  t.same(await tree(s.targets.raid.root), [receipt.copies[0]?.path], 'one file on the RAID, no temp');
  t.same(await tree(s.targets.mirror.root), [receipt.copies[0]?.path], 'one file on the mirror, the part is gone');
  t.equal((await s.catalogue.getAsset(hash))?.size, data.byteLength, 'the catalogue holds the asset');
  t.same(link.of('nack'), [], 'no Nack');
  t.same(link.failures, [], 'the session is never failed');
  t.equal(files.bytesReceived, data.byteLength);
  t.equal(files.filesCommitted, 1);
  await files.close();
  t.equal(files.state, 'closed');
});

t.test('a file the studio already has: a Receipt without a Want, the new name recorded', async (t) => {
  const s = await studio(t);
  const data = testBytes(100 * KiB, 2);
  const hash = hashBytes(data);
  const first = receiver(s, 's1');
  await first.files.offer(offer(hash, data.byteLength, [name('DCIM/IMG_0002.CR3')]), AGENT);
  await chunks(first.files, hash, data, 0, data.byteLength);
  await first.files.fileEnd({ t: 'file-end', hash, size: data.byteLength });
  const stored = await first.link.next('receipt', hash);
  await first.files.close();

  // The second slot of a dual-slot card: same bytes, another card name.
  const { files, link } = receiver(s, 's2');
  await files.offer(offer(hash, data.byteLength, [name('DCIM/IMG_0002.CR3', 'CARD2')], 'b2'), AGENT);
  t.same(link.of('want'), [{ t: 'want', batchId: 'b2', wants: [], have: [hash] }], 'in `have`, not wanted');
  const receipt = await link.next('receipt', hash);
  t.same(receipt, stored, 'the Receipt of the stored asset');
  t.ok(link.sent.indexOf(receipt) > link.sent.indexOf(link.of('want')[0]!), 'the Receipt after the Want');
  t.same((await s.catalogue.namesOf(hash)).map((n) => n.card).sort(), ['CARD1', 'CARD2'], 'the new name recorded');
  t.same(await tree(s.targets.raid.root), [stored.copies[0]?.path], 'not written again');
  t.same(await s.staging.list(), [], 'nothing staged');
  t.equal(files.bytesReceived, 0);
  await files.close();
});

// 200 KiB: committed whole from memory; 3 MiB: staged, its RAID copy made from the staged copy's
// read-back, so only the hash of the bytes as received tells them from a bad mirror disk.
for (const size of [200 * KiB, 3 * 1024 * KiB])
  t.test(
    `bytes that do not hash to the offer (${size / KiB} KiB): Nack PROTO_HASH_MISMATCH, nothing kept anywhere`,
    async (t) => {
      const s = await studio(t);
      const { files, link } = receiver(s, 's1');
      const data = testBytes(size, 3);
      const hash = hashBytes(data);
      const flipped = Uint8Array.from(data);
      flipped[150 * KiB] = flipped[150 * KiB]! ^ 0x01;
      await files.offer(offer(hash, data.byteLength, [name('DCIM/IMG_0003.CR3')]), AGENT);
      await chunks(files, hash, flipped, 0, flipped.byteLength);
      await files.fileEnd({ t: 'file-end', hash, size: data.byteLength });
      const nack = await link.next('nack', hash);
      t.match(
        nack,
        { code: 'PROTO_HASH_MISMATCH', retryable: true, resumeOffset: 0 },
        'Nack PROTO_HASH_MISMATCH from 0',
      );
      await files.close();
      t.same(link.of('receipt'), [], 'no Receipt');
      await nothingKept(t, s, {}, 'hash mismatch');
      t.equal(await s.catalogue.getAsset(hash), undefined, 'no asset in the catalogue');
      t.same(await s.catalogue.intents(), [], 'no commit intent left');
    },
  );

t.test(
  'a staged copy that reads back otherwise than the bytes received: the mirror disk is named, nothing kept',
  async (t) => {
    const s = await studio(t);
    // The commit waits until the staged file was changed on disk (after its fsync and Ack).
    let open!: () => void;
    const opened = new Promise<void>((r) => {
      open = r;
    });
    const held = {
      commit: async (input: Parameters<Committer['commit']>[0]) => {
        await opened;
        return s.committer.commit(input);
      },
      receiptFor: s.committer.receiptFor.bind(s.committer),
    };
    const { files, link } = receiver({ ...s, committer: held as unknown as Committer }, 's1');
    const data = testBytes(3 * MiB, 4);
    const hash = hashBytes(data);
    await files.offer(offer(hash, data.byteLength, [name('DCIM/IMG_0004.CR3')]), AGENT);
    await chunks(files, hash, data, 0, data.byteLength);
    await files.fileEnd({ t: 'file-end', hash, size: data.byteLength });
    await link.until(() => link.of('ack', hash).some((a) => a.offset === data.byteLength));
    const fh = await open_(s.staging.pathOf(hash), 'r+');
    await fh.write(Buffer.from([(data[2 * MiB] as number) ^ 0xff]), 0, 1, 2 * MiB);
    await fh.sync();
    await fh.close();
    open();
    const nack = await link.next('nack', hash);
    t.match(nack, { code: 'DURABLE_READBACK_MISMATCH', retryable: true, resumeOffset: 0 }, 'the mirror disk, from 0');
    t.match(nack.message, /mirror disk/);
    await files.close();
    t.same(link.of('receipt'), [], 'no Receipt');
    await nothingKept(t, s, {}, 'mirror disk');
    t.equal(await s.catalogue.getAsset(hash), undefined, 'no asset in the catalogue');
  },
);

t.test(
  'a small new file: held in memory, never staged, its only Ack with its Receipt; a short one is Nacked from 0',
  async (t) => {
    const s = await studio(t);
    const { files, link } = receiver(s, 's-small');
    const data = testBytes(100 * KiB, 7); // under SMALL_COMMIT_BYTES: committed whole from memory
    const hash = hashBytes(data);
    await files.offer(offer(hash, data.byteLength, [name('DCIM/IMG_0100.JPG')]), AGENT);
    await chunks(files, hash, data, 0, data.byteLength);
    t.same(link.of('ack', hash), [], 'no Ack while its bytes are only in memory');
    await nothingKept(t, s, {}, 'all received, before FileEnd');
    await files.fileEnd({ t: 'file-end', hash, size: data.byteLength });
    const receipt = await link.next('receipt', hash);
    t.same(link.of('ack', hash), [{ t: 'ack', hash, offset: data.byteLength }], 'one Ack, of the whole file');
    t.equal(
      link.sent.indexOf(receipt) - 1,
      link.sent.indexOf(link.of('ack', hash)[0] as Message),
      'sent right before its Receipt',
    );
    await storedOnBoth(t, s, receipt, data);

    // FileEnd after part of another small file: nothing of it is durable, so it is sent again from 0.
    const short = testBytes(50 * KiB, 8);
    const shortHash = hashBytes(short);
    await files.offer(offer(shortHash, short.byteLength, [name('DCIM/IMG_0101.JPG')], 'b2'), AGENT);
    await chunks(files, shortHash, short, 0, 40 * KiB);
    await files.fileEnd({ t: 'file-end', hash: shortHash, size: short.byteLength });
    t.match(
      await link.next('nack', shortHash),
      { code: 'PROTO_SIZE_MISMATCH', retryable: true, resumeOffset: 0 },
      'Nack PROTO_SIZE_MISMATCH from 0',
    );
    await files.close();
    t.same(link.of('receipt', shortHash), [], 'no Receipt for it');
    for (const root of [s.targets.mirror.root, s.targets.raid.root])
      t.same(
        (await tree(root)).filter((p) => p.includes('IMG_0101') || p.includes(shortHash)),
        [],
        `${root.endsWith('raid') ? 'RAID' : 'mirror'}: nothing of it, staged or final`,
      );
    t.equal(await s.catalogue.getAsset(shortHash), undefined, 'no asset in the catalogue');
  },
);

t.test('FileEnd with the wrong size: Nack PROTO_SIZE_MISMATCH, only the durable part kept', async (t) => {
  const s = await studio(t);
  // Over SMALL_COMMIT_BYTES: staged as it arrives (a small file is kept in memory, small-commit.test.ts).
  const data = testBytes(300 * KiB, 4);
  const hash = hashBytes(data);
  const cases: Array<[string, number, number]> = [
    ['every byte sent, FileEnd says one more', data.byteLength, data.byteLength + 1],
    ['half the bytes sent, FileEnd says all', 100 * KiB, data.byteLength],
  ];
  for (const [what, sent, claimed] of cases) {
    const { files, link } = receiver(s, `s-${sent}`);
    await files.offer(offer(hash, data.byteLength, [name('DCIM/IMG_0004.CR3')]), AGENT);
    const from = link.of('want')[0]?.wants[0]?.offset ?? -1;
    t.equal(from, 0, `${what}: wanted from 0`);
    await chunks(files, hash, data, 0, sent);
    await files.fileEnd({ t: 'file-end', hash, size: claimed });
    const nack = await link.next('nack', hash);
    t.match(nack, { code: 'PROTO_SIZE_MISMATCH', retryable: true, resumeOffset: sent }, `${what}: Nack`);
    await files.close();
    t.same(link.of('receipt'), [], `${what}: no Receipt`);
    // The resume point (SPEC §3.7) is all that stays: no temp, nothing under a final name.
    await nothingKept(t, s, { [hash]: sent }, what);
    t.equal(await s.catalogue.getAsset(hash), undefined, `${what}: no asset in the catalogue`);
    // Start the next case from nothing: its staged part is removed the way a hash mismatch removes it.
    const part = await s.staging.acquire(hash, data.byteLength, 'cleanup');
    await part.discard();
  }
});

t.test('refused chunks: not wanted, past the window, beyond the offered size, at a wrong offset', async (t) => {
  const s = await studio(t);
  const data = testBytes(200 * KiB, 5);
  const hash = hashBytes(data);
  const other = hashBytes(testBytes(10, 6));

  const unwanted = receiver(s, 's-unwanted');
  await t.rejects(chunk(unwanted.files, other, 0, data.subarray(0, KiB)), { code: 'PROTO_UNEXPECTED_MESSAGE' });
  await unwanted.files.close();
  await nothingKept(t, s, {}, 'a hash not wanted');

  // 64 KiB window: two 32 KiB chunks fill it; the third, still unacknowledged, is one too many.
  const greedy = receiver(s, 's-window', 64 * KiB);
  await greedy.files.offer(offer(hash, data.byteLength, [name('DCIM/IMG_0005.CR3')]), AGENT);
  const piece = (i: number): MessageOf<'chunk'> => ({
    t: 'chunk',
    hash,
    offset: i * 32 * KiB,
    data: data.subarray(i * 32 * KiB, (i + 1) * 32 * KiB),
  });
  greedy.files.admit(piece(0));
  greedy.files.admit(piece(1));
  t.throws(() => greedy.files.admit(piece(2)), { code: 'PROTO_WINDOW_EXCEEDED' }, 'past the window');
  // The session fails and drops its queue, as a session does, and ends.
  greedy.files.linkLost();
  await greedy.files.close();
  t.same(greedy.link.of('ack'), [], 'nothing acknowledged');
  await nothingKept(t, s, {}, 'past the window (no empty partial stays)');

  const cases: Array<[string, MessageOf<'chunk'>]> = [
    ['beyond the offered size', { t: 'chunk', hash, offset: 0, data: testBytes(data.byteLength + 1, 7) }],
    ['at a wrong offset', { t: 'chunk', hash, offset: 10, data: data.subarray(10, 20) }],
  ];
  for (const [what, msg] of cases) {
    const { files, link } = receiver(s, `s-${what}`);
    await files.offer(offer(hash, data.byteLength, [name('DCIM/IMG_0005.CR3')]), AGENT);
    t.same(link.of('want')[0]?.wants, [{ hash, offset: 0 }], `${what}: wanted from 0`);
    await t.rejects(files.chunk(msg), { code: 'PROTO_UNEXPECTED_MESSAGE' }, `${what}: PROTO_UNEXPECTED_MESSAGE`);
    await files.close();
    await nothingKept(t, s, {}, `${what} (no empty partial stays)`);
  }
  t.equal(await s.catalogue.getAsset(hash), undefined, 'no asset in the catalogue');
});

t.test('resume: a second offer of a partly received file is wanted from the durable offset', async (t) => {
  const s = await studio(t);
  const data = testBytes(500 * KiB, 8);
  const hash = hashBytes(data);
  const names = [name('DCIM/IMG_0006.CR3')];

  const cut = receiver(s, 's1');
  await cut.files.offer(offer(hash, data.byteLength, names), AGENT);
  await chunks(cut.files, hash, data, 0, 192 * KiB);
  // The link is cut with one more chunk already received: it is still staged (draining), then the session ends.
  cut.files.linkLost();
  t.equal(cut.files.state, 'draining');
  await chunk(cut.files, hash, 192 * KiB, data.subarray(192 * KiB, 256 * KiB));
  await cut.files.close();
  t.same(cut.link.failures, [], 'the cut is not a failure of the receiver');
  // The streamed commit started at offset 0 was stopped: its temp is gone, nothing under a final name.
  await nothingKept(t, s, { [hash]: 256 * KiB }, 'after the cut');

  const { files, link } = receiver(s, 's2');
  await files.offer(offer(hash, data.byteLength, names, 'b2'), AGENT);
  t.same(link.of('want')[0]?.wants, [{ hash, offset: 256 * KiB }], 'wanted from the durable offset');
  await chunks(files, hash, data, 256 * KiB, data.byteLength);
  await files.fileEnd({ t: 'file-end', hash, size: data.byteLength });
  const receipt = await link.next('receipt', hash);
  await storedOnBoth(t, s, receipt, data);
  t.equal(files.bytesReceived, data.byteLength - 256 * KiB, 'only the rest was sent again');
  t.same(await s.staging.list(), [], 'the part is gone after the commit');
  await files.close();
});

t.test(
  'a queued staging write that fails: its file is Nacked with the code, no Ack past the synced bytes',
  async (t) => {
    // 4 MiB into a 3 MiB mirror (a real tmpfs): a staging write fails with ENOSPC while later chunks
    // are queued behind it. Once with no frame after the chunks (the failed write alone must Nack the
    // file), once with the FileEnd sent straight after them.
    for (const fileEndToo of [false, true]) {
      const what = fileEndToo ? 'FileEnd sent after the chunks' : 'no frame after the chunks';
      await t.test(what, async (t) => {
        const s = await studio(t);
        // Unmounted at the end of the body, before tap removes its test dir (a mount point cannot be removed).
        const unmount: Array<() => unknown> = [];
        const m = await mountTmpfs({ teardown: (fn) => unmount.push(fn) }, s.targets.mirror.root, 'size=3m');
        if (!m.mounted)
          return void t.skip(
            `a small tmpfs is needed as the mirror (${m.reason}): this case did not run`,
            () => undefined,
          );
        try {
          await fullMirror(t, s, what, fileEndToo);
        } finally {
          for (const fn of unmount) await fn();
        }
      });
    }
  },
);

async function fullMirror(t: Test, s: Studio, what: string, fileEndToo: boolean): Promise<void> {
  const data = testBytes(4 * MiB, 9);
  const hash = hashBytes(data);
  const window = 2 * MiB;
  const { files, link } = receiver(s, 's1', window);
  await files.offer(offer(hash, data.byteLength, [name('DCIM/BIG.CR3')]), AGENT);
  const acked = (): number => Math.max(0, ...link.of('ack', hash).map((a) => a.offset));
  const nacked = (): boolean => link.of('nack', hash).length > 0;
  // As field-agent sends: within the window, and no more Chunks once the file is Nacked.
  for (let off = 0; off < data.byteLength && !nacked(); off += 64 * KiB) {
    await link.until(() => off + 64 * KiB - acked() <= window || nacked());
    if (!nacked()) await chunk(files, hash, off, data.subarray(off, off + 64 * KiB));
  }
  if (fileEndToo) await files.fileEnd({ t: 'file-end', hash, size: data.byteLength });
  const nack = await link.next('nack', hash);
  t.match(nack, { code: 'STUDIO_TARGET_FULL', retryable: true }, `${what}: Nack STUDIO_TARGET_FULL`);
  t.ok(nack.resumeOffset > 0 && nack.resumeOffset < data.byteLength, `${what}: resume at ${nack.resumeOffset}`);
  await files.close();
  t.same(link.failures, [], `${what}: the session goes on`);
  t.equal(link.of('nack', hash).length, 1, `${what}: one Nack`);
  t.same(link.of('receipt'), [], `${what}: no Receipt`);
  const acks = link.of('ack', hash).map((a) => a.offset);
  t.ok(
    acks.every((a) => a <= nack.resumeOffset),
    `${what}: every Ack (${acks.join(', ')}) within the durable ${nack.resumeOffset}`,
  );
  const part = join(STAGING_DIR, `${hash}.part`);
  t.same(await tree(s.targets.mirror.root), [part], `${what}: nothing on the mirror but the staged part`);
  t.ok(
    (await stat(join(s.targets.mirror.root, part))).size >= nack.resumeOffset,
    `${what}: the part holds the durable bytes`,
  );
  t.same(await tree(s.targets.raid.root), [], `${what}: nothing on the RAID target`);
  t.equal(await s.catalogue.getAsset(hash), undefined, `${what}: no asset in the catalogue`);
  t.same(await s.catalogue.intents(), [], `${what}: no commit intent left`);
}
