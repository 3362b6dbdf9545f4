/**
 * The Prometheus endpoint (prom-client): `GET /metrics` on `metrics.host:metrics.port` (loopback by
 * default; off when `metrics` is absent from the config). Gauges are set from one `OpsFigures`
 * reading per scrape; counters and histograms are fed by events (commits, cloud uploads, logged
 * errors). Labels are bounded: target names (config), error codes (the code tables), alert kinds
 * and paired agents — never a file, an asset or a shoot. prom-client's default Node.js metrics are
 * left out: three of them are gauges named `*_total`, which `promtool check metrics` refuses.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger, RecentError } from '@studio321/protocol';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { STUDIO_CODES, StudioError } from '../errors.js';
import { ALERT_KINDS, type AlertRecord } from './alert.js';
import { readFigures, type OpsFigures, type OpsSources } from './figures.js';

const LATENCY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class Metrics {
  readonly registry = new Registry();
  readonly #log: Logger;
  #server: Server | undefined;
  #url = '';
  #sources: (OpsSources & { alerts?: () => AlertRecord[] }) | undefined;
  readonly #g: Record<string, Gauge> = {};
  readonly #commit: Histogram;
  readonly #upload: Histogram<'target'>;
  readonly #uploaded: Counter<'target'>;
  readonly #errors: Counter<'code'>;

  constructor(log: Logger) {
    this.#log = log;
    const r = this.registry;
    const gauge = (name: string, help: string, labelNames: string[] = []): void => {
      this.#g[name] = new Gauge({ name, help, labelNames, registers: [r] });
    };
    gauge('studiod_target_available', 'Local target available (1) or not (0).', ['target']);
    gauge('studiod_target_copies', 'Verified copies recorded on the archive target.', ['target']);
    gauge('studiod_target_bytes', 'Bytes of the verified copies on the archive target.', ['target']);
    gauge('studiod_target_free_bytes', 'Free space of the local target (bytes available to studiod).', ['target']);
    gauge('studiod_cloud_queue_jobs', 'Upload jobs not yet counted (parked included).', ['target']);
    gauge('studiod_cloud_queue_bytes', 'Bytes of the upload jobs not yet counted.', ['target']);
    gauge('studiod_cloud_parked_jobs', 'Upload jobs stopped on a permanent error.', ['target']);
    gauge('studiod_cloud_uploading_jobs', 'Uploads running now.', ['target']);
    gauge(
      'studiod_cloud_window_open',
      'The cloud target may upload now (1; also without windows) or waits for its next upload window (0).',
      ['target'],
    );
    gauge('studiod_assets', 'Assets in the catalogue.');
    gauge('studiod_assets_compliant', 'Assets that meet the 3-2-1 policy.');
    gauge('studiod_assets_unprotected', 'Assets below the 3-2-1 policy.');
    gauge('studiod_assets_unprotected_bytes', 'Bytes of the assets below the 3-2-1 policy.');
    gauge(
      'studiod_ledger_recounting',
      'A recount of the 3-2-1 verdicts after a target availability change is under way (1): the compliant/unprotected gauges keep the values of before it until it ends.',
    );
    gauge('studiod_scrub_pass_assets', 'Assets checked so far by the scrub pass under way.', ['target']);
    gauge('studiod_scrub_pass_ratio', 'Share of the assets the scrub pass under way has checked (0..1).', ['target']);
    gauge('studiod_scrub_last_full_timestamp_seconds', 'End of the last full scrub pass (unix seconds).', ['target']);
    gauge('studiod_agents_paired', 'Paired agents (not revoked).');
    gauge('studiod_agents_connected', 'Agents with a live session.');
    gauge('studiod_agent_last_seen_timestamp_seconds', 'When the agent was last seen (unix seconds).', ['agent']);
    gauge('studiod_agent_unsynced_files', 'Files the agent reported not yet sent to the studio.', ['agent']);
    gauge('studiod_alerts_open', 'Open alerts by kind.', ['kind']);
    this.#commit = new Histogram({
      name: 'studiod_commit_duration_seconds',
      help: 'Time to commit one received file to both local targets (target check to catalogue write).',
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    this.#upload = new Histogram({
      name: 'studiod_cloud_upload_duration_seconds',
      help: 'Time to upload and verify one object.',
      labelNames: ['target'],
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    this.#uploaded = new Counter({
      name: 'studiod_cloud_uploaded_bytes_total',
      help: 'Bytes uploaded and verified.',
      labelNames: ['target'],
      registers: [r],
    });
    this.#errors = new Counter({
      name: 'studiod_errors_total',
      help: 'Errors (and coded warnings) logged, by stable code.',
      labelNames: ['code'],
      registers: [r],
    });
  }

  /** Where the gauges read from (set once the studio is open). */
  attach(sources: OpsSources & { alerts?: () => AlertRecord[] }): void {
    this.#sources = sources;
  }

  observeCommit(ms: number): void {
    this.#commit.observe(ms / 1000);
  }

  /** A cloud forwarder event (`cloud.uploaded` carries target, bytes, ms). */
  observeCloud(event: Record<string, unknown>): void {
    if (event['event'] !== 'cloud.uploaded') return;
    const target = String(event['target']);
    if (typeof event['ms'] === 'number') this.#upload.observe({ target }, event['ms'] / 1000);
    if (typeof event['bytes'] === 'number') this.#uploaded.inc({ target }, event['bytes']);
  }

  observeError(e: RecentError): void {
    this.#errors.inc({ code: e.code });
  }

  set(f: OpsFigures, alerts: AlertRecord[] = []): void {
    const g = this.#g as Record<string, Gauge<string>>;
    const G = (name: string): Gauge<string> => g[name] as Gauge<string>;
    for (const t of f.local) {
      G('studiod_target_available').set({ target: t.target }, t.available ? 1 : 0);
      if (t.freeBytes !== null) G('studiod_target_free_bytes').set({ target: t.target }, t.freeBytes);
    }
    for (const target of [...f.local.map((t) => t.target), ...f.cloud.map((q) => q.target)]) {
      G('studiod_target_copies').set({ target }, f.copies[target]?.count ?? 0);
      G('studiod_target_bytes').set({ target }, f.copies[target]?.bytes ?? 0);
    }
    for (const q of f.cloud) {
      G('studiod_cloud_queue_jobs').set({ target: q.target }, q.pending);
      G('studiod_cloud_queue_bytes').set({ target: q.target }, q.pendingBytes);
      G('studiod_cloud_parked_jobs').set({ target: q.target }, q.parked);
      G('studiod_cloud_uploading_jobs').set({ target: q.target }, q.uploading);
      G('studiod_cloud_window_open').set({ target: q.target }, q.window === null || q.window.open ? 1 : 0);
      this.#uploaded.inc({ target: q.target }, 0); // the series exists from the first scrape
    }
    G('studiod_assets').set(f.ledger.assets);
    G('studiod_assets_compliant').set(f.ledger.compliant);
    G('studiod_assets_unprotected').set(f.ledger.notCompliant);
    G('studiod_assets_unprotected_bytes').set(f.ledger.notCompliantBytes);
    G('studiod_ledger_recounting').set(f.recounting === null ? 0 : 1);
    for (const s of f.scrub) {
      const done = s.current?.assets ?? 0;
      G('studiod_scrub_pass_assets').set({ target: s.target }, done);
      G('studiod_scrub_pass_ratio').set(
        { target: s.target },
        f.ledger.assets === 0 ? 0 : Math.min(1, done / f.ledger.assets),
      );
      if (s.last !== null)
        G('studiod_scrub_last_full_timestamp_seconds').set({ target: s.target }, s.last.finishedAt / 1000);
    }
    G('studiod_agents_paired').set(f.agents.length);
    G('studiod_agents_connected').set(f.agents.filter((a) => a.connected).length);
    G('studiod_agent_last_seen_timestamp_seconds').reset();
    G('studiod_agent_unsynced_files').reset();
    for (const a of f.agents) {
      if (a.lastSeenAt !== undefined)
        G('studiod_agent_last_seen_timestamp_seconds').set({ agent: a.agentId }, a.lastSeenAt / 1000);
      G('studiod_agent_unsynced_files').set({ agent: a.agentId }, a.queue?.files ?? 0);
    }
    for (const kind of ALERT_KINDS)
      G('studiod_alerts_open').set({ kind }, alerts.filter((a) => a.kind === kind).length);
  }

  /** The exposition text, gauges read now. */
  async scrape(): Promise<string> {
    const s = this.#sources;
    if (s !== undefined) this.set(await readFigures(s), s.alerts?.() ?? []);
    return this.registry.metrics();
  }

  get url(): string {
    return this.#url;
  }

  async listen(host: string, port: number): Promise<string> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: the metrics are at /metrics\n');
        return;
      }
      this.scrape().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => {
          this.#log.warn({ err }, 'metrics scrape failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new StudioError(
            STUDIO_CODES.metricsListen,
            `The metrics endpoint cannot listen on ${host}:${port} (${(err as Error).message}). Fix metrics.host/metrics.port in the config.`,
            { cause: err },
          ),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    this.#server = server;
    const a = server.address() as AddressInfo;
    this.#url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`;
    this.#log.info({ url: this.#url }, `metrics endpoint listening at ${this.#url}`);
    return this.#url;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
