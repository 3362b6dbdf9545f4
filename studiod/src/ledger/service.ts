/**
 * The offsite half of studiod, assembled: the 3-2-1 ledger, the cloud
 * forwarder, `verify` with its repair (recovery/), target availability and
 * the quarantine, and their control commands (`status` report, `assets`,
 * `asset`, `verify`, `cloud-retry`).
 *
 * Open order (inside Studio.open, after the catalogue and before the link
 * server, so nothing writes to the catalogue before the hooks are in place):
 *   0. target availability (recorded states) and the quarantine totals;
 *   1. ledger: load counters (or rebuild them once after a config change or
 *      with another set of unavailable targets) and register its catalogue
 *      hook; every later availability transition recounts it;
 *   2. cloud forwarder on the catalogue's `cloud` sublevel; a second catalogue
 *      hook puts the cloud jobs of every newly committed asset into the SAME
 *      commit batch (a crash cannot leave a committed asset unqueued);
 *   3. after a rebuild, assets lacking a cloud copy are queued (idempotent).
 * Each verified cloud object is recorded by `onCopyVerified` as a copy
 * (`recordCopy`: one sync batch with the ledger counters).
 */
import { posix } from 'node:path';
import {
  MAX_COPIES_PER_FILE,
  MAX_VERDICT_REASONS,
  ProgressTracker,
  closeMatches,
  didYouMean,
  nameKey,
  safeJoin,
  type AssetVerdict,
  type Logger,
} from '@studio321/protocol';
import type { AssetRecord, Catalogue, CatalogueHook, CopyRecord, HookOp, NameRecord } from '../catalogue.js';
import { CloudForwarder, type CloudCopyRecord } from '../cloud/cloud-forwarder.js';
import type { CloudBatch } from '../cloud/cloud-queue.js';
import type { CloudTargetConfig } from '../cloud/cloud-target.js';
import { LOCAL_TARGETS, cloudTargetsOf, policyOf, type LocalTargetName, type StudiodConfig } from '../config.js';
import { DURABLE_CODES, verifyFile } from '@studio321/protocol/durable';
import { RECOVERY_CODES, RecoveryError } from '../recovery/errors.js';
import type { ControlSocket } from '../control-socket.js';
import { Ledger } from './ledger.js';
import { LEDGER_CODES, LedgerError } from './errors.js';
import { buildStatusReport, recountShare, type StatusReport } from './status-report.js';
import type { StudioStatus } from './status-report.js';
import { verifyCopies, type VerifyOptions, type VerifyReport } from './verify-copies.js';
import { Quarantine } from '../recovery/quarantine.js';
import { groupOf } from '../recovery/restore-plan.js';
import { TargetAvailability } from '../recovery/target-availability.js';
import { remakeCopy, type RemakeRequest, type RemakeResult } from '../recovery/remake-copy.js';
import { Adopter } from '../recovery/adopt.js';
import { Scrubber } from '../recovery/scrub.js';
import { rateLimiter, type Throttle } from '../cloud/rate-limiter.js';

export interface LedgerServiceOptions {
  config: StudiodConfig;
  catalogue: Catalogue;
  log: Logger;
  now?: () => number;
  /** Cloud forwarder overrides (tests): retry timing, sink factory. */
  cloudOptions?: Partial<ConstructorParameters<typeof CloudForwarder>[0]>;
  /** Period of the target availability check (ms; default 60 s; 0: no timer). */
  availabilityIntervalMs?: number;
  /** Read-rate limiters of the refill and the scrub (tests; default: config `refill`, `scrub`). */
  limiters?: { refill?: Throttle; scrub?: Throttle };
  /** The scrub's random choice of cloud copies read in full (tests). */
  random?: () => number;
  /** Assets per scrub step (tests; default 64). */
  scrubChunk?: number;
  /** Every event of the cloud forwarder (`cloud.uploaded`, `cloud.parked`, …): the metrics read them. */
  onCloudEvent?: (event: Record<string, unknown>) => void;
  /**
   * How long `status` (and `assets --unprotected`) wait for a ledger recount before answering with
   * its progress instead (ms; default RECOUNT_WAIT_MS).
   */
  recountWaitMs?: number;
}

/**
 * A recount after a target's availability changed takes about a minute a million assets: status
 * waits this long for it, then answers with its progress (and no verdicts) rather than keep the
 * admin waiting past studioctl's timeout.
 */
export const RECOUNT_WAIT_MS = 2_000;

/** Whether `p` settled within `ms`; its rejection is thrown if it did. A later rejection is left to its owner. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface AssetView {
  hash: string;
  size: number;
  /** The XXH3-64 the agent offered (ASC MHL), when it sent one. */
  xxh3?: string;
  committedAt: number;
  compliant: boolean;
  reasons: string[];
  names: Array<Pick<NameRecord, 'shoot' | 'card' | 'path' | 'capture'>>;
  /** Archive copies (mirror, RAID, cloud); `counted` is false while the target is unavailable. */
  copies: Array<CopyRecord & { where: string; counted: boolean }>;
  /** Field copies reported by agents (laptop, field drive): shown, never counted. */
  fieldCopies: Array<CopyRecord & { where: string }>;
  /**
   * Its sidecar group (RAW + JPEG + XMP…: the files stored in its folder with its stem),
   * when it has other members: 3-2-1 safe when every member is, each by the ledger's verdict.
   */
  group?: { compliant: boolean; members: Array<{ hash: string; path: string; compliant: boolean }> };
}

const HASH_RE = /^[0-9a-f]{64}$/;
/** `studioctl assets --shoot S --card C`: names compared case- and normalisation-insensitively; a card by its label or full id. */
interface NameFilter {
  shoot?: string;
  card?: string;
}

function matchesFilter(n: NameRecord, f: NameFilter): boolean {
  if (f.shoot !== undefined && nameKey(n.shoot) !== nameKey(f.shoot)) return false;
  if (f.card === undefined) return true;
  const card = nameKey(f.card);
  return nameKey(n.card) === card || nameKey(n.card).startsWith(`${card}-`);
}

/** One line of `studioctl shoots`. */
export interface ShootSummary {
  shoot: string;
  assets: number;
  bytes: number;
  compliant: number;
  /** Not-compliant assets short on each rule of the policy (as the status counters). */
  short: { copies: number; media: number; offsite: number };
  /** Per expected target (mirror, raid, each cloud target): assets of the shoot without a counted copy there. */
  lacking: Record<string, number>;
}

const DEFAULT_LIST_LIMIT = 100;
const MAX_LIST_LIMIT = 100_000;

export class LedgerService {
  readonly ledger: Ledger;
  readonly cloud: CloudForwarder | undefined;
  readonly availability: TargetAvailability;
  readonly quarantine: Quarantine;
  readonly adopter: Adopter;
  readonly scrubber: Scrubber;
  readonly #o: LedgerServiceOptions;
  readonly #cloudTargets: CloudTargetConfig[];
  readonly #now: () => number;
  #verifying: Promise<VerifyReport> | undefined;
  #lastVerify: VerifyReport | undefined;

  constructor(opts: LedgerServiceOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#cloudTargets = cloudTargetsOf(opts.config);
    this.availability = new TargetAvailability({
      catalogue: opts.catalogue,
      targets: opts.config.targets,
      now: this.#now,
      log: opts.log,
      ...(opts.availabilityIntervalMs === undefined ? {} : { intervalMs: opts.availabilityIntervalMs }),
    });
    this.quarantine = new Quarantine({ catalogue: opts.catalogue, targets: opts.config.targets, now: this.#now });
    this.adopter = new Adopter({
      catalogue: opts.catalogue,
      targets: opts.config.targets,
      remake: (req, signal) => this.remake(req, signal),
      noteTarget: (t, err) => this.availability.note(t, err),
      limiter: opts.limiters?.refill ?? rateLimiter(opts.config.refill.bytesPerSecond),
      log: opts.log,
      now: this.#now,
    });
    this.scrubber = new Scrubber({
      catalogue: opts.catalogue,
      cloudTargets: this.#cloudTargets,
      verify: (o) => this.#verifyWith(o),
      limiter: opts.limiters?.scrub ?? rateLimiter(opts.config.scrub.bytesPerSecond),
      periodDays: opts.config.scrub.periodDays,
      cloudDownloadPercent: opts.config.scrub.cloudDownloadPercent,
      log: opts.log,
      now: this.#now,
      ...(opts.random === undefined ? {} : { random: opts.random }),
      chunk: opts.scrubChunk ?? opts.config.scrub.assetsPerStep,
      holdBack: (t) =>
        this.#verifying !== undefined || this.adopter.statuses().some((a) => a.target === t && a.phase !== 'done'),
    });
    this.ledger = new Ledger({
      catalogue: opts.catalogue,
      policy: policyOf(opts.config),
      log: opts.log,
      targets: [...LOCAL_TARGETS, ...this.#cloudTargets.map((t) => t.name)],
    });
    this.cloud =
      this.#cloudTargets.length === 0
        ? undefined
        : new CloudForwarder({
            db: opts.catalogue.sublevel('cloud') as unknown as ConstructorParameters<typeof CloudForwarder>[0]['db'],
            targets: this.#cloudTargets,
            resolveSource: (blake3) => this.#resolveSource(blake3),
            onCopyVerified: (copy) => this.#recordCloudCopy(copy),
            describeAsset: async (blake3) => await opts.catalogue.namesOf(blake3),
            onCopyLost: async (lost) => {
              await opts.catalogue.removeCopy({ hash: lost.blake3, target: lost.target, kind: 'cloud' });
            },
            log: (event) => {
              opts.onCloudEvent?.(event);
              const e = event as { event?: string; code?: string };
              if (e.event === 'cloud.parked' || e.event === 'cloud.copy-lost') opts.log.error(event, String(e.event));
              else if (e.event === 'cloud.retry') opts.log.warn(event, 'cloud upload will be retried');
              else opts.log.debug(event, String(e.event ?? 'cloud'));
            },
            ...(opts.cloudOptions ?? {}),
          });
  }

  get cloudTargets(): readonly CloudTargetConfig[] {
    return this.#cloudTargets;
  }

  async open(): Promise<void> {
    await this.availability.open();
    await this.quarantine.open();
    // Before anything names a device: an adopted disk is the target's device from now on.
    await this.adopter.open();
    await this.scrubber.open();
    const { rebuilt } = await this.ledger.open({ unavailable: this.availability.unavailable() });
    this.availability.onChange((down) => this.ledger.setUnavailable(down));
    const last = await this.#o.catalogue.sublevel('verify').get('last');
    if (last !== undefined) this.#lastVerify = last as unknown as VerifyReport;
    const cloud = this.cloud;
    if (cloud === undefined) return;
    await cloud.open();
    this.#o.catalogue.addHook(this.#enqueueHook(cloud));
    if (rebuilt) {
      let n = 0;
      for (const t of this.#cloudTargets) {
        for await (const hash of this.ledger.lacking(t.name)) {
          const asset = await this.#o.catalogue.getAsset(hash);
          if (asset === undefined) continue;
          const name = (await this.#o.catalogue.namesOf(hash))[0]?.path ?? hash;
          await cloud.enqueue({ blake3: hash, size: asset.size, name });
          n++;
        }
      }
      if (n > 0) this.#o.log.info({ jobs: n }, 'queued assets that lack a cloud copy');
    }
  }

  /** Check the targets now and then every interval (after the studio is open). */
  startAvailabilityChecks(): void {
    this.availability.start();
  }

  /** Go on with an adoption's refill and start the scrub schedule (after the studio is open). */
  startRecovery(): void {
    this.adopter.resume();
    this.scrubber.start();
  }

  /**
   * A commit found this asset's own final name holding other bytes: a damaged
   * copy. It is moved into the quarantine (its copy record removed first, so it
   * stops counting; the commit records the new copy). True: the name is free.
   */
  async moveDamagedAside(d: { target: LocalTargetName; path: string; hash: string }): Promise<boolean> {
    const asset = await this.#o.catalogue.getAsset(d.hash);
    if (asset === undefined) return false;
    const file = safeJoin(this.#o.config.targets[d.target].root, d.path);
    const v = await verifyFile(file, { size: asset.size, blake3: asset.hash });
    if (v.ok) return false;
    const copy = (await this.#o.catalogue.copiesOf(d.hash)).find((c) => c.kind === 'studio' && c.target === d.target);
    if (copy !== undefined) await this.#o.catalogue.removeCopy(copy);
    const q = await this.quarantine.moveAside(d.target, d.path, {
      hash: d.hash,
      reason: v.code ?? DURABLE_CODES.nameTaken,
      foundBy: 'commit',
      ...(copy === undefined ? {} : { copy }),
    });
    this.#o.log.warn(
      {
        code: RECOVERY_CODES.healFailed,
        hash: d.hash,
        target: d.target,
        path: d.path,
        reason: v.code,
        quarantined: q?.quarantinedPath,
      },
      `A commit found the ${d.target} copy of ${d.path} damaged (${v.code}); it was moved into the quarantine and is written again.`,
    );
    return true;
  }

  /** Make one local copy again from the best other verified copy (recovery/remake-copy.ts). */
  remake(req: RemakeRequest, signal?: AbortSignal): Promise<RemakeResult> {
    return remakeCopy(
      {
        catalogue: this.#o.catalogue,
        targets: this.#o.config.targets,
        quarantine: this.quarantine,
        isAvailable: (t) => this.availability.isAvailable(t),
        now: this.#now,
        ...(this.cloud === undefined ? {} : { cloud: this.cloud }),
        ...(signal === undefined ? {} : { signal }),
      },
      req,
    );
  }

  async close(): Promise<void> {
    await this.scrubber.close();
    await this.adopter.close();
    await this.availability.close();
    await this.cloud?.close();
    await this.#verifying?.catch(() => undefined);
  }

  /** The cloud jobs of a newly committed asset, in the commit batch. */
  #enqueueHook(cloud: CloudForwarder): CatalogueHook {
    return {
      prepare: async (changes) => {
        const ops: HookOp[] = [];
        const batch: CloudBatch = {
          put: (key, value, options) => {
            ops.push({ type: 'put', key, value, ...options });
            return batch;
          },
        };
        for (const change of changes) {
          if (!change.created || change.asset === undefined) continue;
          await cloud.enqueue(
            { blake3: change.hash, size: change.asset.size, name: change.names[0]?.path ?? change.hash },
            batch,
          );
        }
        return { ops };
      },
    };
  }

  async #resolveSource(blake3: string): Promise<string> {
    const copies = await this.#o.catalogue.copiesOf(blake3);
    for (const t of LOCAL_TARGETS) {
      const c = copies.find((x) => x.kind === 'studio' && x.target === t);
      if (c !== undefined) return safeJoin(this.#o.config.targets[t].root, c.path);
    }
    throw new LedgerError(
      LEDGER_CODES.notFound,
      `Asset ${blake3} has no verified copy on the mirror or the RAID to upload from.`,
      { retryable: true },
    );
  }

  async #recordCloudCopy(copy: CloudCopyRecord): Promise<void> {
    await this.#o.catalogue.recordCopy({
      hash: copy.blake3,
      target: copy.target,
      kind: 'cloud',
      path: copy.key,
      size: copy.size,
      device: `cloud:${copy.target}`,
      media: copy.media,
      location: copy.location,
      offsite: true,
      method: copy.method,
      verifiedAt: Date.parse(copy.verifiedAt) || this.#now(),
      ...(copy.lock === undefined
        ? {}
        : { lock: { ...copy.lock, ...(copy.versionId === undefined ? {} : { versionId: copy.versionId }) } }),
    });
  }

  async report(base: StudioStatus): Promise<StatusReport> {
    // A cheap check (stat + marker per local target) so the verdict turns honest
    // at once; a transition recounts the ledger. A recount that takes longer than
    // the wait is shown with its progress instead of verdicts (buildStatusReport).
    const check = this.availability.check();
    if (!(await settledWithin(check, this.#o.recountWaitMs ?? RECOUNT_WAIT_MS))) {
      // Only a recount is worth answering early for (with its progress): a check that is slow
      // itself (a hung disk) is waited for, or the report would show that target as it was.
      const { asked, cancel } = this.ledger.recountAsked();
      await Promise.race([check, asked]).finally(cancel);
      check.catch((err: unknown) => this.#o.log.warn({ err }, 'target availability check failed'));
    }
    return buildStatusReport({
      base,
      availability: this.availability.states(),
      quarantine: this.quarantine.totals(),
      ledger: this.ledger,
      catalogue: this.#o.catalogue,
      config: this.#o.config,
      cloudTargets: this.#cloudTargets,
      ...(this.cloud === undefined ? {} : { cloud: this.cloud }),
      lastVerify: this.#lastVerify ?? null,
      verifying: this.#verifying !== undefined,
      adoptions: this.adopter.statuses(),
      scrub: this.scrubber.statuses(),
    });
  }

  /**
   * The verdicts a field agent asks for (SPEC §3.10): for each hash, the ledger's own verdict and
   * counted copies, but only for an asset this agent sent (one of its names) or holds (one of its
   * copies). Any other hash, committed or not, gets the same `known: false`, so an agent cannot
   * learn by hash what other agents sent.
   */
  async agentVerdicts(agentId: string, hashes: readonly string[]): Promise<AssetVerdict[]> {
    const out: AssetVerdict[] = [];
    const known = await this.#o.catalogue.assetsKnown(hashes); // one read for the request
    // The known assets' copies: one iterator for the request.
    const knownHashes = hashes.filter((_, i) => known[i] === true);
    const copiesOf = new Map(
      (await this.#o.catalogue.copiesOfMany(knownHashes)).map((copies, i) => [knownHashes[i] as string, copies]),
    );
    for (const [i, hash] of hashes.entries()) {
      const unknown: AssetVerdict = { hash, known: false, compliant: false, copies: [], reasons: [] };
      if (known[i] !== true) {
        out.push(unknown);
        continue;
      }
      const copies = copiesOf.get(hash) ?? [];
      const own =
        copies.some((c) => c.kind === 'agent' && c.agentId === agentId) ||
        (await this.#o.catalogue.namesOf(hash)).some((n) => n.agentId === agentId);
      if (!own) {
        out.push(unknown);
        continue;
      }
      const v = this.ledger.verdict(copies);
      out.push({
        hash,
        known: true,
        compliant: v.compliant,
        copies: this.ledger
          .counted(copies)
          .slice(0, MAX_COPIES_PER_FILE)
          .map((c) => {
            const storageClass =
              c.kind === 'cloud' ? this.#cloudTargets.find((t) => t.name === c.target)?.storageClass : undefined;
            return {
              target: c.target,
              media: c.media,
              location: c.location,
              offsite: c.offsite,
              ...(storageClass === undefined ? {} : { storageClass }),
              verifiedAt: c.verifiedAt,
            };
          }),
        reasons: v.reasons.slice(0, MAX_VERDICT_REASONS).map((r) => r.slice(0, 1000)),
      });
    }
    return out;
  }

  /** One asset as `studioctl asset` shows it: names, every copy and where it is, the verdict. */
  async assetView(asset: AssetRecord): Promise<AssetView> {
    const copies = await this.#o.catalogue.copiesOf(asset.hash);
    const v = this.ledger.verdict(copies);
    const counted = new Set(this.ledger.counted(copies));
    const names = (await this.#o.catalogue.namesOf(asset.hash)).map((n) => ({
      shoot: n.shoot,
      card: n.card,
      path: n.path,
      ...(n.capture === undefined ? {} : { capture: n.capture }),
    }));
    return {
      hash: asset.hash,
      size: asset.size,
      ...(asset.xxh3 === undefined ? {} : { xxh3: asset.xxh3 }),
      committedAt: asset.committedAt,
      compliant: v.compliant,
      reasons: v.reasons,
      names,
      copies: copies
        .filter((c) => c.kind !== 'agent')
        .map((c) => ({ ...c, where: this.#where(c), counted: counted.has(c) })),
      fieldCopies: copies.filter((c) => c.kind === 'agent').map((c) => ({ ...c, where: this.#where(c) })),
      ...(await this.#groupView(asset.hash, copies, v.compliant)),
    };
  }

  /** The sidecar group of a stored asset (restore's groupOf), with one verdict: every member's. */
  async #groupView(hash: string, copies: CopyRecord[], compliant: boolean): Promise<Pick<AssetView, 'group'>> {
    const stored = copies.find((c) => c.kind === 'studio' && c.path !== '');
    if (stored === undefined) return {};
    const members = new Map<string, { hash: string; path: string; compliant: boolean }>();
    members.set(hash, { hash, path: stored.path, compliant });
    for (const m of await groupOf(this.#o.catalogue, stored.path)) {
      if (members.has(m.hash)) continue;
      const v = this.ledger.verdict(await this.#o.catalogue.copiesOf(m.hash));
      members.set(m.hash, { hash: m.hash, path: m.path, compliant: v.compliant });
    }
    if (members.size < 2) return {};
    const list = [...members.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { group: { compliant: list.every((m) => m.compliant), members: list } };
  }

  #where(c: CopyRecord): string {
    if (c.kind === 'studio' && (LOCAL_TARGETS as readonly string[]).includes(c.target)) {
      return safeJoin(this.#o.config.targets[c.target as (typeof LOCAL_TARGETS)[number]].root, c.path);
    }
    if (c.kind === 'cloud') {
      const t = this.#cloudTargets.find((x) => x.name === c.target);
      return t === undefined
        ? c.path
        : `s3://${t.bucket}/${c.path}${t.endpoint === undefined ? '' : ` at ${t.endpoint}`} (${t.storageClass})`;
    }
    return `agent ${c.agentId ?? '?'} (${c.device})`;
  }

  /** `asset <name|hash>`: a full hash, a file name, a shoot/card/path, or a stored path. */
  async findAssets(query: string): Promise<AssetRecord[]> {
    const cat = this.#o.catalogue;
    const q = query.trim();
    if (HASH_RE.test(q.toLowerCase())) {
      const a = await cat.getAsset(q.toLowerCase());
      return a === undefined ? [] : [a];
    }
    const out = new Map<string, AssetRecord>();
    const stored = await cat.storedPath(nameKey(q.replace(/^\/+/, '')));
    if (stored !== undefined) {
      const a = await cat.getAsset(stored.hash);
      if (a !== undefined) out.set(a.hash, a);
    }
    const want = nameKey(q.replace(/^\/+/, ''));
    for (const hash of await this.ledger.byName(posix.basename(q))) {
      if (q.includes('/')) {
        const names = await cat.namesOf(hash);
        if (
          !names.some((n) => {
            const k = nameKey(posix.join(n.shoot, n.card, n.path));
            return k === want || k.endsWith(`/${want}`);
          })
        )
          continue;
      }
      const a = await cat.getAsset(hash);
      if (a !== undefined) out.set(a.hash, a);
    }
    return [...out.values()];
  }

  /**
   * Wait (RECOUNT_WAIT_MS at most) for a recount of the verdicts: the index of unprotected assets is
   * half rewritten while one runs, so a list read from it then would be wrong.
   */
  async #verdictsSettled(): Promise<void> {
    await settledWithin(this.ledger.settled(), this.#o.recountWaitMs ?? RECOUNT_WAIT_MS);
    const r = this.ledger.recounting();
    if (r === null) return;
    throw new LedgerError(
      LEDGER_CODES.recounting,
      `The 3-2-1 verdicts are being recounted after a target's availability changed (${recountShare(r)}); the list would be wrong until that ends. Run the command again in a minute; \`studioctl status\` shows the progress.`,
      { retryable: true, detail: { ...r } },
    );
  }

  registerCommands(ctl: ControlSocket): void {
    ctl.register('assets', async (args) => {
      const limit = Math.min(
        MAX_LIST_LIMIT,
        typeof args['limit'] === 'number' && args['limit'] > 0 ? Math.floor(args['limit']) : DEFAULT_LIST_LIMIT,
      );
      const filter: NameFilter = {
        ...(typeof args['shoot'] === 'string' ? { shoot: args['shoot'] } : {}),
        ...(typeof args['card'] === 'string' ? { card: args['card'] } : {}),
      };
      const filtered = filter.shoot !== undefined || filter.card !== undefined;
      const unprotected = args['unprotected'] === true;
      const items: AssetView[] = [];
      // With a filter every asset is looked at, so `total` counts the matches, not the catalogue.
      let total = 0;
      if (unprotected) await this.#verdictsSettled();
      const source: AsyncIterable<string> = unprotected ? this.ledger.unprotected() : this.#allHashes();
      for await (const hash of source) {
        if (!filtered && items.length >= limit) break;
        const asset = await this.#o.catalogue.getAsset(hash);
        if (asset === undefined) continue;
        if (filtered && !(await this.#o.catalogue.namesOf(hash)).some((n) => matchesFilter(n, filter))) continue;
        // The index is read as it was when the list began: an asset made compliant since (a cloud
        // copy recorded meanwhile) is left out by its verdict now, never listed as unprotected.
        if (items.length < limit) {
          const view = await this.assetView(asset);
          if (unprotected && view.compliant) continue;
          items.push(view);
        } else if (unprotected && this.ledger.verdict(await this.#o.catalogue.copiesOf(hash)).compliant) continue;
        total++;
      }
      if (filtered && total === 0) await this.#checkFilterKnown(filter);
      const c = this.ledger.counters();
      if (!filtered) total = unprotected ? c.notCompliant : c.assets;
      return {
        unprotected,
        shoot: filter.shoot ?? null,
        card: filter.card ?? null,
        total,
        items,
        more: total > items.length,
        policy: this.ledger.policy,
      };
    });
    ctl.register('shoots', async () => ({
      policy: this.ledger.policy,
      targets: this.ledger.targets,
      shoots: await this.shoots(),
    }));
    ctl.register('asset', async (args) => {
      const q = args['query'];
      if (typeof q !== 'string' || q.trim() === '')
        throw new LedgerError(
          LEDGER_CODES.badArgument,
          'Give a file name, shoot/card/path, or a BLAKE3 hash: studioctl asset IMG_0001.CR3',
        );
      const found = await this.findAssets(q);
      if (found.length === 0)
        throw new LedgerError(
          LEDGER_CODES.notFound,
          `No asset matches "${q}". Try the file name (IMG_0001.CR3), shoot/card/path, or the full BLAKE3 hash.`,
          { detail: { query: q } },
        );
      return { query: q, policy: this.ledger.policy, assets: await Promise.all(found.map((a) => this.assetView(a))) };
    });
    ctl.register('verify', async (args, ctx) => {
      const sample = args['sample'];
      const share = typeof sample === 'number' ? Math.min(100, Math.max(0, sample)) / 100 : 1;
      const counters = this.#o.catalogue.counters();
      const tracker = new ProgressTracker({
        totalBytes: Math.round(counters.bytes * share),
        totalFiles: Math.round(counters.assets * share),
        now: this.#now,
      });
      let sentAt = 0;
      return this.verify({
        ...(typeof args['target'] === 'string' ? { target: args['target'] } : {}),
        ...(typeof sample === 'number' ? { samplePercent: sample } : {}),
        download: args['download'] === true,
        repair: args['repair'] !== false,
        onAsset: (asset) => {
          tracker.addBytes(asset.size);
          tracker.fileDone();
          const t = this.#now();
          // A line at most every half second: a large catalogue is checked far faster than a client reads.
          if (t - sentAt >= 500) {
            sentAt = t;
            ctx.progress(tracker.snapshot());
          }
        },
      });
    });
    ctl.register('target-adopt', async (args) => {
      const target = args['target'];
      if (typeof target !== 'string')
        throw new RecoveryError(RECOVERY_CODES.badArgument, 'adopt takes a target: mirror or raid.');
      const device = args['device'];
      return this.adopter.adopt(target, typeof device === 'string' ? { device } : {});
    });
    ctl.register('cloud-retry', async (args) => {
      if (this.cloud === undefined) return { retried: 0 };
      return { retried: await this.cloud.retryParked(typeof args['target'] === 'string' ? args['target'] : undefined) };
    });
  }

  /** `studioctl verify`: re-read copies, make lost local copies again (unless `repair: false`), keep the report. */
  async verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    if (this.#verifying !== undefined)
      throw new LedgerError(
        LEDGER_CODES.verifyRunning,
        'A verify is already running. Wait for it to finish; `studioctl status` shows the last result.',
        { retryable: true },
      );
    const p = this.#verifyWith(opts);
    this.#verifying = p;
    try {
      const report = await p;
      this.#lastVerify = report;
      const { lost, ...summary } = report;
      await this.#o.catalogue
        .sublevel('verify')
        .put('last', { ...summary, lost: lost.slice(0, 20) } as unknown as Record<string, unknown>);
      return report;
    } finally {
      this.#verifying = undefined;
    }
  }

  /** verify-copies.ts with studiod's deps: what `studioctl verify` and the scrub both run. */
  #verifyWith(opts: VerifyOptions): Promise<VerifyReport> {
    return verifyCopies(
      {
        catalogue: this.#o.catalogue,
        targets: this.#o.config.targets,
        log: this.#o.log,
        now: this.#now,
        ...(this.cloud === undefined ? {} : { cloud: this.cloud }),
        remake: {
          quarantine: this.quarantine,
          isAvailable: (t) => this.availability.isAvailable(t),
          now: this.#now,
          ...(this.cloud === undefined ? {} : { cloud: this.cloud }),
        },
        noteTarget: (t, err) => this.availability.note(t, err),
      },
      opts,
    );
  }

  /**
   * Per shoot: its assets, how many are 3-2-1 compliant, and per expected target how many lack a
   * counted copy there — the ledger's own verdict (Ledger.assess) of each asset, one pass over the
   * catalogue (its assets, copies and names read side by side). An asset named in two shoots counts in both.
   */
  async shoots(): Promise<ShootSummary[]> {
    const byShoot = new Map<string, ShootSummary>();
    const cat = this.#o.catalogue;
    for await (const { asset, copies, names } of cat.assetsWithRecords({ names: true })) {
      const shoots = new Set((names ?? []).map((n) => n.shoot));
      if (shoots.size === 0) continue;
      const { verdict, lacking } = this.ledger.assess(copies);
      for (const shoot of shoots) {
        let s = byShoot.get(shoot);
        if (s === undefined) {
          s = {
            shoot,
            assets: 0,
            bytes: 0,
            compliant: 0,
            short: { copies: 0, media: 0, offsite: 0 },
            lacking: Object.fromEntries(this.ledger.targets.map((t) => [t, 0])),
          };
          byShoot.set(shoot, s);
        }
        s.assets++;
        s.bytes += asset.size;
        if (verdict.compliant) s.compliant++;
        for (const rule of ['copies', 'media', 'offsite'] as const) if (verdict.missing[rule] > 0) s.short[rule]++;
        for (const t of lacking) s.lacking[t] = (s.lacking[t] ?? 0) + 1;
      }
    }
    return [...byShoot.values()].sort((a, b) => (a.shoot < b.shoot ? -1 : a.shoot > b.shoot ? 1 : 0));
  }

  /** A --shoot/--card filter that matched no asset at all: LEDGER_NOT_FOUND naming it, with the close known names. */
  async #checkFilterKnown(filter: NameFilter): Promise<void> {
    const shoots = new Set<string>();
    const cards = new Set<string>();
    for await (const n of this.#o.catalogue.names()) {
      if (matchesFilter(n, filter)) return;
      shoots.add(n.shoot);
      if (filter.shoot === undefined || nameKey(n.shoot) === nameKey(filter.shoot)) {
        cards.add(n.card);
        cards.add(n.card.replace(/-[0-9a-f]{8}$/, '')); // the label the card id starts with
      }
    }
    const shootKnown = filter.shoot === undefined || [...shoots].some((s) => nameKey(s) === nameKey(filter.shoot!));
    const [what, value, known] = !shootKnown
      ? (['shoot', filter.shoot!, shoots] as const)
      : (['card', filter.card!, cards] as const);
    const where = what === 'card' && filter.shoot !== undefined ? ` in shoot "${filter.shoot}"` : '';
    throw new LedgerError(
      LEDGER_CODES.notFound,
      `No ${what} "${value}"${where} in the catalogue${didYouMean(value, known)}. \`studioctl shoots\` lists the shoots; \`studioctl assets --shoot S\` shows a shoot's cards.`,
      { detail: { [what]: value, close: closeMatches(value, known) } },
    );
  }

  async *#allHashes(): AsyncGenerator<string> {
    for await (const a of this.#o.catalogue.assets()) yield a.hash;
  }
}
