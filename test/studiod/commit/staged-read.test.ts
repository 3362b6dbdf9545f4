/**
 * StagedRead (StagedFile.readBehind): the staged file read back behind its fsyncs as the source of
 * a streamed commit's RAID copy, and its read-back. Real files, real fsyncs, O_DIRECT where the
 * file system allows it. It reads nothing past a durable byte (rounded down to whole blocks), lends
 * a run's buffers until the next pull, ends only after end(), gives its buffers and its turn back
 * when it fails or is left, and a streamed commit whose staged copy reads back otherwise than the
 * bytes received (the mirror disk's doing) fails as DURABLE_READBACK_MISMATCH with nothing left.
 */
import t, { type Test } from 'tap';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createXxh3, hashBytes, MAX_CHUNK_BYTES } from '@studio321/protocol';
import { alignedBuffer, DIRECT_ALIGN, DURABLE_CODES } from '@studio321/protocol/durable';
import {
  Staging,
  STAGED_READS_AT_ONCE,
  STAGING_DIR,
  type ReadBuffer,
  type StagedFile,
} from '@studio321/studiod/commit';
import { testBytes } from '../../lib/lying-source.js';
import { committerFixture } from '../../lib/committer-fixture.js';

const MiB = 1024 * 1024;

/** Buffers as the link's pool gives them (page-aligned, MAX_CHUNK_BYTES), counted while lent out. */
function counter(): { take: () => ReadBuffer; inUse: () => number; taken: () => number } {
  let inUse = 0;
  let taken = 0;
  return {
    take: () => {
      inUse++;
      taken++;
      let given = false;
      return {
        data: alignedBuffer(MAX_CHUNK_BYTES),
        release: () => {
          if (given) throw new Error('a buffer given back twice');
          given = true;
          inUse--;
        },
      };
    },
    inUse: () => inUse,
    taken: () => taken,
  };
}

/** `data` appended to `f` from `from` to `to` in chunks of at most 1 MiB, each a pooled (aligned) buffer. */
async function put(f: StagedFile, data: Uint8Array, from: number, to: number): Promise<void> {
  for (let off = from; off < to; off += MAX_CHUNK_BYTES) {
    const n = Math.min(MAX_CHUNK_BYTES, to - off);
    const buf = alignedBuffer(MAX_CHUNK_BYTES);
    buf.set(data.subarray(off, off + n));
    await f.write(off, buf.subarray(0, n));
  }
}

/** Whether `p` is still pending once everything already queued has run. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return !settled;
}

function joined(parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p)));
}

t.test(
  'reads only what an fsync covered, in runs, lends the buffers until the next pull, ends after end()',
  async (t) => {
    const staging = new Staging(t.testdir(), async () => undefined);
    const data = testBytes(9 * MiB + 5000, 21);
    const hash = hashBytes(data);
    const f = await staging.acquire(hash, data.byteLength, 's1');
    const pool = counter();
    const behind = f.readBehind(pool.take);
    const it = behind[Symbol.asyncIterator]();
    // 2 MiB + 6000 bytes written and fsynced: not a whole number of blocks.
    await put(f, data, 0, 2 * MiB + 6000);
    await f.sync();
    const first = await it.next();
    const got: Buffer[] = [];
    const firstBytes = joined(first.value ?? []);
    got.push(firstBytes);
    t.equal(firstBytes.byteLength, 2 * MiB + DIRECT_ALIGN, 'up to the last whole block below the durable offset');
    t.equal(Buffer.compare(firstBytes, data.subarray(0, firstBytes.byteLength)), 0, 'the bytes on disk');
    t.equal(pool.inUse(), 3, 'its three buffers lent while the consumer writes them');
    // Written but not fsynced: not read.
    await put(f, data, 2 * MiB + 6000, 3 * MiB);
    const second = it.next();
    t.ok(await pending(second), 'bytes not yet fsynced are not read');
    t.equal(pool.inUse(), 0, 'the last run given back with the next pull');
    await put(f, data, 3 * MiB, data.byteLength);
    await f.sync();
    for (let r = await second; r.done !== true; ) {
      const run = r.value;
      t.ok(run.length <= 4 && joined(run).byteLength <= 4 * MiB, 'a run of at most WRITE_RUN_BYTES');
      got.push(joined(run));
      if (behind.read === data.byteLength) {
        const last = it.next();
        t.ok(await pending(last), 'every byte read, but the stream does not end before end()');
        behind.end();
        r = await last;
      } else r = await it.next();
    }
    t.equal(Buffer.compare(Buffer.concat(got), data), 0, 'every byte, in order, once');
    t.same(await f.verify(), { size: data.byteLength, blake3: hash }, 'verify(): what the read hashed');
    t.equal(pool.inUse(), 0, 'every buffer given back');
    await f.discard();
  },
);

t.test(
  'turns: a reader with a run lent holds one, one waiting for bytes does not; fail() and close() give it back',
  async (t) => {
    const staging = new Staging(t.testdir(), async () => undefined);
    const pool = counter();
    const reader = async (id: string, size: number, durable: number, seed: number) => {
      const data = testBytes(size, seed);
      const f = await staging.acquire(hashBytes(data), data.byteLength, id);
      await put(f, data, 0, durable);
      await f.sync();
      const behind = f.readBehind(pool.take);
      return { f, behind, it: behind[Symbol.asyncIterator]() };
    };
    // Readers whose next bytes are not fsynced yet hold no turn, however many.
    const slow = [];
    for (let i = 0; i < STAGED_READS_AT_ONCE + 1; i++) slow.push(await reader(`w${i}`, 6 * MiB, MiB, 10 + i));
    const waitingForBytes = [];
    for (const r of slow) {
      t.equal(joined((await r.it.next()).value ?? []).byteLength, MiB, 'read what is durable');
      const more = r.it.next(); // written: the next pull waits for bytes not yet fsynced
      t.ok(await pending(more), 'waits for more');
      waitingForBytes.push(more);
    }
    // Readers of whole files: each holds a turn while a run it read is lent to its consumer.
    const holders = [];
    for (let i = 0; i < STAGED_READS_AT_ONCE; i++) holders.push(await reader(`h${i}`, 9 * MiB, 9 * MiB, 20 + i));
    for (const h of holders)
      t.equal(joined((await h.it.next()).value ?? []).byteLength, 4 * MiB, 'a turn for a reader');
    // Before end() (the file still arriving) nothing is read ahead: only the runs lent hold buffers.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    t.equal(pool.inUse(), STAGED_READS_AT_ONCE * 4, 'no run read ahead before end()');
    const third = await reader('third', 9 * MiB, 9 * MiB, 30);
    const waiting = third.it.next();
    t.ok(await pending(waiting), `past ${STAGED_READS_AT_ONCE} readers with a run lent, the next waits for a turn`);
    const cut = new Error('the link was cut');
    holders[0]?.behind.fail(cut);
    t.equal(joined((await waiting).value ?? []).byteLength, 4 * MiB, 'fail() gave its turn to the one waiting');
    await t.rejects(holders[0]?.it.next() as Promise<unknown>, cut, 'its next pull throws the stream error');
    // One more waits, and is closed before it gets a turn: it ends, holding nothing.
    const late = await reader('late', MiB, MiB, 40);
    const latePull = late.it.next();
    t.ok(await pending(latePull), 'no turn free');
    await late.f.close();
    t.same(await latePull, { done: true, value: undefined }, 'closed while it waited: done');
    for (const r of [...holders, third, ...slow]) await r.f.close();
    for (const more of waitingForBytes) t.same(await more, { done: true, value: undefined }, 'closed: done');
    t.equal(pool.inUse(), 0, 'every buffer given back');
    // Every turn is back: STAGED_READS_AT_ONCE new readers each hold one at once.
    const again = [];
    for (let i = 0; i < STAGED_READS_AT_ONCE; i++) again.push(await reader(`a${i}`, 9 * MiB, 9 * MiB, 50 + i));
    for (const a of again) t.equal(joined((await a.it.next()).value ?? []).byteLength, 4 * MiB, 'no turn was kept');
    for (const a of again) await a.f.close();
  },
);

t.test('finish() after the consumer stopped part way reads the rest and hashes the whole file', async (t) => {
  const staging = new Staging(t.testdir(), async () => undefined);
  const data = testBytes(10 * MiB + 123, 60);
  const hash = hashBytes(data);
  const f = await staging.acquire(hash, data.byteLength, 's1');
  const pool = counter();
  const behind = f.readBehind(pool.take);
  await put(f, data, 0, data.byteLength);
  await f.sync();
  const it = behind[Symbol.asyncIterator]();
  await it.next(); // one run written, then the RAID write failed
  await it.return?.();
  behind.end();
  t.same(await f.verify(), { size: data.byteLength, blake3: hash }, 'the whole staged file, read back');
  t.equal(pool.inUse(), 0);
  await f.discard();
});

/** A streamed commit of `received` offered as `offered`'s hash, the staged copy changed on disk by `damage` after its fsync. */
async function streamed(t: Test, offered: Uint8Array, received: Uint8Array, damage?: (path: string) => Promise<void>) {
  const { targets, catalogue, committer } = await committerFixture(t);
  const staging = new Staging(targets.mirror.root, async () => undefined);
  const hash = hashBytes(offered);
  const f = await staging.acquire(hash, offered.byteLength, 's1');
  const behind = f.readBehind(counter().take);
  const xxh3 = createXxh3();
  xxh3.update(received);
  const receivedXxh3 = xxh3.digest();
  const commit = committer.commit({
    hash,
    size: offered.byteLength,
    staged: f,
    source: behind,
    receivedXxh3: () => receivedXxh3,
    names: [{ shoot: 's', card: 'c', path: 'DCIM/IMG_1.CR3', mtime: Date.UTC(2026, 10, 26) }],
    agentCopies: [],
    agentId: 'agt_test',
  });
  const outcome = commit.then(
    () => undefined,
    (e: unknown) => e as Error & { code?: string },
  );
  await put(f, received, 0, received.byteLength);
  await f.sync();
  await damage?.(staging.pathOf(hash));
  behind.end(); // as file-receiver does at FileEnd
  const err = await outcome;
  t.same(await readdir(join(targets.raid.root, 's')).catch(() => []), [], 'no RAID copy or temp left');
  t.same(await readdir(join(targets.mirror.root, 's')).catch(() => []), [], 'no mirror copy made');
  t.same(await readdir(join(targets.mirror.root, STAGING_DIR)), [`${hash}.part`], 'only the partial in staging');
  t.equal(await catalogue.getAsset(hash), undefined, 'nothing recorded');
  await f.discard();
  return err;
}

t.test(
  'a streamed commit whose staged copy reads back otherwise than received is the mirror disk: READBACK_MISMATCH',
  async (t) => {
    const data = testBytes(6 * MiB + 777, 70);
    const err = await streamed(t, data, data, async (path) => {
      // The disk now holds one other byte where the bytes received (the offered ones) were written.
      const fh = await open(path, 'r+');
      await fh.write(Buffer.from([(data[5 * MiB] as number) ^ 0xff]), 0, 1, 5 * MiB);
      await fh.sync();
      await fh.close();
    });
    t.equal(err?.code, DURABLE_CODES.readbackMismatch, 'the mirror disk is named');
    t.match(err?.message, /mirror disk/, 'the message says which disk');
  },
);

t.test('a streamed commit of bytes received that do not hash to the offer: HASH_MISMATCH, not a disk', async (t) => {
  const offered = testBytes(6 * MiB + 777, 71);
  const received = Buffer.from(offered);
  received[3 * MiB] = (received[3 * MiB] as number) ^ 0x01;
  const err = await streamed(t, offered, received);
  t.equal(err?.code, DURABLE_CODES.hashMismatch, 'the bytes received are named');
  t.match(err?.message, /bytes received/);
});
