/**
 * The idle memory trim in a real studiod child (docs/design.md "Link server", memory): a studiod
 * whose malloc arenas hold ~150 MiB of holes (test/lib/fragment-native-child.mjs, loaded before
 * studiod starts, as a burst of twenty agents leaves them) gives them back once a sync is over and
 * the link is quiet: its reclaim's GC, then malloc_trim. RSS from /proc, read once the child's own
 * status says the reclaim ran (no fixed wait). The same studiod without the addon (a file that
 * is not there) logs STUDIO_MALLOC_TRIM_UNAVAILABLE once, says so in `studioctl status`, commits
 * the file to both targets all the same, and keeps the holes.
 */
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STUDIO_CODES } from '@studio321/studiod';
import {
  dcfFiles,
  ingest,
  listFiles,
  makeAgent,
  makeCard,
  pairAgent,
  sha256Hex,
  startStudiod,
  tempDir,
  waitFor,
  type StudiodProcess,
} from '../../../lib/studio-harness.js';

const FRAGMENT = fileURLToPath(new URL('../../../lib/fragment-native-child.mjs', import.meta.url));
const MiB = 2 ** 20;
/** More than the link's RECLAIM_MIN_BYTES (16 MiB): its quiet check runs the GC (and the trim). */
const FILE_BYTES = 24 * MiB;

async function rssOf(pid: number): Promise<number> {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

interface LinkStatus {
  reclaims: number;
  mallocTrim: { available: boolean; trims: number; releasedBytes: number; unavailable?: { code: string } };
}

async function linkStatus(studio: StudiodProcess): Promise<LinkStatus> {
  const r = await studio.ctl(['--json', 'status']);
  if (r.code !== 0) throw new Error(`studioctl status: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { link: LinkStatus }).link;
}

/** A studiod with holes in its arenas, one agent syncing one file; RSS before the sync and once the reclaim ran. */
async function syncOnce(t: Test, env: NodeJS.ProcessEnv) {
  const studio = await startStudiod(
    t,
    {},
    { nodeArgs: ['--import', FRAGMENT], env: { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '65536', ...env } },
  );
  const pid = studio.proc?.pid ?? -1;
  const before = await rssOf(pid);
  const agent = await makeAgent(t);
  await pairAgent(studio, agent);
  const card = join(await tempDir(t, 'card-'), 'CARD');
  const files = dcfFiles(1, () => FILE_BYTES);
  await makeCard(card, files);
  await ingest(agent, card, 'trim', 'CARD1');
  const synced = await agent.cli(['sync', '--json']);
  t.equal(synced.code, 0, `sync exits 0 (${synced.stderr})`);
  const link = await waitFor(async () => {
    const l = await linkStatus(studio);
    return l.reclaims >= 1 ? l : undefined;
  }, 'the link to go quiet and give its memory back');
  const after = await rssOf(pid);
  const source = sha256Hex(await readFile(join(card, files[0]?.path ?? '')));
  for (const root of [studio.dirs.mirror, studio.dirs.raid]) {
    const copies = await listFiles(root);
    t.equal(copies.length, 1, `one file on ${root}`);
    t.equal(sha256Hex(await readFile(join(root, copies[0] ?? ''))), source, 'the source’s bytes');
  }
  return { studio, link, before, after };
}

const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;

t.test('the arenas’ holes go back to the system once the link is quiet', async (t) => {
  const { studio, link, before, after } = await syncOnce(t, {});
  t.ok(link.mallocTrim.available, 'the addon loaded');
  t.ok(link.mallocTrim.trims >= 1, `trimmed ${link.mallocTrim.trims} time(s)`);
  t.ok(before - after > 64 * MiB, `RSS ${mib(before)} before the sync, ${mib(after)} after the reclaim`);
  t.ok(link.mallocTrim.releasedBytes > 64 * MiB, `its status counts ${mib(link.mallocTrim.releasedBytes)} given back`);
  t.notMatch(studio.log, STUDIO_CODES.mallocTrimUnavailable, 'nothing logged about it');
  const text = await studio.ctl(['status']);
  t.notMatch(text.stdout, /Idle memory trim/, 'status says nothing about it');
});

t.test('without the addon: one coded log line, status says so, the file is committed, the holes stay', async (t) => {
  const { studio, link, before, after } = await syncOnce(t, {
    STUDIOD_MALLOC_TRIM_ADDON: '/nonexistent/malloc_trim.node',
  });
  const lines = studio.log.split('\n').filter((l) => l.includes(STUDIO_CODES.mallocTrimUnavailable));
  t.equal(lines.length, 1, 'logged once, at start');
  const rec = JSON.parse(lines[0] ?? '{}') as { level: number; code: string; msg: string };
  t.equal(rec.code, STUDIO_CODES.mallocTrimUnavailable);
  t.match(rec.msg, /\/nonexistent\/malloc_trim\.node did not load.*studiod works without it/);
  t.notOk(link.mallocTrim.available);
  t.equal(link.mallocTrim.trims, 0);
  t.equal(link.mallocTrim.unavailable?.code, STUDIO_CODES.mallocTrimUnavailable);
  const text = await studio.ctl(['status']);
  t.equal(text.code, 0);
  t.match(
    text.stdout,
    /Idle memory trim: UNAVAILABLE \(STUDIO_MALLOC_TRIM_UNAVAILABLE\): the idle memory trim is unavailable/,
  );
  t.ok(before - after < 32 * MiB, `RSS ${mib(before)} before the sync, ${mib(after)} after the reclaim (GC only)`);
});
