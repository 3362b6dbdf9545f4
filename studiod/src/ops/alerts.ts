/**
 * The alert service: every `alerts.checkIntervalSeconds` it reads the figures (figures.ts), finds
 * the conditions true now (conditions.ts) and compares them with the open alerts:
 *
 *   1. a condition not open yet: stored as open (`sync: true`), THEN its notice goes out;
 *   2. an open alert whose condition is gone: removed (`sync: true`), THEN its "resolved" notice;
 *   3. an open alert still true: nothing (one alert per condition until it clears).
 *
 * Open alerts live in the catalogue (sublevel `alerts`, `open!<id>` → AlertRecord), so a restart
 * fires nothing again and resolves what cleared while studiod was down. Notices go to the log always,
 * and to the webhook and e-mail when configured (channels.ts: in order, retried with backoff).
 * Each channel's notice is kept in an outbox (`outbox!<channel>!<seq>`), written in the same synced
 * batch as the alert's record and removed once delivered or given up: a notice still in retry when
 * studiod stops (or is killed) is sent again at start, before any new one. At least once: a notice
 * delivered just before a kill is sent again.
 */
import type { Logger } from '@studio321/protocol';
import type { AlertsConfig } from '../config.js';
import type { ControlSocket } from '../control-socket.js';
import { noticeTitle, type AlertNotice, type AlertRecord } from './alert.js';
import { DeliveryQueue, type AlertChannel, type DeliveryOptions } from './channels.js';
import { conditionsOf, type Unprotected } from './conditions.js';
import { EmailChannel } from './email-channel.js';
import { readFigures, type OpsFigures, type OpsSources } from './figures.js';
import { FreeSpaceTrend } from './free-space-trend.js';
import { WebhookChannel } from './webhook-channel.js';

/** At most this many overdue assets are read per evaluation (the counts then say "at least"). */
export const MAX_OVERDUE_SCAN = 10_000;

const SYNC = { sync: true } as object;
const HOUR_MS = 3_600_000;
const OUTBOX = 'outbox!';
/** Zero-padded so the keys sort in the order the notices were queued. */
const SEQ_DIGITS = 12;

export interface AlertsOptions extends OpsSources {
  config: AlertsConfig;
  log: Logger;
  studio: () => AlertNotice['studio'];
  /** Retry timing of the webhook and e-mail channels (tests). */
  delivery?: Pick<DeliveryOptions, 'baseMs' | 'maxMs' | 'closeGraceMs'>;
  /** Free-space trend window and minimum span (tests). */
  trend?: { windowMs?: number; minSpanMs?: number };
  /** Extra channels (tests); the configured ones are built from `config`. */
  channels?: AlertChannel[];
}

export class Alerts {
  readonly #o: AlertsOptions;
  readonly #trend: FreeSpaceTrend;
  readonly #queues: DeliveryQueue[] = [];
  readonly #open = new Map<string, AlertRecord>();
  #db: ReturnType<OpsSources['catalogue']['sublevel']> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<AlertRecord[]> | undefined;
  #listeners: Array<(f: OpsFigures) => void> = [];
  /** The next outbox sequence number (one past the highest kept). */
  #seq = 0;

  constructor(o: AlertsOptions) {
    this.#o = o;
    this.#trend = new FreeSpaceTrend(o.trend ?? {});
    const channels: AlertChannel[] = [...(o.channels ?? [])];
    const c = o.config;
    // Signed with the wall clock, not the injected one: the receiver checks freshness against its own.
    if (c.webhook !== undefined) channels.push(new WebhookChannel(c.webhook));
    if (c.email !== undefined) channels.push(new EmailChannel(c.email));
    for (const ch of channels)
      this.#queues.push(
        new DeliveryQueue(ch, o.log, { maxAttempts: c.webhook?.maxAttempts ?? 8, ...(o.delivery ?? {}) }),
      );
  }

  async open(): Promise<void> {
    const db = this.#o.catalogue.sublevel('alerts');
    this.#db = db;
    for await (const [, v] of db.iterator({ gt: 'open!', lt: 'open!\xff' })) {
      const rec = v as unknown as AlertRecord;
      this.#open.set(rec.id, rec);
    }
    // Notices a stop or a kill left in retry: sent again in their order; a removed channel's dropped.
    const stale: string[] = [];
    for await (const [key, v] of db.iterator({ gt: OUTBOX, lt: `${OUTBOX}\xff` })) {
      const [channel = '', seq = '0'] = key.slice(OUTBOX.length).split('!');
      this.#seq = Math.max(this.#seq, Number(seq) + 1);
      const q = this.#queues.find((x) => x.name === channel);
      if (q === undefined) stale.push(key);
      else void q.push(v as unknown as AlertNotice, () => db.del(key, SYNC));
    }
    if (stale.length > 0) {
      await db.batch(
        stale.map((key) => ({ type: 'del' as const, key })),
        SYNC,
      );
      this.#o.log.info({ dropped: stale.length }, 'alert notices for a channel no longer configured dropped');
    }
  }

  /** The periodic evaluation (a timer that does not keep studiod alive). */
  start(): void {
    if (this.#timer !== undefined) return;
    const tick = (): void => {
      this.evaluate().catch((err: unknown) => this.#o.log.warn({ err }, 'alert evaluation failed; trying again'));
    };
    this.#timer = setInterval(tick, this.#o.config.checkIntervalSeconds * 1000);
    this.#timer.unref();
    tick();
  }

  /** Run `fn` with the figures of every evaluation (the metrics reuse them). */
  onFigures(fn: (f: OpsFigures) => void): void {
    this.#listeners.push(fn);
  }

  /** The open alerts, oldest first. */
  list(): AlertRecord[] {
    return [...this.#open.values()].sort((a, b) => a.openedAt - b.openedAt || a.id.localeCompare(b.id));
  }

  /** Evaluate now (serialised with the timer's run); returns the open alerts after it. */
  evaluate(): Promise<AlertRecord[]> {
    this.#running ??= this.#evaluate().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #evaluate(): Promise<AlertRecord[]> {
    const db = this.#db;
    if (db === undefined) throw new TypeError('Alerts used before open()');
    await this.#o.ledger.availability.check(); // stat + marker per local target: the verdicts honest first
    const f = await readFigures(this.#o);
    for (const t of f.local) if (t.available && t.freeBytes !== null) this.#trend.add(t.target, f.at, t.freeBytes);
    for (const l of this.#listeners) l(f);
    const now = conditionsOf(f, this.#o.config, this.#trend, await this.#overdue(f.at));
    const seen = new Set<string>();
    for (const c of now) {
      seen.add(c.id);
      if (this.#open.has(c.id)) continue;
      const rec: AlertRecord = { ...c, openedAt: f.at };
      await this.#record(
        { type: 'put', key: `open!${c.id}`, value: rec as unknown as Record<string, unknown> },
        { event: 'alert', alert: rec, at: f.at, studio: this.#o.studio() },
      );
      this.#open.set(c.id, rec);
    }
    for (const rec of [...this.#open.values()]) {
      if (seen.has(rec.id)) continue;
      await this.#record(
        { type: 'del', key: `open!${rec.id}` },
        { event: 'resolved', alert: rec, at: f.at, studio: this.#o.studio() },
      );
      this.#open.delete(rec.id);
    }
    return this.list();
  }

  /** Overdue assets below 3-2-1, per shoot: the `lack!` entries older than the grace, checked against the verdict. */
  async #overdue(now: number): Promise<Unprotected> {
    const out: Unprotected = new Map();
    const ledger = this.#o.ledger.ledger;
    await ledger.settled(); // the lack! index is half rewritten while a recount runs
    if (ledger.counters().notCompliant === 0) return out;
    const before = now - this.#o.config.unprotectedGraceHours * HOUR_MS;
    const seen = new Set<string>();
    for (const target of ledger.targets) {
      for await (const { hash, committedAt } of ledger.lackingBefore(target, before, MAX_OVERDUE_SCAN)) {
        if (seen.has(hash) || seen.size >= MAX_OVERDUE_SCAN) continue;
        seen.add(hash);
        const copies = await this.#o.catalogue.copiesOf(hash);
        if (ledger.verdict(copies).compliant) continue;
        const asset = await this.#o.catalogue.getAsset(hash);
        const shoots = new Set((await this.#o.catalogue.namesOf(hash)).map((n) => n.shoot));
        for (const shoot of shoots) {
          const u = out.get(shoot) ?? { count: 0, bytes: 0, oldestCommittedAt: committedAt };
          u.count += 1;
          u.bytes += asset?.size ?? 0;
          u.oldestCommittedAt = Math.min(u.oldestCommittedAt, committedAt);
          out.set(shoot, u);
        }
      }
    }
    return out;
  }

  /** The alert's record and each channel's outbox entry in one synced batch, THEN the notice goes out. */
  async #record(
    op: { type: 'put'; key: string; value: Record<string, unknown> } | { type: 'del'; key: string },
    n: AlertNotice,
  ): Promise<void> {
    const db = this.#db;
    if (db === undefined) throw new TypeError('Alerts used before open()');
    const keys = this.#queues.map((q) => `${OUTBOX}${q.name}!${String(this.#seq++).padStart(SEQ_DIGITS, '0')}`);
    await db.batch(
      [op, ...keys.map((key) => ({ type: 'put' as const, key, value: n as unknown as Record<string, unknown> }))],
      SYNC,
    );
    const log = this.#o.log;
    const fields = { alert: n.alert.id, kind: n.alert.kind, severity: n.alert.severity, detail: n.alert.detail };
    // warn, not error: an alert is not a studiod error (`lastErrors` and errors_total stay the errors' own).
    if (n.event === 'resolved') log.info(fields, noticeTitle(n));
    else log.warn(fields, noticeTitle(n));
    this.#queues.forEach((q, i) => {
      const key = keys[i] as string;
      void q.push(n, () => db.del(key, SYNC));
    });
  }

  /** Resolves when every notice queued so far was delivered or given up (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#queues.some((q) => q.pending > 0)) {
      await Promise.all(this.#queues.map((q) => q.idle()));
    }
  }

  registerCommands(ctl: ControlSocket): void {
    ctl.register('alerts', async () => ({ open: this.list() }));
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
    for (const q of this.#queues) await q.close();
  }
}
