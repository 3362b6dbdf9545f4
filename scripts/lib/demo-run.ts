/**
 * The demo's steps as a class, so `npm run demo` and the ledger tests drive
 * the same real processes: a generated sample card set, a real s3rver on
 * loopback (two buckets: a STANDARD hot copy and a DEEP_ARCHIVE tape-class
 * copy), studiod with mirror + RAID under `<dir>/`, one paired field agent,
 * `field-agent ingest` + `field-agent sync`, then cloud forwarding.
 *
 * Everything runs as child processes of this one; `stop()` ends each of them
 * by its pid (SIGTERM, then SIGKILL after a grace period).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EXIT } from '@studio321/protocol';
import { makeDualSlotPair, makeTestCard, makeTwoBodyCards, type CardFile } from '../make-test-card.js';

/** The repository root: the nearest parent with the workspace's package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'studio321')
      return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the studio321 repository root');
    dir = up;
  }
}

const ROOT = repoRoot();
export const BINS = {
  studiod: join(ROOT, 'studiod', 'dist', 'bin', 'studiod.js'),
  studioctl: join(ROOT, 'studiod', 'dist', 'bin', 'studioctl.js'),
  agent: join(ROOT, 'agent', 'dist', 'bin', 'field-agent.js'),
  s3rver: join(ROOT, 'scripts', 'dist', 'lib', 's3rver-child.js'),
} as const;

/** s3rver's built-in account (it checks the access key id). */
const S3_KEY = 'S3RVER';

export interface SampleCard {
  dir: string;
  label: string;
  files: CardFile[];
  what: string;
}

export interface DemoOptions {
  /** Working folder (wiped at start). */
  dir: string;
  /** Size of each RAW file; the demo default gives ~40 files, ~60 MB. */
  rawSize?: number;
  shoot?: string;
  /** Step lines (default: stdout). */
  say?: (line: string) => void;
}

export interface RunOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const DEMO_SHOOT = '2026-11-26-wedding';

export class DemoRun {
  readonly dir: string;
  readonly paths: {
    cards: string;
    mirror: string;
    raid: string;
    state: string;
    s3: string;
    agent: string;
    config: string;
    studiodLog: string;
  };
  readonly cards: SampleCard[] = [];
  readonly shoot: string;
  studiodPort = 0;
  s3Port = 0;
  readonly #rawSize: number;
  readonly #say: (line: string) => void;
  readonly #children = new Set<ChildProcess>();
  readonly #logListeners = new Set<(chunk: string) => void>();
  #studiod: ChildProcess | undefined;
  #s3: ChildProcess | undefined;

  constructor(opts: DemoOptions) {
    this.dir = resolve(opts.dir);
    this.shoot = opts.shoot ?? DEMO_SHOOT;
    this.#rawSize = opts.rawSize ?? 4 * 1024 * 1024;
    this.#say = opts.say ?? ((l) => process.stdout.write(`${l}\n`));
    const d = this.dir;
    this.paths = {
      cards: join(d, 'cards'),
      mirror: join(d, 'studio', 'mirror'),
      raid: join(d, 'studio', 'raid'),
      state: join(d, 'studio', 'state'),
      s3: join(d, 's3'),
      agent: join(d, 'laptop'),
      config: join(d, 'studiod.json'),
      studiodLog: join(d, 'studiod.log'),
    };
  }

  get controlSocket(): string {
    return join(this.paths.state, 'control.sock');
  }

  get s3Endpoint(): string {
    return `http://127.0.0.1:${this.s3Port}`;
  }

  /** Wipe the working folder (a previous run's studiod must be stopped: its catalogue lock would refuse us anyway). */
  async prepare(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    for (const p of [
      this.paths.cards,
      this.paths.mirror,
      this.paths.raid,
      this.paths.state,
      this.paths.s3,
      this.paths.agent,
    ])
      await mkdir(p, { recursive: true });
  }

  /** A card with RAW+JPEG pairs, sidecars, video; a dual-slot pair; two bodies writing the same names. */
  async makeCards(): Promise<{ files: number; bytes: number }> {
    const raw = this.#rawSize;
    const add = async (label: string, what: string, make: (dir: string) => Promise<CardFile[]>): Promise<void> => {
      const dir = join(this.paths.cards, label);
      this.cards.push({ dir, label, what, files: await make(dir) });
    };
    await add('EOS-R5', 'RAW+JPEG pairs, XMP sidecars, DCF 9999→0001 wrap, Sony and GoPro video with sidecars', (d) =>
      makeTestCard(d, { rawSize: raw, seed: 11 }),
    );
    const slot1 = join(this.paths.cards, 'A7IV-SLOT1');
    const slot2 = join(this.paths.cards, 'A7IV-SLOT2');
    const [s1, s2] = await makeDualSlotPair(slot1, slot2, { rawSize: raw >> 1, seed: 12 });
    this.cards.push({ dir: slot1, label: 'A7IV-SLOT1', files: s1, what: 'dual slot, card 1' });
    this.cards.push({
      dir: slot2,
      label: 'A7IV-SLOT2',
      files: s2,
      what: 'dual slot, card 2 (same images: stored once)',
    });
    const bodyA = join(this.paths.cards, 'BODY-A');
    const bodyB = join(this.paths.cards, 'BODY-B');
    const [a, b] = await makeTwoBodyCards(bodyA, bodyB, { rawSize: raw >> 1, seed: 13 });
    this.cards.push({ dir: bodyA, label: 'R6-BODY-A', files: a, what: 'second body, same file names…' });
    this.cards.push({ dir: bodyB, label: 'R6-BODY-B', files: b, what: '…different content (kept apart by hash)' });
    let files = 0;
    let bytes = 0;
    for (const c of this.cards)
      for (const f of c.files) {
        files++;
        bytes += f.size;
      }
    return { files, bytes };
  }

  #spawn(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Run a command to completion. */
  run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunOutput> {
    return new Promise((resolvePromise, reject) => {
      const child = this.#spawn(bin, args, env);
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.once('error', reject);
      child.once('close', (code) => resolvePromise({ code, stdout, stderr }));
    });
  }

  async #must(
    what: string,
    bin: string,
    args: string[],
    env: NodeJS.ProcessEnv = {},
    ok: readonly number[] = [EXIT.ok],
  ): Promise<RunOutput> {
    const r = await this.run(bin, args, env);
    if (r.code === null || !ok.includes(r.code))
      throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    return r;
  }

  async startS3(): Promise<void> {
    const child = this.#spawn(BINS.s3rver, [this.paths.s3, '0', 'cloud-east', 'cloud-west']);
    this.#s3 = child;
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    this.s3Port = await new Promise<number>((ok, fail) => {
      let err = '';
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        err += d;
      });
      child.once('exit', (code) => fail(new Error(`s3rver exited with ${code} before listening: ${err}`)));
      lines.once('line', (line) => ok((JSON.parse(line) as { port: number }).port));
    });
  }

  studiodConfig(): Record<string, unknown> {
    const cloud = (name: string, storageClass: string, media: string, location: string): Record<string, unknown> => ({
      name,
      endpoint: this.s3Endpoint,
      region: 'us-east-1',
      bucket: name,
      accessKeyId: S3_KEY,
      secretAccessKey: S3_KEY,
      storageClass,
      media,
      location,
      forcePathStyle: true,
      concurrency: 2,
    });
    return {
      listen: { host: '127.0.0.1', port: this.studiodPort },
      stateDir: this.paths.state,
      targets: {
        mirror: { root: this.paths.mirror, media: 'hdd', location: 'studio', device: 'workstation-mirror' },
        raid: { root: this.paths.raid, media: 'raid-hdd', location: 'studio', device: 'raid-array' },
      },
      cloud: [
        cloud('cloud-east', 'STANDARD', 'cloud-ssd', 'cloud-east'),
        cloud('cloud-west', 'DEEP_ARCHIVE', 'tape', 'cloud-west'),
      ],
      policy: { copies: 3, media: 2, offsite: 1 },
      log: { level: 'info' },
    };
  }

  async startStudiod(): Promise<{ port: number; fingerprint: string }> {
    await writeFile(this.paths.config, `${JSON.stringify(this.studiodConfig(), null, 2)}\n`);
    const child = this.#spawn(BINS.studiod, ['--config', this.paths.config]);
    this.#studiod = child;
    let log = '';
    child.stdout?.resume();
    child.stderr?.setEncoding('utf8');
    const listening = await new Promise<{ port: number; fingerprint: string }>((ok, fail) => {
      const onData = (d: string): void => {
        log += d;
        const line = log.split('\n').find((l) => l.includes('"msg":"listening"'));
        if (line !== undefined) {
          child.stderr?.off('data', onData);
          child.off('exit', onExit);
          ok(JSON.parse(line) as { port: number; fingerprint: string });
        }
      };
      const onExit = (code: number | null): void => fail(new Error(`studiod exited with ${code}:\n${log}`));
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
    });
    // Keep its log (JSON lines) in a file for whoever wants to look.
    await writeFile(this.paths.studiodLog, log);
    child.stderr?.on('data', (d: string) => {
      void writeFile(this.paths.studiodLog, d, { flag: 'a' });
      for (const l of this.#logListeners) l(d);
    });
    this.studiodPort = listening.port;
    return listening;
  }

  studioctl(args: string[]): Promise<RunOutput> {
    return this.run(BINS.studioctl, ['--socket', this.controlSocket, ...args]);
  }

  async studioctlJson<T>(args: string[]): Promise<T> {
    // `assets --unprotected` exits 3 when it lists any: a finding, not a failure of the command.
    const ok = args.includes('--unprotected') ? [EXIT.ok, EXIT.notSafe] : [EXIT.ok];
    const r = await this.#must(
      `studioctl ${args.join(' ')}`,
      BINS.studioctl,
      ['--socket', this.controlSocket, '--json', ...args],
      {},
      ok,
    );
    return JSON.parse(r.stdout) as T;
  }

  agent(args: string[]): Promise<RunOutput> {
    return this.run(BINS.agent, [...args, '--data-dir', this.paths.agent], { FIELD_AGENT_HOME: this.paths.agent });
  }

  async pair(): Promise<string> {
    const { code, fingerprint } = await this.studioctlJson<{ code: string; fingerprint: string }>(['pair']);
    const r = await this.agent([
      'pair',
      `wss://127.0.0.1:${this.studiodPort}/v1`,
      code,
      '--fingerprint',
      fingerprint,
      '--name',
      'demo-laptop',
      '--json',
    ]);
    if (r.code !== 0) throw new Error(`field-agent pair failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    const last = r.stdout.trim().split('\n').pop() ?? '{}';
    return (JSON.parse(last) as { agentId: string }).agentId;
  }

  async ingest(card: SampleCard): Promise<string> {
    const r = await this.agent(['ingest', card.dir, '--shoot', this.shoot, '--card-label', card.label]);
    if (r.code !== 0)
      throw new Error(`field-agent ingest ${card.label} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    return r.stdout.trim().split('\n')[0] ?? '';
  }

  async sync(): Promise<string> {
    const r = await this.agent(['sync']);
    if (r.code !== 0) throw new Error(`field-agent sync failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  }

  /**
   * Tests' common start: the cards made, s3rver and studiod started, the agent paired, every card ingested
   * and synced, and the cloud uploads settled. Returns the cards' totals and the settled status.
   */
  async syncedStudio(cloudTimeoutMs = 90_000): Promise<{ files: number; bytes: number; settled: DemoStatus }> {
    await this.prepare();
    const made = await this.makeCards();
    await this.startS3();
    await this.startStudiod();
    await this.pair();
    for (const c of this.cards) await this.ingest(c);
    await this.sync();
    return { ...made, settled: await this.waitForCloud(cloudTimeoutMs) };
  }

  /** Poll the status until every asset is compliant and the upload queues are empty (or the time is up). */
  async waitForCloud(timeoutMs: number, onProgress?: (s: DemoStatus) => void): Promise<DemoStatus> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const s = await this.studioctlJson<DemoStatus>(['status']);
      const pending = s.targetReport.filter((t) => t.kind === 'cloud').reduce((a, t) => a + (t.queue?.pending ?? 0), 0);
      const line = `${s.ledger.compliant}/${s.ledger.assets} compliant, ${pending} upload(s) pending`;
      if (line !== last) {
        onProgress?.(s);
        last = line;
      }
      if (s.ledger.assets > 0 && pending === 0 && s.ledger.compliant === s.ledger.assets) return s;
      const parked = s.targetReport.some((t) => (t.queue?.parked ?? 0) > 0);
      if (parked || Date.now() > deadline) return s;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Called with each chunk of studiod's log (JSON lines) after it listens, across restarts (tests wait on its events). */
  onStudiodLog(fn: (chunk: string) => void): () => void {
    this.#logListeners.add(fn);
    return () => this.#logListeners.delete(fn);
  }

  /** SIGTERM studiod alone (it closes its catalogue), SIGKILL it if it has not exited after `graceMs`. */
  async stopStudiod(graceMs = 5000): Promise<void> {
    const child = this.#studiod;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** SIGTERM each child we started, SIGKILL it if it has not exited after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    const order = [
      this.#studiod,
      ...[...this.#children].filter((c) => c !== this.#studiod && c !== this.#s3),
      this.#s3,
    ];
    for (const child of order) {
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
  }

  /** Crash tests: SIGKILL studiod and wait until it has exited. */
  async killStudiod(): Promise<void> {
    const child = this.#studiod;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Calls `fn` with every log line the running studiod writes from now on. */
  onStudiodLine(fn: (line: string) => void): void {
    let rest = '';
    this.#studiod?.stderr?.on('data', (d: string) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) fn(l);
    });
  }

  /** Synchronous last resort (process exit): SIGKILL whatever is still running. */
  killNow(): void {
    for (const child of this.#children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** The part of `studioctl status --json` the demo reads. */
export interface DemoStatus {
  ledger: { assets: number; bytes: number; compliant: number; notCompliant: number };
  targetReport: Array<{
    target: string;
    kind: string;
    copies: number;
    missing: { count: number } | null;
    queue?: { pending: number; parked: number; lastError: { code: string; message: string } | null };
  }>;
}
