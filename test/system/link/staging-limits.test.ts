/**
 * A real studiod whose mirror is a small tmpfs, started with umask 022:
 * - abandoned staging partials older than staging.expireHours are removed at start (fresh ones stay);
 * - the state directory and the catalogue are 0700, their files 0600, whatever the umask;
 * - a name ending in the temp suffix is refused at the Offer (PROTO_BAD_NAME), before any byte;
 * - a full mirror gives that file a Nack (STUDIO_TARGET_FULL, retryable, the durable bytes kept),
 *   not a closed session.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashBytes } from '@studio321/protocol';
import { StudiodProcess, listFiles, makeAgent, pairAgent, studioDirs, waitFor } from '../../lib/studio-harness.js';
import { authedClient } from '../../lib/studio-wire.js';
import { mountTmpfs } from '../../lib/tmpfs.js';

const KiB = 1024;

t.test('staging expiry, state modes, temp-suffix names and a full mirror', async (t) => {
  const dirs = await studioDirs(t, 'studiod-');
  const m = await mountTmpfs(t, dirs.mirror, 'size=3m');
  if (!m.mounted)
    return void t.skip(`a small tmpfs is needed as the mirror (${m.reason}): this case did not run`, () => undefined);
  const studio = new StudiodProcess(dirs);
  const staging = studio.stagingDir;
  await mkdir(staging, { mode: 0o700 });
  const old = hashBytes(randomBytes(16));
  const fresh = hashBytes(randomBytes(16));
  await writeFile(join(staging, `${old}.part`), randomBytes(1000));
  await writeFile(join(staging, `${fresh}.part`), randomBytes(1000));
  const threeDaysAgo = new Date(Date.now() - 3 * 24 * 3_600_000);
  await utimes(join(staging, `${old}.part`), threeDaysAgo, threeDaysAgo);
  await studio.writeConfig(0, { staging: { expireHours: 24 } });
  const mask = process.umask(0o022); // as outside the systemd unit
  try {
    await studio.start();
  } finally {
    process.umask(mask);
  }
  t.teardown(() => studio.kill());

  t.same(
    (await readdir(staging)).sort(),
    [`${fresh}.part`],
    'the abandoned partial expired at start; the fresh one stays',
  );
  t.match(studio.log, /expired staging partials removed/, 'and the removal is logged');

  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  await studio.pairCode(); // a live pairing code is in the catalogue now
  const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
  t.equal(await mode(dirs.state), 0o700, 'the state directory is 0700');
  t.equal(await mode(join(dirs.state, 'catalogue')), 0o700, 'the catalogue directory is 0700');
  for (const f of ['CURRENT', 'LOCK'])
    t.equal(await mode(join(dirs.state, 'catalogue', f)), 0o600, `catalogue/${f} is 0600`);

  const c = await authedClient(studio.url, agent.dataDir);
  t.teardown(() => c.close());
  const tmpName = randomBytes(100);
  const tmpHash = hashBytes(tmpName);
  c.send({
    t: 'offer',
    batchId: 'tmp',
    files: [
      {
        hash: tmpHash,
        size: tmpName.length,
        names: [{ shoot: 's', card: 'C', path: 'DCIM/IMG_0001.CR3.s321tmp', mtime: 0 }],
        copies: [],
      },
    ],
  });
  const refused = await c.next('nack');
  const w0 = await c.next('want');
  t.equal(refused.code, 'PROTO_BAD_NAME', 'a name ending in the temp suffix: PROTO_BAD_NAME');
  t.equal(refused.retryable, false, 'not retryable');
  t.same(w0.wants, [], 'and it is not wanted: no byte is uploaded');

  // 4 MiB into a 3 MiB mirror: the file is Nacked, the session goes on.
  const big = randomBytes(4096 * KiB);
  const hash = hashBytes(big);
  c.send({
    t: 'offer',
    batchId: 'big',
    files: [{ hash, size: big.length, names: [{ shoot: 's', card: 'C', path: 'DCIM/BIG.CR3', mtime: 0 }], copies: [] }],
  });
  t.same((await c.next('want')).wants, [{ hash, offset: 0 }], 'the big file is wanted');
  const window = 2 * 1024 * KiB;
  let acked = 0;
  let sent = 0;
  const nackOf = (): boolean => c.received.some((x) => x.t === 'nack');
  while (sent < big.length && !nackOf()) {
    if (sent + 64 * KiB - acked > window) {
      await waitFor(() => {
        for (const a of c.received) if (a.t === 'ack') acked = Math.max(acked, a.offset);
        return sent + 64 * KiB - acked <= window || nackOf() || undefined;
      }, 'room in the window');
      continue;
    }
    c.send({ t: 'chunk', hash, offset: sent, data: big.subarray(sent, sent + 64 * KiB) });
    sent += 64 * KiB;
  }
  c.send({ t: 'file-end', hash, size: big.length });
  const full = await c.next('nack');
  t.equal(full.code, 'STUDIO_TARGET_FULL', 'a full mirror: STUDIO_TARGET_FULL for that file');
  t.equal(full.retryable, true, 'retryable');
  const ts = Date.now();
  c.send({ t: 'ping', ts });
  t.equal((await c.next('pong')).ts, ts, 'the session is not closed');
  t.equal(c.closeCode, undefined, 'no close');
  t.ok(full.resumeOffset > 0, `the bytes staged so far stay for a resume (${full.resumeOffset})`);
  t.ok((await stat(join(staging, `${hash}.part`))).size >= full.resumeOffset, 'the partial holds them');
  t.same(await listFiles(dirs.mirror), [], 'nothing but staging on the mirror');
  t.same(await listFiles(dirs.raid), [], 'nothing on the RAID');
});
