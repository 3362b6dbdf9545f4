/**
 * Many agents at once (studiod/src/link/fair-scheduler.ts, memory-budget.ts): a real LinkServer
 * over real TLS sockets, real Staging, Committer and LevelDB Catalogue in temp dirs; the agents
 * are raw protocol clients (test/lib/studio-wire.ts). One seam: the Committer is the real one with
 * a hold in front of its commit (`HeldCommitter`), so the test decides when commits may run and
 * sees every session queue up first, instead of racing the disks.
 */
import t, { type Test } from 'tap';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import {
  authPayload,
  createLogger,
  hashBytes,
  signAuth,
  MAGIC,
  PROTOCOL_VERSION,
  type MessageOf,
} from '@studio321/protocol';
import { Catalogue } from '@studio321/studiod';
import {
  checkTarget,
  Committer,
  Staging,
  STAGING_DIR,
  type CommitInput,
  type SmallCommitInput,
} from '@studio321/studiod/commit';
import { LinkServer, LinkSession, loadOrCreateTlsIdentity, SLAB_BYTES } from '@studio321/studiod/link';
import { localTargets, sha256Hex, waitFor } from '../../lib/studio-harness.js';
import { WireClient } from '../../lib/studio-wire.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Files a session lets wait for their commit here (maxCommitting): past them its frames wait. */
const COMMITTING = 4;
const MTIME = Date.UTC(2026, 10, 26);

/**
 * The real Committer; each commit first waits until the test opens the hold. It notes which small
 * commits came marked as their session's first (`firstOf`, by hash).
 */
class HeldCommitter extends Committer {
  #open!: () => void;
  readonly opened = new Promise<void>((r) => {
    this.#open = r;
  });
  readonly firstOf = new Map<string, boolean>();
  /** The steps each small commit marked as it went (only its session's first is asked to). */
  readonly stagesOf = new Map<string, SmallCommitInput['stages']>();
  /** Small commits wait for the hold too (off by default: they run at once). */
  holdSmall = false;
  /** Bytes of the small commits started and not ended: what they hold in memory; and the most at once. */
  smallBytes = 0;
  maxSmallBytes = 0;
  open(): void {
    this.#open();
  }
  override async commit(input: CommitInput): ReturnType<Committer['commit']> {
    await this.opened;
    return super.commit(input);
  }
  override async commitSmall(input: SmallCommitInput): ReturnType<Committer['commitSmall']> {
    this.firstOf.set(input.hash, input.first === true);
    this.stagesOf.set(input.hash, input.stages);
    this.smallBytes += input.size;
    this.maxSmallBytes = Math.max(this.maxSmallBytes, this.smallBytes);
    try {
      if (this.holdSmall) await this.opened;
      return await super.commitSmall(input);
    } finally {
      this.smallBytes -= input.size;
    }
  }
}

async function studio(
  t: Test,
  opts: {
    commitSlots?: number;
    receiveBudgetBytes?: number;
    windowBytes?: number;
    quietMs?: number;
    reclaimMinBytes?: number;
    sessionQueueBytes?: number;
    deadLinkMs?: number;
    pingIntervalMs?: number;
    now?: () => number;
    maxCommitting?: number;
  },
  stagingLimits?: { perSession: number; total: number },
) {
  const dir = t.testdir({ mirror: {}, raid: {}, tls: {} });
  const targets = localTargets(dir);
  const catalogue = new Catalogue(join(dir, 'catalogue'));
  await catalogue.open();
  t.teardown(() => catalogue.close());
  const staging = new Staging(
    targets.mirror.root,
    () => checkTarget('mirror', targets.mirror, (catalogue.counters().copies.mirror?.count ?? 0) > 0),
    stagingLimits,
  );
  const committer = new HeldCommitter({ catalogue, targets });
  const tls = await loadOrCreateTlsIdentity(join(dir, 'tls', 'key.pem'), join(dir, 'tls', 'cert.pem'), {
    pairedAgents: 0,
  });
  const server = new LinkServer({
    host: '127.0.0.1',
    port: 0,
    tls,
    windowBytes: 16 * MiB,
    catalogue,
    staging,
    committer,
    log: createLogger({ name: 'fair-receive-test', level: 'silent' }),
    software: 'test',
    preAuth: { maxTotal: 64, maxPerAddress: 64, deadlineMs: 15_000 },
    pairing: { maxRefusals: 5, maxRefusalsTotal: 50, lockoutMs: 60_000 },
    ...opts,
  });
  const port = await server.open();
  t.teardown(() => server.close());
  return { server, committer, catalogue, staging, targets, url: `wss://127.0.0.1:${port}/v1` };
}

/** A paired agent (its record in the catalogue) with an authenticated session. */
async function agent(s: Awaited<ReturnType<typeof studio>>, n: number): Promise<WireClient> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const agentId = `agt_${n.toString().padStart(16, '0')}`;
  const code = `CODE${n}`;
  await s.catalogue.putPairingCode({ code, createdAt: 0, expiresAt: Date.now() + 60_000 });
  await s.catalogue.pairAgent(code, Date.now(), {
    agentId,
    name: `agent-${n}`,
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    pairedAt: Date.now(),
  });
  const c = new WireClient(s.url);
  await new Promise<void>((resolve, reject) => {
    c.ws.once('open', () => resolve());
    c.ws.once('error', reject);
  });
  c.send({ t: 'hello', magic: MAGIC, version: PROTOCOL_VERSION, role: 'agent', software: 'test/0' });
  const ch = await c.next('auth-challenge');
  const payload = authPayload({ nonce: ch.nonce, sessionId: ch.sessionId, studioFingerprint: c.fingerprint, agentId });
  c.send({ t: 'auth-proof', agentId, signature: signAuth(privateKey, payload) });
  await c.next('auth-accepted');
  return c;
}

interface File {
  bytes: Buffer;
  hash: string;
  path: string;
}

function files(agentNo: number, count: number, size: number): File[] {
  return Array.from({ length: count }, (_, i) => {
    const bytes = randomBytes(size);
    return { bytes, hash: hashBytes(bytes), path: `DCIM/100/A${agentNo}_${i}.JPG` };
  });
}

function offer(c: WireClient, fs: File[], batchId = 'b1'): void {
  c.send({
    t: 'offer',
    batchId,
    files: fs.map((f) => ({
      hash: f.hash,
      size: f.bytes.length,
      names: [{ shoot: 'shoot', card: 'card', path: f.path, mtime: MTIME }],
      copies: [],
    })),
  });
}

/** Offer `fs`, wait for the Want, then send every file (chunks of `chunk` bytes, FileEnd). */
async function send(c: WireClient, fs: File[], chunk: number): Promise<void> {
  offer(c, fs);
  const want = await c.next('want');
  if (want.wants.length !== fs.length) throw new Error(`wanted ${want.wants.length} of ${fs.length}`);
  for (const f of fs) {
    for (let off = 0; off < f.bytes.length; off += chunk)
      c.send({ t: 'chunk', hash: f.hash, offset: off, data: f.bytes.subarray(off, off + chunk) });
    c.send({ t: 'file-end', hash: f.hash, size: f.bytes.length });
  }
}

/** Every file got its Receipt, and both copies hold exactly its bytes. */
async function assertCommitted(t: Test, s: Awaited<ReturnType<typeof studio>>, c: WireClient, fs: File[]) {
  const receipts: Array<MessageOf<'receipt'>> = [];
  for (const _ of fs) receipts.push(await c.next('receipt', 20_000));
  t.same(receipts.map((r) => r.hash).sort(), fs.map((f) => f.hash).sort(), 'a Receipt for every file');
  t.equal(c.received.filter((m) => m.t === 'nack' || m.t === 'error').length, 0, 'no Nack, no Error');
  for (const r of receipts) {
    const f = fs.find((x) => x.hash === r.hash) as File;
    for (const copy of r.copies) {
      const root = s.targets[copy.target as 'mirror' | 'raid'].root;
      t.equal(sha256Hex(await readFile(join(root, copy.path))), sha256Hex(f.bytes), `${copy.target} ${f.path}`);
    }
  }
}

t.test('commits are served round-robin: every session has its first file committed before any its fifth', async (t) => {
  const N = 6;
  const PER = 5;
  const s = await studio(t, { commitSlots: 2 });
  const clients = await Promise.all(Array.from({ length: N }, (_, i) => agent(s, i)));
  t.teardown(() => {
    for (const c of clients) c.close();
  });
  const sets = clients.map((_, i) => files(i, PER, 4 * KiB + i));
  // Session by session, all of one before the next: first come, first served would commit
  // the first session's five files before the last session's first.
  for (let i = 0; i < N; i++) await send(clients[i] as WireClient, sets[i] as File[], 64 * KiB);
  const sched = s.server.scheduler;
  await waitFor(() => sched.inFlight + sched.waiting === N * PER, 'every commit asked for its slot');
  t.ok(sched.inFlight <= 2 + N, `at most the slots plus one per session in flight (${sched.inFlight})`);
  s.committer.open();
  for (let i = 0; i < N; i++) await assertCommitted(t, s, clients[i] as WireClient, sets[i] as File[]);
  const order = sched.grants.slice(-N * PER);
  const nth = (session: string, k: number): number => {
    let seen = 0;
    return order.findIndex((g) => g === session && ++seen === k);
  };
  const sessions = [...new Set(order)];
  t.equal(sessions.length, N, 'one lane per session');
  const lastFirst = Math.max(...sessions.map((x) => nth(x, 1)));
  const earliestFifth = Math.min(...sessions.map((x) => nth(x, 5)));
  t.ok(lastFirst < earliestFifth, `every first (last at ${lastFirst}) before any fifth (first at ${earliestFifth})`);
  // Round-robin: between two turns of one session, every other waiting session had one.
  const counts = new Map<string, number>();
  let spread = 0;
  for (const g of order) {
    counts.set(g, (counts.get(g) ?? 0) + 1);
    const c = [...counts.values()];
    spread = Math.max(spread, Math.max(...c) - Math.min(...c, ...(counts.size < N ? [0] : [])));
  }
  t.ok(spread <= 2, `no session more than two commits ahead of another (spread ${spread})`);
  t.equal(sched.inFlight + sched.waiting, 0, 'every slot given back');
});

t.test("each session's first small commit, and only it, is marked to be written ahead", async (t) => {
  const s = await studio(t, {});
  s.committer.open();
  const a = await agent(s, 40);
  t.teardown(() => a.close());
  const a0 = files(40, 1, 4 * KiB);
  await send(a, a0, 64 * KiB);
  await assertCommitted(t, s, a, a0);
  // A now sends its n-th files while B connects and sends its first.
  const many = files(41, 30, 4 * KiB + 1);
  await send(a, many, 64 * KiB);
  const b = await agent(s, 42);
  t.teardown(() => b.close());
  const b0 = files(42, 1, 4 * KiB + 2);
  await send(b, b0, 64 * KiB);
  await assertCommitted(t, s, b, b0);
  await assertCommitted(t, s, a, many);
  const marked = (fs: File[]) => fs.map((f) => s.committer.firstOf.get(f.hash));
  t.same(marked(a0), [true], "A's first file: marked");
  t.same(marked(b0), [true], "B's first file: marked, though A's were still being committed");
  t.same(marked(many), Array(30).fill(false), "A's later files: not marked");
  // Where a first file's commit waited, step by step (studiod logs it, bench:scale prints it).
  for (const [who, f] of [
    ['A', a0],
    ['B', b0],
  ] as const) {
    const stages = s.committer.stagesOf.get((f[0] as File).hash) ?? {};
    const at = [stages.targets, stages.intent, stages.write, stages.record];
    t.ok(
      at.every((x, i) => x !== undefined && (i === 0 || x >= (at[i - 1] as number))),
      `${who}'s first commit marked each step in order: ${JSON.stringify(stages)}`,
    );
  }
  t.same(
    many.map((f) => s.committer.stagesOf.get(f.hash)),
    Array(30).fill(undefined),
    "A's later files: no steps asked for",
  );
});

t.test('the receive budget pauses reading: bytes held stay bounded, nothing lost or reordered', async (t) => {
  const N = 3;
  const BUDGET = 512 * KiB;
  const CHUNK = 64 * KiB;
  const s = await studio(t, { receiveBudgetBytes: BUDGET, maxCommitting: COMMITTING });
  const clients = await Promise.all(Array.from({ length: N }, (_, i) => agent(s, 10 + i)));
  t.teardown(() => {
    for (const c of clients) c.close();
  });
  // Staged files (over SMALL_COMMIT_BYTES), more than a session lets wait for their commit
  // (maxCommitting): with commits held, its frames then wait and its chunks pile up.
  const sets = clients.map((_, i) => files(10 + i, COMMITTING + 6, 300 * KiB + i * 4099));
  await Promise.all(clients.map((c, i) => send(c, sets[i] as File[], CHUNK)));
  const budget = s.server.budget;
  await waitFor(() => budget.pausedCount > 0 && budget.held >= BUDGET, 'a socket paused at the budget');
  const heldWhilePaused = budget.held;
  s.committer.open();
  for (let i = 0; i < N; i++) await assertCommitted(t, s, clients[i] as WireClient, sets[i] as File[]);
  t.ok(budget.pauses > 0, `reading was paused (${budget.pauses} times)`);
  // Past the budget a socket is paused; what ws had already read from it (one TLS read) still arrives.
  const slack = N * (CHUNK + 64 * KiB);
  t.ok(budget.maxHeld <= BUDGET + slack, `held at most ${budget.maxHeld} (budget ${BUDGET} + ${slack})`);
  t.ok(heldWhilePaused <= BUDGET + slack, `held while paused ${heldWhilePaused}`);
  t.equal(budget.held, 0, 'every byte released');
  t.equal(budget.pausedCount, 0, 'every socket resumed');
  t.equal(s.server.memory().ownReads.sockets, N, 'each socket was read into the receive path’s own buffers');
});

t.test(
  "a session's Chunks waiting for their turn are bounded: its socket pauses, is no dead link, and every byte commits",
  async (t) => {
    const QUEUE = 1 * MiB;
    const CHUNK = 64 * KiB;
    const DEAD = 1_000;
    let clock = Date.now();
    const s = await studio(t, {
      sessionQueueBytes: QUEUE,
      deadLinkMs: DEAD,
      pingIntervalMs: DEAD,
      now: () => clock,
      maxCommitting: COMMITTING,
    });
    const c = await agent(s, 40);
    t.teardown(() => c.close());
    // With commits held, past MAX_COMMITTING files waiting for their commit the frame queue waits and fills.
    const set = files(40, COMMITTING + 12, 300 * KiB + 4099);
    await send(c, set, CHUNK);
    await waitFor(() => s.server.memory().sessionQueues.pauses > 0, 'the socket paused at the session queue');
    const paused = s.server.memory();
    // Past the bound the socket is paused; what ws had already read from it (one TLS read) still arrives.
    const slack = CHUNK + 64 * KiB;
    t.ok(paused.sessionQueues.maxBytes > QUEUE, `the queue reached ${paused.sessionQueues.maxBytes}`);
    t.ok(paused.sessionQueues.maxBytes <= QUEUE + slack, `and at most the bound + ${slack}`);
    t.ok(paused.receiveHeld <= QUEUE + slack, `Chunk bytes held while paused: ${paused.receiveHeld}`);
    t.equal(s.server.budget.pausedCount, 0, 'the receive budget (64 MiB) paused nothing');
    // Quiet by our doing, for longer than a dead link: a heartbeat after that sends a Ping, it does not cut.
    // An Ack of bytes staged before the pause may still go out after the clock moved (its fsync
    // ends late: under load, or with a GC in the way), and any frame sent restarts the ping
    // interval on this frozen clock: move it again until a heartbeat finds a whole interval quiet.
    for (let moves = 1; ; moves++) {
      clock += 3 * DEAD;
      const ping = await c.next('ping', 1_000).catch((err: unknown) => {
        if (moves >= 10) throw err;
        return undefined;
      });
      if (ping !== undefined) break;
    }
    t.equal(c.ws.readyState, c.ws.OPEN, 'the paused session was not closed as a dead link');
    s.committer.open();
    await assertCommitted(t, s, c, set);
    const m = s.server.memory();
    t.ok(m.sessionQueues.maxBytes <= QUEUE + slack, `queued at most ${m.sessionQueues.maxBytes}`);
    t.equal(m.receiveHeld, 0, 'every byte released');
  },
);

t.test(
  'small files held in memory count against the receive budget until committed: the bound holds, every file commits',
  async (t) => {
    const N = 4;
    const BUDGET = 256 * KiB;
    const SIZE = 20 * KiB;
    const s = await studio(t, { receiveBudgetBytes: BUDGET, commitSlots: 1_000 });
    s.committer.holdSmall = true;
    const clients = await Promise.all(Array.from({ length: N }, (_, i) => agent(s, 50 + i)));
    t.teardown(() => {
      for (const c of clients) c.close();
    });
    // 60 small files each (1.2 MiB, under a quarter of the 16 MiB window): without the budget every
    // session would hold all of them in memory while the commits wait, 4.8 MiB in all.
    const sets = clients.map((_, i) => files(50 + i, 60, SIZE + i));
    await Promise.all(clients.map((c, i) => send(c, sets[i] as File[], 64 * KiB)));
    const budget = s.server.budget;
    await waitFor(() => budget.pausedCount === N, 'every socket paused at the budget');
    // Past the budget a socket is paused; what ws had already read from it (one TLS read) still arrives.
    const slack = N * (64 * KiB + SIZE + N);
    const heldWhilePaused = s.committer.smallBytes;
    t.ok(heldWhilePaused >= BUDGET, `the small files waiting hold ${heldWhilePaused}, past the budget`);
    t.ok(heldWhilePaused <= BUDGET + slack, `and at most the budget + ${slack}`);
    t.equal(budget.held, heldWhilePaused, 'the budget counts exactly the small files waiting for their commit');
    const slabsWhilePaused = s.server.memory().smallSlabs.inUse;
    t.ok(
      slabsWhilePaused <= Math.ceil(heldWhilePaused / SLAB_BYTES) + 1,
      `their bytes are in ${slabsWhilePaused} slab(s) of ${SLAB_BYTES} (small-slabs.ts)`,
    );
    s.committer.open();
    for (let i = 0; i < N; i++) await assertCommitted(t, s, clients[i] as WireClient, sets[i] as File[]);
    t.ok(budget.pauses >= N, `reading was paused (${budget.pauses} times)`);
    t.ok(
      s.committer.maxSmallBytes <= BUDGET + slack,
      `small files in memory at most ${s.committer.maxSmallBytes} (budget ${BUDGET} + ${slack})`,
    );
    t.ok(budget.maxHeld <= BUDGET + slack, `budget held at most ${budget.maxHeld}`);
    t.equal(budget.held, 0, 'every byte released');
    t.equal(budget.pausedCount, 0, 'every socket resumed');
    t.equal(s.server.memory().smallSlabs.inUse, 0, 'no slab holds a file once every file committed');
  },
);

t.test(
  'a session cut while its small files wait for their commit: their bytes are not handed out again before the commits end, and they commit whole',
  async (t) => {
    const s = await studio(t, { commitSlots: 1_000 });
    s.committer.holdSmall = true;
    const gone = await agent(s, 70);
    const goneFiles = files(70, 8, 9 * KiB);
    await send(gone, goneFiles, 64 * KiB);
    const total = goneFiles.reduce((n, f) => n + f.bytes.length, 0);
    await waitFor(() => s.committer.smallBytes === total, 'every file of the session waits for its commit');
    const slabsHeld = s.server.memory().smallSlabs.inUse;
    t.ok(slabsHeld > 0, `its files hold ${slabsHeld} slab(s)`);
    gone.close(); // cut: its session ends once these commits settle
    // A later session's files are cut while those commits wait: never from their bytes.
    const next = await agent(s, 71);
    t.teardown(() => next.close());
    const nextFiles = files(71, 8, 9 * KiB);
    await send(next, nextFiles, 64 * KiB);
    await waitFor(() => s.committer.smallBytes === 2 * total, 'both sessions’ files wait');
    s.committer.open();
    await assertCommitted(t, s, next, nextFiles);
    await waitFor(() => s.committer.smallBytes === 0, 'the cut session’s commits ended too');
    for (const f of goneFiles) {
      const copies = (await s.catalogue.copiesOf(f.hash)).filter((c) => c.kind === 'studio');
      t.same(copies.map((c) => c.target).sort(), ['mirror', 'raid'], `${f.path}: both copies recorded`);
      for (const copy of copies) {
        const bytes = await readFile(join(s.targets[copy.target as 'mirror' | 'raid'].root, copy.path));
        t.equal(sha256Hex(bytes), sha256Hex(f.bytes), `${copy.target} ${f.path}: its own bytes`);
      }
    }
    await waitFor(() => s.server.memory().smallSlabs.inUse === 0, 'every slab free');
  },
);

t.test(
  'holds not created do not count against staging.maxFiles: a late session gets its whole batch; past the open partials a file is Nacked mid-transfer',
  async (t) => {
    const CHUNK = 512 * KiB;
    // A window of 2 chunks (the protocol's least, 1 MiB): every chunk is fsynced and acknowledged on its own (window / 2).
    const s = await studio(t, { windowBytes: 2 * CHUNK }, { perSession: 4, total: 1 });
    s.committer.open();
    const stagingDir = join(s.targets.mirror.root, STAGING_DIR);
    const clients = await Promise.all([0, 1, 2, 3].map((i) => agent(s, 30 + i)));
    t.teardown(() => {
      for (const c of clients) c.close();
    });
    const [e0, e1, e2, late] = clients as [WireClient, WireClient, WireClient, WireClient];
    // Larger than a small commit: staged, each in a partial of its own.
    const sets = clients.map((_, i) => files(30 + i, 4, 5 * CHUNK + 7));
    /** Chunks of `f`, each after the last one's Ack, then FileEnd. */
    const sendAll = async (c: WireClient, f: File): Promise<void> => {
      for (let off = 0; off < f.bytes.length; off += CHUNK) {
        const data = f.bytes.subarray(off, off + CHUNK);
        c.send({ t: 'chunk', hash: f.hash, offset: off, data });
        for (let acked = 0; acked < off + data.length; ) acked = (await c.next('ack')).offset;
      }
      c.send({ t: 'file-end', hash: f.hash, size: f.bytes.length });
    };
    for (const [i, c] of [e0, e1, e2].entries()) {
      offer(c, sets[i] as File[]);
      t.equal((await c.next('want')).wants.length, 4, `early session ${i}: its whole batch wanted`);
    }
    t.equal(s.staging.heldCount(), 12, 'twelve files held, twelve times the open partials allowed');
    const lateFiles = sets[3] as File[];
    offer(late, lateFiles);
    t.same(
      (await late.next('want')).wants,
      lateFiles.map((f) => ({ hash: f.hash, offset: 0 })),
      'the late session gets its whole batch too',
    );
    t.equal(clients.flatMap((c) => c.received.filter((m) => m.t === 'nack')).length, 0, 'no Nack before a Want');
    t.same(await readdir(stagingDir), [], 'nothing created by the Offers');
    // The one partial allowed open: the first early session's first file, its first chunk acknowledged.
    const [first] = sets[0] as [File];
    e0.send({ t: 'chunk', hash: first.hash, offset: 0, data: first.bytes.subarray(0, CHUNK) });
    t.equal((await e0.next('ack')).offset, CHUNK, 'its first chunk is durable');
    const [l0, l1] = lateFiles as [File, File];
    late.send({ t: 'chunk', hash: l0.hash, offset: 0, data: l0.bytes.subarray(0, CHUNK) });
    t.match(
      await late.next('nack'),
      { hash: l0.hash, code: 'STUDIO_STAGING_LIMIT', retryable: true, resumeOffset: 0 },
      'a second partial is not created: the file is Nacked mid-transfer',
    );
    late.send({ t: 'file-end', hash: l0.hash, size: l0.bytes.length }); // SPEC §3.6: FileEnd after such a Nack
    t.same(await readdir(stagingDir), [`${first.hash}.part`], 'nothing staged for it');
    t.equal(s.staging.openCount, 1, 'one partial open');
    for (let off = CHUNK; off < first.bytes.length; off += CHUNK) {
      const data = first.bytes.subarray(off, off + CHUNK);
      e0.send({ t: 'chunk', hash: first.hash, offset: off, data });
      for (let acked = 0; acked < off + data.length; ) acked = (await e0.next('ack')).offset;
    }
    e0.send({ t: 'file-end', hash: first.hash, size: first.bytes.length });
    await assertCommitted(t, s, e0, [first]);
    await waitFor(() => s.staging.openCount === 0, 'the committed partial gave its place back');
    await sendAll(late, l1);
    t.equal((await late.next('receipt', 20_000)).hash, l1.hash, 'the late session commits in the freed place');
    t.equal(late.received.filter((m) => m.t === 'nack' || m.t === 'error').length, 0, 'no other Nack, no Error');
    for (const c of clients) c.close();
    await waitFor(() => s.staging.heldCount() === 0, 'the closed sessions released their files');
    t.equal(s.staging.openCount, 0, 'no partial open');
    t.same(await readdir(stagingDir), [], 'nothing left in staging (the unsent files were never created)');
  },
);

t.test(
  'lazy staging: an Offer creates no partial, the limit Nacks before the Want, a cut resumes from the durable offset',
  async (t) => {
    const CHUNK = 512 * KiB;
    // A window of 2 chunks (the protocol's least, 1 MiB): every chunk is fsynced and acknowledged on its own (window / 2).
    const s = await studio(t, { windowBytes: 2 * CHUNK }, { perSession: 2, total: 64 });
    /** Chunks of `f` from `from`, each after the last one's Ack (within the window), then FileEnd. */
    const sendFrom = async (c: WireClient, f: File, from: number): Promise<void> => {
      for (let off = from; off < f.bytes.length; off += CHUNK) {
        const data = f.bytes.subarray(off, off + CHUNK);
        c.send({ t: 'chunk', hash: f.hash, offset: off, data });
        for (let acked = 0; acked < off + data.length; ) acked = (await c.next('ack')).offset;
      }
      c.send({ t: 'file-end', hash: f.hash, size: f.bytes.length });
    };
    s.committer.open();
    const stagingDir = join(s.targets.mirror.root, STAGING_DIR);
    const a = await agent(s, 20);
    t.teardown(() => a.close());
    const fs = files(20, 3, 5 * CHUNK + 123);
    const [f0, f1, f2] = fs as [File, File, File];
    offer(a, fs);
    const want = await a.next('want');
    const nack = a.received.find((m) => m.t === 'nack');
    t.match(nack, { hash: f2.hash, code: 'STUDIO_STAGING_LIMIT', retryable: true, resumeOffset: 0 }, 'over the limit');
    t.same(
      want.wants,
      [f0, f1].map((f) => ({ hash: f.hash, offset: 0 })),
      'the Nacked file is left out of the Want; the rest from 0',
    );
    t.same(await readdir(stagingDir), [], 'the Offer created no partial (one listing)');
    t.equal(s.staging.heldCount(), 2, 'but holds the two wanted files (the session limit counts them)');
    for (const off of [0, CHUNK]) {
      a.send({ t: 'chunk', hash: f0.hash, offset: off, data: f0.bytes.subarray(off, off + CHUNK) });
      for (let acked = 0; acked < off + CHUNK; ) acked = (await a.next('ack')).offset;
    }
    t.same(await readdir(stagingDir), [`${f0.hash}.part`], 'the first Chunk created its partial, only its');
    a.close(); // cut
    await waitFor(() => s.staging.heldCount() === 0, 'the cut session released its files');
    t.same(await readdir(stagingDir), [`${f0.hash}.part`], 'the never-written file left nothing');
    const b = await agent(s, 21);
    t.teardown(() => b.close());
    offer(b, [f0, f2], 'b2');
    const again = await b.next('want');
    t.same(
      again.wants,
      [
        { hash: f0.hash, offset: 2 * CHUNK },
        { hash: f2.hash, offset: 0 },
      ],
      'resumed from the durable offset; the Nacked file is wanted once there is room',
    );
    await sendFrom(b, f0, 2 * CHUNK);
    await sendFrom(b, f2, 0);
    await assertCommitted(t, s, b, [f0, f2]);
    await waitFor(() => s.staging.heldCount() === 0, 'nothing held after the commits');
    t.same(await readdir(stagingDir), [], 'the committed partials are gone');
  },
);

/** Live objects whose prototype is `proto`, after the full GC `Runtime.queryObjects` runs first (V8's inspector, in-process). */
async function liveObjects(proto: object): Promise<number> {
  const session = new Session();
  session.connect();
  const g = globalThis as { __liveObjectsProbe?: object };
  g.__liveObjectsProbe = proto;
  try {
    const { result } = await session.post('Runtime.evaluate', { expression: 'globalThis.__liveObjectsProbe' });
    const { objects } = await session.post('Runtime.queryObjects', { prototypeObjectId: result.objectId as string });
    const { result: n } = await session.post('Runtime.callFunctionOn', {
      objectId: objects.objectId as string,
      functionDeclaration: 'function () { return this.length; }',
      returnByValue: true,
    });
    return n.value as number;
  } finally {
    delete g.__liveObjectsProbe;
    session.disconnect();
  }
}

t.test('when its sessions end the link gives their memory back: no session kept, pool empty, a full GC', async (t) => {
  // Any growth is worth the GC here (studiod waits for RECLAIM_MIN_BYTES).
  const s = await studio(t, { quietMs: 200, reclaimMinBytes: 0 });
  s.committer.open();
  const sublevel = s.catalogue.sublevel('test');
  t.equal(s.catalogue.sublevel('test'), sublevel, 'one sublevel per name (abstract-level keeps each one made)');
  const clients = await Promise.all([0, 1].map((i) => agent(s, 30 + i)));
  // Chunks of 256 KiB go through the pool (chunk-receive.ts), not ws.
  const sets = clients.map((_, i) => files(30 + i, 1, 520 * KiB + i));
  await Promise.all(clients.map((c, i) => send(c, sets[i] as File[], 256 * KiB)));
  for (let i = 0; i < clients.length; i++) await assertCommitted(t, s, clients[i] as WireClient, sets[i] as File[]);
  t.ok(s.server.memory().chunkBuffers.allocated > 0, 'the chunks were pooled');
  t.ok((await liveObjects(LinkSession.prototype)) >= 2, 'both sessions live');
  const reclaims = s.server.memory().reclaims;
  for (const c of clients) c.close();
  await waitFor(() => s.server.sessions().length === 0, 'every session closed');
  await waitFor(() => s.server.memory().reclaims > reclaims, 'quiet after the sessions ended: memory given back');
  const m = s.server.memory();
  t.same(m.chunkBuffers, { allocated: m.chunkBuffers.allocated, inUse: 0, idle: 0 }, 'no chunk buffer in use or idle');
  t.equal(m.receiveHeld, 0, 'no Chunk bytes held');
  t.equal(s.server.scheduler.inFlight + s.server.scheduler.waiting, 0, 'no commit slot held');
  t.equal(await liveObjects(LinkSession.prototype), 0, 'no ended session is kept in memory');
});
