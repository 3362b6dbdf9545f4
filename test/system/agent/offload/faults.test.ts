/**
 * Faults of the offload, each with its code and nothing partial left behind:
 * card pulled mid-copy, unreadable file, zero-length file, a file changing while
 * copied, laptop disk full, symlink / special file on the card.
 *
 * Real parts: real tmpfs mounts (card, store), real unmount, real ENOSPC, real
 * EACCES (the agent child runs as an unprivileged user), a real FIFO and symlink.
 * One test double: a tmpfs cannot be made to return EIO, so for the pulled card
 * the source stream unmounts the real card (umount -l) mid-read and then fails
 * with EIO, as a card reader does when the card is pulled.
 */
import t from 'tap';
import { createLogger } from '@studio321/protocol';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { appendFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { makeTestCard } from '../../../../scripts/dist/make-test-card.js';
import { AgentState } from '@studio321/agent/state';
import { offloadCard } from '@studio321/agent/offload';
import { scanCard } from '@studio321/agent/card';
import { resolveTargets, STORE_MARKER } from '@studio321/agent';
import { readCardFile } from '@studio321/agent/card';
import { summariseCard } from '@studio321/agent/state';
import {
  diskDirs,
  tmpfsDirs,
  umount,
  hashTree,
  listFiles,
  runAgentCli,
  jsonLines,
} from '../../../lib/agent-harness.js';

const execFileP = promisify(execFile);
const temps = async (root: string): Promise<string[]> => (await listFiles(root)).filter((f) => f.endsWith('.s321tmp'));
const cardInput = (root: string, id: string) => ({ id, label: id, kind: 'card' as const, source: root, shoot: 's' });

t.test('card pulled mid-copy: AGENT_CARD_REMOVED, nothing partial, not safe, resumes when it returns', async (t) => {
  const m = await tmpfsDirs(t, { card: '64m' });
  if (m === undefined)
    return void t.skip('cannot mount tmpfs here (it needs root): this case did not run', () => undefined);
  const dir = m.base;
  const card = m.dirs['card'] as string;
  await makeTestCard(card, { rawSize: 2 * 1024 * 1024 });
  const source = await hashTree(card);
  const data = join(dir, 'data');
  const state = await AgentState.open(data);
  t.teardown(() => state.close());
  const { targets } = await resolveTargets(join(data, 'store'), []);
  const scan = await scanCard(card);
  let reads = 0;
  const pulled = await offloadCard(
    {
      state,
      targets,
      openSource: async function* (path, expect, opts) {
        for await (const chunk of readCardFile(path, expect, { ...opts, chunkSize: 256 * 1024 })) {
          reads += 1;
          if (reads === 9) {
            await umount(card, true); // the card leaves the system
            throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' });
          }
          yield chunk;
        }
      },
    },
    { root: card, card: cardInput(card, 'CARD-1'), scan },
  );
  t.equal(pulled.stoppedBy?.code, 'AGENT_CARD_REMOVED');
  t.equal(pulled.stoppedBy?.retryable, true);
  t.same(await temps(join(data, 'store')), [], 'no temp file left');
  const stored = await hashTree(join(data, 'store', 's', 'CARD-1'));
  for (const [p, h] of stored) t.equal(source.get(p), h, `${p}: only complete, verified files are in the store`);
  t.ok(stored.size < source.size, 'the copy stopped');
  const summary = await summariseCard(state, (await state.getCard('CARD-1'))!, 1);
  t.equal(summary.safeToFormat.safe, false, 'a pulled card is not safe to format');

  // The card comes back (same files): the offload resumes, nothing copied twice.
  await execFileP('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', card]);
  await makeTestCard(card, { rawSize: 2 * 1024 * 1024 });
  const again = await offloadCard(
    { state, targets },
    { root: card, card: cardInput(card, 'CARD-1'), scan: await scanCard(card) },
  );
  t.equal(again.stoppedBy, undefined);
  t.equal(again.alreadyVerified, stored.size, 'verified files are not copied again');
  t.equal(again.copied, source.size - stored.size);
  t.same([...(await hashTree(join(data, 'store', 's', 'CARD-1'))).entries()].sort(), [...source.entries()].sort());
});

t.test(
  'laptop disk filled by another program mid-offload: AGENT_STORE_FULL, stops cleanly, resumes when space exists',
  async (t) => {
    // The card fits when the offload starts (space.ts lets it through); another program then fills
    // the disk (a filler file written from the card-read seam), so the ENOSPC of a later write stops it.
    const m = await tmpfsDirs(t, { disk: '16m' });
    if (m === undefined)
      return void t.skip('cannot mount tmpfs here (it needs root): this case did not run', () => undefined);
    const disk = m.dirs['disk'] as string;
    const store = join(disk, 'store');
    const card = join(m.base, 'card');
    await makeTestCard(card, { rawSize: 1024 * 1024 });
    const source = await hashTree(card);
    const state = await AgentState.open(join(m.base, 'data'));
    t.teardown(() => state.close());
    const { targets } = await resolveTargets(store, []);
    const filler = join(disk, 'filler');
    let reads = 0;
    const full = await offloadCard(
      {
        state,
        targets,
        concurrency: 1,
        openSource: async function* (path, expect, opts) {
          for await (const chunk of readCardFile(path, expect, opts)) {
            if (++reads === 3) {
              const fs = await statfs(disk);
              await writeFile(filler, Buffer.alloc(fs.bavail * fs.bsize)).catch(() => undefined);
            }
            yield chunk;
          }
        },
      },
      { root: card, card: cardInput(card, 'CARD-F'), scan: await scanCard(card) },
    );
    t.equal(full.stoppedBy?.code, 'AGENT_STORE_FULL');
    t.match(full.stoppedBy?.message ?? '', /The store is full/);
    t.same(await temps(store), [], 'no temp file left on the full disk');
    const partial = await hashTree(store);
    t.ok(partial.size < source.size, 'the copy stopped');
    for (const [p, h] of partial)
      t.equal(source.get(p.split('/').slice(2).join('/')), h, `${p} is complete and verified`);

    await rm(filler);
    const resumed = await offloadCard(
      { state, targets },
      { root: card, card: cardInput(card, 'CARD-F'), scan: await scanCard(card) },
    );
    t.equal(resumed.stoppedBy, undefined);
    t.equal(resumed.alreadyVerified, full.copied, 'what was verified before the disk filled is not copied again');
    const all = await hashTree(store);
    t.same(
      [...all.entries()].map(([p, h]) => [p.split('/').slice(2).join('/'), h]).sort(),
      [...source.entries()].sort(),
    );
  },
);

t.test('unreadable file (EACCES): that file is reported, the rest is copied', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fa-eacces-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const card = join(dir, 'card');
  await makeTestCard(card, { rawSize: 32 * 1024 });
  const data = join(dir, 'data');
  await mkdir(data);
  // Another user's file the agent may not read. The agent runs as this user (root here) with
  // every capability dropped (setpriv), so the mode is enforced without a second account, and
  // the clone may sit in a 0700 home directory.
  await chown(join(card, 'DCIM/100CANON/IMG_9999.CR3'), 65534, 65534);
  await chmod(join(card, 'DCIM/100CANON/IMG_9999.CR3'), 0o600);
  const r = await runAgentCli(['ingest', card, '--data-dir', data, '--shoot', 's', '--json'], {
    withoutCapabilities: process.getuid?.() === 0,
    env: { HOME: dir },
  });
  t.equal(r.code, 1, 'non-zero exit when a file failed');
  const done = jsonLines(r.stdout).find((e) => e['event'] === 'done') as {
    failed: Array<{ path: string; code: string }>;
    copied: number;
    files: number;
    safeToFormat: { safe: boolean };
  };
  t.same(
    done.failed.map((f) => [f.path, f.code]),
    [['DCIM/100CANON/IMG_9999.CR3', 'AGENT_UNREADABLE_FILE']],
  );
  t.equal(done.copied, done.files - 1, 'carried on with the rest');
  t.equal(done.safeToFormat.safe, false);
  const stored = await listFiles(join(data, 'store'));
  t.notOk(
    stored.some((f) => f.endsWith('IMG_9999.CR3')),
    'nothing stored for the unreadable file',
  );
  t.same(
    stored.filter((f) => f.endsWith('.s321tmp')),
    [],
  );
});

t.test(
  'zero-length file, symlink and FIFO on the card: kept/flagged/skipped, never followed, card not safe until resolved',
  async (t) => {
    // Store and field drive on two loop devices: two physical disks (two tmpfs mounts are none).
    const m = await diskDirs(t, { store: 32, field: 32 });
    if ('reason' in m) return void t.skip(`no loop devices here (${m.reason}): this case did not run`, () => undefined);
    const dir = m.base;
    const store = m.dirs['store'] as string;
    const field = m.dirs['field'] as string;
    const card = join(dir, 'card');
    await makeTestCard(card, { rawSize: 16 * 1024, zeroByte: true });
    await writeFile(join(dir, 'secret.txt'), 'outside the card');
    await symlink(join(dir, 'secret.txt'), join(card, 'DCIM/100CANON/IMG_5000.CR3'));
    await execFileP('mkfifo', [join(card, 'DCIM/100CANON/IMG_5001.CR3')]);
    const data = join(dir, 'data');
    const state = await AgentState.open(data);
    t.teardown(() => state.close());
    const { targets } = await resolveTargets(store, [field]);
    const r = await offloadCard(
      { state, targets },
      { root: card, card: cardInput(card, 'CARD-Z'), scan: await scanCard(card) },
    );
    t.same(r.warnings.map((w) => [w.path, w.code]).sort(), [
      ['DCIM/100CANON/IMG_5000.CR3', 'AGENT_SYMLINK_SKIPPED'],
      ['DCIM/100CANON/IMG_5001.CR3', 'AGENT_SPECIAL_FILE_SKIPPED'],
      ['DCIM/101CANON/IMG_0003.CR3', 'AGENT_ZERO_BYTE_FILE'],
    ]);
    t.equal(r.failed.length, 0);
    const zero = await stat(join(store, 's/CARD-Z/DCIM/101CANON/IMG_0003.CR3'));
    t.equal(zero.size, 0, 'the zero-byte file is kept (and verified)');
    t.notOk(
      (await listFiles(store)).some((f) => f.includes('IMG_500')),
      'the symlink target and the FIFO were not copied',
    );
    const before = await summariseCard(state, (await state.getCard('CARD-Z'))!, 2);
    t.equal(before.safeToFormat.safe, false);
    t.equal(before.safeToFormat.unresolvedWarnings, 3, 'zero-byte, symlink and FIFO are warnings');
    t.match(before.safeToFormat.reason, /3 warnings to review/);
    t.equal(await state.resolveWarnings('CARD-Z'), 3);
    const after = await summariseCard(state, (await state.getCard('CARD-Z'))!, 2);
    t.equal(
      after.safeToFormat.safe,
      true,
      `safe once reviewed, with laptop + field drive on two devices (${after.safeToFormat.reason})`,
    );
  },
);

t.test('a file that changes while it is copied is discarded (AGENT_SOURCE_CHANGED), then copied right', async (t) => {
  const dir = t.testdir();
  const folder = join(dir, 'tether');
  await mkdir(folder);
  const file = join(folder, 'IMG_0001.CR3');
  await writeFile(file, Buffer.alloc(3 * 1024 * 1024, 1));
  const data = join(dir, 'data');
  const state = await AgentState.open(data);
  t.teardown(() => state.close());
  const { targets } = await resolveTargets(join(data, 'store'), []);
  let grown = false;
  // As from a tethered hot folder: the change is logged as information, not as an error to attend to.
  const lines: string[] = [];
  const log = createLogger({ name: 'field-agent', stream: { write: (l: string) => lines.push(l) } });
  const r = await offloadCard(
    {
      state,
      targets,
      log,
      sourceStillWritten: true,
      openSource: async function* (path, expect, opts) {
        for await (const chunk of readCardFile(path, expect, { ...opts, chunkSize: 1024 * 1024 })) {
          if (!grown) {
            grown = true;
            appendFileSync(file, Buffer.alloc(1024, 2)); // the tethering app is still writing
          }
          yield chunk;
        }
      },
    },
    { root: folder, card: cardInput(folder, 'HOT-1'), scan: await scanCard(folder) },
  );
  t.same(
    r.failed.map((f) => f.code),
    ['AGENT_SOURCE_CHANGED'],
  );
  t.same(await listFiles(join(data, 'store')), [STORE_MARKER], 'nothing stored but the store marker, no temp left');
  t.same(log.lastErrors.list(), [], 'no error for the tray: the file was still being written');
  t.match(lines.join(''), /"event":"file-still-written"/, 'logged as still being written');
  const again = await offloadCard(
    { state, targets },
    { root: folder, card: cardInput(folder, 'HOT-1'), scan: await scanCard(folder) },
  );
  t.equal(again.copied, 1);
  const stored = await hashTree(join(data, 'store'));
  t.same([...stored.values()], [...(await hashTree(folder)).values()], 'stored with the hash of the complete file');
});
