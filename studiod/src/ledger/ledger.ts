/**
 * The 3-2-1 ledger: for every asset, its verified copies → the protocol's
 * policy verdict (`evaluatePolicy`) with reasons, and the compliance counters
 * `studioctl status` shows (docs/design.md §Ledger).
 *
 * The ledger is a catalogue hook: every catalogue batch that changes an
 * asset's copies or names carries the ledger's index entries and counters in
 * the SAME batch (`sync: true`), so the counters can never disagree with the
 * copy records, and status reads counters instead of scanning.
 *
 * Keys (sublevel `ledger` of the catalogue DB, JSON values):
 *   counters                                  LedgerCounters (with the config signature)
 *   unprot!<hash>                             { size, committedAt }   assets not 3-2-1 compliant
 *   lack!<target>!<committedAt:15>!<hash>     { size }                expected target without a verified copy
 *   byname!<nameKey(basename)>!<hash>         {}                      lookup by file name
 *   grp!<group key>                           { members, unsafe }     a sidecar group (RAW + JPEG + XMP…)
 *   gof!<hash>                                { group }               the group an asset was counted in
 *
 * Groups: every asset belongs to one sidecar group, the files stored in its folder with its
 * stem (recovery/restore-plan.ts `groupKeyOf`, the grouping `studioctl asset` and restore
 * use; a file without sidecars is a group of one). A group is 3-2-1 safe when every member
 * is; `groups` and `groupsCompliant` count them in the same batches as the asset counters.
 *
 * What counts: only archive copies — copies the studio holds and can verify
 * (mirror, RAID, the configured cloud targets) — and only while their target
 * is available. Agent copies (laptop, field drive) are field copies: recorded
 * and shown apart, never counted (the photographer wipes them, the studio
 * cannot read them).
 *
 * The counters record the policy, the expected targets and the unavailable
 * targets they were computed for; when the config changes (a new cloud target,
 * another policy) they are rebuilt once at open from the copy records, and
 * when a target becomes unavailable or available again (`setUnavailable`) the
 * verdict index and counters are recounted: one pass over the assets in hash
 * order, in slices of `RECOUNT_SLICE_ASSETS`, each with catalogue writes held
 * (`Catalogue.exclusive`), so commits go on between slices: the hook counts an
 * asset the pass has already recounted for the new targets and any other for
 * the old ones, which is what the pass finds and replaces when it gets there.
 * Names index, `gof!` untouched. A crash during the recount leaves a signature
 * that matches nothing, so the next open recounts again. While a recount is
 * pending or running, `recounting()` says how far it is: the counters and the
 * verdict index are then part recounted and must not be shown as verdicts.
 */
import { posix } from 'node:path';
import {
  evaluatePolicy,
  nameKey,
  writeLevelBatch,
  type CopyFact,
  type PolicyConfig,
  type PolicyVerdict,
} from '@studio321/protocol';
import { groupKeyOf } from '../recovery/restore-plan.js';
import { layoutFor } from '../commit/commit.js';
import type {
  AssetChange,
  AssetRecord,
  Catalogue,
  CatalogueCounters,
  CatalogueHook,
  CopyRecord,
  HookOp,
  NameRecord,
} from '../catalogue.js';

/** 2: only archive copies on available targets count (field copies are shown apart); 3: groups counted. */
export const LEDGER_VERSION = 3;

export interface LedgerCounters {
  version: number;
  /** Policy and expected targets these counters were computed for. */
  signature: string;
  assets: number;
  bytes: number;
  compliant: number;
  compliantBytes: number;
  notCompliant: number;
  notCompliantBytes: number;
  /** Not-compliant assets short on each rule (an asset can be short on several). */
  missing: { copies: number; media: number; offsite: number };
  /** Per expected target: assets without a verified copy there. */
  lacking: Record<string, { count: number; bytes: number }>;
  /** Sidecar groups (RAW + JPEG + sidecars; a lone file is a group of one), and those whose every member is compliant. */
  groups: number;
  groupsCompliant: number;
}

/** A recount under way (`Ledger.recounting`): what `studioctl status` shows instead of verdicts. */
export interface RecountProgress {
  /** When the first of the pending recounts was asked for (ms since the epoch). */
  since: number;
  /**
   * `waiting`: for catalogue writes in flight to end; `clearing`: the old verdict index going;
   * `assets`: the pass over the assets; `groups`: adding up the groups.
   */
  phase: 'waiting' | 'clearing' | 'assets' | 'groups';
  /** Assets recounted so far in this pass, of `total` (the catalogue's asset count when it started). */
  done: number;
  total: number;
  /** The targets whose copies will not count once it ends. */
  unavailable: string[];
}

/** `grp!<group key>`: members counted and how many of them are not compliant. */
interface GroupRecord {
  members: number;
  unsafe: number;
}

export interface LedgerOptions {
  catalogue: Catalogue;
  policy: PolicyConfig;
  /** Targets every asset is expected to reach: `mirror`, `raid`, each cloud target. */
  targets: string[];
  /** Targets unavailable now (recovery/target-availability.ts): their copies do not count. */
  unavailable?: string[];
  log?: { info(obj: object, msg: string): void };
  /** Assets a recount slice reads with the catalogue's writes held (default `RECOUNT_SLICE_ASSETS`; tests use fewer). */
  recountSliceAssets?: number;
}

/** What one asset contributes to the ledger. */
interface Contribution {
  compliant: boolean;
  size: number;
  committedAt: number;
  missing: PolicyVerdict['missing'];
  lacking: string[];
}

const K = {
  counters: 'counters',
  unprot: 'unprot!',
  lack: 'lack!',
  byname: 'byname!',
  grp: 'grp!',
  gof: 'gof!',
  /** Only while a rebuild runs (#rebuild): one entry per asset, keyed by its group. */
  gacc: 'gacc!',
} as const;

/**
 * Assets one slice of a recount reads and rewrites with the catalogue's writes held: a commit waits
 * for at most one slice (≈ 0.1 s here), not for the whole pass (≈ a minute a million assets).
 */
export const RECOUNT_SLICE_ASSETS = 2000;

/** The counters' signature while a recount is part done: it matches no configuration, so a crash then recounts at open. */
const PART_RECOUNTED = 'part recounted';

/** A recount under way: the assets up to `cursor` (hash order) are counted without the targets of `to`. */
interface Recount {
  readonly from: ReadonlySet<string>;
  readonly to: ReadonlySet<string>;
  cursor: string;
}

const sameSet = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean =>
  a.size === b.size && [...a].every((t) => b.has(t));

/** `sync: true` (the sublevel's option types do not list it; classic-level honours it). */
const SYNC = { sync: true } as object;

const pad = (n: number): string => String(Math.max(0, Math.floor(n))).padStart(15, '0');

export function copyFact(c: CopyRecord): CopyFact {
  return {
    target: c.target,
    device: c.device,
    media: c.media,
    location: c.location,
    offsite: c.offsite,
    verified: true,
    verifiedAt: new Date(c.verifiedAt).toISOString(),
    method: c.method,
  };
}

function emptyCounters(signature: string, targets: string[]): LedgerCounters {
  const lacking: LedgerCounters['lacking'] = {};
  for (const t of targets) lacking[t] = { count: 0, bytes: 0 };
  return {
    version: LEDGER_VERSION,
    signature,
    assets: 0,
    bytes: 0,
    compliant: 0,
    compliantBytes: 0,
    notCompliant: 0,
    notCompliantBytes: 0,
    missing: { copies: 0, media: 0, offsite: 0 },
    lacking,
    groups: 0,
    groupsCompliant: 0,
  };
}

type LedgerDb = ReturnType<Catalogue['sublevel']>;

export class Ledger implements CatalogueHook {
  readonly policy: PolicyConfig;
  readonly targets: string[];
  readonly #catalogue: Catalogue;
  #signature: string;
  #unavailable: Set<string>;
  readonly #log: LedgerOptions['log'];
  readonly #sliceAssets: number;
  #db: LedgerDb | undefined;
  #counters: LedgerCounters;
  /** Recounts asked for and not yet ended (setUnavailable), and the progress of the one running. */
  #pending = 0;
  #progress: RecountProgress | undefined;
  /** The availability recount whose slices are under way (the hook reads its cursor), if any. */
  #recount: Recount | undefined;
  /** Recounts run one after another. */
  #recounts: Promise<void> = Promise.resolve();
  #settled: Promise<void> = Promise.resolve();
  /** `recountAsked()` callers waiting for the next recount to be asked for. */
  readonly #askedWaiters = new Set<() => void>();

  constructor(opts: LedgerOptions) {
    this.#catalogue = opts.catalogue;
    this.policy = { ...opts.policy };
    this.targets = [...new Set(opts.targets)];
    this.#log = opts.log;
    this.#sliceAssets = Math.max(1, opts.recountSliceAssets ?? RECOUNT_SLICE_ASSETS);
    this.#unavailable = new Set(opts.unavailable ?? []);
    this.#signature = this.#signatureOf(this.#unavailable);
    this.#counters = emptyCounters(this.#signature, this.targets);
  }

  #signatureOf(unavailable: Set<string>): string {
    return JSON.stringify({
      v: LEDGER_VERSION,
      policy: this.policy,
      targets: [...this.targets].sort(),
      unavailable: [...unavailable].sort(),
    });
  }

  /** Targets whose copies do not count now. */
  unavailable(): string[] {
    return [...this.#unavailable];
  }

  /**
   * The copies that count: archive copies (expected targets, not agent copies) on available targets.
   * What answers use (status of an asset, an agent's verdicts, shoots, alerts): the targets available
   * NOW, also while a recount for them is still pending; the stored index and counters follow
   * `#unavailable`, which a recount switches asset by asset (see `#storedDown`).
   */
  counted(copies: readonly CopyRecord[]): CopyRecord[] {
    const down = this.#progress === undefined ? this.#unavailable : new Set(this.#progress.unavailable);
    return this.#countedWith(copies, down);
  }

  #countedWith(copies: readonly CopyRecord[], down: ReadonlySet<string>): CopyRecord[] {
    return copies.filter((c) => c.kind !== 'agent' && this.targets.includes(c.target) && !down.has(c.target));
  }

  /**
   * A target became unavailable or available again: recount the verdict index
   * and counters (one pass over the assets in slices; commits go on between them).
   */
  setUnavailable(targets: readonly string[]): Promise<void> {
    this.#pending++;
    const unavailable = [...targets].sort();
    if (this.#progress === undefined)
      this.#progress = { since: Date.now(), phase: 'waiting', done: 0, total: 0, unavailable };
    else this.#progress.unavailable = unavailable;
    const next = new Set(targets);
    const p = this.#recounts
      .then(() => this.#recountTo(next))
      .finally(() => {
        // A recount that failed part way leaves its progress up: the index is part recounted, and
        // status must not read it as verdicts until a later recount (or the next start) finishes it.
        if (--this.#pending === 0 && this.#recount === undefined) this.#progress = undefined;
        else if (this.#progress !== undefined) this.#progress.phase = 'waiting';
      });
    this.#recounts = p.catch(() => undefined);
    this.#settled = p.catch(() => undefined);
    for (const wake of this.#askedWaiters) wake();
    this.#askedWaiters.clear();
    return p;
  }

  /** `asked` resolves as soon as a recount is pending (at once if one is); `cancel` stops waiting. */
  recountAsked(): { asked: Promise<void>; cancel(): void } {
    if (this.#progress !== undefined) return { asked: Promise.resolve(), cancel: () => undefined };
    let wake: () => void = () => undefined;
    const asked = new Promise<void>((resolve) => {
      wake = resolve;
      this.#askedWaiters.add(resolve);
    });
    return { asked, cancel: () => this.#askedWaiters.delete(wake) };
  }

  /**
   * A recount asked for and not yet ended (`setUnavailable`), or null. While it is not null the
   * counters and the verdict index are not the truth for the targets available now.
   */
  recounting(): RecountProgress | null {
    return this.#progress === undefined ? null : { ...this.#progress, unavailable: [...this.#progress.unavailable] };
  }

  /** Resolves once every recount asked for so far has ended (whether or not it succeeded). */
  async settled(): Promise<void> {
    let last: Promise<void>;
    do {
      last = this.#settled;
      await last;
    } while (last !== this.#settled);
  }

  /**
   * Load the counters; rebuild them from the copy records when they are absent
   * or were computed for another policy/target set. Then register as a hook.
   * Call before anything else writes to the catalogue.
   */
  async open(opts: { unavailable?: readonly string[] } = {}): Promise<{ rebuilt: boolean }> {
    if (opts.unavailable !== undefined) {
      this.#unavailable = new Set(opts.unavailable);
      this.#signature = this.#signatureOf(this.#unavailable);
    }
    this.#db = this.#catalogue.sublevel('ledger');
    const stored = (await this.#db.get(K.counters)) as unknown as LedgerCounters | undefined;
    let rebuilt = false;
    if (stored !== undefined && stored.version === LEDGER_VERSION && stored.signature === this.#signature) {
      this.#counters = stored;
    } else {
      this.#progress = { since: Date.now(), phase: 'waiting', done: 0, total: 0, unavailable: this.unavailable() };
      try {
        await this.#rebuild();
      } finally {
        this.#progress = undefined;
      }
      rebuilt = true;
    }
    this.#catalogue.addHook(this);
    return { rebuilt };
  }

  #sub(): LedgerDb {
    if (this.#db === undefined) throw new TypeError('Ledger used before open()');
    return this.#db;
  }

  counters(): LedgerCounters {
    return structuredClone(this.#counters);
  }

  /**
   * What an answer counts, read in one turn: the verdict counters, the catalogue's (copies per
   * target, field copies), which move together after each catalogue batch (this hook's commit runs
   * in the turn the catalogue moves its own), so no reading counts an asset compliant without the copy
   * that made it so; then the recount under way, read last, so one that ends in between is shown as
   * running, never the reverse. /metrics, the alerts and `studioctl status` read through this.
   */
  countersNow(): { ledger: LedgerCounters; catalogue: CatalogueCounters; recounting: RecountProgress | null } {
    const ledger = this.counters();
    const catalogue = this.#catalogue.counters();
    return { ledger, catalogue, recounting: this.recounting() };
  }

  /** The 3-2-1 verdict of an asset's copies: only the counted ones (see `counted`). */
  verdict(copies: readonly CopyRecord[]): PolicyVerdict {
    return evaluatePolicy(this.counted(copies).map(copyFact), this.policy);
  }

  /** The verdict of an asset's copies and the expected targets it lacks a counted copy on (what the counters add up). */
  assess(copies: readonly CopyRecord[]): { verdict: PolicyVerdict; lacking: string[] } {
    const have = new Set(this.counted(copies).map((c) => c.target));
    return { verdict: this.verdict(copies), lacking: this.targets.filter((t) => !have.has(t)) };
  }

  /** assess() against the targets the stored index and counters are for (the hook, the recount). */
  #assessStored(
    copies: readonly CopyRecord[],
    down: ReadonlySet<string>,
  ): { verdict: PolicyVerdict; lacking: string[] } {
    const counted = this.#countedWith(copies, down);
    const have = new Set(counted.map((c) => c.target));
    return {
      verdict: evaluatePolicy(counted.map(copyFact), this.policy),
      lacking: this.targets.filter((t) => !have.has(t)),
    };
  }

  /** The targets whose copies the stored index counts as gone for `hash` (a recount part done: see `Recount`). */
  #storedDown(hash: string): ReadonlySet<string> {
    const r = this.#recount;
    return r !== undefined && r.cursor !== '' && hash <= r.cursor ? r.to : this.#unavailable;
  }

  #contribution(asset: AssetRecord, copies: readonly CopyRecord[], down = this.#storedDown(asset.hash)): Contribution {
    const { verdict: v, lacking } = this.#assessStored(copies, down);
    return { compliant: v.compliant, size: asset.size, committedAt: asset.committedAt, missing: v.missing, lacking };
  }

  static #sameContribution(a: Contribution, b: Contribution): boolean {
    return (
      a.compliant === b.compliant &&
      a.missing.copies === b.missing.copies &&
      a.missing.media === b.missing.media &&
      a.missing.offsite === b.missing.offsite &&
      a.lacking.length === b.lacking.length &&
      a.lacking.every((t, i) => b.lacking[i] === t)
    );
  }

  #keys(hash: string, c: Contribution): Array<{ key: string; value: Record<string, unknown> }> {
    const out: Array<{ key: string; value: Record<string, unknown> }> = [];
    if (!c.compliant) out.push({ key: K.unprot + hash, value: { size: c.size, committedAt: c.committedAt } });
    for (const t of c.lacking)
      out.push({ key: `${K.lack}${t}!${pad(c.committedAt)}!${hash}`, value: { size: c.size } });
    return out;
  }

  static #apply(n: LedgerCounters, c: Contribution, sign: 1 | -1): void {
    n.assets += sign;
    n.bytes += sign * c.size;
    if (c.compliant) {
      n.compliant += sign;
      n.compliantBytes += sign * c.size;
    } else {
      n.notCompliant += sign;
      n.notCompliantBytes += sign * c.size;
      if (c.missing.copies > 0) n.missing.copies += sign;
      if (c.missing.media > 0) n.missing.media += sign;
      if (c.missing.offsite > 0) n.missing.offsite += sign;
    }
    for (const t of c.lacking) {
      const l = (n.lacking[t] ??= { count: 0, bytes: 0 });
      l.count += sign;
      l.bytes += sign * c.size;
    }
  }

  #nameOps(hash: string, names: readonly NameRecord[]): HookOp[] {
    const sub = this.#sub();
    const seen = new Set<string>();
    const ops: HookOp[] = [];
    // A file renamed at ingest is found by its name on the card too.
    const bases = names.flatMap((n) =>
      n.capture?.originalName === undefined
        ? [posix.basename(n.path)]
        : [posix.basename(n.path), n.capture.originalName],
    );
    for (const base of bases) {
      const key = `${K.byname}${nameKey(base)}!${hash}`;
      if (seen.has(key)) continue;
      seen.add(key);
      ops.push({ type: 'put', key, value: {}, sublevel: sub });
    }
    return ops;
  }

  /**
   * The group key of an asset: its stored path's folder and stem; when no studio copy is left (all
   * lost), the folder its first name is filed under — it is still a member of its group (an unsafe
   * one), so a recount after the loss keeps the groups the commits counted. A group of its own
   * without either.
   */
  static #groupKey(hash: string, copies: readonly CopyRecord[], names: readonly NameRecord[]): string {
    const stored = copies.find((c) => c.kind === 'studio' && c.path !== '');
    if (stored !== undefined) return groupKeyOf(stored.path);
    const first = names[0];
    if (first === undefined) return `#${hash}`;
    const { dir, base } = layoutFor(first);
    return groupKeyOf(posix.join(dir, base));
  }

  /** Counts a group's change: `groups` when it appears, `groupsCompliant` when its verdict turns. */
  static #applyGroup(n: LedgerCounters, before: GroupRecord, after: GroupRecord): void {
    const safe = (g: GroupRecord): number => (g.members > 0 && g.unsafe === 0 ? 1 : 0);
    n.groups += (after.members > 0 ? 1 : 0) - (before.members > 0 ? 1 : 0);
    n.groupsCompliant += safe(after) - safe(before);
  }

  /** The catalogue hook: index entries and counters for the same batch. */
  async prepare(changes: readonly AssetChange[]): Promise<{ ops: HookOp[]; commit?: () => void }> {
    const sub = this.#sub();
    const next = structuredClone(this.#counters);
    const ops: HookOp[] = [];
    // Groups touched by this batch (several members may arrive in one importAssets batch).
    const groups = new Map<string, GroupRecord>();
    const groupOfHash = new Map<string, string>();
    // What the batch finds stored (group of each known asset, then each group's record): one
    // read each for the whole batch, not two per asset.
    const changed = changes.filter((c): c is AssetChange & { asset: AssetRecord } => c.asset !== undefined);
    const known = [...new Set(changed.filter((c) => !c.created).map((c) => c.hash))];
    const gofValues = known.length === 0 ? [] : await sub.getMany(known.map((h) => K.gof + h));
    const storedGroupOf = new Map(known.map((h, i) => [h, (gofValues[i] as { group?: string } | undefined)?.group]));
    const keys: string[] = [];
    for (const change of changed) {
      let key = groupOfHash.get(change.hash) ?? (change.created ? undefined : storedGroupOf.get(change.hash));
      if (key === undefined) {
        key = Ledger.#groupKey(change.hash, [...change.after, ...change.before], change.names);
        ops.push({ type: 'put', key: K.gof + change.hash, value: { group: key }, sublevel: sub });
      }
      groupOfHash.set(change.hash, key);
      keys.push(key);
    }
    const groupKeys = [...new Set(keys)];
    const grpValues = groupKeys.length === 0 ? [] : await sub.getMany(groupKeys.map((k) => K.grp + k));
    const storedGroups = new Map(groupKeys.map((k, i) => [k, grpValues[i] as unknown as GroupRecord | undefined]));
    for (const [i, change] of changed.entries()) {
      const key = keys[i] as string;
      const before = groups.get(key) ?? storedGroups.get(key) ?? { members: 0, unsafe: 0 };
      const group = { ...before };
      if (!change.created) {
        const old = this.#contribution(change.asset, change.before);
        Ledger.#apply(next, old, -1);
        for (const k of this.#keys(change.hash, old)) ops.push({ type: 'del', key: k.key, sublevel: sub });
        if (!old.compliant) group.unsafe--;
      } else group.members++;
      const now = this.#contribution(change.asset, change.after);
      Ledger.#apply(next, now, 1);
      if (!now.compliant) group.unsafe++;
      Ledger.#applyGroup(next, before, group);
      groups.set(key, group);
      for (const k of this.#keys(change.hash, now))
        ops.push({ type: 'put', key: k.key, value: k.value, sublevel: sub });
      for (const op of this.#nameOps(change.hash, change.names)) ops.push(op);
    }
    for (const [key, g] of groups) ops.push({ type: 'put', key: K.grp + key, value: g, sublevel: sub });
    if (ops.length === 0 && changes.every((c) => c.asset === undefined)) return { ops: [] };
    ops.push({ type: 'put', key: K.counters, value: next, sublevel: sub });
    return {
      ops,
      commit: () => {
        this.#counters = next;
      },
    };
  }

  /** Oldest commit time among assets still lacking a copy on `target` (one seek, no scan). */
  async oldestLacking(target: string): Promise<number | null> {
    for await (const key of this.#sub().keys({ gt: `${K.lack}${target}!`, lt: `${K.lack}${target}!\xff`, limit: 1 })) {
      const ms = Number(key.slice(K.lack.length + target.length + 1, K.lack.length + target.length + 16));
      return Number.isFinite(ms) ? ms : null;
    }
    return null;
  }

  /** Hashes of assets lacking a copy on `target`, oldest first. */
  async *lacking(target: string, limit = -1): AsyncGenerator<string> {
    for await (const key of this.#sub().keys({ gt: `${K.lack}${target}!`, lt: `${K.lack}${target}!\xff`, limit })) {
      yield key.slice(key.lastIndexOf('!') + 1);
    }
  }

  /** Assets lacking a copy on `target` committed before `before` (ms), oldest first: one range read. */
  async *lackingBefore(
    target: string,
    before: number,
    limit = -1,
  ): AsyncGenerator<{ hash: string; committedAt: number }> {
    const from = `${K.lack}${target}!`;
    for await (const key of this.#sub().keys({ gt: from, lt: `${from}${pad(Math.max(0, before))}`, limit })) {
      yield {
        hash: key.slice(key.lastIndexOf('!') + 1),
        committedAt: Number(key.slice(from.length, from.length + 15)),
      };
    }
  }

  /** Hashes of assets that are not 3-2-1 compliant, in hash order. */
  async *unprotected(opts: { gt?: string; limit?: number } = {}): AsyncGenerator<string> {
    for await (const key of this.#sub().keys({
      gt: K.unprot + (opts.gt ?? ''),
      lt: `${K.unprot}\xff`,
      limit: opts.limit ?? -1,
    })) {
      yield key.slice(K.unprot.length);
    }
  }

  /** Hashes of assets with a name whose file name is `base` (case- and normalisation-insensitive). */
  async byName(base: string): Promise<string[]> {
    const prefix = `${K.byname}${nameKey(base)}!`;
    const out: string[] = [];
    for await (const key of this.#sub().keys({ gt: prefix, lt: `${prefix}\xff` })) out.push(key.slice(prefix.length));
    return out;
  }

  /**
   * Recount the verdict index and counters for the unavailable targets `next`: slices of
   * `RECOUNT_SLICE_ASSETS` assets in hash order, each under `Catalogue.exclusive`, so a commit
   * waits for one slice at most. A recount that failed part way is finished first.
   */
  async #recountTo(next: ReadonlySet<string>): Promise<void> {
    if (this.#recount === undefined) {
      if (sameSet(next, this.#unavailable)) return;
      this.#recount = { from: this.#unavailable, to: next, cursor: '' };
    }
    const r = this.#recount;
    const started = Date.now();
    let slices = 0;
    while (this.#recount === r) {
      await this.#catalogue.exclusive(() => {
        // `waiting` (for the writes in flight) until the first slice holds the catalogue.
        const progress = this.#progress;
        if (slices === 0 && progress !== undefined)
          Object.assign(progress, { phase: 'assets', done: 0, total: this.#catalogue.counters().assets });
        return this.#recountSlice(r);
      });
      slices++;
    }
    this.#log?.info(
      {
        assets: this.#counters.assets,
        compliant: this.#counters.compliant,
        unavailable: [...this.#unavailable],
        slices,
        ms: Date.now() - started,
      },
      'ledger verdicts recounted after a target availability change',
    );
    if (!sameSet(next, r.to)) await this.#recountTo(next);
  }

  /**
   * One slice of a recount: the next assets after the cursor, each counted for the old and the new
   * targets; where the two differ, its index entries, the counters and its group's unsafe count
   * move, in one batch with the counters (signed part recounted until the last slice).
   */
  async #recountSlice(r: Recount): Promise<void> {
    const sub = this.#sub();
    const next = structuredClone(this.#counters);
    const ops: Array<{ type: 'put'; key: string; value: Record<string, unknown> } | { type: 'del'; key: string }> = [];
    const flipped: Array<{ hash: string; unsafe: 1 | -1; copies: CopyRecord[] }> = [];
    let seen = 0;
    let last = r.cursor;
    for await (const { asset, copies } of this.#catalogue.assetsWithRecords({
      after: r.cursor,
      limit: this.#sliceAssets,
    })) {
      seen++;
      last = asset.hash;
      const old = this.#contribution(asset, copies, r.from);
      const now = this.#contribution(asset, copies, r.to);
      if (Ledger.#sameContribution(old, now)) continue;
      Ledger.#apply(next, old, -1);
      Ledger.#apply(next, now, 1);
      for (const k of this.#keys(asset.hash, old)) ops.push({ type: 'del', key: k.key });
      for (const k of this.#keys(asset.hash, now)) ops.push({ type: 'put', ...k });
      if (old.compliant !== now.compliant) flipped.push({ hash: asset.hash, unsafe: now.compliant ? -1 : 1, copies });
    }
    if (flipped.length > 0) {
      // Each flipped asset's group (as the hook counted it: `gof!`), read once for the slice.
      const gofs = await sub.getMany(flipped.map((f) => K.gof + f.hash));
      const keyOf = async (f: (typeof flipped)[number], i: number): Promise<string> =>
        (gofs[i] as { group?: string } | undefined)?.group ??
        Ledger.#groupKey(f.hash, f.copies, await this.#catalogue.namesOf(f.hash));
      const keys = await Promise.all(flipped.map(keyOf));
      const unique = [...new Set(keys)];
      const stored = await sub.getMany(unique.map((k) => K.grp + k));
      const groups = new Map(
        unique.map((k, i) => [k, (stored[i] as unknown as GroupRecord | undefined) ?? { members: 0, unsafe: 0 }]),
      );
      const before = new Map([...groups].map(([k, g]) => [k, { ...g }]));
      for (const [i, f] of flipped.entries()) (groups.get(keys[i] as string) as GroupRecord).unsafe += f.unsafe;
      for (const [k, g] of groups) {
        Ledger.#applyGroup(next, before.get(k) as GroupRecord, g);
        ops.push({ type: 'put', key: K.grp + k, value: { ...g } });
      }
    }
    const done = seen < this.#sliceAssets;
    next.signature = done ? this.#signatureOf(new Set(r.to)) : PART_RECOUNTED;
    ops.push({ type: 'put', key: K.counters, value: next as unknown as Record<string, unknown> });
    await writeLevelBatch(sub, { sync: done }, ops);
    this.#counters = next;
    r.cursor = last;
    const progress = this.#progress;
    if (progress !== undefined) {
      progress.done += seen;
      // Commits go on between slices: the assets they added count in the total too.
      progress.total = Math.max(progress.total, progress.done, this.#catalogue.counters().assets);
    }
    if (done) {
      this.#unavailable = new Set(r.to);
      this.#signature = next.signature;
      this.#recount = undefined;
    }
  }

  /**
   * Recompute every index entry, the by-name index and the counters from the copy and name
   * records (at open, when the stored counters are for another configuration or were left part
   * recounted by a crash; an availability change recounts in slices). Memory and time do not grow with
   * more than the archive's records: the old entries go by range, the assets are read in one
   * pass with their copies (Catalogue.assetsWithRecords), and the groups are counted from a
   * temporary index (`gacc!<group>\0<hash>`: LevelDB sorts each group's members together) that a
   * second pass adds up and removes, instead of a map of every group in memory.
   */
  async #rebuild(): Promise<void> {
    const sub = this.#sub();
    const started = Date.now();
    const progress = this.#progress;
    if (progress !== undefined) progress.phase = 'clearing';
    await sub.del(K.counters, SYNC);
    for (const prefix of [K.unprot, K.lack, K.grp, K.gof, K.gacc, K.byname])
      await sub.clear({ gte: prefix, lt: `${prefix}\xff` });
    const next = emptyCounters(this.#signature, this.targets);
    if (progress !== undefined)
      Object.assign(progress, { phase: 'assets', done: 0, total: this.#catalogue.counters().assets });
    let ops: Array<{ type: 'put'; key: string; value: Record<string, unknown> }> = [];
    const flush = async (atLeast: number): Promise<void> => {
      if (ops.length < atLeast || ops.length === 0) return;
      await writeLevelBatch(sub, { sync: false }, ops);
      ops = [];
    };
    for await (const { asset, copies, names: nameRecs = [] } of this.#catalogue.assetsWithRecords({ names: true })) {
      const c = this.#contribution(asset, copies);
      Ledger.#apply(next, c, 1);
      for (const k of this.#keys(asset.hash, c)) ops.push({ type: 'put', ...k });
      const stored = copies.some((x) => x.kind === 'studio' && x.path !== '');
      const key = Ledger.#groupKey(asset.hash, copies, stored ? [] : nameRecs);
      ops.push({ type: 'put', key: K.gof + asset.hash, value: { group: key } });
      ops.push({ type: 'put', key: `${K.gacc}${key}\0${asset.hash}`, value: { group: key, unsafe: !c.compliant } });
      for (const o of this.#nameOps(asset.hash, nameRecs)) ops.push({ type: 'put', key: o.key, value: {} });
      if (progress !== undefined) progress.done++;
      await flush(5000);
    }
    await flush(1);
    if (progress !== undefined) progress.phase = 'groups';
    // The groups: each one's members are consecutive in `gacc!`.
    let group: { key: string; g: GroupRecord } | undefined;
    const closeGroup = (): void => {
      if (group === undefined) return;
      Ledger.#applyGroup(next, { members: 0, unsafe: 0 }, group.g);
      ops.push({ type: 'put', key: K.grp + group.key, value: { ...group.g } });
    };
    // classic-level reads 1 MiB at a time (its option; abstract-level's types do not list it).
    const range = { gte: K.gacc, lt: `${K.gacc}\xff`, highWaterMarkBytes: 1024 * 1024 };
    for await (const v of sub.values(range as Parameters<typeof sub.values>[0])) {
      const m = v as unknown as { group: string; unsafe: boolean };
      if (group?.key !== m.group) {
        closeGroup();
        group = { key: m.group, g: { members: 0, unsafe: 0 } };
      }
      group.g.members++;
      if (m.unsafe) group.g.unsafe++;
      await flush(5000);
    }
    closeGroup();
    await flush(1);
    await sub.clear({ gte: K.gacc, lt: `${K.gacc}\xff` });
    await sub.put(K.counters, next as unknown as Record<string, unknown>, SYNC);
    this.#counters = next;
    this.#log?.info(
      {
        assets: next.assets,
        compliant: next.compliant,
        unavailable: [...this.#unavailable],
        ms: Date.now() - started,
      },
      'ledger counters rebuilt',
    );
  }
}
