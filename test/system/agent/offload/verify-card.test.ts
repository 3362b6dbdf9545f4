/**
 * `field-agent verify`: the agent's copies read again against the ledger.
 * Real CLI processes, real LevelDB; the laptop store and the field drive on two
 * loop devices (two physical disks), so the card is safe to format with both copies.
 */
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTestCard, type CardFile } from '../../../../scripts/dist/make-test-card.js';
import { AGENT_BIN, runAgentCli, listFiles, diskDirs } from '../../../lib/agent-harness.js';
import { rotByte } from '../../../lib/bit-rot.js';

const b3 = (path: string): string => execFileSync('b3sum', ['--no-names', path]).toString().trim();

interface VerifyJson {
  assets: number;
  copiesChecked: number;
  copiesOk: number;
  lost: Array<{ blake3: string; target: string; path: string; code: string }>;
  unchecked: Array<{ target: string; code: string }>;
  safeToFormat: { safe: boolean; reason: string; damaged: number };
}

interface Setup {
  data: string;
  config: string;
  drive: string;
  store: string;
  card: string;
  files: CardFile[];
  cli: (args: string[]) => ReturnType<typeof runAgentCli>;
}

/** A test card offloaded to the laptop store and the field drive, on two loop devices (two disks); or why not. */
async function offloaded(t: { teardown: (fn: () => unknown) => void }, seed: number): Promise<Setup | string> {
  const m = await diskDirs(t, { fd: 64, laptop: 64 });
  if ('reason' in m) return m.reason;
  const drive = join(m.dirs['fd'] as string, 'studio321');
  const store = join(m.dirs['laptop'] as string, 'store');
  const data = join(m.base, 'data');
  const config = join(m.base, 'agent.json');
  await writeFile(
    config,
    JSON.stringify({ store, fieldDrive: drive, watchVolumes: false, statusPort: 0, tray: false }),
  );
  await mkdir(drive);
  const card = join(m.base, 'card');
  const files = (await makeTestCard(card, { rawSize: 64 * 1024, seed })).filter((f) => f.size > 0);
  const cli = (args: string[]): ReturnType<typeof runAgentCli> =>
    runAgentCli([...args, '--data-dir', data, '--config', config]);
  const ing = await cli(['ingest', card, '--shoot', 'w', '--json']);
  if (ing.code !== 0) throw new Error(`ingest failed: ${ing.stderr}`);
  return { data, config, drive, store, card, files, cli };
}

t.test(
  'verify: intact copies pass; a rotted laptop copy and a wiped drive copy stop counting; an unplugged drive is not judged; ingest and back-fill mend',
  async (t) => {
    const s = await offloaded(t, 21);
    if (typeof s === 'string')
      return void t.skip(`no loop devices here (${s}): this case did not run`, () => undefined);
    const { drive, store, card, files, cli } = s;
    const cardId =
      (JSON.parse((await cli(['status', '--json'])).stdout) as { cards: Array<{ id: string }> }).cards[0]?.id ?? '?';
    await cli(['resolve', cardId]); // the test card's warnings (zero-byte file, symlink…) reviewed

    // 1. Everything intact: every copy read again, nothing written.
    const v1 = await cli(['verify', cardId, '--json']);
    t.equal(v1.code, 0, `intact: exit 0 (${v1.stderr})`);
    const r1 = JSON.parse(v1.stdout) as VerifyJson;
    t.equal(r1.copiesChecked, 2 * r1.assets, 'laptop and drive copy of every asset read again');
    t.equal(r1.copiesOk, r1.copiesChecked, 'all intact');
    t.same(r1.lost, []);
    t.equal(r1.safeToFormat.safe, true, `safe to format (${r1.safeToFormat.reason})`);

    // 2. One laptop copy rots; one drive copy is deleted (a wiped drive): both stop counting.
    const [rottedFile, wipedFile] = files;
    if (rottedFile === undefined || wipedFile === undefined) throw new Error('test card too small');
    const laptopFiles = await listFiles(store);
    const rottedLaptop = join(store, laptopFiles.find((p) => p.endsWith(`/${rottedFile.path}`)) ?? '?');
    const driveFiles = await listFiles(drive);
    const wipedDrive = join(drive, driveFiles.find((p) => p.endsWith(`/${wipedFile.path}`)) ?? '?');
    await rotByte(rottedLaptop, 10, 0x04);
    const rottedBytes = await readFile(rottedLaptop);
    await rm(wipedDrive);
    const v2 = await cli(['verify', cardId, '--json']);
    t.equal(v2.code, 3, 'copies lost: exit 3');
    t.match(v2.stderr, /AGENT_COPIES_LOST: 2 copies no longer match/, 'the photographer is told');
    const r2 = JSON.parse(v2.stdout) as VerifyJson;
    t.same(
      r2.lost.map((l) => [l.target, l.path, l.code]).sort(),
      [
        ['field-drive', wipedDrive, 'DURABLE_MISSING'],
        ['laptop', rottedLaptop, 'DURABLE_HASH_MISMATCH'],
      ],
      'both named, with why',
    );
    t.equal(r2.safeToFormat.safe, false, 'the card is no longer safe to format');
    t.equal(r2.safeToFormat.damaged, 1, 'one file lost its laptop copy');
    t.same(await readFile(rottedLaptop), rottedBytes, 'the damaged file was not touched');
    const v3 = await cli(['verify', cardId, '--json']);
    t.equal(v3.code, 0, 'a second verify finds nothing new (lost copies are no longer counted, so not read)');
    t.equal((JSON.parse(v3.stdout) as VerifyJson).copiesChecked, r2.copiesChecked - 2);

    // 3. The drive unplugged (its folder gone): its copies are not judged, only listed.
    await rename(drive, `${drive}-away`);
    const v4 = await cli(['verify', '--json']);
    t.equal(v4.code, 0, 'unplugged drive: exit 0');
    const r4 = JSON.parse(v4.stdout) as VerifyJson;
    t.ok(
      r4.unchecked.length > 0 &&
        r4.unchecked.every((u) => u.target === 'field-drive' && u.code === 'AGENT_FIELD_DRIVE_MISSING'),
      'drive copies listed as not checked',
    );
    t.same(r4.lost, [], 'none of them lost');
    await rename(`${drive}-away`, drive);

    // 4. Ingesting the card again: the laptop copy is made anew under ~2, the drive copy back-filled.
    const again = await cli(['ingest', card, '--shoot', 'w', '--json']);
    t.equal(again.code, 0, again.stderr);
    const v5 = await cli(['verify', cardId, '--json']);
    t.equal(v5.code, 0, `after the repair: exit 0 (${v5.stderr})`);
    const r5 = JSON.parse(v5.stdout) as VerifyJson;
    t.equal(r5.copiesOk, 2 * r5.assets, 'every asset has both copies again, intact');
    t.equal(r5.safeToFormat.safe, true, `safe to format again (${r5.safeToFormat.reason})`);
    t.equal(b3(wipedDrive), b3(join(card, wipedFile.path)), "the wiped drive copy is back with the card's BLAKE3");
    t.same(await readFile(rottedLaptop), rottedBytes, 'the damaged laptop file is still untouched');
  },
);

t.test('verify: a drive copy that rotted in place is made again next to it, never over it', async (t) => {
  const s = await offloaded(t, 22);
  if (typeof s === 'string') return void t.skip(`no loop devices here (${s}): this case did not run`, () => undefined);
  const { drive, card, files, cli } = s;
  const victim = files[0];
  if (victim === undefined) throw new Error('test card too small');
  const rel = (await listFiles(drive)).find((p) => p.endsWith(`/${victim.path}`)) ?? '?';
  const rotted = join(drive, rel);
  await rotByte(rotted, 0, 0x80);
  const rottedBytes = await readFile(rotted);
  const v = await cli(['verify', '--json']);
  t.equal(v.code, 3);
  t.same(
    (JSON.parse(v.stdout) as VerifyJson).lost.map((l) => [l.target, l.code]),
    [['field-drive', 'DURABLE_HASH_MISMATCH']],
  );
  // The next ingest's back-fill copies it from the laptop under ~2, next to the rotted file.
  const again = await cli(['ingest', card, '--shoot', 'w', '--json']);
  t.equal(again.code, 0, again.stderr);
  const second = rotted.replace(/(\.[^./]+)$/, '~2$1');
  t.equal(b3(second), b3(join(card, victim.path)), `${second} holds the card's bytes`);
  t.same(await readFile(rotted), rottedBytes, 'the rotted drive file was not overwritten');
  const v2 = await cli(['verify', '--json']);
  t.equal(v2.code, 0, `everything verifies again (${v2.stderr})`);
  t.same((JSON.parse(v2.stdout) as VerifyJson).lost, []);
});

t.test('verify while `field-agent run` holds the state: the running agent does the check', async (t) => {
  const s = await offloaded(t, 23);
  if (typeof s === 'string') return void t.skip(`no loop devices here (${s}): this case did not run`, () => undefined);
  const label =
    (JSON.parse((await s.cli(['status', '--json'])).stdout) as { cards: Array<{ label: string }> }).cards[0]?.label ??
    '?';
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['DISPLAY'];
  delete env['WAYLAND_DISPLAY'];
  const agent = spawn(process.execPath, [AGENT_BIN, 'run', '--data-dir', s.data, '--config', s.config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  t.teardown(() => {
    agent.kill('SIGKILL');
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    agent.stderr.on('data', (d: Buffer) => {
      log += d.toString('utf8');
      if (log.includes('"event":"started"')) resolve();
    });
    agent.once('exit', (code) => reject(new Error(`field-agent run exited ${code}: ${log}`)));
  });
  const victim = s.files[0];
  if (victim === undefined) throw new Error('test card too small');
  const rel = (await listFiles(s.store)).find((p) => p.endsWith(`/${victim.path}`)) ?? '?';
  await rotByte(join(s.store, rel), 3, 0x10);
  const v = await s.cli(['verify', label, '--json']);
  t.equal(v.code, 3, `lost copy found through the running agent (${v.stderr})`);
  const r = JSON.parse(v.stdout) as VerifyJson;
  t.same(
    r.lost.map((l) => [l.target, l.path, l.code]),
    [['laptop', join(s.store, rel), 'DURABLE_HASH_MISMATCH']],
  );
  t.equal(r.safeToFormat.safe, false, 'and the verdict after it: not safe');
  t.match(log, /"event":"copies-lost"/, 'the running agent logged it');
  const unknown = await s.cli(['verify', 'NO_SUCH_CARD']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /AGENT_UNKNOWN_CARD/, 'a bad card name comes back as its coded error');
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  const st = JSON.parse(
    (await runAgentCli(['status', '--json', '--data-dir', s.data, '--config', s.config])).stdout,
  ) as { cards: Array<{ safeToFormat: { safe: boolean } }> };
  t.equal(st.cards[0]?.safeToFormat.safe, false, 'recorded durably by the running agent');
});
