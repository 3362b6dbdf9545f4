/**
 * Every alert kind fires and resolves through the real channels: a webhook receiver (node:http on
 * loopback, checking the HMAC-SHA256 signature and the timestamp), an SMTP server process
 * (smtp-server, test/lib/smtp-child.mjs) and the log. The conditions are real: a card synced by the
 * real field-agent, a wrong cloud key against s3rver, bytes flipped on the targets before a scrub,
 * a target root renamed away, a small tmpfs filled, a laptop that reported unsynced files and
 * stayed away. The clock is injected (grace periods, the fill rate, days of silence).
 * One studiod (in-process) serves every subtest in order, with one restart in the middle.
 */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  authPayload,
  certFingerprint,
  createLogger,
  decodeFrame,
  encodeFrame,
  MAGIC,
  PROTOCOL_VERSION,
  signAuth,
  type Message,
} from '@studio321/protocol';
import { Studio, parseStudiodConfig, type StudiodConfig } from '@studio321/studiod';
import { ALERT_KINDS, verifyWebhook, type AlertNotice } from '@studio321/studiod/ops';
import { S3rverProcess } from '../../lib/s3rver.js';
import { SmtpServerProcess } from '../../lib/smtp-server.js';
import { target } from '../../lib/cloud-fixture.js';
import { mountTmpfs } from '../../lib/tmpfs.js';
import {
  dcfFiles,
  ingest,
  listFiles,
  makeAgent,
  makeCard,
  run,
  STUDIOCTL_BIN,
  tempDir,
} from '../../lib/studio-harness.js';
import { waitFor } from '../../lib/wait-for.js';

const SECRET = 'a-shared-secret-of-the-studio-webhook';
const MiB = 1024 * 1024;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const s3 = new S3rverProcess({ buckets: ['hot'] });
const smtp = new SmtpServerProcess();
await Promise.all([s3.start(), smtp.start()]);
t.teardown(() => Promise.all([s3.close(), smtp.close()]));

// The webhook receiver: keeps the notices whose signature and timestamp check out, refuses the rest.
const notices: AlertNotice[] = [];
let refused = 0;
/** While set, the receiver holds every post unanswered and unread (a webhook that hangs). */
let hang = false;
const receiver = createServer((req, res) => {
  if (hang) {
    req.socket.on('close', () => posts.held--);
    posts.held++;
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const v = verifyWebhook(
      SECRET,
      {
        timestamp: req.headers['x-s321-timestamp'] as string | undefined,
        signature: req.headers['x-s321-signature'] as string | undefined,
      },
      body,
    );
    if (!v.ok) {
      refused++;
      res.writeHead(401).end(v.reason);
      return;
    }
    notices.push(JSON.parse(body) as AlertNotice);
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
t.teardown(() => new Promise<void>((r) => receiver.close(() => r())));
const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
const posts = { held: 0 };

const base = await tempDir(t, 'ops-alerts-');
const dirs = { mirror: join(base, 'mirror'), raid: join(base, 'raid'), state: join(base, 'state') };
for (const d of Object.values(dirs)) await mkdir(d);
const mounted = await mountTmpfs(t, dirs.mirror, 'size=24m');
if (!mounted.mounted) {
  t.skip(`the free-space alerts need a small tmpfs: ${mounted.reason}`, () => undefined);
  process.exit(0);
}

const logLines: string[] = [];
const log = createLogger({ name: 'studiod', level: 'info', stream: { write: (l: string) => logLines.push(l) } });
const clock = { now: Date.now() };

function config(accessKeyId: string): StudiodConfig {
  return parseStudiodConfig({
    stateDir: dirs.state,
    listen: { host: '127.0.0.1', port: 0 },
    targets: {
      mirror: { root: dirs.mirror, media: 'hdd-mirror', location: 'calgary', device: 'mirror-1' },
      raid: { root: dirs.raid, media: 'hdd-raid', location: 'calgary', device: 'raid-1' },
    },
    cloud: [target('cloud-east', s3.endpoint, 'hot', { accessKeyId })],
    scrub: { periodDays: 0 },
    snapshots: { intervalMinutes: 0 },
    alerts: {
      unprotectedGraceHours: 1,
      freeBytesMin: 4 * MiB,
      fullWithinDays: 30,
      agentSilentDays: 3,
      webhook: { url: webhookUrl, secret: SECRET, maxAttempts: 3 },
      email: { host: '127.0.0.1', port: smtp.port, from: 'studiod@studio.test', to: ['ops@studio.test'] },
    },
  });
}

async function openStudio(accessKeyId: string): Promise<Studio> {
  const s = new Studio({
    config: config(accessKeyId),
    log,
    now: () => clock.now,
    alerts: { timer: false, delivery: { baseMs: 10, maxMs: 50, closeGraceMs: 100 } },
    ledger: { availabilityIntervalMs: 0, cloudOptions: { retry: { baseMs: 10, maxMs: 50, parkedMs: 1000 * DAY } } },
  });
  await s.open();
  return s;
}

let studio = await openStudio('WRONG-KEY');
t.teardown(() => studio.close());

/** Evaluate, wait for every notice to be delivered, return the open ids. */
async function evaluate(): Promise<string[]> {
  const open = await studio.alerts.evaluate();
  await studio.alerts.settled();
  return open.map((a) => a.id).sort();
}

const events = (id: string): string[] => notices.filter((n) => n.alert.id === id).map((n) => n.event);
const mailEvents = (id: string): string[] =>
  smtp.mails
    .filter((m) => m.raw.includes(`X-S321-Alert: ${id}`))
    .map((m) => (m.subject.includes('RESOLVED') ? 'resolved' : 'alert'));

async function flipByte(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 10);
    b[0] = (b[0] ?? 0) ^ 0xff;
    await fh.write(b, 0, 1, 10);
  } finally {
    await fh.close();
  }
}

async function scrubPass(target: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await studio.ledger.scrubber.stepTarget(target);
    if (studio.ledger.scrubber.statuses().find((s) => s.target === target)?.current === null) return;
  }
  throw new Error(`scrub pass of ${target} did not finish`);
}

const agent = await makeAgent(t);
let agentId = '';
const files = dcfFiles(6, (i) => 40_000 + i * 1000);

t.test(
  'a synced card whose cloud upload is parked: cloud-parked, then unprotected:<shoot> after the grace',
  async (t) => {
    const code = 'ABCDEFGHJK';
    await studio.catalogue.putPairingCode({ code, createdAt: clock.now, expiresAt: clock.now + HOUR });
    const paired = await agent.cli(['pair', `wss://127.0.0.1:${studio.port}/v1`, code, '--json']);
    t.equal(paired.code, 0, `paired (${paired.stderr})`);
    agentId = (JSON.parse(paired.stdout.trim().split('\n').pop() ?? '{}') as { agentId: string }).agentId;
    const card = join(await tempDir(t, 'card-'), 'CARD');
    await makeCard(card, files);
    await ingest(agent, card, 'wedding', 'CARD1');
    const synced = await agent.cli(['sync', '--json']);
    t.equal(synced.code, 0, `synced (${synced.stderr})`);
    // The last session's Hello is recorded without holding up its AuthAccepted, so `sync` may exit first.
    await waitFor(
      async () => (await studio.catalogue.getAgent(agentId))?.queue?.files === 0,
      'the last Hello recorded',
    );
    t.same(
      (await studio.catalogue.getAgent(agentId))?.queue,
      { files: 0, bytes: 0 },
      'the agent reported its queue in its Hello; all receipted',
    );
    const cloud = studio.ledger.cloud;
    if (cloud === undefined) throw new Error('no cloud forwarder');
    await waitFor(async () => (await cloud.status())[0]?.parked === files.length, 'uploads parked on the wrong key');
    t.same(await evaluate(), ['cloud-parked:cloud-east'], 'parked uploads: one alert for the target');
    clock.now += 2 * HOUR;
    t.same(
      await evaluate(),
      ['cloud-parked:cloud-east', 'unprotected:wedding'],
      'past the grace: one alert for the shoot',
    );
    t.same(await evaluate(), ['cloud-parked:cloud-east', 'unprotected:wedding'], 'still true: no new alert');
    t.same(events('unprotected:wedding'), ['alert'], 'the webhook got one notice per condition');
    t.same(mailEvents('cloud-parked:cloud-east'), ['alert'], 'so did the SMTP server');
    const text = await run(STUDIOCTL_BIN, ['--socket', studio.config.controlSocket, 'alerts']);
    t.equal(text.code, 0);
    t.match(text.stdout, /2 open alerts:[\s\S]*cloud-parked:cloud-east[\s\S]*unprotected:wedding/);
    const json = await run(STUDIOCTL_BIN, ['--socket', studio.config.controlSocket, '--json', 'alerts']);
    t.same((JSON.parse(json.stdout) as { open: Array<{ id: string }> }).open.map((a) => a.id).sort(), [
      'cloud-parked:cloud-east',
      'unprotected:wedding',
    ]);
  },
);

t.test('a restart fires nothing again; the right key and a retry resolve both', async (t) => {
  const before = notices.length;
  await studio.close();
  studio = await openStudio('S3RVER');
  t.same(
    studio.alerts
      .list()
      .map((a) => a.id)
      .sort(),
    ['cloud-parked:cloud-east', 'unprotected:wedding'],
    'open alerts are durable',
  );
  t.same(await evaluate(), ['cloud-parked:cloud-east', 'unprotected:wedding']);
  t.equal(notices.length, before, 'no notice after the restart');
  const cloud = studio.ledger.cloud;
  if (cloud === undefined) throw new Error('no cloud forwarder');
  t.equal(await cloud.retryParked(), files.length);
  await cloud.idle();
  t.same(await evaluate(), [], 'uploaded and 3-2-1 safe: both resolved');
  t.same(events('cloud-parked:cloud-east'), ['alert', 'resolved']);
  t.same(events('unprotected:wedding'), ['alert', 'resolved']);
});

t.test('the scrub finds a damaged copy and heals it; then a copy it cannot heal', async (t) => {
  const mirrorFiles = (await listFiles(dirs.mirror)).filter((p) => p.includes('/DCIM/'));
  const one = mirrorFiles.find((p) => p.endsWith('IMG_0001.CR3')) ?? '';
  await flipByte(join(dirs.mirror, one));
  await scrubPass('mirror');
  t.same(await evaluate(), ['scrub-damage:mirror'], 'damage found and healed');
  await scrubPass('mirror');
  t.same(await evaluate(), [], 'a clean pass resolves it');
  const two = mirrorFiles.find((p) => p.endsWith('IMG_0002.CR3')) ?? '';
  const hash = (await studio.ledger.findAssets('IMG_0002.CR3'))[0]?.hash ?? '';
  t.ok(hash, 'the asset is found');
  const cloudCopy = (await studio.catalogue.copiesOf(hash)).find((c) => c.kind === 'cloud');
  // Every other copy damaged too: nothing to make it again from.
  await flipByte(join(dirs.mirror, two));
  await flipByte(join(dirs.raid, two));
  await flipByte(s3.objectPath('hot', cloudCopy?.path ?? ''));
  await scrubPass('mirror');
  const open = await evaluate();
  t.ok(open.includes('repair-failed:mirror'), `repair failed: ${open.join(', ')}`);
  await scrubPass('mirror');
  t.ok((await evaluate()).includes('repair-failed:mirror'), 'still nothing to heal it from: still open');
  // The RAID copy and the cloud object repaired behind studiod's back: the next pass heals the mirror copy.
  await flipByte(join(dirs.raid, two));
  await flipByte(s3.objectPath('hot', cloudCopy?.path ?? ''));
  await scrubPass('mirror');
  t.same(await evaluate(), ['scrub-damage:mirror'], 'healed: repair-failed resolved, the healing reported');
  await scrubPass('mirror');
  t.same(await evaluate(), [], 'a clean pass resolves it');
  t.same(events('scrub-damage:mirror'), ['alert', 'resolved', 'alert', 'resolved']);
  t.same(events('repair-failed:mirror'), ['alert', 'resolved']);
});

t.test('a target root gone, then back; its notice, in retry at a restart, is sent after it', async (t) => {
  const baseline = await evaluate();
  await rename(dirs.raid, `${dirs.raid}.away`);
  hang = true;
  const open = await studio.alerts.evaluate();
  t.ok(
    open.some((a) => a.id === 'target-unavailable:raid'),
    `unavailable: ${open.map((a) => a.id).join(', ')}`,
  );
  await waitFor(async () => posts.held === 1, 'the webhook holds the notice');
  await studio.close(); // the notice is still in flight: it stays in the outbox
  t.equal(events('target-unavailable:raid').length, 0, 'not delivered before the restart');
  hang = false;
  await waitFor(async () => posts.held === 0, 'the held post was dropped');
  studio = await openStudio('S3RVER');
  await studio.alerts.settled();
  t.same(events('target-unavailable:raid'), ['alert'], 'sent after the restart, once');
  t.same(mailEvents('target-unavailable:raid'), ['alert'], 'the e-mail, delivered before, is not sent again');
  await rename(`${dirs.raid}.away`, dirs.raid);
  t.same(await evaluate(), baseline, 'back: resolved');
  t.same(events('target-unavailable:raid'), ['alert', 'resolved']);
});

t.test('a small tmpfs filling up: predicted full, then under the threshold', async (t) => {
  const baseline = await evaluate();
  await writeFile(join(dirs.mirror, 'filler-1'), Buffer.alloc(3 * MiB, 1));
  clock.now += DAY;
  let open = await evaluate();
  t.ok(open.includes('target-filling:mirror'), `filling at ~3 MiB/day: ${open.join(', ')}`);
  await writeFile(join(dirs.mirror, 'filler-2'), Buffer.alloc(18 * MiB, 1));
  open = await evaluate();
  t.ok(open.includes('target-low-space:mirror'), `under 4 MiB free: ${open.join(', ')}`);
  t.notOk(open.includes('target-filling:mirror'), 'the stronger alert replaces the prediction');
  await rm(join(dirs.mirror, 'filler-1'));
  await rm(join(dirs.mirror, 'filler-2'));
  clock.now += DAY;
  t.same(await evaluate(), baseline, 'space freed: resolved');
  t.same(events('target-filling:mirror'), ['alert', 'resolved']);
  t.same(events('target-low-space:mirror'), ['alert', 'resolved']);
});

/** An agent session that reports `queue` in its Hello (what field-agent sends), then ends. */
async function helloWithQueue(queue: { files: number; bytes: number }): Promise<void> {
  const key = await readFile(join(agent.dataDir, 'studio', 'agent-key.pem'), 'utf8');
  const ws = new WebSocket(`wss://127.0.0.1:${studio.port}/v1`, { rejectUnauthorized: false });
  let fingerprint = '';
  ws.on('upgrade', (res) => {
    fingerprint = certFingerprint(
      (res.socket as unknown as { getPeerCertificate(): { raw: Buffer } }).getPeerCertificate().raw,
    );
  });
  const received: Message[] = [];
  const got = (type: string): Promise<Message> =>
    waitFor(() => received.find((m) => m.t === type), `the studio's ${type}`);
  ws.on('message', (d) => received.push(decodeFrame(d as Buffer)));
  await new Promise<void>((r, j) => {
    ws.once('open', () => r());
    ws.once('error', j);
  });
  ws.send(
    encodeFrame({ t: 'hello', magic: MAGIC, version: PROTOCOL_VERSION, role: 'agent', software: 'test/0', queue }),
  );
  const ch = (await got('auth-challenge')) as Extract<Message, { t: 'auth-challenge' }>;
  const signature = signAuth(
    key,
    authPayload({ nonce: ch.nonce, sessionId: ch.sessionId, studioFingerprint: fingerprint, agentId }),
  );
  ws.send(encodeFrame({ t: 'auth-proof', agentId, signature }));
  await got('auth-accepted');
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  ws.close();
  await closed;
  await waitFor(async () => !(await studio.status()).sessions.some((s) => s.agentId === agentId), 'the session to end');
}

t.test('a laptop that reported unsynced files and stayed away; then it reports an empty queue', async (t) => {
  await helloWithQueue({ files: 3, bytes: 3000 });
  await waitFor(async () => (await studio.catalogue.getAgent(agentId))?.queue?.files === 3, 'the report recorded');
  t.notOk((await evaluate()).includes(`agent-silent:${agentId}`), 'just seen: no alert');
  clock.now += 4 * DAY;
  t.ok((await evaluate()).includes(`agent-silent:${agentId}`), 'four days away with 3 unsynced files');
  await helloWithQueue({ files: 0, bytes: 0 });
  await waitFor(async () => (await studio.catalogue.getAgent(agentId))?.queue?.files === 0, 'the report recorded');
  t.notOk((await evaluate()).includes(`agent-silent:${agentId}`), 'back with nothing to send: resolved');
  t.same(events(`agent-silent:${agentId}`), ['alert', 'resolved']);
});

t.test('every kind went out and was resolved on every channel; forged posts are refused', async (t) => {
  for (const kind of ALERT_KINDS) {
    const ids = [...new Set(notices.filter((n) => n.alert.kind === kind).map((n) => n.alert.id))];
    t.ok(ids.length > 0, `${kind}: a webhook notice`);
    for (const id of ids) {
      t.same(events(id).slice(0, 2), ['alert', 'resolved'], `${id}: webhook alert then resolved`);
      t.same(mailEvents(id).slice(0, 2), ['alert', 'resolved'], `${id}: e-mail alert then resolved`);
      t.ok(
        logLines.some((l) => l.includes(`"alert":"${id}"`) && l.includes('RESOLVED')),
        `${id}: in the log`,
      );
    }
  }
  t.ok(smtp.mails.every((m) => m.to.includes('ops@studio.test') && m.from === 'studiod@studio.test'));
  t.equal(refused, 0, 'every real notice was signed');
  const outbox = await studio.catalogue.sublevel('alerts').keys({ gt: 'outbox!', lt: 'outbox!\xff' }).all();
  t.same(outbox, [], 'every notice delivered: nothing left in the outbox');
  const body = JSON.stringify({ event: 'alert' });
  const ts = String(Math.floor(Date.now() / 1000));
  const forged = await fetch(webhookUrl, {
    method: 'POST',
    body,
    headers: { 'x-s321-timestamp': ts, 'x-s321-signature': `sha256=${'0'.repeat(64)}` },
  });
  t.equal(forged.status, 401, 'a wrong signature is refused');
  const { webhookSignature } = await import('@studio321/studiod/ops');
  const old = String(Math.floor(Date.now() / 1000) - 3600);
  const replay = await fetch(webhookUrl, {
    method: 'POST',
    body,
    headers: { 'x-s321-timestamp': old, 'x-s321-signature': webhookSignature(SECRET, old, body) },
  });
  t.equal(replay.status, 401, 'a replayed (stale) notice is refused');
});
