/**
 * When agents were last seen (Catalogue.touchAgent): written on the agents' own write chain, so a
 * last-seen update neither waits behind the commits' group batches nor holds them up; the updates
 * asked for while one waits join it (twenty agents connecting at once write their records once);
 * each update still lands, and a pairing or a revocation is never undone by one.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalogue, type AgentRecord } from '@studio321/studiod';

async function catalogueWith(t: Test, ids: string[]): Promise<Catalogue> {
  const dir = await mkdtemp(join(tmpdir(), 'last-seen-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const c = new Catalogue(join(dir, 'catalogue'));
  await c.open();
  t.teardown(() => c.close());
  for (const [i, agentId] of ids.entries()) {
    const agent: AgentRecord = { agentId, name: agentId, publicKey: 'AAAA', pairedAt: 1000 + i };
    await c.putPairingCode({ code: `code-${i}`, createdAt: 1, expiresAt: 10_000 });
    t.ok(await c.pairAgent(`code-${i}`, 2, agent), `${agentId} paired`);
  }
  return c;
}

/** Holds the catalogue's (main) write chain until the returned function is called. */
function holdWrites(c: Catalogue): { release: () => void; done: Promise<void> } {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  return { release, done: c.exclusive(() => gate) };
}

t.test('a last-seen update is written while the commits write chain is held, and holds up no intent', async (t) => {
  const c = await catalogueWith(t, ['a', 'b']);
  const held = holdWrites(c);
  // Behind the held chain: the commits' group (an intent) waits for it, the last-seen updates do not.
  let intentDone = false;
  const intent = c.putIntent({ hash: 'h1', dirs: ['/x'], startedAt: 1 }).then(() => {
    intentDone = true;
  });
  await Promise.all([c.touchAgent('a', 5000, { files: 3, bytes: 30 }), c.touchAgent('b', 5001)]);
  t.match(await c.getAgent('a'), { lastSeenAt: 5000, queue: { files: 3, bytes: 30 } }, 'a: written, chain still held');
  t.match(await c.getAgent('b'), { lastSeenAt: 5001 }, 'b: written, chain still held');
  t.notOk(intentDone, 'the intent still waits for the held chain (the updates did not pass through it)');
  held.release();
  await Promise.all([held.done, intent]);
  t.same(
    (await c.intents()).map((i) => i.id),
    ['h1'],
    'the intent is written once the chain is free',
  );
});

/**
 * Holds the agents' write chain: a revocation of `agentId` whose agents listener (called inside its
 * write) waits until `release` is called. Resolves `inside` once the revocation holds the chain.
 */
function holdAgentWrites(
  c: Catalogue,
  agentId: string,
): { inside: Promise<void>; release: () => void; done: Promise<boolean> } {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let entered!: () => void;
  const inside = new Promise<void>((r) => {
    entered = r;
  });
  c.setAgentsListener(async () => {
    entered();
    await gate;
  });
  return { inside, release, done: c.revokeAgent(agentId, 4000) };
}

t.test('last-seen updates asked together share one write: each lands, the latest wins', async (t) => {
  const c = await catalogueWith(t, ['a', 'b', 'c', 'r']);
  const held = holdAgentWrites(c, 'r');
  await held.inside;
  const asked = [c.touchAgent('a', 5000, { files: 3, bytes: 30 }), c.touchAgent('b', 5001)];
  await new Promise((r) => setImmediate(r));
  asked.push(c.touchAgent('c', 5002, { files: 1, bytes: 10 }));
  // A later update of the same agent without a queue keeps the queue the one before it reported.
  asked.push(c.touchAgent('a', 5003));
  t.ok(
    asked.every((p) => p === asked[0]),
    'the updates asked while the agents chain is busy share one write',
  );
  held.release();
  t.ok(await held.done, 'r revoked');
  await Promise.all(asked);
  t.match(
    await c.getAgent('a'),
    { lastSeenAt: 5003, queue: { files: 3, bytes: 30 } },
    'a: the last time, its queue kept',
  );
  t.match(await c.getAgent('b'), { lastSeenAt: 5001 }, 'b: seen');
  t.notOk('queue' in ((await c.getAgent('b')) ?? {}), 'b: no queue reported, none written');
  t.match(await c.getAgent('c'), { lastSeenAt: 5002, queue: { files: 1, bytes: 10 } }, 'c: seen, with its queue');
  const later = c.touchAgent('b', 6000, { files: 0, bytes: 0 });
  t.not(later, asked[0], 'asked after the write: a new one');
  await later;
  t.match(
    await c.getAgent('b'),
    { lastSeenAt: 6000, queue: { files: 0, bytes: 0 } },
    'b: a later update is written too',
  );
});

t.test('a last-seen update never undoes a revocation or a pairing, nor creates an agent', async (t) => {
  const c = await catalogueWith(t, ['a']);
  // The update asked while the revocation holds the agents chain reads the record after it.
  const held = holdAgentWrites(c, 'a');
  await held.inside;
  const touched = c.touchAgent('a', 7002);
  const ghost = c.touchAgent('ghost', 7003);
  held.release();
  await Promise.all([held.done, touched, ghost]);
  t.match(await c.getAgent('a'), { revokedAt: 4000, lastSeenAt: 7002 }, 'revoked, and seen after');
  t.equal(await c.getAgent('ghost'), undefined, 'an unknown agent is not created');
  c.setAgentsListener(undefined);
  // An update asked before a revocation, written while the main chain holds the revocation back.
  const main = holdWrites(c);
  const seen = c.touchAgent('a', 7100);
  const revokedAgain = c.revokeAgent('a', 7101);
  await seen;
  main.release();
  await Promise.all([main.done, revokedAgain]);
  t.match(await c.getAgent('a'), { revokedAt: 7101, lastSeenAt: 7100 }, 'the revocation after it keeps its time');
  // A pairing and an update of the agent it pairs, asked together.
  await c.putPairingCode({ code: 'code-z', createdAt: 1, expiresAt: 10_000 });
  const paired = c.pairAgent('code-z', 8000, { agentId: 'z', name: 'z', publicKey: 'AAAA', pairedAt: 8000 });
  const seenZ = c.touchAgent('z', 8001);
  t.ok(await paired, 'z paired');
  await seenZ;
  t.match(await c.getAgent('z'), { agentId: 'z', pairedAt: 8000 }, 'z stays paired');
  t.equal((await c.listAgents()).length, 2, 'two agents');
});

t.test('close waits for a last-seen write in flight', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'last-seen-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const c = new Catalogue(join(dir, 'catalogue'));
  await c.open();
  await c.putPairingCode({ code: 'k', createdAt: 1, expiresAt: 10_000 });
  await c.pairAgent('k', 2, { agentId: 'a', name: 'a', publicKey: 'AAAA', pairedAt: 2 });
  const touched = c.touchAgent('a', 9000);
  await c.close();
  await touched;
  const again = new Catalogue(join(dir, 'catalogue'));
  await again.open();
  t.teardown(() => again.close());
  t.match(await again.getAgent('a'), { lastSeenAt: 9000 }, 'written before the catalogue closed');
});
