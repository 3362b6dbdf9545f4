// The service units and their install scripts, checked by systemd's own tools:
// `systemd-analyze verify` accepts studiod.service (with the install script's
// targets drop-in) and the agent's user unit; `systemd-analyze security
// --offline=true` rates studiod.service's exposure 3.0 or lower; the install
// scripts are idempotent, never overwrite a config, and --dry-run changes nothing.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, '');
const studiodUnit = join(repo, 'scripts/systemd/studiod.service');
const agentUnit = join(repo, 'scripts/systemd/field-agent.service');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function hasSystemdAnalyze(): Promise<boolean> {
  return (await run('systemd-analyze', ['--version'])).code === 0;
}

function exposure(out: string): number {
  const m = /Overall exposure level for \S+: ([\d.]+)/.exec(out);
  if (!m) throw new Error(`no "Overall exposure level" line in:\n${out.slice(-500)}`);
  return Number(m[1]);
}

/** The unit as shipped, with ExecStart pointing at this node and the repo's compiled bin (verify needs the binary to exist). */
async function shippedUnitIn(dir: string, src: string, name: string, binRel: string, args: string): Promise<string> {
  const text = await readFile(src, 'utf8');
  const rewritten = text.replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath} ${join(repo, binRel)} ${args}`);
  const path = join(dir, name);
  await writeFile(path, rewritten);
  return path;
}

const haveAnalyze = await hasSystemdAnalyze();
const noAnalyze =
  'systemd-analyze is not installed (apt-get install systemd; scripts/ensure-system-deps.sh does it as root)';

t.test('systemd units', { skip: !haveAnalyze && noAnalyze }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'units-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  t.test('studiod.service: verify accepts it with no warning', async (t) => {
    const unit = await shippedUnitIn(
      dir,
      studiodUnit,
      'studiod.service',
      'studiod/dist/bin/studiod.js',
      '--config /etc/studiod/studiod.json',
    );
    const r = await run('systemd-analyze', ['verify', unit], { SYSTEMD_UNIT_PATH: `${dir}:` });
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stderr.trim(), '', 'no warnings (unknown keys, bad values) from verify');
    // glibc reads its malloc tunables at start only: the unit is where studiod gets them.
    const env = (await readFile(unit, 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('Environment='))
      .flatMap((l) => l.slice('Environment='.length).split(' '));
    t.ok(env.includes('MALLOC_ARENA_MAX=2'), 'at most two malloc arenas');
    t.ok(env.includes('MALLOC_MMAP_THRESHOLD_=65536'), "blocks of 64 KiB and more mmap'd (given back when freed)");

    // The check can fail: a misspelt key is reported.
    const bad = join(dir, 'bad.service');
    await writeFile(bad, (await readFile(unit, 'utf8')).replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
    const rb = await run('systemd-analyze', ['verify', bad]);
    t.match(rb.stderr, /Unknown key/, 'verify reports a misspelt key');
  });

  t.test('studiod.service: exposure <= 3.0 (a bare unit scores > 8)', async (t) => {
    const unit = join(dir, 'studiod.service');
    const r = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', unit]);
    const score = exposure(r.stdout + r.stderr);
    t.ok(score <= 3.0, `exposure ${score} <= 3.0`);
    t.comment(`studiod.service exposure: ${score}`);

    const bare = join(dir, 'bare.service');
    await writeFile(bare, `[Service]\nExecStart=${process.execPath} -e 0\n`);
    const rb = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', bare]);
    t.ok(exposure(rb.stdout + rb.stderr) > 8, 'the parser reads a bare unit as unsafe');
  });

  t.test('field-agent.service: a valid systemd user unit', async (t) => {
    const unit = await shippedUnitIn(dir, agentUnit, 'field-agent.service', 'agent/dist/bin/field-agent.js', 'run');
    const runtime = await mkdtemp(join(tmpdir(), 'xdg-rt-'));
    t.teardown(() => rm(runtime, { recursive: true, force: true }));
    const r = await run('systemd-analyze', ['--user', 'verify', unit], { XDG_RUNTIME_DIR: runtime });
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stderr.trim(), '', 'no warnings');
    const text = await readFile(unit, 'utf8');
    t.match(text, /^WantedBy=default\.target$/m, 'starts with the user session (login)');
    t.match(text, /^KillSignal=SIGTERM$/m);
    // The agent offloads a card of 100,000 files in this process: glibc reads its malloc tunables at
    // start only, so the unit is where the agent gets them (as studiod does from its own).
    const env = text
      .split('\n')
      .filter((l) => l.startsWith('Environment='))
      .flatMap((l) => l.slice('Environment='.length).split(' '));
    t.ok(env.includes('MALLOC_ARENA_MAX=2'), 'at most two malloc arenas');
    t.ok(env.includes('MALLOC_MMAP_THRESHOLD_=65536'), "blocks of 64 KiB and more mmap'd (given back when freed)");
  });
});

t.test('install-studiod.sh --root: installs, is idempotent, derives ReadWritePaths from the config', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'sysroot-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const script = join(repo, 'scripts/install-studiod.sh');
  const args = ['--root', root, '--app-dir', repo, '--node', process.execPath];

  const dry = await run('sh', [script, ...args, '--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, /would write .*studiod\.service/);
  t.same(await readdir(root), [], '--dry-run changed nothing');

  const first = await run('sh', [script, ...args]);
  t.equal(first.code, 0, first.stderr + first.stdout);
  const unitPath = join(root, 'etc/systemd/system/studiod.service');
  const unit = await readFile(unitPath, 'utf8');
  t.match(unit, `ExecStart=${process.execPath} ${repo}/studiod/dist/bin/studiod.js --config /etc/studiod/studiod.json`);
  t.match(
    unit,
    /^Environment=MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536$/m,
    'the malloc settings installed with it',
  );
  const config = JSON.parse(await readFile(join(root, 'etc/studiod/studiod.json'), 'utf8')) as {
    targets: Record<string, { root: string }>;
  };
  t.equal(config.targets['mirror']?.root, '/srv/mirror', 'default config written');
  const dropinPath = join(root, 'etc/systemd/system/studiod.service.d/targets.conf');
  t.match(await readFile(dropinPath, 'utf8'), /^ReadWritePaths=-\/srv\/mirror -\/srv\/raid$/m);

  const second = await run('sh', [script, ...args]);
  t.equal(second.code, 0);
  t.match(second.stdout, /unchanged .*studiod\.service\n/);
  t.match(second.stdout, /unchanged .*targets\.conf/);
  t.match(second.stdout, /keeping existing .*studiod\.json/);

  // The admin points the targets at their disks; the script keeps the config and rewrites the drop-in.
  const mirror = join(root, 'mnt/mirror-disk');
  const raid = join(root, 'mnt/raid-array');
  await mkdir(mirror, { recursive: true });
  await mkdir(raid, { recursive: true });
  config.targets['mirror']!.root = mirror;
  config.targets['raid']!.root = raid;
  const edited = JSON.stringify(config, null, 2);
  await writeFile(join(root, 'etc/studiod/studiod.json'), edited);
  const third = await run('sh', [script, ...args]);
  t.equal(third.code, 0, third.stderr);
  t.equal(await readFile(join(root, 'etc/studiod/studiod.json'), 'utf8'), edited, 'config never overwritten');
  t.match(await readFile(dropinPath, 'utf8'), new RegExp(`^ReadWritePaths=-${mirror} -${raid}$`, 'm'));

  // A target root the drop-in cannot express is refused, and the old drop-in stays.
  config.targets['raid']!.root = 'relative/raid';
  await writeFile(join(root, 'etc/studiod/studiod.json'), JSON.stringify(config));
  const bad = await run('sh', [script, ...args]);
  t.not(bad.code, 0);
  t.match(bad.stderr, /must be an absolute path/);
  t.match(await readFile(dropinPath, 'utf8'), new RegExp(`-${raid}$`, 'm'), 'drop-in untouched');

  if (haveAnalyze) {
    const r = await run('systemd-analyze', ['verify', unitPath], {
      SYSTEMD_UNIT_PATH: `${join(root, 'etc/systemd/system')}:`,
    });
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stderr.trim(), '', 'installed unit + drop-in verify cleanly');
    const s = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', unitPath]);
    t.ok(exposure(s.stdout + s.stderr) <= 3.0, 'installed unit keeps its exposure');
  }
});

t.test('install-agent.sh: a Linux user unit and a macOS LaunchAgent, idempotent', async (t) => {
  const home = await mkdtemp(join(tmpdir(), 'home-'));
  t.teardown(() => rm(home, { recursive: true, force: true }));
  const script = join(repo, 'scripts/install-agent.sh');
  const common = ['--home', home, '--app-dir', repo, '--node', process.execPath];

  const linux = await run('sh', [script, ...common, '--platform', 'linux']);
  t.equal(linux.code, 0, linux.stderr + linux.stdout);
  const unit = await readFile(join(home, '.config/systemd/user/field-agent.service'), 'utf8');
  t.match(unit, `ExecStart=${process.execPath} ${repo}/agent/dist/bin/field-agent.js run`);
  t.match(
    unit,
    /^Environment=MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536$/m,
    'the malloc settings installed with it',
  );
  const again = await run('sh', [script, ...common, '--platform', 'linux']);
  t.match(again.stdout, /unchanged .*field-agent\.service/);

  const mac = await run('sh', [script, ...common, '--platform', 'darwin']);
  t.equal(mac.code, 0, mac.stderr);
  const plist = await readFile(join(home, 'Library/LaunchAgents/com.studio321.field-agent.plist'), 'utf8');
  t.notMatch(plist, /__[A-Z_]+__/, 'every placeholder replaced');
  t.match(plist, `<string>${process.execPath}</string>`);
  t.match(plist, `<string>${repo}/agent/dist/bin/field-agent.js</string>`);
  t.match(plist, `<string>${home}/Library/Logs/studio321/field-agent.log</string>`);
  t.match(plist, /<key>RunAtLoad<\/key>\s*<true\/>/);
});
