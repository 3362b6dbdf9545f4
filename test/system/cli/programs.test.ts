/**
 * The three programs as a user meets them, through the real bins (child processes):
 * --help/--version without a config, strict parsing with one exit-status scheme, config files
 * that refuse typos everywhere, and a studio answering honestly (filters that match nothing,
 * --unprotected exit 3, shoots, agents' last-seen, re-pairing, pairing with the studio down,
 * a JSON-only log).
 */
import t, { type Test } from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { EXIT } from '@studio321/protocol';
import {
  AGENT_BIN,
  STUDIOCTL_BIN,
  STUDIOD_BIN,
  dcfFiles,
  ingest,
  makeAgent,
  makeCard,
  pairAgent,
  run,
  startStudiod,
  tempDir,
  type RunResult,
  type Teardown,
} from '../../lib/studio-harness.js';
import { REPO } from '../../lib/agent-harness.js';

const BINS = { studioctl: STUDIOCTL_BIN, studiod: STUDIOD_BIN, 'field-agent': AGENT_BIN } as const;
type Program = keyof typeof BINS;

/** Run a program with no config anywhere it could look: anything that reads one fails with CONFIG_MISSING (exit 1). */
function bare(program: Program, args: string[], home: string): Promise<RunResult> {
  return run(BINS[program], args, {
    env: { STUDIOD_CONFIG: join(home, 'no-such-studiod.json'), FIELD_AGENT_HOME: join(home, 'no-agent') },
  });
}

async function version(pkg: string): Promise<string> {
  return (JSON.parse(await readFile(join(REPO, pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** `field-agent status`'s and `sync`'s one CommonJS file each (scripts/bundle-agent.mjs, agent/src/cli/bundle.ts). */
const STATUS_BUNDLE = join(REPO, 'agent', 'dist', 'bin', 'status.cjs');
const SYNC_BUNDLE = join(REPO, 'agent', 'dist', 'bin', 'sync.cjs');

/** The ES modules (URLs) and CommonJS files (paths) a run under trace-imports.mjs loaded, in order. */
function loadedBy(stderr: string): string[] {
  return [...stderr.matchAll(/^(?:import|require): (\S+)$/gm)].map((m) => m[1] ?? '');
}

/** The environment that makes a program list what it loads (trace-imports.mjs; read with loadedBy). */
const TRACE = { NODE_OPTIONS: `--import=${join(REPO, 'test', 'lib', 'trace-imports.mjs')}` };

/** The first JSON line a command printed. */
function firstJson(r: RunResult): unknown {
  return JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{')) ?? '{}');
}

/** Makes `bundle` older than the files it was made from (a `tsc -b` without the bundling step) until `t` ends. */
async function makeStale(t: Teardown, bundle: string): Promise<void> {
  const made = await stat(bundle);
  t.teardown(() => utimes(bundle, made.atime, made.mtime));
  await utimes(bundle, new Date(0), new Date(0));
}

/** A traced run of a command whose bundle is stale: exit 0, and `esModule` (under agent/dist/src/) loaded, not the bundle. */
function ranFromEsModules(t: Test, r: RunResult, bundle: string, esModule: string): void {
  const command = esModule.replace(/^.*\/|\.js$/g, '');
  t.equal(r.code, EXIT.ok, `${command} with a stale bundle: exit 0`);
  const loaded = loadedBy(r.stderr);
  t.notOk(loaded.includes(bundle), 'the stale bundle is not loaded');
  t.ok(
    loaded.includes(`file://${join(REPO, 'agent', 'dist', 'src', ...esModule.split('/'))}`),
    `${command} loads its ES modules instead`,
  );
}

/** Modules `field-agent status` must not load on either path (each costs start-up time; durable/ has the hash workers). */
function notForStatus(url: string): boolean {
  return (
    /node_modules\/(systray2|chokidar|ws|node-disk-info|msgpackr)\//.test(url) ||
    /agent\/dist\/src\/(ui\/|link\/|offload\/|card\/)/.test(url) ||
    /protocol\/dist\/(index|codec|schema|auth|hash)\.js$|protocol\/dist\/durable\//.test(url)
  );
}

t.test('--help, -h, help and --version answer without a config and start nothing', async (t) => {
  const home = await tempDir(t);
  const versions = {
    studioctl: await version('studiod'),
    studiod: await version('studiod'),
    'field-agent': await version('agent'),
  };
  for (const program of Object.keys(BINS) as Program[]) {
    for (const arg of ['--help', '-h', 'help']) {
      const r = await bare(program, [arg], home);
      t.equal(r.code, EXIT.ok, `${program} ${arg}: exit 0`);
      t.match(r.stdout, /usage: /, `${program} ${arg}: usage`);
      t.match(
        r.stdout,
        /Exit status[^\n]*\n\s+0 .*\n\s+1 .*\n\s+2 .*usage.*\n\s+3 .*not safe/,
        `${program} ${arg}: the exit-status table`,
      );
    }
    const v = await bare(program, ['--version'], home);
    t.equal(v.code, EXIT.ok, `${program} --version: exit 0`);
    t.equal(v.stdout, `${program} ${versions[program]}\n`, `${program} --version: the package.json version`);
  }
  t.same(await readdir(home), [], 'nothing was written');
  // Commands that only talk to the daemon start light: none of the daemon's heavy dependencies load.
  const traced = await run(STUDIOCTL_BIN, ['--version'], {
    env: TRACE,
  });
  const loaded = [...traced.stderr.matchAll(/^import: (\S+)$/gm)].map((m) => m[1] ?? '');
  t.ok(loaded.length > 10, `the import trace works (${loaded.length} modules)`);
  t.same(
    loaded.filter((u) => /node_modules\/(@aws-sdk|@smithy|classic-level|level|prom-client|nodemailer|ws)\//.test(u)),
    [],
    'studioctl loads no S3 client, LevelDB, metrics, mail or WebSocket module to start',
  );
  // `field-agent status` answers from the state's summary: it loads neither the tray, the watchers,
  // the link nor the offload (systray2 alone took about 0.1 s to import), nor the durable write,
  // the hash workers or the wire code (the whole protocol barrel: codec, schema, auth).
  const agentData = await tempDir(t);
  const status = await run(AGENT_BIN, ['status', '--json', '--data-dir', agentData], {
    env: TRACE,
  });
  t.equal(status.code, EXIT.ok, 'field-agent status of an empty data dir: exit 0');
  const agentLoaded = loadedBy(status.stderr);
  t.ok(agentLoaded.includes(STATUS_BUNDLE), 'status runs from its one CommonJS file (npm run build makes it)');
  t.ok(
    agentLoaded.some((u) => u.includes('node_modules/level/')),
    'with no agent running, status reads the state DB itself',
  );
  t.same(
    agentLoaded.filter(notForStatus),
    [],
    'field-agent status loads no tray, watcher, link, offload, durable or wire module',
  );
  const inputs = JSON.parse(await readFile(`${STATUS_BUNDLE}.inputs.json`, 'utf8')) as string[];
  t.ok(inputs.length > 10, `the bundle lists the files it was made from (${inputs.length})`);
  t.same(
    inputs.filter((rel) => notForStatus(join(dirname(STATUS_BUNDLE), rel))),
    [],
    'nor does its bundle hold any of them',
  );
  // Linked by `npm ci` (the bin shims are in the clone), so npx finds them without a download.
  const npx = await promisify(execFile)('npx', ['--no-install', 'studioctl', '--version'], { cwd: REPO });
  t.equal(npx.stdout, `studioctl ${versions.studioctl}\n`, 'npx studioctl --version from the repository');
});

/** `field-agent run` (no tray, no volume watcher) on a fresh data dir, once it says it started. */
async function startRun(t: Teardown): Promise<{ dataDir: string; child: ChildProcess }> {
  const dir = await tempDir(t);
  const config = join(dir, 'field-agent.json');
  await writeFile(config, JSON.stringify({ statusPort: 0, tray: false, watchVolumes: false }));
  const { DISPLAY: _d, WAYLAND_DISPLAY: _w, ...env } = process.env;
  const child = spawn(process.execPath, [AGENT_BIN, 'run', '--data-dir', join(dir, 'data'), '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  t.teardown(() => void child.kill('SIGKILL'));
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (err.includes('"event":"started"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`field-agent run exited ${code}: ${err}`)));
  });
  return { dataDir: join(dir, 'data'), child };
}

t.test('field-agent status asks a running agent without loading the state DB', async (t) => {
  const agent = await startRun(t);
  const status = await run(AGENT_BIN, ['status', '--json', '--data-dir', agent.dataDir], {
    env: TRACE,
  });
  t.equal(status.code, EXIT.ok, 'field-agent status while the agent runs: exit 0');
  t.match(JSON.parse(status.stdout.split('\n').find((l) => l.startsWith('{')) ?? '{}'), {
    cards: [],
    queue: { files: 0 },
  });
  const loaded = loadedBy(status.stderr);
  t.ok(loaded.includes(STATUS_BUNDLE), 'the trace sees the status bundle (the running-agent client is in it)');
  t.same(
    loaded.filter((u) => notForStatus(u) || u.includes('node_modules/level/') || u.includes('/agent/dist/src/state/')),
    [],
    'asking the running agent loads no LevelDB, no state module, nothing status does not use',
  );
  // Killed, the agent leaves its address file behind: status finds no one there and reads the state itself.
  const exited = new Promise((resolve) => agent.child.once('exit', resolve));
  agent.child.kill('SIGKILL');
  await exited;
  const stale = new URL((await readFile(join(agent.dataDir, 'status-url'), 'utf8')).trim());
  const after = await run(AGENT_BIN, ['status', '--json', '--data-dir', agent.dataDir]);
  t.equal(after.code, EXIT.ok, 'status after the agent was killed: exit 0, from the state DB');
  t.match(JSON.parse(after.stdout), { cards: [], queue: { files: 0 } });
  // Another program has since taken the killed agent's port: its answer is not the agent's.
  const squatter = createHttpServer((_req, res) => res.writeHead(404).end('not here'));
  await new Promise<void>((resolve) => squatter.listen(Number(stale.port), stale.hostname, resolve));
  t.teardown(() => squatter.close());
  const squatted = await run(AGENT_BIN, ['status', '--json', '--data-dir', agent.dataDir]);
  t.equal(squatted.code, EXIT.ok, 'another program on the stale address: exit 0, from the state DB');
  t.match(JSON.parse(squatted.stdout), { cards: [], queue: { files: 0 } });
});

t.test('a stale status bundle is not run: status loads its ES modules and answers the same', async (t) => {
  const agent = await makeAgent(t);
  const cards = await tempDir(t, 'cards-');
  await makeCard(
    join(cards, 'a'),
    dcfFiles(3, (i) => 2048 * (i + 1)),
  );
  await ingest(agent, join(cards, 'a'), '2026-12-06-bundle', 'CARD1');
  const status = (): Promise<RunResult> =>
    run(AGENT_BIN, ['status', '--json', '--data-dir', agent.dataDir], {
      env: { ...TRACE, FIELD_AGENT_HOME: agent.dataDir },
    });
  const fresh = await status();
  t.equal(fresh.code, EXIT.ok, 'status from the bundle: exit 0');
  t.ok(loadedBy(fresh.stderr).includes(STATUS_BUNDLE), 'run from the bundle');
  // The bundle older than a file it was made from: not run.
  await makeStale(t, STATUS_BUNDLE);
  const stale = await status();
  ranFromEsModules(t, stale, STATUS_BUNDLE, 'state/status.js');
  t.match(
    firstJson(fresh),
    { cards: [{ label: 'CARD1', files: 3, verifiedFiles: 3 }] },
    'the bundle answers with the card',
  );
  t.same(firstJson(stale), firstJson(fresh), 'both answers are the same');
});

t.test(
  'sync runs from its one CommonJS file, and from its ES modules when that is stale, with the same outcome',
  async (t) => {
    const studio = await startStudiod(t);
    const agent = await makeAgent(t);
    await pairAgent(studio, agent);
    const cards = await tempDir(t, 'cards-');
    const sync = (): Promise<RunResult> =>
      run(AGENT_BIN, ['sync', '--json', '--data-dir', agent.dataDir], {
        env: { ...TRACE, FIELD_AGENT_HOME: agent.dataDir },
      });
    // Small files (sent whole) and one of 5 MiB (in Chunks): both of the sync's paths.
    const files = dcfFiles(4, (i) => (i === 3 ? 5 * 1024 * 1024 : 2048 * (i + 1)));
    await makeCard(join(cards, 'a'), files);
    await ingest(agent, join(cards, 'a'), '2026-12-06-bundle', 'CARD1');
    const fresh = await sync();
    t.equal(fresh.code, EXIT.ok, 'sync from the bundle: exit 0');
    const loaded = loadedBy(fresh.stderr);
    t.ok(loaded.includes(SYNC_BUNDLE), 'run from the bundle');
    t.same(
      loaded.filter(
        (u) => /\/(agent|protocol)\/dist\//.test(u) && !/agent\/dist\/bin\/|agent\/dist\/src\/cli\/bundle\.js$/.test(u),
      ),
      [],
      "the main thread loads none of the agent's or protocol's ES modules: they are in the bundle",
    );
    t.match(
      firstJson(fresh),
      { event: 'sync', receipts: 4, failed: [], queue: { files: 0 } },
      'every file has a receipt',
    );
    // The bundle older than a file it was made from: not run.
    await makeStale(t, SYNC_BUNDLE);
    await makeCard(join(cards, 'b'), files); // new random bytes: four more files to send
    await ingest(agent, join(cards, 'b'), '2026-12-06-bundle', 'CARD2');
    const stale = await sync();
    ranFromEsModules(t, stale, SYNC_BUNDLE, 'cli/sync.js');
    t.match(firstJson(stale), { event: 'sync', receipts: 4, failed: [], queue: { files: 0 } }, 'the same outcome');
  },
);

t.test(
  'a bad command line is a usage error naming the option and the value: exit 2, nothing read or done',
  async (t) => {
    const home = await tempDir(t);
    const cases: Array<[Program, string[], RegExp]> = [
      ['studioctl', ['assets', '--unprotectd'], /unknown option --unprotectd \(did you mean --unprotected\?\)/],
      ['studioctl', ['assets', '--limit', 'abc'], /--limit takes a whole number.*"abc"/],
      ['studioctl', ['assets', '--limit'], /option --limit needs a value/],
      ['studioctl', ['verify', '--sample', 'abc'], /--sample takes a percentage.*"abc"/],
      ['studioctl', ['verify', '--sample', '150%'], /--sample takes a percentage.*"150%"/],
      ['studioctl', ['status', '--limit', '5'], /unknown option --limit/],
      ['studioctl', ['statsu'], /unknown command "statsu" \(did you mean status\?\)/],
      ['studioctl', ['restore', 'IMG_0001.CR3'], /--to DIR is required/],
      ['studiod', ['--confg', '/x.json'], /unknown option --confg \(did you mean --config\?\)/],
      ['studiod', ['--config'], /option --config needs a value/],
      ['field-agent', ['status', '--bogus'], /unknown option --bogus/],
      ['field-agent', ['sync', '--max-attempts', 'abc'], /--max-attempts takes a whole number.*"abc"/],
      ['field-agent', ['statsu'], /unknown command "statsu" \(did you mean status\?\)/],
    ];
    for (const [program, args, says] of cases) {
      const r = await bare(program, args, home);
      t.equal(r.code, EXIT.usage, `${program} ${args.join(' ')}: exit 2`);
      t.match(r.stderr, says, `${program} ${args.join(' ')}: names it`);
      t.match(r.stderr, /_USAGE: /, `${program} ${args.join(' ')}: the program's usage code`);
    }
    t.same(await readdir(home), [], 'no config was read and nothing was written');
  },
);

t.test(
  'config files: unknown keys refused everywhere with file, key path and the close key; JSON errors at line:column',
  async (t) => {
    const dir = await tempDir(t);
    const target = (n: string) => ({ root: join(dir, n), media: `hdd-${n}`, location: 'studio', device: `${n}-1` });
    const base = { stateDir: join(dir, 'state'), targets: { mirror: target('mirror'), raid: target('raid') } };
    const cloud = {
      name: 'east',
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      bucket: 'b',
      accessKeyId: 'k',
      secretAccessKey: 's',
      storageClass: 'STANDARD',
      media: 'cloud-ssd',
      location: 'cloud-east',
      forcePathstyle: true,
    };
    const cases: Array<[string, string, RegExp]> = [
      [
        'cloud.json',
        JSON.stringify({ ...base, cloud: [cloud] }),
        /field "cloud\[0\]\.forcePathstyle" is not a known option \(did you mean forcePathStyle\?\)/,
      ],
      [
        'policy.json',
        JSON.stringify({ ...base, policy: { copies: 3, media: 2, ofsite: 1 } }),
        /policy has an unknown field "ofsite"/,
      ],
      [
        'target.json',
        JSON.stringify({ ...base, targets: { ...base.targets, raid: { ...target('raid'), devcie: 'x' } } }),
        /field "targets\.raid\.devcie" is not a known option \(did you mean device\?\)/,
      ],
      [
        'syntax.json',
        '{\n  "stateDir": "/x",\n  "targets": {\n    "mirror": 3\n    "raid": 4 }\n}\n',
        /syntax\.json:5:5: not valid JSON/,
      ],
    ];
    for (const [name, body, says] of cases) {
      const file = join(dir, name);
      await writeFile(file, body);
      for (const program of ['studiod', 'studioctl'] as const) {
        const r = await run(BINS[program], ['--config', file, ...(program === 'studioctl' ? ['status'] : [])]);
        t.equal(r.code, EXIT.error, `${program} ${name}: exit 1`);
        t.match(
          r.stderr,
          new RegExp(`CONFIG_(INVALID|SYNTAX): ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
          `${program} ${name}: code and file`,
        );
        t.match(r.stderr, says, `${program} ${name}: the key path (and the close key)`);
      }
    }
    t.notOk((await readdir(dir)).includes('state'), 'studiod started nothing');
    const agentConfig = join(dir, 'field-agent.json');
    await writeFile(agentConfig, JSON.stringify({ watchVolumse: false }));
    const a = await run(AGENT_BIN, ['status', '--config', agentConfig, '--data-dir', join(dir, 'agent')]);
    t.equal(a.code, EXIT.error, 'field-agent: exit 1');
    t.match(
      a.stderr,
      /CONFIG_INVALID: .*field-agent\.json: field "watchVolumse" is not a known option \(did you mean watchVolumes\?\)/,
      'field-agent: file, key and the close key',
    );
    await writeFile(agentConfig, '{\n  "watchVolumes": false,\n}\n');
    const s = await run(AGENT_BIN, ['status', '--config', agentConfig, '--data-dir', join(dir, 'agent')]);
    t.match(
      s.stderr,
      /CONFIG_SYNTAX: .*field-agent\.json:3:1: not valid JSON/,
      'field-agent: JSON error at line:column',
    );
  },
);

t.test(
  'a studio answers honestly: filters, exit 3, shoots, agents, re-pairing, pairing with the studio down',
  async (t) => {
    const studio = await startStudiod(t);
    const empty = await studio.ctl(['assets', '--unprotected']);
    t.equal(empty.code, EXIT.ok, 'no assets at all: assets --unprotected exits 0');

    const agent = await makeAgent(t);
    const agentId = await pairAgent(studio, agent);
    const again = await agent.cli(['pair', studio.url, await studio.pairCode(), '--json']);
    t.equal(again.code, EXIT.ok, 'pairing the same laptop again works');
    t.match(JSON.parse(again.stdout) as object, { agentId, renewed: true }, 'the studio renewed the same agent');
    const agents = JSON.parse((await studio.ctl(['--json', 'agents'])).stdout) as Array<{ agentId: string }>;
    t.same(
      agents.map((a) => a.agentId),
      [agentId],
      'no second agent',
    );

    const cards = await tempDir(t, 'cards-');
    await makeCard(
      join(cards, 'a'),
      dcfFiles(2, () => 4096),
    );
    await makeCard(
      join(cards, 'b'),
      dcfFiles(1, () => 2048),
    );
    await ingest(agent, join(cards, 'a'), '2026-11-26-wedding', 'CARD1');
    await ingest(agent, join(cards, 'b'), '2026-11-27-portrait', 'CARD2');
    const sync = await agent.cli(['sync', '--json']);
    t.equal(sync.code, EXIT.ok, 'synced');

    const unprotected = await studio.ctl(['assets', '--unprotected']);
    t.equal(unprotected.code, EXIT.notSafe, 'unprotected assets (no cloud target yet): exit 3');
    t.match(unprotected.stdout, /3 asset\(s\) not yet 3-2-1 safe/, 'and lists them');
    const wedding = JSON.parse(
      (await studio.ctl(['--json', 'assets', '--shoot', '2026-11-26-wedding', '--limit', '1'])).stdout,
    ) as {
      total: number;
      items: unknown[];
      more: boolean;
    };
    t.match(wedding, { total: 2, more: true }, 'total honours the filter');
    t.equal(wedding.items.length, 1, '--limit 1');
    for (const [flag, value, close] of [
      ['--shoot', '2026-11-26-weding', '2026-11-26-wedding'],
      ['--card', 'CARD9', 'CARD1'],
    ] as const) {
      const r = await studio.ctl(['assets', '--unprotected', flag, value]);
      t.equal(r.code, EXIT.error, `${flag} ${value}: an error, exit 1`);
      t.match(
        r.stderr,
        new RegExp(`LEDGER_NOT_FOUND: No ${flag.slice(2)} "${value}".*did you mean[^?]*${close}`),
        `${flag}: names it and the close known name`,
      );
      t.notMatch(r.stdout, /compliant/, `${flag}: never "every asset … is compliant"`);
    }
    const shoots = JSON.parse((await studio.ctl(['--json', 'shoots'])).stdout) as { shoots: unknown[] };
    t.match(shoots.shoots, [
      {
        shoot: '2026-11-26-wedding',
        assets: 2,
        compliant: 0,
        short: { copies: 2, offsite: 2 },
        lacking: { mirror: 0, raid: 0 },
      },
      {
        shoot: '2026-11-27-portrait',
        assets: 1,
        compliant: 0,
        short: { copies: 1, offsite: 1 },
        lacking: { mirror: 0, raid: 0 },
      },
    ]);
    const shootsText = await studio.ctl(['shoots']);
    t.match(shootsText.stdout, /2026-11-26-wedding\s+2\s+0\s.*\n\s+short of: copies 2, offsite 2/, 'shoots as text');
    t.match(
      (await studio.ctl(['agents'])).stdout,
      new RegExp(`${agentId} .* last seen \\d{4}-`),
      'agents shows the last-seen time',
    );

    const laptop = await makeAgent(t);
    const down = await laptop.cli(['pair', `wss://127.0.0.1:${await closedPort()}/v1`, 'ABCDEFGHJK']);
    t.equal(down.code, EXIT.error, 'pair with the studio down: exit 1');
    t.match(
      down.stderr,
      /LINK_UNREACHABLE: .*this laptop is not paired.*run the same `field-agent pair` again/,
      'advice that fits pairing',
    );
    t.notMatch(down.stderr, /resumes by itself/, 'not the sync advice');
    t.notOk((await readdir(laptop.dataDir)).includes('studio'), 'no pairing was saved');
  },
);

t.test(
  "studiod's log stays one JSON object a line with a cloud target (the AWS SDK's Node warning included)",
  async (t) => {
    const studio = await startStudiod(t, {
      cloud: [
        {
          name: 'east',
          endpoint: `http://127.0.0.1:${await closedPort()}`,
          region: 'us-east-1',
          bucket: 'b',
          accessKeyId: 'k',
          secretAccessKey: 's',
          storageClass: 'STANDARD',
          media: 'cloud-ssd',
          location: 'cloud-east',
          forcePathStyle: true,
        },
      ],
    });
    await studio.ctl(['status']);
    await studio.kill('SIGTERM');
    const lines = studio.log.split('\n').filter((l) => l !== '');
    const notJson = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    t.same(notJson, [], 'every line is JSON');
    if (Number(process.versions.node.split('.')[0]) < 22)
      t.ok(
        lines.some((l) => l.includes('"msg":"NodeVersionSupportWarning"')),
        'the SDK warning (this Node is older than the SDK will require) is a log record',
      );
  },
);
