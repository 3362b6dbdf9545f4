/**
 * The studio daemon assembled: TLS identity, catalogue, staging, committer,
 * link server and control socket, with an explicit lifecycle
 * (`await studio.open()`, `await studio.close()`).
 *
 * Start order: catalogue → control socket (every command answered with STUDIO_STARTING and
 * how far the start is, e.g. a ledger rebuild's share, until the end of open) → sweep temp
 * files of commits interrupted by a crash → ledger → restore (sweeps temps of interrupted
 * restores, watches archive requests) → staging → link server → the control socket's
 * commands. Close order is the reverse; in-flight
 * commits finish (or are aborted and leave only temps that the next start sweeps).
 */
import { chmod, mkdir, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import {
  PAIRING_CODE_TTL_MS,
  createLogger,
  generatePairingCode,
  type Logger,
  type RecentError,
} from '@studio321/protocol';
import { sweepStaleTemps } from '@studio321/protocol/durable';
import { Catalogue } from './catalogue.js';
import { Committer, type CommittedAsset } from './commit/commit.js';
import { LOCAL_TARGETS, type StudiodConfig } from './config.js';
import { ControlSocket } from './control-socket.js';
import { STUDIO_CODES, StudioError } from './errors.js';
import { LedgerService } from './ledger/service.js';
import { recountShare, type StudioStatus } from './ledger/status-report.js';
import { LinkServer } from './link/server.js';
import { Alerts, type AlertsOptions } from './ops/alerts.js';
import { Metrics } from './ops/metrics.js';
import { RestoreService, type RestoreServiceOptions } from './recovery/restore.js';
import { Staging } from './commit/staging.js';
import { StudioMhl } from './commit/mhl-history.js';
import { checkTarget } from './commit/target-check.js';
import { loadOrCreateTlsIdentity, type TlsIdentity } from './link/tls-identity.js';
import { S3Sink, type CloudSink } from './cloud/s3-sink.js';
import { cloudTargetsOf } from './config.js';
import {
  SnapshotScheduler,
  lastSnapshot,
  markRebuildServed,
  pairingsPath,
  reconcilePairings,
  refuseUnsafeStart,
  writePairings,
} from './recovery/index.js';

export const STUDIOD_SOFTWARE = 'studiod/0.1.0';

/**
 * The state directory and the catalogue hold what only studiod may read (a live pairing code,
 * the agents' keys): studiod makes them 0700 and their files 0600 itself, whatever the umask it
 * was started with (outside the systemd unit, 022 leaves them world-readable). A directory it
 * cannot change (another owner) is left as it is, with a warning.
 */
async function restrictDir(dir: string, log: Logger): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    for (const e of await readdir(dir, { withFileTypes: true })) if (e.isFile()) await chmod(join(dir, e.name), 0o600);
  } catch (err) {
    log.warn({ err, dir }, 'could not restrict the modes of a state directory to its owner (0700/0600)');
  }
}

export interface StudioOptions {
  config: StudiodConfig;
  log?: Logger;
  now?: () => number;
  /** Heartbeat/auth timing overrides (tests). */
  timing?: { authTimeoutMs?: number; pingIntervalMs?: number; deadLinkMs?: number };
  /** Called after every commit (the cloud forwarder's hook). */
  onCommitted?: (asset: CommittedAsset) => Promise<void> | void;
  /** Ledger/cloud overrides (tests): cloud retry timing, sink factory, availability check period. */
  ledger?: Pick<ConstructorParameters<typeof LedgerService>[0], 'cloudOptions' | 'availabilityIntervalMs'>;
  /** Restore overrides (tests): sink factory (default: the ledger's cloud sink factory), watcher period. */
  recovery?: Partial<Pick<RestoreServiceOptions, 'sinkFactory' | 'pendingPollMs' | 'concurrency'>>;
  /** `studiod --new-identity`: make a new TLS identity when none survived, even with agents paired. */
  newIdentity?: boolean;
  /** Alert overrides (tests): delivery retry timing, the free-space trend's window, no timer. */
  alerts?: Pick<AlertsOptions, 'delivery' | 'trend'> & { timer?: boolean };
}

export class Studio {
  readonly config: StudiodConfig;
  readonly log: Logger;
  readonly #now: () => number;
  readonly #opts: StudioOptions;
  readonly #abort = new AbortController();
  #tls: TlsIdentity | undefined;
  #catalogue: Catalogue | undefined;
  #staging: Staging | undefined;
  #committer: Committer | undefined;
  /** The studio folders' ASC MHL histories. */
  #mhl: StudioMhl | undefined;
  #link: LinkServer | undefined;
  #control: ControlSocket | undefined;
  /** Ledger, cloud forwarder, verify. */
  #ledger: LedgerService | undefined;
  /** Restore and the archive restore requests. */
  #restore: RestoreService | undefined;
  #startedAt = 0;
  #snapshots: SnapshotScheduler | undefined;
  #snapshotSinks: CloudSink[] = [];
  #alerts: Alerts | undefined;
  #metrics: Metrics | undefined;
  #onError: ((e: RecentError) => void) | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;

  constructor(opts: StudioOptions) {
    this.#opts = opts;
    this.config = opts.config;
    this.log = opts.log ?? createLogger({ name: 'studiod' });
    this.#now = opts.now ?? Date.now;
  }

  get port(): number {
    return this.#link?.port ?? 0;
  }

  get fingerprint(): string {
    if (this.#tls === undefined) throw new TypeError('Studio not open');
    return this.#tls.fingerprint;
  }

  /** The ledger, cloud forwarder and verify. */
  get ledger(): LedgerService {
    if (this.#ledger === undefined) throw new TypeError('Studio not open');
    return this.#ledger;
  }

  /** Restore (and its pending archive requests). */
  get restore(): RestoreService {
    if (this.#restore === undefined) throw new TypeError('Studio not open');
    return this.#restore;
  }

  /** The alert service (ops/alerts.ts). */
  get alerts(): Alerts {
    if (this.#alerts === undefined) throw new TypeError('Studio not open');
    return this.#alerts;
  }

  /** The Prometheus endpoint, when `metrics` is configured. */
  get metrics(): Metrics | undefined {
    return this.#metrics;
  }

  get catalogue(): Catalogue {
    if (this.#catalogue === undefined) throw new TypeError('Studio not open');
    return this.#catalogue;
  }

  /** The control socket, so later modules can register commands before/after open. */
  get control(): ControlSocket {
    if (this.#control === undefined) throw new TypeError('Studio not open');
    return this.#control;
  }

  async open(): Promise<void> {
    const c = this.config;
    this.#startedAt = this.#now();
    await restrictDir(c.stateDir, this.log);
    const catalogue = new Catalogue(c.catalogue);
    await catalogue.open();
    this.#catalogue = catalogue;
    await restrictDir(c.catalogue, this.log);
    // Answering from here on: a start that takes long (a ledger rebuild of millions of assets)
    // says so and how far it is, instead of looking like a studiod that is not running.
    let phase = 'reading the catalogue';
    this.#control = new ControlSocket(c.controlSocket, this.log);
    this.#control.starting = () => {
      const r = this.#ledger?.ledger.recounting();
      return r === null || r === undefined
        ? phase
        : `rebuilding the 3-2-1 ledger from the catalogue, ${recountShare(r)}, since ${new Date(r.since).toISOString()}`;
    };
    await this.#control.open();
    // Pairings live in <stateDir>/pairings.json too: a lost catalogue does not unpair every laptop.
    const pairings = pairingsPath(c.stateDir);
    const { restored } = await reconcilePairings(catalogue, pairings, this.#now());
    if (restored > 0) this.log.info({ agents: restored, from: pairings }, 'pairings restored from the pairing store');
    // After the pairings: an identity that did not survive is made again only when no agent pinned it.
    this.#tls = await loadOrCreateTlsIdentity(c.tls.key, c.tls.cert, {
      pairedAgents: (await catalogue.listAgents()).filter((a) => a.revokedAt === undefined).length,
      newIdentity: this.#opts.newIdentity === true,
      log: this.log,
      now: this.#now,
    });
    catalogue.setAgentsListener((agents) =>
      writePairings(pairings, agents, this.#now()).catch((err: unknown) => {
        this.log.error({ err }, 'the pairing store could not be written; it is rewritten at the next start');
      }),
    );
    // An empty catalogue over full targets, or a rebuild left half done: refuse to serve.
    await refuseUnsafeStart(catalogue, c);
    await markRebuildServed(catalogue);
    for (const intent of await catalogue.intents()) {
      for (const dir of intent.dirs) {
        const n = await sweepStaleTemps(dir).catch((err: unknown) => {
          this.log.warn({ err, dir }, 'could not sweep temp files of an interrupted commit');
          return 0;
        });
        if (n > 0) this.log.info({ dir, removed: n, hash: intent.hash }, 'removed temp files of an interrupted commit');
      }
      await catalogue.clearIntent(intent.id);
    }
    // Before anything commits or uploads: the metrics count from the first event.
    const metrics = c.metrics === undefined ? undefined : new Metrics(this.log);
    this.#metrics = metrics;
    if (metrics !== undefined) {
      this.#onError = (e: RecentError) => metrics.observeError(e);
      this.log.lastErrors.on('push', this.#onError);
    }
    // The ledger's and the cloud queue's hooks must be in place before anything commits.
    this.#ledger = new LedgerService({
      config: c,
      catalogue,
      log: this.log,
      now: this.#now,
      ...(this.#opts.ledger ?? {}),
      ...(metrics === undefined ? {} : { onCloudEvent: (e) => metrics.observeCloud(e) }),
    });
    phase = 'opening the 3-2-1 ledger';
    await this.#ledger.open();
    phase = 'opening the link, the recovery and the alerts';
    const ledger = this.#ledger;
    const sinkFactory = this.#opts.recovery?.sinkFactory ?? this.#opts.ledger?.cloudOptions?.sinkFactory;
    this.#restore = new RestoreService({
      config: c,
      catalogue,
      log: this.log,
      now: this.#now,
      findAssets: (q) => ledger.findAssets(q),
      ...(sinkFactory === undefined ? {} : { sinkFactory }),
      ...(this.#opts.recovery?.pendingPollMs === undefined ? {} : { pendingPollMs: this.#opts.recovery.pendingPollMs }),
      ...(this.#opts.recovery?.concurrency === undefined ? {} : { concurrency: this.#opts.recovery.concurrency }),
    });
    await this.#restore.open();
    this.#staging = new Staging(
      c.targets.mirror.root,
      async () => {
        await checkTarget('mirror', c.targets.mirror, catalogue.hasCopiesOn('mirror'), this.#now);
      },
      { perSession: c.staging.maxFilesPerSession, total: c.staging.maxFiles },
    );
    await this.#staging.sweepCommitted(async (hash) => (await catalogue.getAsset(hash)) !== undefined);
    await this.#startStagingExpiry(this.#staging);
    this.#mhl = new StudioMhl({ catalogue, targets: c.targets, log: this.log, now: this.#now });
    await this.#mhl.open();
    const mhl = this.#mhl;
    this.#committer = new Committer({
      catalogue,
      targets: c.targets,
      mhl,
      now: this.#now,
      signal: this.#abort.signal,
      onTargetCheck: (t, err) => this.#ledger?.availability.note(t, err),
      onDamagedCopy: (d) => this.ledger.moveDamagedAside(d),
      onCommitted: async (asset) => {
        metrics?.observeCommit(asset.ms);
        await this.#opts.onCommitted?.(asset);
      },
    });
    this.#link = new LinkServer({
      host: c.listen.host,
      port: c.listen.port,
      tls: this.#tls,
      windowBytes: c.windowBytes,
      catalogue,
      staging: this.#staging,
      committer: this.#committer,
      log: this.log,
      software: STUDIOD_SOFTWARE,
      now: this.#now,
      preAuth: {
        maxTotal: c.link.maxUnauthenticated,
        maxPerAddress: c.link.maxUnauthenticatedPerAddress,
        deadlineMs: Math.round(c.link.handshakeSeconds * 1000),
      },
      pairing: {
        maxRefusals: c.pairing.maxRefusals,
        maxRefusalsTotal: c.pairing.maxRefusalsTotal,
        lockoutMs: Math.round(c.pairing.lockoutMinutes * 60_000),
      },
      verdicts: (agentId, hashes) => ledger.agentVerdicts(agentId, hashes),
      mhl: (agentId, g) => mhl.receiveAgentGeneration(agentId, g),
      ...(this.#opts.timing ?? {}),
    });
    await this.#link.open();
    const snapshotSinkFactory = this.#opts.ledger?.cloudOptions?.sinkFactory;
    this.#snapshotSinks = cloudTargetsOf(c).map((t) => snapshotSinkFactory?.(t) ?? new S3Sink(t));
    for (const s of this.#snapshotSinks) await s.open();
    this.#snapshots = new SnapshotScheduler({
      catalogue,
      config: c,
      sinks: this.#snapshotSinks,
      software: STUDIOD_SOFTWARE,
      now: this.#now,
      log: this.log,
    });
    await this.#snapshots.open();
    const sources = { catalogue, ledger, status: () => this.status(), now: this.#now };
    this.#alerts = new Alerts({
      ...sources,
      config: c.alerts,
      log: this.log,
      studio: () => ({ software: STUDIOD_SOFTWARE, fingerprint: this.fingerprint }),
      ...(this.#opts.alerts?.delivery === undefined ? {} : { delivery: this.#opts.alerts.delivery }),
      ...(this.#opts.alerts?.trend === undefined ? {} : { trend: this.#opts.alerts.trend }),
    });
    await this.#alerts.open();
    const alerts = this.#alerts;
    metrics?.attach({ ...sources, alerts: () => alerts.list() });
    this.#registerCommands(this.#control);
    this.#control.starting = undefined;
    await this.#ledger.availability.check();
    this.#ledger.startAvailabilityChecks();
    this.#ledger.startRecovery();
    if (this.#opts.alerts?.timer !== false) this.#alerts.start();
    if (metrics !== undefined && c.metrics !== undefined) await metrics.listen(c.metrics.host, c.metrics.port);
    this.log.info(
      { port: this.port, host: c.listen.host, fingerprint: this.#tls.fingerprint, controlSocket: c.controlSocket },
      'listening',
    );
  }

  /**
   * Partials nobody wrote for `staging.expireHours` are removed at start and then every quarter
   * of that age (at most hourly): an agent that never comes back, or an insider, cannot fill the
   * mirror with them.
   */
  async #startStagingExpiry(staging: Staging): Promise<void> {
    const maxAgeMs = this.config.staging.expireHours * 3_600_000;
    if (maxAgeMs <= 0) return;
    const sweep = async (): Promise<void> => {
      const removed = await staging.sweepExpired(maxAgeMs, this.#now()).catch((err: unknown) => {
        this.log.warn({ err }, 'could not remove expired staging partials; tried again later');
        return 0;
      });
      if (removed > 0)
        this.log.info({ removed, expireHours: this.config.staging.expireHours }, 'expired staging partials removed');
    };
    await sweep();
    this.#expiryTimer = setInterval(() => void sweep(), Math.max(1000, Math.min(maxAgeMs / 4, 3_600_000)));
    this.#expiryTimer.unref();
  }

  async close(): Promise<void> {
    await this.#metrics?.close();
    if (this.#onError !== undefined) this.log.lastErrors.off('push', this.#onError);
    clearInterval(this.#expiryTimer);
    await this.#control?.close();
    await this.#link?.close();
    await this.#committer?.close(); // its small-commit worker: the link's commits have settled
    await this.#mhl?.close();
    this.#abort.abort();
    await this.#restore?.close();
    await this.#snapshots?.close();
    await this.#alerts?.close();
    for (const s of this.#snapshotSinks) await s.close().catch(() => undefined);
    await this.#ledger?.close();
    await this.#catalogue?.close();
  }

  #registerCommands(ctl: ControlSocket): void {
    ctl.register('pair', async () => {
      const code = generatePairingCode();
      const createdAt = this.#now();
      const expiresAt = createdAt + PAIRING_CODE_TTL_MS;
      await this.catalogue.putPairingCode({ code, createdAt, expiresAt });
      this.#link?.pairingCodeCreated();
      return { code, expiresAt, fingerprint: this.fingerprint, port: this.port };
    });
    ctl.register('agents', async () => {
      const connected = new Set((this.#link?.sessions() ?? []).map((s) => s.agentId));
      return (await this.catalogue.listAgents()).map((a) => ({ ...a, connected: connected.has(a.agentId) }));
    });
    ctl.register('revoke', async (args) => {
      const id = args['agentId'];
      if (typeof id !== 'string' || !(await this.catalogue.revokeAgent(id, this.#now()))) {
        throw new StudioError(
          STUDIO_CODES.controlRequest,
          `No agent ${JSON.stringify(id)}. List agents with \`studioctl agents\`.`,
        );
      }
      const disconnected = this.#link?.disconnectAgent(id) ?? 0; // a revoked agent keeps no live session
      return { agentId: id, revoked: true, disconnected };
    });
    ctl.register('status', async () => {
      const report = this.#ledger === undefined ? await this.status() : await this.#ledger.report(await this.status());
      return { ...report, lastSnapshot: await lastSnapshot(this.catalogue) };
    });
    ctl.register('catalogue-snapshot', async () => {
      if (this.#snapshots === undefined) throw new TypeError('Studio not open');
      return this.#snapshots.snapshotNow();
    });
    this.#ledger?.registerCommands(ctl);
    this.#alerts?.registerCommands(ctl);
    this.#restore?.registerCommands(ctl);
  }

  /** The daemon's own status (the ledger adds to it: LedgerService.report): counters, sessions, targets, staging, last errors. */
  async status(): Promise<StudioStatus> {
    const targets: StudioStatus['targets'] = {};
    for (const t of LOCAL_TARGETS) {
      const cfg = this.config.targets[t];
      let free: number | null = null;
      try {
        const s = await statfs(cfg.root);
        free = s.bavail * s.bsize;
      } catch {
        free = null;
      }
      targets[t] = {
        root: cfg.root,
        device: cfg.device,
        media: cfg.media,
        location: cfg.location,
        freeBytes: free,
        available: free !== null,
      };
    }
    const staging = await (this.#staging?.list() ?? Promise.resolve([]));
    return {
      software: STUDIOD_SOFTWARE,
      startedAt: this.#startedAt,
      port: this.port,
      fingerprint: this.fingerprint,
      counters: this.catalogue.counters(),
      sessions: this.#link?.sessions() ?? [],
      targets,
      staging: { files: staging.length, bytes: staging.reduce((a, s) => a + s.bytes, 0) },
      commitsInFlight: this.#committer?.inFlight ?? 0,
      lastErrors: this.log.lastErrors.list(),
      memory: process.memoryUsage(),
      ...(this.#link === undefined ? {} : { link: this.#link.memory() }),
    };
  }
}
