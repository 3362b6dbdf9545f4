/**
 * Test harness for the link and the studio: a real studiod child process, real
 * field-agent child processes, a real TCP proxy that can cut the link, card
 * generation, and on-disk checks. Every test gets its own temp dir and port 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalTargetConfig, LocalTargetName } from '@studio321/studiod';
import { waitFor } from './wait-for.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const STUDIOD_BIN = join(ROOT, 'studiod', 'dist', 'bin', 'studiod.js');
export const STUDIOCTL_BIN = join(ROOT, 'studiod', 'dist', 'bin', 'studioctl.js');
export const AGENT_BIN = join(ROOT, 'agent', 'dist', 'bin', 'field-agent.js');

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export { waitFor };

/** SHA-256 of bytes, hex: an independent check (not BLAKE3, which the code under test computes). */
export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export async function tempDir(t: Teardown, prefix = 'studio321-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function run(
  bin: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

export interface StudioDirs {
  base: string;
  mirror: string;
  raid: string;
  state: string;
  config: string;
}

/** How a studiod child is started, besides its config: more environment, node options before its bin. */
export interface StudiodSpawn {
  env?: NodeJS.ProcessEnv;
  nodeArgs?: string[];
}

export class StudiodProcess {
  readonly dirs: StudioDirs;
  readonly spawnOpts: StudiodSpawn;
  proc: ChildProcess | undefined;
  port = 0;
  fingerprint = '';
  log = '';
  #exit: Promise<void> = Promise.resolve();

  constructor(dirs: StudioDirs, spawnOpts: StudiodSpawn = {}) {
    this.dirs = dirs;
    this.spawnOpts = spawnOpts;
  }

  /** Where studiod stages incoming files: inside the mirror target (studiod/src/staging.ts). */
  get stagingDir(): string {
    return join(this.dirs.mirror, '.s321-staging');
  }

  get url(): string {
    return `wss://127.0.0.1:${this.port}/v1`;
  }

  get controlSocket(): string {
    return join(this.dirs.state, 'control.sock');
  }

  async start(): Promise<void> {
    this.log = '';
    const child = spawn(
      process.execPath,
      [...(this.spawnOpts.nodeArgs ?? []), STUDIOD_BIN, '--config', this.dirs.config],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        ...(this.spawnOpts.env === undefined ? {} : { env: { ...process.env, ...this.spawnOpts.env } }),
      },
    );
    this.proc = child;
    this.#exit = new Promise((r) => child.once('exit', () => r()));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      this.log += d;
    });
    const line = await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`studiod exited ${child.exitCode}: ${this.log}`);
      return this.log.split('\n').find((l) => l.includes('"msg":"listening"'));
    }, 'studiod to listen');
    const rec = JSON.parse(line) as { port: number; fingerprint: string };
    this.port = rec.port;
    this.fingerprint = rec.fingerprint;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc === undefined || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    await this.#exit;
  }

  /** Restart on the same port (agents keep their URL). */
  async restart(): Promise<void> {
    await this.kill();
    await this.writeConfig(this.port);
    await this.start();
  }

  async writeConfig(port = 0, extra: Record<string, unknown> = {}): Promise<void> {
    const cfg = {
      listen: { host: '127.0.0.1', port },
      stateDir: this.dirs.state,
      windowBytes: 1024 * 1024 * 2,
      targets: {
        mirror: { root: this.dirs.mirror, media: 'hdd-mirror', location: 'calgary', device: 'mirror-1' },
        raid: { root: this.dirs.raid, media: 'hdd-raid', location: 'calgary', device: 'raid-1' },
      },
      ...extra,
    };
    await writeFile(this.dirs.config, JSON.stringify(cfg));
  }

  ctl(args: string[]): Promise<RunResult> {
    return run(STUDIOCTL_BIN, ['--socket', this.controlSocket, ...args]);
  }

  async pairCode(): Promise<string> {
    const r = await this.ctl(['--json', 'pair']);
    if (r.code !== 0) throw new Error(`studioctl pair failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { code: string }).code;
  }
}

/** A fresh studio's folders under a temp dir: mirror and RAID roots made, state and config paths named. */
export async function studioDirs(t: Teardown, prefix = 'studiod-'): Promise<StudioDirs> {
  const base = await tempDir(t, prefix);
  const dirs: StudioDirs = {
    base,
    mirror: join(base, 'mirror'),
    raid: join(base, 'raid'),
    state: join(base, 'state'),
    config: join(base, 'studiod.json'),
  };
  await mkdir(dirs.mirror);
  await mkdir(dirs.raid);
  return dirs;
}

export async function startStudiod(
  t: Teardown,
  extra: Record<string, unknown> = {},
  spawnOpts: StudiodSpawn = {},
): Promise<StudiodProcess> {
  const dirs = await studioDirs(t);
  const s = new StudiodProcess(dirs, spawnOpts);
  await s.writeConfig(0, extra);
  await s.start();
  t.teardown(() => s.kill());
  return s;
}

export interface CardFile {
  path: string;
  size: number;
  data?: Buffer;
}

/** Writes a DCF card: DCIM/100CANON/IMG_NNNN.CR3 with random bytes (plus extra files). */
export async function makeCard(dir: string, files: CardFile[]): Promise<void> {
  for (const f of files) {
    const p = join(dir, ...f.path.split('/'));
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, f.data ?? randomBytes(f.size));
  }
}

export function dcfFiles(count: number, sizeOf: (i: number) => number): CardFile[] {
  return Array.from({ length: count }, (_, i) => ({
    path: `DCIM/100CANON/IMG_${String(i + 1).padStart(4, '0')}.CR3`,
    size: sizeOf(i),
  }));
}

export interface Agent {
  dataDir: string;
  cli(args: string[], timeoutMs?: number): Promise<RunResult>;
}

export async function makeAgent(t: Teardown): Promise<Agent> {
  const dataDir = await tempDir(t, 'agent-');
  return {
    dataDir,
    cli: (args, timeoutMs) =>
      run(AGENT_BIN, [...args, '--data-dir', dataDir], {
        env: { FIELD_AGENT_HOME: dataDir },
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      }),
  };
}

export async function pairAgent(studio: StudiodProcess, agent: Agent, url = studio.url): Promise<string> {
  const code = await studio.pairCode();
  const r = await agent.cli(['pair', url, code, '--json']);
  if (r.code !== 0) throw new Error(`pair failed: ${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { agentId: string }).agentId;
}

export async function ingest(agent: Agent, cardDir: string, shoot: string, label: string): Promise<void> {
  const r = await agent.cli(['ingest', cardDir, '--shoot', shoot, '--card-label', label, '--json']);
  if (r.code !== 0) throw new Error(`ingest failed (${r.code}): ${r.stderr}\n${r.stdout}`);
}

/** A running `field-agent run` child (headless, status page on a free port). */
/**
 * One `field-agent sync` that outlives a studiod being killed or stopped again and again (it
 * reconnects with a short backoff); SIGKILLed at teardown if still running.
 */
export function spawnPersistentSync(t: Teardown, agent: Agent): { child: ChildProcess; exited: Promise<void> } {
  const child = spawn(
    process.execPath,
    [AGENT_BIN, 'sync', '--json', '--data-dir', agent.dataDir, '--backoff-ms', '20', '--max-attempts', '1000'],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, exited };
}

export interface RunningAgent {
  child: ChildProcess;
  /** Its log (stderr) so far. */
  log(): string;
  /** Its exit code, once it exits. */
  exited: Promise<number | null>;
  /** The status page origin and the bearer header for its API. */
  origin: string;
  auth: { Authorization: string };
}

/**
 * Starts `field-agent run` for `agent` with a config of `config` (plus statusPort 0, no tray, no
 * volume watching), waits for it to start, and kills it (SIGKILL) at teardown if still running.
 */
export async function startAgentRun(
  t: Teardown,
  agent: Agent,
  config: Record<string, unknown> = {},
): Promise<RunningAgent> {
  const file = join(agent.dataDir, 'run.json');
  await writeFile(file, JSON.stringify({ statusPort: 0, tray: false, watchVolumes: false, ...config }));
  const env: NodeJS.ProcessEnv = { ...process.env, FIELD_AGENT_HOME: agent.dataDir };
  delete env['DISPLAY'];
  delete env['WAYLAND_DISPLAY'];
  const child = spawn(process.execPath, [AGENT_BIN, 'run', '--data-dir', agent.dataDir, '--config', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString('utf8');
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitFor(() => /"event":"started"/.test(log), 'the agent to start');
  const url = new URL((await readFile(join(agent.dataDir, 'status-url'), 'utf8')).trim());
  return {
    child,
    log: () => log,
    exited,
    origin: url.origin,
    auth: { Authorization: `Bearer ${url.searchParams.get('token') ?? ''}` },
  };
}

/** Every regular file under `root` (relative paths), excluding the studio's target marker and the laptop's store marker. */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string, rel: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      // The archive's files only: not the target marker, not the studio's staging area in the mirror,
      // not the ASC MHL histories of the card folders (protocol/src/durable/mhl.ts).
      if (e.isDirectory()) {
        if (!(rel === '' && e.name === '.s321-staging') && e.name !== 'ascmhl') await walk(join(dir, e.name), r);
      } else if (!(rel === '' && (e.name === '.studio321-target.json' || e.name === '.studio321-store.json')))
        out.push(r);
    }
  }
  await walk(root, '');
  return out.sort();
}

/**
 * Files under the targets' final names that are not a complete source file (their SHA-256 is
 * not in `sourceShas`): what a crash must never leave. Temps (`.s321tmp`, swept at restart)
 * are skipped; final files never change, so each one found complete is added to `checked`
 * and not hashed again on the next call.
 */
export async function partialFiles(
  roots: readonly string[],
  sourceShas: ReadonlySet<string> | ReadonlyMap<string, unknown>,
  checked: Set<string>,
): Promise<string[]> {
  const out: string[] = [];
  for (const root of roots)
    for (const rel of await listFiles(root)) {
      const p = join(root, rel);
      if (rel.endsWith('.s321tmp') || checked.has(p)) continue;
      if (sourceShas.has(sha256Hex(await readFile(p)))) checked.add(p);
      else out.push(p);
    }
  return out;
}

export async function fileSize(p: string): Promise<number> {
  return (await stat(p)).size;
}

/**
 * A real TCP proxy between agent and studiod that can cut connections: after
 * `cutAfter()` bytes from the agent side (undefined: never) both sockets are destroyed.
 */
export class CutProxy {
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  cuts = 0;
  connections = 0;
  cutAfter: () => number | undefined = () => undefined;
  /** After this many agent bytes, stop forwarding in both directions but keep both sockets open (a dead link). */
  blackholeAfter: () => number | undefined = () => undefined;
  blackholes = 0;
  readonly upstreamPort: () => number;

  constructor(upstreamPort: () => number) {
    this.upstreamPort = upstreamPort;
  }

  get port(): number {
    return (this.#server!.address() as AddressInfo).port;
  }

  async start(): Promise<void> {
    this.#server = createServer((client) => {
      this.connections++;
      const limit = this.cutAfter();
      const hole = this.blackholeAfter();
      let dead = false;
      const up = connect(this.upstreamPort(), '127.0.0.1');
      this.#sockets.add(client);
      this.#sockets.add(up);
      let seen = 0;
      const cut = (): void => {
        client.destroy();
        up.destroy();
      };
      client.on('data', (d: Buffer) => {
        seen += d.length;
        if (limit !== undefined && seen >= limit) {
          this.cuts++;
          cut();
          return;
        }
        if (hole !== undefined && seen >= hole && !dead) {
          dead = true;
          this.blackholes++;
        }
        if (dead) return;
        if (!up.write(d)) {
          client.pause();
          up.once('drain', () => client.resume());
        }
      });
      up.on('data', (d: Buffer) => {
        if (dead) return;
        if (!client.write(d)) {
          up.pause();
          client.once('drain', () => up.resume());
        }
      });
      client.on('error', cut);
      up.on('error', cut);
      client.on('close', () => {
        up.destroy();
        this.#sockets.delete(client);
      });
      up.on('close', () => {
        client.destroy();
        this.#sockets.delete(up);
      });
    });
    await new Promise<void>((r) => this.#server?.listen(0, '127.0.0.1', r));
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
  }
}

/** In-process tests: the mirror and RAID target configs of a studio whose roots are `<dir>/mirror` and `<dir>/raid`. */
export function localTargets(dir: string): Record<LocalTargetName, LocalTargetConfig> {
  const target = (name: LocalTargetName): LocalTargetConfig => ({
    root: join(dir, name),
    media: `hdd-${name}`,
    location: 'test',
    device: `${name}-1`,
    requireExistingRoot: true,
  });
  return { mirror: target('mirror'), raid: target('raid') };
}
