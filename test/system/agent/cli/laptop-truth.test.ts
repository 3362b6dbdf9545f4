/**
 * The laptop's own truth, through the real `field-agent` CLI (child processes, real LevelDB, real
 * mounts):
 *  - the mtime a listing records and the one the copy checks are the same (nanosecond edge cases);
 *  - an unplugged laptop store is unavailable, not lost. "Unplugged" is a bind mount of the store's
 *    disk removed, leaving the empty mount point behind as udisks does when a disk is pulled (a
 *    bind mount, not a tmpfs, so the same bytes come back when it is mounted again);
 *  - the same card into a new store is copied there, under the --shoot asked for;
 *  - a card that cannot fit is refused before anything is copied (a 1 MiB tmpfs store);
 *  - a folder that is not a card is copied with a warning; an empty card exits 3.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EXIT } from '@studio321/protocol';
import { jsonLines, listFiles, runAgentCli, tmpfsDirs, umount, type CliResult } from '../../../lib/agent-harness.js';

const run = promisify(execFile);

interface Done {
  event: 'done';
  ok: boolean;
  files: number;
  copied: number;
  alreadyVerified: number;
  failed: Array<{ code: string }>;
  warnings: Array<{ path: string; code: string }>;
  stoppedBy?: { code: string; detail?: { neededBytes: number; freeBytes: number } };
  shoot: string;
  code?: string;
}

const done = (stdout: string): Done => jsonLines(stdout).find((l) => l['event'] === 'done') as unknown as Done;

/** A card folder: DCIM/100TEST/IMG_000n.CR3 of `size` bytes each (distinct content). */
async function makeCard(root: string, n: number, size = 4096, seed = 1): Promise<string[]> {
  const dir = join(root, 'DCIM', '100TEST');
  await mkdir(dir, { recursive: true });
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = join(dir, `IMG_${String(i).padStart(4, '0')}.CR3`);
    await writeFile(p, Buffer.alloc(size, `${seed}-${i}-`));
    out.push(p);
  }
  return out;
}

type Cli = (store: string, args: string[]) => Promise<CliResult>;

/** A temp folder and the CLI on one data dir, with a config naming `store`. */
async function setup(t: { teardown: (fn: () => unknown) => void }): Promise<{ base: string; cli: Cli }> {
  const base = await mkdtemp(join(tmpdir(), 'fa-truth-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const data = join(base, 'data');
  const cli: Cli = async (store, args) => {
    const config = join(base, `agent-${Buffer.from(store).toString('hex').slice(-16)}.json`);
    await writeFile(config, JSON.stringify({ store, watchVolumes: false, statusPort: 0, tray: false }));
    return runAgentCli([...args, '--data-dir', data, '--config', config]);
  };
  return { base, cli };
}

t.test('a file whose mtime sits on a nanosecond edge is listed and copied at one precision', async (t) => {
  const { base, cli } = await setup(t);
  const card = join(base, 'card');
  const files = await makeCard(card, 4);
  // Stats.mtimeMs (a double) rounds these up to the next millisecond; the exact value does not.
  const edges = ['1795683600.999999999', '1795683600.999999800', '1700000000.000999999', '1234567890.123999999'];
  for (const [i, f] of files.entries()) await run('touch', ['-m', '-d', `@${edges[i]}`, f]);
  const r = await cli(join(base, 'store'), ['ingest', card, '--shoot', 's', '--json']);
  const d = done(r.stdout);
  t.equal(r.code, EXIT.ok, r.stderr);
  t.equal(d.copied, 4, 'every file copied');
  t.same(d.failed, [], `no AGENT_SOURCE_CHANGED: ${JSON.stringify(d.failed)}`);
  const again = done((await cli(join(base, 'store'), ['ingest', card, '--json'])).stdout);
  t.equal(again.alreadyVerified, 4, 'the next listing matches the recorded one: nothing copied again');
});

t.test(
  'an unplugged laptop store is unavailable, not lost; plugged in again it is checked and re-ingest writes no ~2',
  async (t) => {
    const { base, cli } = await setup(t);
    const disk = join(base, 'disk'); // the mount point
    const backing = join(base, 'backing'); // the disk's bytes
    await mkdir(disk);
    await mkdir(backing);
    try {
      await run('mount', ['--bind', backing, disk]);
    } catch (err) {
      return void t.skip(
        `bind mounts are refused here (${(err as Error).message}): this case did not run`,
        () => undefined,
      );
    }
    t.teardown(() => umount(disk, true));
    const store = join(disk, 'studio321');
    const card = join(base, 'card');
    await makeCard(card, 3);
    t.equal((await cli(store, ['ingest', card, '--shoot', 's', '--json'])).code, EXIT.ok);
    const stored = await listFiles(store);

    await run('umount', [disk]); // pulled: the empty mount point stays
    const v1 = await cli(store, ['verify', '--json']);
    const out1 = jsonLines(v1.stdout)[0] as {
      lost: unknown[];
      copiesChecked: number;
      unchecked: Array<{ code: string }>;
    };
    t.equal(v1.code, EXIT.ok, v1.stderr);
    t.same(out1.lost, [], 'nothing declared lost');
    t.equal(out1.unchecked.length, 3);
    t.ok(
      out1.unchecked.every((u) => u.code === 'AGENT_STORE_UNAVAILABLE'),
      'not checked: the store is unavailable',
    );
    const ing = await cli(store, ['ingest', card, '--json']);
    t.equal(ing.code, EXIT.error);
    t.match(ing.stderr, /AGENT_STORE_UNAVAILABLE/);
    t.same(await readdir(disk), [], 'nothing written into the empty mount point');

    await run('mount', ['--bind', backing, disk]); // plugged in again
    const v2 = await cli(store, ['verify', '--json']);
    const out2 = jsonLines(v2.stdout)[0] as { lost: unknown[]; copiesChecked: number; copiesOk: number };
    t.equal(v2.code, EXIT.ok, v2.stderr);
    t.equal(out2.copiesChecked, 3, 'every copy is read again');
    t.equal(out2.copiesOk, 3);
    const again = done((await cli(store, ['ingest', card, '--json'])).stdout);
    t.equal(again.alreadyVerified, 3, 're-ingest recognises the copies');
    t.equal(again.copied, 0);
    t.same(await listFiles(store), stored, 'no ~2 duplicates');
  },
);

t.test('the same card into a new store is copied there under the --shoot asked for', async (t) => {
  const { base, cli } = await setup(t);
  const card = join(base, 'card');
  await makeCard(card, 3);
  const a = join(base, 'store-a');
  const b = join(base, 'store-b');
  t.equal((await cli(a, ['ingest', card, '--shoot', 'first', '--json'])).code, EXIT.ok);
  const r = await cli(b, ['ingest', card, '--shoot', 'second', '--json']);
  const d = done(r.stdout);
  t.equal(r.code, EXIT.ok, r.stderr);
  t.equal(d.copied, 3, 'copied into the new store');
  t.equal(d.alreadyVerified, 0, 'not "verified earlier"');
  t.equal(d.shoot, 'second');
  const inB = (await listFiles(b)).filter((f) => !f.startsWith('.'));
  t.equal(inB.length, 3);
  t.ok(
    inB.every((f) => f.startsWith('second/') && !f.includes('~')),
    `under the new shoot, no suffixes: ${inB.join(', ')}`,
  );
  const kept = await cli(b, ['ingest', card, '--shoot', 'third', '--json']);
  t.equal(done(kept.stdout).copied, 0);
  t.match(kept.stderr, /stays there/, 'a --shoot that cannot apply is said, not ignored');
});

t.test('a card that cannot fit is refused up front with the bytes needed and free', async (t) => {
  const m = await tmpfsDirs(t, { small: '1m' });
  if (m === undefined) {
    return void t.skip('cannot mount tmpfs here (it needs root): this case did not run', () => undefined);
  }
  const { base, cli } = await setup(t);
  const card = join(base, 'card');
  await makeCard(card, 3, 512 * 1024);
  const store = join(m.dirs['small'] as string, 'store');
  const r = await cli(store, ['ingest', card, '--shoot', 's', '--json']);
  const d = done(r.stdout);
  t.equal(r.code, EXIT.error);
  t.equal(d.stoppedBy?.code, 'AGENT_NOT_ENOUGH_SPACE');
  t.ok((d.stoppedBy?.detail?.neededBytes ?? 0) >= 3 * 512 * 1024, 'names the bytes needed');
  t.ok((d.stoppedBy?.detail?.freeBytes ?? 2 ** 40) < 1024 * 1024, 'and the bytes free');
  t.match(r.stderr, /AGENT_NOT_ENOUGH_SPACE: .*\(\d+ bytes\).*\(\d+ bytes\) free/);
  t.same(await listFiles(store), ['.studio321-store.json'], 'nothing partial: no file, no temp');
});

t.test('a folder that is not a card is copied with a warning; an empty card exits 3', async (t) => {
  const { base, cli } = await setup(t);
  const store = join(base, 'store');
  const folder = join(base, 'exports');
  await mkdir(folder);
  await writeFile(join(folder, 'a.jpg'), 'jpeg bytes');
  const r = await cli(store, ['ingest', folder, '--shoot', 's', '--json']);
  const d = done(r.stdout);
  t.equal(r.code, EXIT.ok, r.stderr);
  t.equal(d.copied, 1, 'still copied: the folder was asked for explicitly');
  t.match(r.stderr, new RegExp(`AGENT_NOT_A_CARD: ${folder} is not a camera card`));
  t.ok(
    d.warnings.some((w) => w.code === 'AGENT_NOT_A_CARD' && w.path === folder),
    'the warning names the folder',
  );

  const empty = join(base, 'empty');
  await mkdir(join(empty, 'DCIM'), { recursive: true });
  const e = await cli(store, ['ingest', empty, '--json']);
  t.equal(e.code, EXIT.notSafe, 'nothing to do is not "done"');
  t.equal(done(e.stdout).code, 'AGENT_EMPTY_CARD');
  t.match(e.stderr, /AGENT_EMPTY_CARD: .* holds no files/);
});
