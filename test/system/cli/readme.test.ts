/**
 * The README's commands, pasted into a shell. Every line of every `sh` block is either run
 * verbatim (sh -c, in a clone-like scratch dir, with the programs on PATH where the install
 * scripts put them), run adapted (a placeholder or a system path replaced, said below), or not
 * run for a reason listed in NOT_RUN. A README line that is none of these fails the test, and so
 * does a NOT_RUN entry the README no longer has: nothing is passed over silently.
 *
 * Cheap on purpose: the scratch dir holds the tracked files with the repository's node_modules
 * and built dist/ linked in (no npm ci, no build); one studiod, one card of two files.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { EXIT } from '@studio321/protocol';
import { REPO } from '../../lib/agent-harness.js';
import { makeAgent, makeCard, startStudiod, tempDir } from '../../lib/studio-harness.js';

const exec = promisify(execFile);

/** Lines not run, and why. Each must still be in the README. */
const NOT_RUN = new Map<string, string>([
  [
    'npm ci && npm run demo',
    'npm ci reinstalls node_modules (minutes); the demo is run by test/system/demo/demo.test.ts',
  ],
  ['npm test', 'the suite this test is part of'],
  [
    'git clone <this repo> /opt/studio321 && cd /opt/studio321 && npm ci && npm run build',
    'the scratch dir stands for the clone',
  ],
  [
    'git clone <this repo> ~/studio321 && cd ~/studio321 && npm ci && npm run build',
    'the scratch dir stands for the clone',
  ],
  ['$EDITOR /etc/studiod/studiod.json', 'an editor; the test writes the scratch studio config'],
  ['systemctl enable --now studiod', 'the test starts studiod itself (test/system/service covers the unit)'],
  ['systemctl start studiod', 'the test starts studiod itself'],
  ['sudo install -d -o studiod -g studiod -m 0750 /srv/restore', 'system set-up of the service user'],
  ['sudo systemctl edit studiod', 'system set-up of the service unit'],
  ['sudo systemctl restart studiod', 'system set-up of the service unit'],
  [
    'studioctl --config /etc/studiod/studiod.json catalogue rebuild',
    'needs studiod stopped and the system config; test/system/studiod/recovery/rebuild.test.ts runs the rebuild',
  ],
]);

/** Exit status a verbatim line is expected to end with (default EXIT.ok), and what it must print. */
const EXPECT = new Map<string, { code: number; says?: RegExp }>([
  ['studioctl assets --unprotected --shoot 2026-11-26-wedding', { code: EXIT.notSafe, says: /not yet 3-2-1 safe/ }],
  // The scratch raid disk is the current one and holds files: adopt refuses it, as the README says.
  ['studioctl target adopt raid', { code: EXIT.error, says: /RECOVERY_ADOPT_(NOT_EMPTY|CURRENT_DISK)/ }],
]);

/** The `sh` blocks of the README, one command a line (a trailing `# comment` is part of the line, as pasted). */
function readmeLines(readme: string): string[] {
  const out: string[] = [];
  for (const m of readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm))
    for (const line of m[1]!.split('\n')) if (line.trim() !== '') out.push(line);
  return out;
}

/** The command without its trailing comment: what NOT_RUN and EXPECT are keyed by. */
const command = (line: string): string => line.replace(/\s+#\s.*$/, '').trim();

t.test("the README's commands, run in a shell", async (t) => {
  const lines = readmeLines(await readFile(join(REPO, 'README.md'), 'utf8'));
  t.ok(lines.length >= 20, `the README has its command blocks (${lines.length} lines)`);

  // A clone-like scratch dir: the tracked files, the repository's node_modules and dist/ linked in.
  const scratch = await tempDir(t, 'readme-');
  const app = join(scratch, 'studio321');
  const tracked = (await exec('git', ['ls-files', '-z'], { cwd: REPO, maxBuffer: 64 << 20 })).stdout.split('\0');
  for (const f of tracked.filter((f) => f !== '')) {
    await mkdir(dirname(join(app, f)), { recursive: true });
    await copyFile(join(REPO, f), join(app, f)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err; // deleted in the work tree, not yet committed
    });
  }
  await symlink(join(REPO, 'node_modules'), join(app, 'node_modules'));
  for (const ws of ['protocol', 'agent', 'studiod', 'scripts'])
    await symlink(join(REPO, ws, 'dist'), join(app, ws, 'dist'));

  const studio = await startStudiod(t);
  const sysroot = join(scratch, 'sysroot');
  const home = join(scratch, 'home');
  const agent = await makeAgent(t);
  const env = {
    ...process.env,
    PATH: `${sysroot}/usr/local/bin:${home}/.local/bin:${process.env['PATH'] ?? ''}`,
    STUDIOD_CONFIG: studio.dirs.config,
    FIELD_AGENT_HOME: agent.dataDir,
    HOME: home,
  };
  const sh = async (cmd: string): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const r = await exec('sh', ['-c', cmd], { cwd: app, env, timeout: 60_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  let hash = '';
  let cardDone = false;
  /** The scratch studio has the README's card: shoot 2026-11-26-wedding, card EOS_DIGITAL, IMG_0001/0002.CR3. */
  const ensureCard = async (): Promise<void> => {
    if (cardDone) return;
    cardDone = true;
    const card = join(scratch, 'EOS_DIGITAL');
    await makeCard(card, [
      { path: 'DCIM/100CANON/IMG_0001.CR3', size: 3000 },
      { path: 'DCIM/100CANON/IMG_0002.CR3', size: 2000 },
    ]);
    const i = await agent.cli(['ingest', card, '--shoot', '2026-11-26-wedding', '--card-label', 'EOS_DIGITAL']);
    t.equal(i.code, EXIT.ok, 'the card is ingested');
    const s = await agent.cli(['sync']);
    t.equal(s.code, EXIT.ok, 'and synced to the scratch studio');
    hash = (JSON.parse((await sh('studioctl --json asset IMG_0001.CR3')).stdout) as { assets: Array<{ hash: string }> })
      .assets[0]!.hash;
  };

  const seenNotRun = new Set<string>();
  for (const line of lines) {
    const cmd = command(line);
    const why = NOT_RUN.get(cmd);
    if (why !== undefined) {
      seenNotRun.add(cmd);
      t.comment(`not run: ${cmd} — ${why}`);
      continue;
    }
    let run = line;
    let adapted = '';
    if (cmd === 'scripts/install-studiod.sh') {
      run = `${cmd} --root ${sysroot} --no-start`; // the command, not its comment: the options must reach it
      adapted = 'into a scratch root (as root it would create a system user and write /etc)';
    } else if (cmd === 'scripts/install-agent.sh') {
      run = `${cmd} --home ${home} --platform linux`;
      adapted = 'for a scratch home, not started';
    } else if (cmd.startsWith('npx field-agent pair wss://studio.example:7321/v1 ')) {
      run = `npx field-agent pair ${studio.url} ${await studio.pairCode()}`;
      adapted = "the scratch studio's URL and a fresh code instead of the placeholders";
    } else if (cmd.includes('/srv/restore') || cmd.includes('(full BLAKE3)')) {
      await ensureCard();
      run = line.replaceAll('/srv/restore', join(scratch, 'srv/restore')).replace('9f3a…(full BLAKE3)', hash);
      adapted = 'into the scratch dir (and the real hash for the placeholder)';
    } else if (cmd.startsWith('studioctl ') && cmd !== 'studioctl pair') await ensureCard(); // after the laptop paired
    if (/install-(studiod|agent)\.sh/.test(run) && !/--(root|home) /.test(run))
      throw new Error(`refusing to run ${run} on this machine`); // a README change must not install for real
    const r = await sh(run);
    const want = EXPECT.get(cmd) ?? { code: EXIT.ok };
    t.equal(r.code, want.code, `${cmd}${adapted === '' ? '' : ` (adapted: ${adapted})`}: exit ${want.code}`, {
      stderr: r.stderr,
    });
    if (want.says !== undefined) t.match(r.stdout + r.stderr, want.says, `${cmd}: says so`);
  }
  t.same(
    [...NOT_RUN.keys()].filter((k) => !seenNotRun.has(k)),
    [],
    'every line listed as not run is still in the README',
  );
  t.ok(cardDone, "the studioctl lines ran against the README's card");
});
