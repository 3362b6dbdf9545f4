// One sync pass (agent/src/link/sync-pass.ts) driven directly: what it offers, which
// bytes it sends and when, how it records the studio's answers. The studio end is a
// FAKE link (FakeStudio below) scripted with the studio's replies, so a test sees every
// frame and decides when Acks come; the real link (LinkClient over TLS against real
// studiod processes) is covered by test/system/link/*.test.ts. The agent side is real:
// real store files in a temp dir, a real AgentState (LevelDB) behind the real SyncQueue.
import t, { type Test } from 'tap';
import { EventEmitter } from 'node:events';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile, type CodedError, type Message, type MessageOf } from '@studio321/protocol';
import { LINK_CODES, LinkError, SyncPass, emptySyncResult, syncPass, type SyncLink } from '@studio321/agent/link';
import { AgentState, hasDamagedCopy, hasVerifiedCopy, syncQueueOf, type SyncQueue } from '@studio321/agent/state';
import { resolveTargets } from '@studio321/agent';
import { testBytes } from '../../lib/lying-source.js';
import { rotByte } from '../../lib/bit-rot.js';

const KiB = 1024;

/** How the fake studio answers one offered file: 'have', the offset it wants, or a Nack before the Want. */
type Answer = 'have' | number | { nack: string; retryable: boolean };

interface StudioScript {
  window: number;
  /** Default: wanted from 0. */
  answer?: (hash: string, size: number) => Answer;
  /** Put in the Want after the answers (a studio breaking the protocol). */
  extraWants?: Array<{ hash: string; offset: number }>;
  /** Offers are never answered. */
  silent?: boolean;
  /** 'window': Ack when the window is full and at a file's last byte (default); 'never': no Acks at all. */
  acks?: 'window' | 'never';
  /** After a FileEnd: a Nack instead of the Receipt. */
  nackAfterEnd?: (hash: string) => { code: string; retryable: boolean } | undefined;
  /** The size the Receipt states (default the offered one). */
  receiptSize?: (hash: string, size: number) => number;
}

/**
 * A FAKE studio end of the link (see the file header). It keeps the studio's view of the
 * session: what was offered and wanted, the bytes staged per file, the Chunk bytes sent and
 * not yet acknowledged (an Ack counts once it is delivered to the pass), and every breach of
 * protocol/SPEC.md §3.4–3.5 it sees, in `violations`.
 */
class FakeStudio extends EventEmitter implements SyncLink {
  readonly window: number;
  closedError: CodedError | undefined;
  closedByAgent = false;
  /** Every frame the pass sent, in order. */
  readonly frames: Message[] = [];
  readonly violations: string[] = [];
  /** Chunk bytes sent and not acknowledged yet, and the most there ever were. */
  unacked = 0;
  maxUnacked = 0;
  acksSent = 0;
  /** Runs on each frame the pass sends, after the fake took it. */
  onFrame: (m: Message) => void = () => undefined;
  readonly #script: StudioScript;
  readonly #offered = new Map<string, number>();
  /** Per wanted hash: bytes staged (the next Chunk's offset), and up to where it was acknowledged. */
  readonly #staged = new Map<string, number>();
  readonly #ackedTo = new Map<string, number>();
  /** The file being sent (between its first Chunk and its FileEnd). */
  #current: string | undefined;
  #errorSeen = false;

  constructor(script: StudioScript) {
    super();
    this.window = script.window;
    this.#script = script;
  }

  async send(m: Message): Promise<void> {
    if (this.closedError !== undefined) throw this.closedError;
    if (this.#errorSeen) this.violations.push(`${m.t} after Error`);
    this.frames.push(m);
    this.#take(m);
    this.onFrame(m);
  }

  close(): void {
    this.closedByAgent = true;
    this.cut(new LinkError(LINK_CODES.connectionLost, 'Link closed by this agent.', { retryable: true }));
  }

  /** The session ends (as when the studio closes it or the network drops). */
  cut(err: CodedError): void {
    if (this.closedError !== undefined) return;
    this.closedError = err;
    setImmediate(() => this.emit('close', err));
  }

  /** The studio's frame reaches the agent on a later turn of the event loop, as over a socket. */
  #reply(m: Message, release = 0): void {
    setImmediate(() => {
      if (this.closedError !== undefined) return;
      this.unacked -= release;
      this.emit('message', m);
    });
  }

  /**
   * An Ack comes a few turns of the event loop later (staging is fsynced first), so a pass
   * that did not wait for room would have sent its next chunk by then.
   */
  #replyLater(m: Message, release: number, turns = 8): void {
    if (turns === 0) this.#reply(m, release);
    else setImmediate(() => this.#replyLater(m, release, turns - 1));
  }

  #take(m: Message): void {
    if (m.t === 'offer') this.#onOffer(m);
    else if (m.t === 'chunk') this.#onChunk(m);
    else if (m.t === 'file-end') this.#onFileEnd(m);
    else if (m.t === 'error') this.#errorSeen = true;
    else this.violations.push(`unexpected ${m.t}`);
  }

  #onOffer(m: MessageOf<'offer'>): void {
    for (const f of m.files) this.#offered.set(f.hash, f.size);
    if (this.#script.silent) return;
    const wants: Array<{ hash: string; offset: number }> = [];
    const have: string[] = [];
    for (const f of m.files) {
      const a = this.#script.answer?.(f.hash, f.size) ?? 0;
      if (a === 'have') have.push(f.hash);
      else if (typeof a === 'number') {
        wants.push({ hash: f.hash, offset: a });
        this.#staged.set(f.hash, a);
        this.#ackedTo.set(f.hash, a);
      } else {
        this.#reply({
          t: 'nack',
          hash: f.hash,
          code: a.nack,
          message: `Refused: ${a.nack}.`,
          retryable: a.retryable,
          resumeOffset: 0,
        });
      }
    }
    wants.push(...(this.#script.extraWants ?? []));
    this.#reply({ t: 'want', batchId: m.batchId, wants, have });
    for (const h of have) this.#receipt(h);
  }

  #onChunk(m: MessageOf<'chunk'>): void {
    const at = this.#staged.get(m.hash);
    if (at === undefined) this.violations.push(`chunk of ${m.hash}, not wanted`);
    else if (m.offset !== at) this.violations.push(`chunk of ${m.hash} at ${m.offset}, expected ${at}`);
    if (this.#current !== undefined && this.#current !== m.hash)
      this.violations.push(`chunk of ${m.hash} before the FileEnd of ${this.#current}`);
    this.#current = m.hash;
    const end = m.offset + m.data.byteLength;
    this.#staged.set(m.hash, end);
    this.unacked += m.data.byteLength;
    this.maxUnacked = Math.max(this.maxUnacked, this.unacked);
    if (this.unacked > this.window) this.violations.push(`${this.unacked} bytes in flight, window ${this.window}`);
    if (this.#script.acks === 'never') return;
    if (this.unacked >= this.window) for (const h of this.#ackedTo.keys()) this.#ack(h);
    else if (end === this.#offered.get(m.hash)) this.#ack(m.hash);
  }

  /** Ack all staged bytes of `hash` (staged and fsynced, for this fake). */
  #ack(hash: string): void {
    const from = this.#ackedTo.get(hash) ?? 0;
    const to = this.#staged.get(hash) ?? 0;
    if (to <= from) return;
    this.#ackedTo.set(hash, to);
    this.acksSent++;
    this.#replyLater({ t: 'ack', hash, offset: to }, to - from);
  }

  #onFileEnd(m: MessageOf<'file-end'>): void {
    if (this.#current !== undefined && this.#current !== m.hash)
      this.violations.push(`FileEnd of ${m.hash} while ${this.#current} was being sent`);
    this.#current = undefined;
    if (m.size !== this.#offered.get(m.hash)) this.violations.push(`FileEnd of ${m.hash} with size ${m.size}`);
    const nack = this.#script.nackAfterEnd?.(m.hash);
    if (nack === undefined) this.#receipt(m.hash);
    else
      this.#reply({
        t: 'nack',
        hash: m.hash,
        code: nack.code,
        message: `Not committed: ${nack.code}.`,
        retryable: nack.retryable,
        resumeOffset: 0,
      });
  }

  #receipt(hash: string): void {
    const size = this.#offered.get(hash) ?? 0;
    const now = Date.now();
    this.#reply({
      t: 'receipt',
      hash,
      size: this.#script.receiptSize?.(hash, size) ?? size,
      committedAt: now,
      copies: ['mirror', 'raid'].map((target) => ({
        target,
        path: `shoot/CARD1/${hash.slice(0, 8)}.CR3`,
        device: `${target}-disk`,
        media: 'hdd',
        location: 'studio',
        verifiedAt: now,
        method: 'readback-blake3',
      })),
    });
  }

  /** The frames of type `t` (for one hash when given). */
  sent<K extends Message['t']>(type: K, hash?: string): Array<MessageOf<K>> {
    return this.frames.filter(
      (m): m is MessageOf<K> => m.t === type && (hash === undefined || (m as { hash?: string }).hash === hash),
    );
  }

  /** The bytes sent of `hash`, in order, and the offset of the first Chunk. */
  bytesOf(hash: string): { from: number | undefined; bytes: Buffer } {
    const chunks = this.sent('chunk', hash);
    return { from: chunks[0]?.offset, bytes: Buffer.concat(chunks.map((c) => c.data)) };
  }
}

interface StoredFile {
  blake3: string;
  size: number;
  path: string;
  bytes: Uint8Array;
}

/** A real AgentState in a temp dir holding `sizes.length` verified laptop copies (real files), queued in that order. */
async function agentStore(t: Test, sizes: number[]): Promise<{ state: AgentState; files: StoredFile[] }> {
  const dir = t.testdir();
  const state = await AgentState.open(join(dir, 'data'));
  t.teardown(() => state.close());
  const card = await state.beginOffload({
    id: 'CARD1',
    label: 'EOS_DIGITAL',
    kind: 'card',
    source: join(dir, 'card'),
    shoot: 'shoot',
  });
  const names = sizes.map((_, i) => `IMG_${String(i + 1).padStart(4, '0')}.CR3`);
  await state.recordScan(card.id, {
    root: card.source,
    dev: 1,
    disk: 'disk:name:card',
    files: names.map((n, i) => ({ path: `DCIM/100CANON/${n}`, size: sizes[i] ?? 0, mtimeMs: 1_795_000_000_000 + i })),
    warnings: [],
  });
  await resolveTargets(join(dir, 'store'), []); // a laptop store as the agent makes it: with its marker
  await mkdir(join(dir, 'store', 'shoot', 'CARD1'), { recursive: true });
  const files: StoredFile[] = [];
  for (const [i, name] of names.entries()) {
    const bytes = testBytes(sizes[i] ?? 0, i + 1);
    const path = join(dir, 'store', 'shoot', 'CARD1', name);
    await writeFile(path, bytes);
    const { blake3, size } = await hashFile(path);
    const file = await state.getFile(card.id, `DCIM/100CANON/${name}`);
    if (file === undefined) throw new Error(`no file record for ${name}`);
    const verifiedAt = new Date().toISOString();
    await state.recordVerified({
      card,
      file,
      blake3,
      size,
      storePath: `shoot/CARD1/${name}`,
      paths: { laptop: path },
      copies: [
        {
          target: 'laptop',
          device: 'test-ssd',
          media: 'ssd',
          location: 'field',
          offsite: false,
          verified: true,
          verifiedAt,
          method: 'readback-blake3',
        },
      ],
      verifiedAt,
    });
    files.push({ blake3, size, path, bytes });
  }
  return { state, files };
}

/** The real SyncQueue of `state`, with every call written to `log` (to see what happened in which order). */
function loggedQueue(state: AgentState, log: string[]): SyncQueue {
  const q = syncQueueOf(state);
  return {
    pendingForStudio: (limit, after) => q.pendingForStudio(limit, after),
    recordStudioReceipt: async (r) => {
      log.push(`record ${r.blake3}`);
      await q.recordStudioReceipt(r);
      log.push(`recorded ${r.blake3}`);
    },
    checkStoreCopy: (blake3) => {
      log.push(`check ${blake3}`);
      return q.checkStoreCopy(blake3);
    },
  };
}

const pendingHashes = async (state: AgentState): Promise<string[]> =>
  (await state.pendingForStudio(100)).map((a) => a.blake3);

const hashesOf = (files: StoredFile[]): string[] => files.map((f) => f.blake3);

function at<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`no element ${i}`);
  return x;
}

t.test('a batch is offered, only the wanted files are sent, had files get their Receipt without bytes', async (t) => {
  const { state, files } = await agentStore(t, [70_000, 50_000, 30_000]);
  const [wanted, had, refused] = [at(files, 0), at(files, 1), at(files, 2)];
  const link = new FakeStudio({
    window: 1024 * KiB,
    answer: (h) =>
      h === had.blake3 ? 'have' : h === refused.blake3 ? { nack: 'PROTO_BAD_NAME', retryable: false } : 0,
  });
  const res = await syncPass(link, syncQueueOf(state), { chunkSize: 16 * KiB });

  const offers = link.sent('offer');
  t.equal(offers.length, 1, 'one Offer');
  t.same(
    at(offers, 0).files.map((f) => [f.hash, f.size, f.names[0]?.path, f.copies.map((c) => c.target)]),
    files.map((f, i) => [f.blake3, f.size, `DCIM/100CANON/IMG_000${i + 1}.CR3`, ['laptop']]),
    'the whole queue, in queue order, with names and the verified laptop copy',
  );
  t.same([...new Set(link.sent('chunk').map((c) => c.hash))], [wanted.blake3], 'chunks of the wanted file only');
  t.same(
    link.sent('file-end').map((m) => [m.hash, m.size]),
    [[wanted.blake3, wanted.size]],
    'one FileEnd, with its size',
  );
  t.same(link.bytesOf(wanted.blake3), { from: 0, bytes: Buffer.from(wanted.bytes) }, 'its bytes, from 0, all of them');
  t.ok(
    link.sent('chunk').every((c) => c.data.byteLength <= 16 * KiB),
    'no chunk over the chunk size',
  );
  t.same(link.violations, [], 'the studio saw no breach of the protocol');
  t.same(
    res,
    {
      offered: 3,
      filesSent: 1,
      bytesSent: wanted.size,
      have: 1,
      receipts: 2,
      nacks: [{ hash: refused.blake3, code: 'PROTO_BAD_NAME', message: 'Refused: PROTO_BAD_NAME.', retryable: false }],
      bytesResent: 0,
      maxResentOnResume: 0,
    },
    'the result counts it all',
  );
  t.same(await pendingHashes(state), [refused.blake3], 'the receipted files left the queue; the refused one stays');
  t.equal(link.listenerCount('message') + link.listenerCount('close'), 0, 'the pass stopped listening to the link');
});

t.test('resume: a Want at a non-zero offset sends only the bytes from that offset', async (t) => {
  const { state, files } = await agentStore(t, [300_000, 40_000]);
  const [resumed, staged] = [at(files, 0), at(files, 1)];
  // A previous session sent both files whole; the studio durably holds 100 000 bytes of the first and all of the second.
  const sentMemory = new Map([
    [resumed.blake3, resumed.size],
    [staged.blake3, staged.size],
  ]);
  const link = new FakeStudio({
    window: 1024 * KiB,
    answer: (h) => (h === resumed.blake3 ? 100_000 : staged.size),
  });
  const res = await syncPass(link, syncQueueOf(state), { chunkSize: 64 * KiB, sentMemory });

  t.same(
    link.bytesOf(resumed.blake3),
    { from: 100_000, bytes: Buffer.from(resumed.bytes.subarray(100_000)) },
    'the first file from the Want offset: the rest of it, nothing below',
  );
  t.same(link.sent('chunk', staged.blake3), [], 'the second file, wholly staged: no Chunk');
  t.same(
    link.sent('file-end').map((m) => m.hash),
    [resumed.blake3, staged.blake3],
    'both get their FileEnd, in the order of the Want',
  );
  t.equal(res.bytesSent, 200_000, 'bytes sent: only those above the offset');
  t.equal(res.bytesResent, 200_000, 'bytes sent again after the resume: the previous session had sent them');
  t.equal(res.maxResentOnResume, 200_000, 'the most re-sent for one file');
  t.equal(res.filesSent, 2);
  t.equal(res.receipts, 2);
  t.equal(sentMemory.get(resumed.blake3), resumed.size, 'the memory of what was sent is kept for the next session');
  t.same(link.violations, []);
});

t.test('the bytes in flight never exceed the window, and the whole window is used', async (t) => {
  const { state, files } = await agentStore(t, [150_000, 40_000, 100_000]);
  const window = 64 * KiB;
  const link = new FakeStudio({ window });
  const res = await syncPass(link, syncQueueOf(state), { chunkSize: 16 * KiB });

  t.same(link.violations, [], 'never more than the window unacknowledged (and no other breach)');
  t.equal(link.maxUnacked, window, 'the window was filled to the byte before the pass waited');
  t.ok(link.acksSent > files.length, 'the pass waited for Acks in the middle of files');
  for (const f of files) t.same(link.bytesOf(f.blake3), { from: 0, bytes: Buffer.from(f.bytes) }, 'every byte arrived');
  t.equal(res.bytesSent, 290_000);
  t.equal(res.receipts, 3);
});

t.test('a Receipt is recorded through the queue before it is counted', async (t) => {
  const { state, files } = await agentStore(t, [20_000, 10_000]);
  const [sent, had] = [at(files, 0), at(files, 1)];
  const log: string[] = [];
  const stats = emptySyncResult();
  const q = loggedQueue(state, log);
  const queue: SyncQueue = {
    ...q,
    recordStudioReceipt: async (r) => {
      log.push(`count ${stats.receipts}`);
      await q.recordStudioReceipt(r);
    },
  };
  const link = new FakeStudio({ window: 1024 * KiB, answer: (h) => (h === had.blake3 ? 'have' : 0) });
  const res = await syncPass(link, queue, { stats, onReceipt: (h) => log.push(`counted ${h}`) });

  t.equal(res, stats, 'the counts went into the accumulator given');
  t.same(
    log,
    [
      'count 0',
      `record ${had.blake3}`,
      `recorded ${had.blake3}`,
      'count 0',
      `record ${sent.blake3}`,
      `recorded ${sent.blake3}`,
      `counted ${had.blake3}`,
      `counted ${sent.blake3}`,
    ],
    'the Receipts recorded durably in the order they came (together: the last one ended the wait), then counted',
  );
  t.equal(res.receipts, 2);
  for (const f of files) {
    const a = await state.getAsset(f.blake3);
    t.same(
      a?.studio?.copies.map((c) => c.target),
      ['mirror', 'raid'],
      'the studio copies are in the state',
    );
  }
  t.same(await pendingHashes(state), [], 'the queue is empty');
});

t.test('a Receipt that cannot be recorded fails the pass with LINK_INCOMPLETE and is not counted', async (t) => {
  const { state, files } = await agentStore(t, [20_000]);
  const f = at(files, 0);
  const counted: string[] = [];
  const stats = emptySyncResult();
  // The studio states another size: the real state refuses to record it.
  const link = new FakeStudio({ window: 1024 * KiB, receiptSize: (_h, size) => size + 1 });
  await t.rejects(syncPass(link, syncQueueOf(state), { stats, onReceipt: (h) => counted.push(h) }), {
    code: LINK_CODES.incomplete,
    retryable: true,
  });
  t.equal(stats.receipts, 0, 'not counted');
  t.same(counted, [], 'nobody was told it is at the studio');
  t.ok(link.closedByAgent, 'the pass closed the link');
  t.same(await pendingHashes(state), [f.blake3], 'the file stays queued');
  t.equal((await state.getAsset(f.blake3))?.studio, undefined, 'no studio copy recorded');
});

t.test('Nacks are reported with their code and retryable flag; the pass goes on with the others', async (t) => {
  const { state, files } = await agentStore(t, [10_000, 20_000, 30_000]);
  const [badName, full, ok] = [at(files, 0), at(files, 1), at(files, 2)];
  const log: string[] = [];
  const link = new FakeStudio({
    window: 1024 * KiB,
    answer: (h) => (h === badName.blake3 ? { nack: 'PROTO_BAD_NAME', retryable: false } : 0),
    nackAfterEnd: (h) => (h === full.blake3 ? { code: 'STUDIO_TARGET_FULL', retryable: true } : undefined),
  });
  const res = await syncPass(link, loggedQueue(state, log), {});

  t.same(
    res.nacks.map((n) => [n.hash, n.code, n.retryable]),
    [
      [badName.blake3, 'PROTO_BAD_NAME', false],
      [full.blake3, 'STUDIO_TARGET_FULL', true],
    ],
    'both Nacks, with their code and retryable flag',
  );
  t.equal(at(res.nacks, 1).message, 'Not committed: STUDIO_TARGET_FULL.', 'and the studio message');
  t.same(
    link.sent('file-end').map((m) => m.hash),
    [full.blake3, ok.blake3],
    'the refused name was not sent; the others were',
  );
  t.equal(res.receipts, 1, 'the last file was committed');
  t.notOk(
    log.some((l) => l.startsWith('check')),
    'no laptop copy re-read: these Nacks say nothing about it',
  );
  t.same(await pendingHashes(state), [badName.blake3, full.blake3], 'the Nacked files stay queued');
  t.same(link.violations, []);
});

t.test(
  'a hash mismatch re-reads the laptop copy: a rotted one is reported damaged, an intact one as the Nack',
  async (t) => {
    const { state, files } = await agentStore(t, [40_000, 40_000, 40_000]);
    const [rotted, intact, ok] = [at(files, 0), at(files, 1), at(files, 2)];
    await rotByte(rotted.path, 1000, 0x40);
    const log: string[] = [];
    const link = new FakeStudio({
      window: 1024 * KiB,
      nackAfterEnd: (h) => (h === ok.blake3 ? undefined : { code: 'PROTO_HASH_MISMATCH', retryable: true }),
    });
    const res = await syncPass(link, loggedQueue(state, log), {});

    t.same(
      res.nacks.map((n) => [n.hash, n.code, n.retryable]),
      [
        [rotted.blake3, 'AGENT_STORE_COPY_DAMAGED', false],
        [intact.blake3, 'PROTO_HASH_MISMATCH', true],
      ],
      'the rotted copy: damaged, not retryable; the intact one: the studio Nack (damaged in flight)',
    );
    t.same(
      log.filter((l) => l.startsWith('check')),
      [`check ${rotted.blake3}`, `check ${intact.blake3}`],
      'both copies re-read through the queue',
    );
    t.ok(hasDamagedCopy(await state.getAsset(rotted.blake3), 'laptop'), 'the rotted copy no longer counts');
    t.ok(hasVerifiedCopy(await state.getAsset(intact.blake3), 'laptop'), 'the intact copy still counts');
    t.equal(res.receipts, 1, 'the pass went on: the third file was committed');
  },
);

t.test('a Want naming a hash that was not offered (so) fails with LINK_BAD_PEER; nothing more is sent', async (t) => {
  for (const [what, extra] of [
    ['a hash never offered', (_f: StoredFile) => ({ hash: 'f'.repeat(64), offset: 0 })],
    ['an offset beyond the offered size', (f: StoredFile) => ({ hash: f.blake3, offset: f.size + 1 })],
  ] as const) {
    await t.test(what, async (t) => {
      const { state, files } = await agentStore(t, [20_000, 30_000]);
      const [first, second] = [at(files, 0), at(files, 1)];
      // The first file is wanted properly; the broken entry comes after it.
      const link = new FakeStudio({
        window: 1024 * KiB,
        answer: (h) => (h === first.blake3 ? 0 : 'have'),
        extraWants: [extra(second)],
      });
      const stats = emptySyncResult();
      await t.rejects(syncPass(link, syncQueueOf(state), { stats }), { code: LINK_CODES.badPeer });
      t.same(
        link.frames.map((m) => m.t),
        ['offer'],
        'nothing sent after the Offer: not even the file wanted properly',
      );
      t.equal(stats.bytesSent, 0);
      t.equal(link.listenerCount('message'), 0, 'the pass stopped listening');
    });
  }
});

t.test(
  'a laptop copy that cannot be read: checked, reported, the session ends; the next pass goes on with the others',
  async (t) => {
    const { state, files } = await agentStore(t, [30_000, 30_000, 30_000]);
    const [deleted, b, c] = [at(files, 0), at(files, 1), at(files, 2)];
    await rm(deleted.path);
    const log: string[] = [];
    const queue = loggedQueue(state, log);
    const stats = emptySyncResult();
    const first = new FakeStudio({ window: 1024 * KiB });
    await t.rejects(syncPass(first, queue, { stats }), { code: LINK_CODES.incomplete, retryable: true });
    t.same(log, [`check ${deleted.blake3}`], 'the copy was re-read through the queue');
    t.same(
      stats.nacks.map((n) => [n.hash, n.code, n.retryable]),
      [[deleted.blake3, 'AGENT_STORE_COPY_DAMAGED', false]],
      'reported as a damaged laptop copy',
    );
    t.same(
      first.frames.map((m) => m.t),
      ['offer', 'error'],
      'a wanted file cannot be skipped: Error, and no Chunk or FileEnd of any file',
    );
    t.match(at(first.frames, 1), { t: 'error', code: 'AGENT_STORE_COPY_DAMAGED', retryable: true });
    t.ok(first.closedByAgent, 'the pass closed the link');
    t.ok(hasDamagedCopy(await state.getAsset(deleted.blake3), 'laptop'), 'recorded as no longer a copy');

    const second = new FakeStudio({ window: 1024 * KiB });
    const res = await syncPass(second, queue, {});
    t.same(
      second.sent('offer').flatMap((o) => o.files.map((f) => f.hash)),
      [b.blake3, c.blake3],
      'the next pass does not offer the damaged copy',
    );
    t.same(
      res.nacks.map((n) => [n.hash, n.code, n.retryable]),
      [[deleted.blake3, 'AGENT_STORE_COPY_DAMAGED', false]],
      'it reports it instead',
    );
    t.equal(res.receipts, 2, 'and commits the others');
    t.same(await pendingHashes(state), [deleted.blake3]);
  },
);

t.test('a pass that ends on an unreadable laptop copy counts the Receipts it recorded before it ended', async (t) => {
  // The first file is sent and its Receipt comes (it lingers for the second's); the second
  // cannot be read, and the pass ends with an Error. The Receipt is recorded AND counted in
  // the pass's result by the time the pass rejects (its caller reads the count then).
  const { state, files } = await agentStore(t, [30_000, 30_000]);
  const [sent, deleted] = [at(files, 0), at(files, 1)];
  await rm(deleted.path);
  const stats = emptySyncResult();
  const studio = new FakeStudio({ window: 1024 * KiB });
  await t.rejects(syncPass(studio, syncQueueOf(state), { stats }), { code: LINK_CODES.incomplete });
  t.same(
    studio.frames.map((m) => m.t),
    ['offer', 'chunk', 'file-end', 'error'],
    'the first file was sent whole, then the Error',
  );
  t.equal(stats.receipts, 1, 'its Receipt is counted in the failed pass');
  t.same(await pendingHashes(state), [deleted.blake3], 'and recorded: only the unreadable file is pending');
  t.notOk((await pendingHashes(state)).includes(sent.blake3));
});

t.test('the abort signal stops the pass', async (t) => {
  await t.test('between two chunks', async (t) => {
    const { state, files } = await agentStore(t, [100_000]);
    const link = new FakeStudio({ window: 1024 * KiB });
    const ac = new AbortController();
    link.onFrame = (m) => {
      if (m.t === 'chunk') ac.abort();
    };
    const stats = emptySyncResult();
    await t.rejects(syncPass(link, syncQueueOf(state), { chunkSize: 16 * KiB, signal: ac.signal, stats }), {
      name: 'AbortError',
    });
    t.same(
      link.frames.map((m) => m.t),
      ['offer', 'chunk'],
      'no Chunk after the abort, no FileEnd',
    );
    t.equal(stats.bytesSent, 16 * KiB);
    t.same(await pendingHashes(state), hashesOf(files), 'still queued');
  });

  await t.test('while waiting for the Want', async (t) => {
    const { state } = await agentStore(t, [10_000]);
    const link = new FakeStudio({ window: 1024 * KiB, silent: true });
    const ac = new AbortController();
    link.onFrame = (m) => {
      if (m.t === 'offer') setImmediate(() => ac.abort());
    };
    await t.rejects(syncPass(link, syncQueueOf(state), { signal: ac.signal }), { name: 'AbortError' });
    t.same(
      link.frames.map((m) => m.t),
      ['offer'],
    );
    t.equal(link.listenerCount('message'), 0, 'the pass stopped listening');
  });

  await t.test('while waiting for room in the window', async (t) => {
    const { state } = await agentStore(t, [200_000]);
    const window = 64 * KiB;
    const link = new FakeStudio({ window, acks: 'never' });
    const ac = new AbortController();
    link.onFrame = () => {
      if (link.unacked === window) setImmediate(() => ac.abort());
    };
    await t.rejects(syncPass(link, syncQueueOf(state), { chunkSize: 16 * KiB, signal: ac.signal }), {
      name: 'AbortError',
    });
    t.equal(link.unacked, window, 'a window of bytes was sent, no more');
    t.same(link.sent('file-end'), []);
  });

  await t.test('before it starts', async (t) => {
    const { state } = await agentStore(t, [10_000]);
    const link = new FakeStudio({ window: 1024 * KiB });
    await t.rejects(syncPass(link, syncQueueOf(state), { signal: AbortSignal.abort() }), { name: 'AbortError' });
    t.same(link.frames, [], 'nothing sent');
  });
});

t.test('the link closing ends the pass with its error', async (t) => {
  const { state, files } = await agentStore(t, [200_000]);
  const window = 64 * KiB;
  const link = new FakeStudio({ window, acks: 'never' });
  link.onFrame = () => {
    if (link.unacked === window)
      link.cut(new LinkError(LINK_CODES.connectionLost, 'The link to the studio dropped.', { retryable: true }));
  };
  await t.rejects(syncPass(link, syncQueueOf(state), { chunkSize: 16 * KiB }), {
    code: LINK_CODES.connectionLost,
    retryable: true,
  });
  t.same(link.sent('file-end'), [], 'no FileEnd');
  t.same(await pendingHashes(state), hashesOf(files), 'still queued: the next session resumes from the studio offset');
  t.equal(link.listenerCount('close'), 0, 'the pass stopped listening');
});

t.test('a SyncPass runs once', async (t) => {
  const { state } = await agentStore(t, []);
  const pass = new SyncPass(new FakeStudio({ window: 1024 * KiB }), syncQueueOf(state));
  t.same(await pass.run(), emptySyncResult(), 'an empty queue: nothing offered');
  await t.rejects(pass.run(), TypeError);
});
