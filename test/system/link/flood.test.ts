/**
 * Floods against a real studiod while a good agent syncs (real processes, real TLS):
 * - a paired session offers thousands of hashes without data: studiod's descriptors stay
 *   bounded (staging.maxFilesPerSession), the extra files get STUDIO_STAGING_LIMIT Nacks, the
 *   flooding session stays usable, and no empty `.part` stays when it closes;
 * - hundreds of unauthenticated connections send half of a maximum-size frame: they are capped
 *   per address and in all, cut after MAX_PREAUTH_BYTES or the handshake deadline, and studiod's
 *   RSS stays bounded;
 * - pairing: refusals are slowed, then the address is locked out (PROTO_PAIRING_LOCKED with the
 *   time it lifts), even for a valid code.
 * Descriptors are counted in /proc/PID/fd, memory read from /proc/PID/status (VmRSS, VmHWM);
 * the figures are printed (README, Limits).
 */
import t, { type Test } from 'tap';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import {
  dcfFiles,
  ingest,
  listFiles,
  makeAgent,
  makeCard,
  pairAgent,
  startStudiod,
  tempDir,
  waitFor,
  type Agent,
} from '../../lib/studio-harness.js';
import { WireClient, authedClient } from '../../lib/studio-wire.js';

const PER_SESSION = 32;
const MAX_STAGED = 3 * PER_SESSION;
const OFFERS = 20;
const PER_ADDRESS = 4;
const MAX_UNAUTH = 12;

async function fdCount(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

async function memory(pid: number): Promise<{ rss: number; hwm: number }> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 'NaN') * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Samples `f` every 20 ms until stopped; returns the largest value seen. */
function sampler(f: () => Promise<number>): { stop(): Promise<number> } {
  let max = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      max = Math.max(max, await f().catch(() => 0));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return max;
    },
  };
}

const MiB = 1024 * 1024;

/** A TLS connection to studiod from another loopback source address (another "laptop"). */
function tlsFrom(port: number, localAddress: string): TLSSocket {
  const raw = netConnect({ host: '127.0.0.1', port, localAddress });
  raw.on('error', () => undefined);
  return tlsConnect({ socket: raw, rejectUnauthorized: false });
}

async function goodAgentCard(t: Test, agent: Agent, label: string, files: number) {
  const card = join(await tempDir(t, 'card-'), label);
  await makeCard(
    card,
    dcfFiles(files, (i) => 150_000 + i * 7_000),
  );
  await ingest(agent, card, 'flood', label);
  return { sync: () => agent.cli(['sync', '--json']) };
}

t.test('floods while a good agent syncs', async (t) => {
  const studio = await startStudiod(t, {
    staging: { maxFilesPerSession: PER_SESSION, maxFiles: MAX_STAGED },
    link: { maxUnauthenticated: MAX_UNAUTH, maxUnauthenticatedPerAddress: PER_ADDRESS, handshakeSeconds: 3 },
    pairing: { maxRefusals: 5, maxRefusalsTotal: 50, lockoutMinutes: 2 },
  });
  const pid = studio.proc!.pid!;
  const goodAgent = await makeAgent(t);
  await pairAgent(studio, goodAgent);

  await t.test('one paired session offers thousands of hashes without data', async (t) => {
    const good = await goodAgentCard(t, goodAgent, 'GOOD1', 12);
    const insider = await makeAgent(t);
    await pairAgent(studio, insider);
    const fdBefore = await fdCount(pid);
    const fds = sampler(() => fdCount(pid));
    const hostile = await authedClient(studio.url, insider.dataDir);
    t.teardown(() => hostile.close());
    const syncing = good.sync();
    let nacked = 0;
    let wanted = 0;
    for (let b = 0; b < OFFERS; b++) {
      const files = Array.from({ length: 256 }, (_, i) => ({
        hash: randomBytes(32).toString('hex'),
        size: 50 * MiB,
        names: [{ shoot: 'x', card: 'X', path: `F${b}_${i}.CR3`, mtime: 0 }],
        copies: [],
      }));
      hostile.send({ t: 'offer', batchId: `h${b}`, files });
      const want = await hostile.next('want');
      wanted += want.wants.length;
      nacked += hostile.received.filter((m) => m.t === 'nack' && m.code === 'STUDIO_STAGING_LIMIT').length;
      hostile.received.length = 0;
    }
    const run = await syncing;
    const fdMax = await fds.stop();
    t.equal(run.code, 0, `the good agent's sync completes during the flood (${run.stderr.slice(0, 300)})`);
    t.equal((await listFiles(studio.dirs.mirror)).length, 12, 'all its files are in the mirror');
    t.equal(wanted, PER_SESSION, `the flooding session was given at most ${PER_SESSION} staged files`);
    t.equal(nacked, OFFERS * 256 - PER_SESSION, 'every other offered file got a STUDIO_STAGING_LIMIT Nack');
    const ts = Date.now();
    hostile.send({ t: 'ping', ts });
    t.equal((await hostile.next('pong')).ts, ts, 'the flooding session is still usable');
    t.ok(
      fdMax <= fdBefore + 2 * MAX_STAGED + 20,
      `studiod's descriptors stay bounded: ${fdBefore} before, at most ${fdMax} during ${OFFERS * 256} offers (bound: 2 per staged file, ${MAX_STAGED} in all)`,
    );
    // It holds its PER_SESSION hashes (the Nacks above), but an Offer never followed by data creates
    // no partial: a partial is created by its file's first Chunk.
    t.same(await readdir(studio.stagingDir), [], 'offers without data left no file in staging');
    hostile.close();
    await waitFor(async () => (await readdir(studio.stagingDir)).length === 0 || undefined, 'staged files released');
    t.same(await readdir(studio.stagingDir), [], 'no empty .part stays once the session closed');
    await waitFor(async () => ((await fdCount(pid)) <= fdBefore + 8 ? true : undefined), 'descriptors returned');
    t.comment(`FIGURES fd: before ${fdBefore}, max during the flood ${fdMax}, after ${await fdCount(pid)}`);
  });

  await t.test('hundreds of unauthenticated connections send half a maximum-size frame', async (t) => {
    const good = await goodAgentCard(t, goodAgent, 'GOOD2', 12);
    const before = await memory(pid);
    const rss = sampler(async () => (await memory(pid)).rss);
    const syncing = good.sync();
    const outcome = { refused: 0, cut: 0 };
    const attack = (i: number): Promise<void> =>
      new Promise((resolve) => {
        let secured = false;
        const s = tlsFrom(studio.port, `127.0.0.${2 + (i % 3)}`);
        s.on('secureConnect', () => {
          secured = true;
          s.write(
            `GET /v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
          );
        });
        let upgraded = false;
        s.on('data', () => {
          if (upgraded) return;
          upgraded = true;
          // One binary frame announcing 8 MiB (the largest allowed), then 4 MiB of it: half sent.
          const head = Buffer.alloc(14);
          head[0] = 0x82;
          head[1] = 0x80 | 127;
          head.writeBigUInt64BE(BigInt(8 * MiB), 2);
          s.write(head);
          const piece = Buffer.alloc(256 * 1024, 7);
          for (let k = 0; k < 16; k++) s.write(piece);
        });
        s.on('error', () => undefined);
        s.on('close', () => {
          if (secured) outcome.cut++;
          else outcome.refused++;
          resolve();
        });
      });
    // A silent connection: cut at the handshake deadline (link.handshakeSeconds: 3).
    const silentStart = Date.now();
    const silent = new Promise<number>((resolve) => {
      const s = tlsFrom(studio.port, '127.0.0.5');
      s.on('error', () => undefined);
      s.on('close', () => resolve(Date.now() - silentStart));
    });
    const waves = 8;
    for (let w = 0; w < waves; w++) await Promise.all(Array.from({ length: 25 }, (_, i) => attack(w * 25 + i)));
    const run = await syncing;
    const silentMs = await silent;
    const rssMax = await rss.stop();
    const after = await memory(pid);
    t.equal(run.code, 0, `the good agent's sync completes during the flood (${run.stderr.slice(0, 300)})`);
    t.equal((await listFiles(studio.dirs.mirror)).length, 24, 'all its files are in the mirror');
    t.equal(outcome.refused + outcome.cut, waves * 25, 'every hostile connection ended');
    t.ok(outcome.refused > 0, `connections over the caps are refused at accept (${outcome.refused} refused)`);
    t.ok(outcome.cut > 0, `admitted ones are cut after MAX_PREAUTH_BYTES (${outcome.cut} cut)`);
    t.ok(
      silentMs >= 2500 && silentMs < 10_000,
      `a silent connection is cut at the handshake deadline (${silentMs} ms)`,
    );
    const grown = rssMax - before.rss;
    t.ok(
      grown < 120 * MiB,
      `RSS stays bounded: ${Math.round(before.rss / MiB)} MiB before, at most ${Math.round(rssMax / MiB)} MiB during ${waves * 25} half-sent 8 MiB frames (${waves * 25 * 4} MiB sent)`,
    );
    t.comment(
      `FIGURES rss: before ${Math.round(before.rss / MiB)} MiB, max ${Math.round(rssMax / MiB)} MiB, after ${Math.round(after.rss / MiB)} MiB, VmHWM ${Math.round(after.hwm / MiB)} MiB; refused ${outcome.refused}, cut ${outcome.cut}, silent cut after ${silentMs} ms`,
    );
  });

  await t.test('pairing is slowed and locked out after 5 refusals', async (t) => {
    const agentsBefore = (await studio.ctl(['--json', 'agents'])).stdout;
    const fakeKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
    const guess = async (code: string): Promise<{ code: string; message: string; ms: number }> => {
      const start = Date.now();
      const c = new WireClient(studio.url);
      await c.open();
      c.send({ t: 'pair-request', code, agentName: 'guesser', publicKey: fakeKey });
      const e = await c.next('error');
      await c.closed;
      return { code: e.code, message: e.message, ms: Date.now() - start };
    };
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await guess('AAAAAAAAAA');
      t.equal(r.code, 'PROTO_PAIRING_REFUSED', `wrong code ${i + 1}: PROTO_PAIRING_REFUSED`);
      times.push(r.ms);
    }
    t.ok(times[4]! >= 450, `refusals are slowed (the 5th answered after ${times[4]} ms)`);
    const valid = await studio.pairCode();
    const locked = await guess(valid);
    t.equal(locked.code, 'PROTO_PAIRING_LOCKED', 'then even a valid code is refused: PROTO_PAIRING_LOCKED');
    t.match(
      locked.message,
      /locked until \d{4}-\d\d-\d\dT[\d:.]+Z \(1[12]\d s\)/,
      'the error says when the lockout lifts',
    );
    t.equal((await studio.ctl(['--json', 'agents'])).stdout, agentsBefore, 'no agent was added');
  });
});
