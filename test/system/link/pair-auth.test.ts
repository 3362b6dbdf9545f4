/**
 * Pairing and authentication refusals: used/unknown codes, unpaired, unknown,
 * revoked and replaying agents, frames before auth, a wrong pinned
 * fingerprint — each with its code, and nothing staged or stored.
 */
import t from 'tap';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { authPayload, signAuth } from '@studio321/protocol';
import { listFiles, makeAgent, pairAgent, startStudiod } from '../../lib/studio-harness.js';
import { WireClient, agentIdentity } from '../../lib/studio-wire.js';

t.test('pairing, auth refusals, replay', async (t) => {
  const studio = await startStudiod(t);
  t.equal((await stat(studio.controlSocket)).mode & 0o777, 0o600, 'control socket is owner-only (0600)');

  const unpaired = await makeAgent(t);
  const r0 = await unpaired.cli(['sync']);
  t.equal(r0.code, 1, 'unpaired sync exits 1');
  t.match(r0.stderr, /LINK_NOT_PAIRED/, 'unpaired agent: LINK_NOT_PAIRED');

  const bad = await unpaired.cli(['pair', studio.url, 'ABCDEFGHJK']);
  t.equal(bad.code, 1, 'unknown code refused');
  t.match(bad.stderr, /PROTO_PAIRING_REFUSED/, 'unknown code: PROTO_PAIRING_REFUSED');

  const code = await studio.pairCode();
  const agent = await makeAgent(t);
  const ok = await agent.cli(['pair', studio.url, code, '--json']);
  t.equal(ok.code, 0, `pairing succeeds (${ok.stderr})`);
  const paired = JSON.parse(ok.stdout) as { agentId: string; fingerprint: string };
  t.equal(paired.fingerprint, studio.fingerprint, 'agent pinned the studio fingerprint');
  t.equal((await stat(join(agent.dataDir, 'studio', 'agent-key.pem'))).mode & 0o777, 0o600, 'private key is 0600');
  t.equal((await stat(join(agent.dataDir, 'studio', 'pairing.json'))).mode & 0o777, 0o600, 'pairing file is 0600');

  const reuse = await unpaired.cli(['pair', studio.url, code]);
  t.match(reuse.stderr, /PROTO_PAIRING_REFUSED/, 'a used code is refused (single use)');

  // An agent nobody paired: its own key, a made-up agentId.
  const stranger = new WireClient(studio.url);
  await stranger.open();
  stranger.send({ t: 'auth-proof', agentId: 'agt_00000000deadbeef', signature: Buffer.alloc(64, 1) });
  t.match(await stranger.errorAndClose(), { code: 'PROTO_AUTH_REFUSED', closeCode: 1008 }, 'unknown agent refused');

  // Replay: record a valid proof from session 1, present it in session 2.
  const { agentId, key } = await agentIdentity(agent.dataDir);
  const s1 = new WireClient(studio.url);
  await new Promise<void>((r) => s1.ws.once('open', () => r()));
  s1.send({ t: 'hello', magic: 'S321', version: 1, role: 'agent', software: 'test/0' });
  const ch1 = await s1.next('auth-challenge');
  const proof = signAuth(
    key,
    authPayload({ nonce: ch1.nonce, sessionId: ch1.sessionId, studioFingerprint: s1.fingerprint, agentId }),
  );
  s1.send({ t: 'auth-proof', agentId, signature: proof });
  await s1.next('auth-accepted');
  s1.close();
  const s2 = new WireClient(studio.url);
  await s2.open();
  s2.send({ t: 'auth-proof', agentId, signature: proof });
  t.match(await s2.errorAndClose(), { code: 'PROTO_AUTH_REFUSED' }, 'replayed proof refused');

  // Data frames before auth are refused and not acted on.
  const early = new WireClient(studio.url);
  await early.open();
  early.send({
    t: 'offer',
    batchId: 'b1',
    files: [
      { hash: 'a'.repeat(64), size: 10, names: [{ shoot: 's', card: 'c', path: 'x.CR3', mtime: 0 }], copies: [] },
    ],
  });
  t.match(
    await early.errorAndClose(),
    { code: 'PROTO_NOT_AUTHENTICATED', closeCode: 1008 },
    'offer before auth refused',
  );
  const staged = await listFiles(studio.stagingDir);
  t.same(staged, [], 'nothing staged');

  // Revoked agent.
  const rv = await studio.ctl(['agents', '--revoke', paired.agentId]);
  t.equal(rv.code, 0, 'studioctl agents --revoke');
  const list = JSON.parse((await studio.ctl(['--json', 'agents'])).stdout) as Array<{
    agentId: string;
    revokedAt?: number;
  }>;
  t.ok(list.find((a) => a.agentId === paired.agentId)?.revokedAt, 'agents lists it revoked');
  const afterRevoke = await agent.cli(['sync']);
  t.equal(afterRevoke.code, 1, 'revoked agent sync exits 1');
  t.match(afterRevoke.stderr, /PROTO_AUTH_REFUSED/, 'revoked agent: PROTO_AUTH_REFUSED');

  // A pinned fingerprint that is not the studio's (interception).
  const agent3 = await makeAgent(t);
  await pairAgent(studio, agent3);
  const pfile = join(agent3.dataDir, 'studio', 'pairing.json');
  const pj = JSON.parse(await readFile(pfile, 'utf8')) as Record<string, string>;
  await writeFile(pfile, JSON.stringify({ ...pj, fingerprint: `sha256:${'0'.repeat(64)}` }));
  const mitm = await agent3.cli(['sync']);
  t.equal(mitm.code, 1, 'pin mismatch: sync exits 1');
  t.match(mitm.stderr, /PROTO_FINGERPRINT_MISMATCH/, 'pin mismatch: PROTO_FINGERPRINT_MISMATCH');
  t.same(await listFiles(studio.dirs.mirror), [], 'nothing written to targets');

  // The studio cannot be reached: sync exits non-zero with the reason.
  const agent4 = await makeAgent(t);
  await pairAgent(studio, agent4);
  await studio.kill('SIGKILL');
  const down = await agent4.cli(['sync', '--backoff-ms', '10']);
  t.equal(down.code, 1, 'studio down: sync exits 1');
  t.match(down.stderr, /LINK_UNREACHABLE/, 'studio down: LINK_UNREACHABLE');
});
