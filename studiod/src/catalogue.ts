/**
 * The studio catalogue: one LevelDB (docs/design.md §Studio catalogue).
 *
 * Every state change is ONE batch written with `sync: true`; counters that
 * `studioctl status` shows live in the same batch as the records they count, so
 * status never scans. Writes are serialised (one in flight) so counters are
 * read-modify-written consistently; reads are free. The agents' records have a chain
 * of their own (#agentWrite): the sessions' last-seen updates do not wait behind the
 * commits' batches, nor hold them up.
 */
import { Level } from 'level';
import { FORMAT_VERSION, hasCodeInChain, type AgentCopy, type FileCapture } from '@studio321/protocol';
import { GroupCommit, writeLevelBatch } from '@studio321/protocol/durable';
import { STUDIO_CODES, StudioError } from './errors.js';

export interface AssetRecord {
  hash: string;
  size: number;
  /** When the receipt-making commit finished (ms). */
  committedAt: number;
  /** The XXH3-64 the agent offered (ASC MHL, protocol/src/durable/mhl.ts); absent from older agents. */
  xxh3?: string;
}

export interface NameRecord {
  hash: string;
  shoot: string;
  card: string;
  path: string;
  mtime: number;
  /** The date folder and capture metadata the agent read (agents before it send none). */
  capture?: FileCapture;
  agentId: string;
  seenAt: number;
}

export interface CopyRecord {
  hash: string;
  /** Target label: `mirror`, `raid`, a cloud target name, or an agent's `laptop`/`field-drive`. */
  target: string;
  /** 'studio' (local target), 'cloud', or 'agent' (reported by a field agent with its offer). */
  kind: 'studio' | 'cloud' | 'agent';
  /** Target-relative path (studio), object key (cloud); empty for agent copies. */
  path: string;
  size: number;
  device: string;
  media: string;
  location: string;
  offsite: boolean;
  method: string;
  verifiedAt: number;
  /** For kind 'agent': the reporting agent. */
  agentId?: string;
  /**
   * Set when the copy was made again by recovery (recovery/remake-copy.ts):
   * the verified copy its bytes were read from, and when.
   */
  healedFrom?: { target: string; kind: 'studio' | 'cloud'; path: string; at: number };
  /** For kind 'cloud' on a target with objectLock: the retention HEAD confirmed, and the locked version. */
  lock?: { mode: string; retainUntil: string; versionId?: string };
}

export interface AgentRecord {
  agentId: string;
  name: string;
  /** Ed25519 SPKI DER, base64. */
  publicKey: string;
  pairedAt: number;
  revokedAt?: number;
  lastSeenAt?: number;
  /**
   * What the agent last reported waiting in its studio queue (its Hello), less the receipts the
   * studio sent it since; absent for agents that do not report it.
   */
  queue?: { files: number; bytes: number };
}

export interface PairingCodeRecord {
  code: string;
  createdAt: number;
  expiresAt: number;
}

export interface StoredPathRecord {
  hash: string;
  /** The target-relative path as stored (exact bytes). */
  path: string;
}

export interface CatalogueCounters {
  assets: number;
  bytes: number;
  /** Per archive target (mirror, raid, each cloud target): the studio's own copies and bytes. */
  copies: Record<string, { count: number; bytes: number }>;
  /**
   * Field claims (kind 'agent') per agent id, then per the label that agent gave
   * (`laptop`, `field-drive`, or anything it chose — even `mirror`): never an
   * archive target's count, whatever the label says.
   */
  field: Record<string, Record<string, { count: number; bytes: number }>>;
}

/** What one receipt-making commit writes, all in one batch. */
export interface CommitRecord {
  asset: AssetRecord;
  names: Array<{ key: string; value: NameRecord }>;
  copies: CopyRecord[];
  /** Stored path index entries, keyed by nameKey(relative path). */
  storedPaths: Array<{ key: string; value: StoredPathRecord }>;
  /** Operations of other modules for the same batch (the folder's pending ASC MHL entry, commit/mhl-history.ts). */
  extra?: HookOp[];
  /**
   * The intents (`intent!<id>`) this batch deletes: the folders no commit writes in any more
   * (commit/folder-intents.ts), none; absent: the asset's own `intent!<hash>` (putIntent).
   */
  clearIntents?: readonly string[];
}

/**
 * A commit in progress: the directories its temp files may be in (swept at start after a crash).
 * Keyed `intent!<hash>` (putIntent: one commit), or `intent!<folder>` for a folder commits write
 * in (putFolderIntents, commit/folder-intents.ts: no hash).
 */
export interface CommitIntentRecord {
  hash?: string;
  dirs: string[];
  startedAt: number;
}

type Json = Record<string, unknown>;
/** What the group commit writes: intents (keyed by id), intents deleted, or a receipt-making commit record. */
type GroupItem =
  | { intents: Array<{ id: string; value: CommitIntentRecord }> }
  | { clearIntents: readonly string[] }
  | { commit: CommitRecord };
type Op = { type: 'put'; key: string; value: Json } | { type: 'del'; key: string };

/** What one catalogue write changes for one asset — handed to hooks (the ledger, the cloud enqueue). */
export interface AssetChange {
  hash: string;
  /** The asset record after the write (undefined: the asset is not in the catalogue). */
  asset: AssetRecord | undefined;
  /** True when this write creates the asset record. */
  created: boolean;
  /** The asset's copies before and after the write. */
  before: CopyRecord[];
  after: CopyRecord[];
  /** Names this write adds. */
  names: NameRecord[];
}

/** A JSON sublevel of the catalogue DB (Catalogue.sublevel). */
type JsonSublevel = ReturnType<typeof jsonSublevel>;
function jsonSublevel(db: Level<string, Json>, name: string) {
  return db.sublevel<string, Json>(name, { valueEncoding: 'json' });
}

/** A raw batch operation a hook adds to the SAME batch; it may name a sublevel (abstract-level `sublevel` option). */
export type HookOp = {
  type: 'put' | 'del';
  key: string;
  value?: unknown;
  sublevel?: unknown;
  [extra: string]: unknown;
};

/**
 * Called inside the catalogue's serialised write section, before the batch is
 * written: returns operations for the same batch and, optionally, a function
 * run only after the batch succeeded (to move in-memory counters forward).
 */
export interface CatalogueHook {
  /** All changes of ONE batch (several for importAssets), in order. */
  prepare(changes: readonly AssetChange[]): Promise<{ ops: HookOp[]; commit?: () => void }>;
}
const SYNC = { sync: true } as const;

/** Key prefixes in the root LevelDB (docs/design.md §Studio catalogue). */
const P = {
  meta: 'meta!',
  asset: 'asset!',
  name: 'name!',
  copy: 'copy!',
  stored: 'stored!',
  agent: 'agent!',
  pairing: 'pairing!',
  counter: 'counter!',
  intent: 'intent!',
} as const;
type Prefix = (typeof P)[keyof typeof P];

/** The record kinds a catalogue export carries (docs/design.md §Catalogue snapshots); counters, intents and pairing codes are not exported. */
export const EXPORTED_KINDS = ['asset', 'name', 'copy', 'stored', 'agent'] as const;
export type ExportedKind = (typeof EXPORTED_KINDS)[number];

/** One exported record: its kind, its key without the kind's prefix, its value. */
export interface ExportedRecord {
  t: ExportedKind;
  k: string;
  v: Record<string, unknown>;
}

const KIND_OF_PREFIX = new Map<string, ExportedKind>(EXPORTED_KINDS.map((k) => [P[k], k]));

const SEP = '!';

/** The copy record of a file on a local archive target (mirror or RAID), on the target's device. */
export function localCopyRecord(
  target: string,
  disk: { device: string; media: string; location: string },
  c: Pick<CopyRecord, 'hash' | 'path' | 'size' | 'method' | 'verifiedAt'>,
): CopyRecord {
  return {
    hash: c.hash,
    target,
    kind: 'studio',
    path: c.path,
    size: c.size,
    device: disk.device,
    media: disk.media,
    location: disk.location,
    offsite: false,
    method: c.method,
    verifiedAt: c.verifiedAt,
  };
}

/**
 * The records of the copies an agent says it holds (its Offer's `copies`):
 * claims, never archive copies. Whatever their labels say (`laptop`, or a
 * forged `mirror`), they are kind 'agent' under the id of the authenticated
 * session that sent them, so an agent can only ever speak for itself and no
 * label reaches an archive target's record, count or verdict.
 */
export function fieldClaimRecords(
  agentId: string,
  file: { hash: string; size: number },
  claims: readonly AgentCopy[],
): CopyRecord[] {
  if (agentId === '') throw new TypeError('fieldClaimRecords: a field claim needs the authenticated agent id');
  return claims.map((c) => ({
    hash: file.hash,
    target: c.target,
    kind: 'agent',
    path: '',
    size: file.size,
    device: c.device,
    media: c.media,
    location: c.location,
    offsite: false,
    method: c.method,
    verifiedAt: c.verifiedAt,
    agentId,
  }));
}

/**
 * Key of a copy record: `<hash>!<target>` for the studio's own copies; a field
 * claim is keyed under its agent, `<hash>!agent:<agentId>:<label>`, so no label
 * can take the key of an archive copy or of another agent's claim.
 */
export function copyKey(c: Pick<CopyRecord, 'hash' | 'target' | 'kind' | 'agentId'>): string {
  if (c.kind !== 'agent') return `${c.hash}${SEP}${c.target}`;
  if (c.agentId === undefined || c.agentId === '') throw new TypeError('copyKey: a field claim without its agent id');
  return `${c.hash}${SEP}agent:${c.agentId}:${c.target}`;
}

interface ReadBatch {
  keys: string[];
  waiters: Array<{ resolve: (v: Json | undefined) => void; reject: (err: unknown) => void }>;
}

/** Copy records read at a time per hash by copiesOfMany (an asset has a few: its targets and field claims). */
const COPIES_READ_AT_ONCE = 8;

/** What a whole-range pass reads from LevelDB at a time (16 KiB by default: half the CPU per record at 1 MiB). */
const PASS_READ_BYTES = 1024 * 1024;

/**
 * A range read of records keyed `<prefix><hash>!…`, handed out one hash at a time in key (hash)
 * order (Catalogue.assetsWithRecords joins it with the asset records).
 */
class HashCursor<T> {
  readonly #it: AsyncIterator<[string, Json]>;
  readonly #prefix: string;
  #head: { hash: string; value: T } | undefined;
  #done = false;

  /** `after`: start past the records of that hash (a pass resumed in slices). */
  constructor(db: Level<string, Json>, prefix: Prefix, after = '') {
    this.#prefix = prefix;
    this.#it = db
      .iterator({
        gt: after === '' ? prefix : `${prefix}${after}${SEP}\xff`,
        lt: `${prefix}\xff`,
        highWaterMarkBytes: PASS_READ_BYTES,
      })
      [Symbol.asyncIterator]();
  }

  /** The records of `hash`; records of hashes before it (no asset record) are skipped. */
  async take(hash: string): Promise<T[]> {
    const out: T[] = [];
    for (;;) {
      if (this.#head === undefined) {
        if (this.#done) return out;
        const r = await this.#it.next();
        if (r.done === true) {
          this.#done = true;
          return out;
        }
        const [key, value] = r.value;
        const end = key.indexOf(SEP, this.#prefix.length);
        this.#head = { hash: key.slice(this.#prefix.length, end < 0 ? undefined : end), value: value as T };
      }
      if (this.#head.hash > hash) return out;
      if (this.#head.hash === hash) out.push(this.#head.value);
      this.#head = undefined;
    }
  }

  async close(): Promise<void> {
    await this.#it.return?.();
  }
}

export class Catalogue {
  readonly location: string;
  #db: Level<string, Json> | undefined;
  /**
   * One sublevel per name for this open DB: abstract-level attaches every sublevel it makes to its
   * parent until closed, so one made per call (per commit) was kept for the process' life.
   */
  readonly #sublevels = new Map<string, JsonSublevel>();
  #counters: CatalogueCounters = { assets: 0, bytes: 0, copies: {}, field: {} };
  #writeChain: Promise<unknown> = Promise.resolve();
  /**
   * The agents' records (`agent!`) have a write chain of their own: a last-seen update
   * (touchAgent) read-modify-writes one and must not undo a pairing or a revocation, which run
   * on both chains, but it has no business waiting behind the commits' group batches, nor
   * they behind it (docs/design.md §Catalogue LevelDB).
   */
  #agentChain: Promise<unknown> = Promise.resolve();
  /** Last-seen updates not yet written, by agent, and the one write that will write them all (touchAgent). */
  #seen = new Map<string, { now: number; queue?: { files: number; bytes: number } }>();
  #seenWrite: Promise<void> | undefined;
  /** Point reads asked in this turn, read together at its end (#read). */
  #reads: ReadBatch | undefined;
  /** Intents and commit records that arrive together: one synced batch (commitAsset, putIntent). */
  readonly #group = new GroupCommit<GroupItem>((items) => this.#write(() => this.#writeGroup(items)));
  /**
   * Folder intents (putFolderIntents) in a lane of their own: synced batches of intent puts alone,
   * written beside the group's (LevelDB joins concurrent synced writes in one log write), not behind
   * its queued batch and the write chain. They change no counter and no hook reads them. A folder
   * whose delete is queued in the group and not yet written still goes through the group, after it
   * (#clearing), so the put wins.
   */
  readonly #intentLane = new GroupCommit<Array<{ id: string; value: CommitIntentRecord }>>((items) => {
    const write = this.#batch(
      items.flat().map((i) => ({ type: 'put' as const, key: P.intent + i.id, value: i.value as unknown as Json })),
    );
    this.#intentLaneWrite = write.catch(() => undefined);
    return write;
  });
  #intentLaneWrite: Promise<unknown> = Promise.resolve();
  /** Intent ids whose delete is queued in the group and not yet written (or failed): how many such deletes. */
  readonly #clearing = new Map<string, number>();
  readonly #hooks: CatalogueHook[] = [];
  #agentsListener: ((agents: AgentRecord[]) => Promise<void>) | undefined;
  #state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';

  constructor(location: string) {
    this.location = location;
  }

  get state(): string {
    return this.#state;
  }

  async open(): Promise<void> {
    if (this.#state !== 'new') throw new TypeError(`Catalogue.open() in state ${this.#state}`);
    this.#state = 'opening';
    const db = new Level<string, Json>(this.location, { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (err) {
      this.#state = 'closed';
      const locked = hasCodeInChain(err, 'LEVEL_LOCKED');
      throw new StudioError(
        locked ? STUDIO_CODES.catalogueLocked : STUDIO_CODES.targetIo,
        locked
          ? `The catalogue at ${this.location} is in use by another studiod. Stop the other studiod first.`
          : `The catalogue at ${this.location} cannot be opened. Check the path and its permissions.`,
        { cause: err, detail: { location: this.location } },
      );
    }
    this.#db = db;
    this.#sublevels.clear();
    this.#state = 'open';
    const format = await this.#get<{ version: number }>(P.meta, 'format');
    if (format === undefined) {
      await db.put(`${P.meta}format`, { version: FORMAT_VERSION }, SYNC);
    } else if (typeof format.version !== 'number' || format.version > FORMAT_VERSION) {
      await db.close();
      this.#state = 'closed';
      throw new StudioError(
        STUDIO_CODES.formatTooNew,
        `The catalogue at ${this.location} has format ${String(format.version)}, newer than this studiod understands (${FORMAT_VERSION}). Upgrade studiod.`,
      );
    }
    const counters = await this.#get<CatalogueCounters>(P.counter, 'all');
    if (counters !== undefined) this.#counters = counters;
    // Counters written before field claims were kept apart added them to the
    // label's target (a laptop's forged `mirror` raised the mirror's count): recount once.
    if (counters !== undefined && counters.field === undefined) await this.recountCounters();
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    await Promise.all([this.#writeChain, this.#agentChain, this.#intentLaneWrite]).catch(() => undefined);
    await this.#db?.close();
    this.#state = 'closed';
  }

  /** A JSON sublevel of the catalogue DB for modules that keep their own records (the cloud forwarder). */
  sublevel(name: string): JsonSublevel {
    const db = this.#open();
    let sub = this.#sublevels.get(name);
    if (sub === undefined) {
      sub = jsonSublevel(db, name);
      this.#sublevels.set(name, sub);
    }
    return sub;
  }

  async #get<T>(prefix: Prefix, key: string): Promise<T | undefined> {
    return (await this.#open().get(prefix + key)) as T | undefined;
  }

  async *#values<T>(prefix: Prefix, from = '', limit = -1): AsyncGenerator<T> {
    const it = this.#open().values({ gt: prefix + from, lt: `${prefix}\xff`, limit });
    for await (const v of it) yield v as T;
  }

  /**
   * ONE synced batch in the chained form (protocol's writeLevelBatch); the hooks' ops keep their
   * options (a `sublevel`, marks for 'write' listeners: the cloud forwarder's enqueue mark).
   */
  async #batch(ops: Op[], extra: HookOp[] = []): Promise<void> {
    await writeLevelBatch(this.#open(), SYNC, ops, extra);
  }

  /** Register a hook that adds its operations to every batch that changes an asset's copies or names. */
  addHook(hook: CatalogueHook): void {
    this.#hooks.push(hook);
  }

  async #runHooks(changes: AssetChange[]): Promise<{ ops: HookOp[]; commit: () => void }> {
    const ops: HookOp[] = [];
    const commits: Array<() => void> = [];
    if (changes.length === 0) return { ops, commit: () => undefined };
    for (const h of this.#hooks) {
      const r = await h.prepare(changes);
      for (const op of r.ops) ops.push(op);
      if (r.commit !== undefined) commits.push(r.commit);
    }
    return {
      ops,
      commit: () => {
        for (const c of commits) c();
      },
    };
  }

  /** Copies after applying `puts` and `dels` (by copy key) to `before`. */
  static #mergeCopies(before: CopyRecord[], puts: CopyRecord[], dels: string[] = []): CopyRecord[] {
    const m = new Map(before.map((c) => [copyKey(c), c]));
    for (const k of dels) m.delete(k);
    for (const c of puts) m.set(copyKey(c), c);
    return [...m.values()];
  }

  #open(): Level<string, Json> {
    if (this.#state !== 'open' || this.#db === undefined) throw new TypeError(`Catalogue used in state ${this.#state}`);
    return this.#db;
  }

  /** Serialise a write section. */
  #write<T>(fn: () => Promise<T>): Promise<T> {
    this.#open();
    const p = this.#writeChain.then(fn, fn);
    this.#writeChain = p.catch(() => undefined);
    return p;
  }

  /** Serialise a write of agent records (pairAgent and revokeAgent take both chains, main first). */
  #agentWrite<T>(fn: () => Promise<T>): Promise<T> {
    this.#open();
    const p = this.#agentChain.then(fn, fn);
    this.#agentChain = p.catch(() => undefined);
    return p;
  }

  /**
   * Run `fn` with no other catalogue write in flight and none starting until
   * it ends (each slice of the ledger's recount after a target changed
   * availability). `fn` must not call the catalogue's write methods (it would
   * wait for itself).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#write(fn);
  }

  /** The catalogue records copies on archive target `target` (counters() without its copy). */
  hasCopiesOn(target: string): boolean {
    return (this.#counters.copies[target]?.count ?? 0) > 0;
  }

  counters(): CatalogueCounters {
    return structuredClone(this.#counters);
  }

  async getAsset(hash: string): Promise<AssetRecord | undefined> {
    return (await this.#read(P.asset + hash)) as AssetRecord | undefined;
  }

  /**
   * A point read joined with the others asked in the same turn of the event loop: ONE getMany for
   * them (the commits of a group look up their stored paths together, a verdict request its assets).
   */
  #read(key: string): Promise<Json | undefined> {
    const db = this.#open();
    let batch = this.#reads;
    if (batch === undefined) {
      const b: ReadBatch = { keys: [], waiters: [] };
      this.#reads = batch = b;
      process.nextTick(() => {
        this.#reads = undefined;
        const fail = (err: unknown): void => {
          for (const w of b.waiters) w.reject(err);
        };
        try {
          db.getMany(b.keys).then((values) => {
            b.waiters.forEach((w, i) => {
              w.resolve(values[i]);
            });
          }, fail);
        } catch (err) {
          fail(err); // closed meanwhile: abstract-level throws, it does not reject
        }
      });
    }
    const b = batch;
    b.keys.push(key);
    return new Promise((resolve, reject) => b.waiters.push({ resolve, reject }));
  }

  /** Which of `hashes` have an asset record, in their order (one read for all: an Offer's batch). */
  async assetsKnown(hashes: readonly string[]): Promise<boolean[]> {
    if (hashes.length === 0) return [];
    const values = await this.#open().getMany(hashes.map((h) => P.asset + h));
    return values.map((v) => v !== undefined);
  }

  async copiesOf(hash: string): Promise<CopyRecord[]> {
    return this.#ofHash<CopyRecord>(P.copy, hash);
  }

  /**
   * copiesOf of each of `hashes`, in their order: ONE iterator over the copy records, sought to each
   * hash in key order (a verdict request's hashes), not one range read each.
   */
  async copiesOfMany(hashes: readonly string[]): Promise<CopyRecord[][]> {
    const found = new Map<string, CopyRecord[]>();
    const it = this.#open().iterator({ gt: P.copy, lt: `${P.copy}\xff` });
    try {
      for (const hash of [...new Set(hashes)].sort()) {
        const prefix = `${P.copy}${hash}${SEP}`;
        const out: CopyRecord[] = [];
        it.seek(prefix);
        for (let more = true; more; ) {
          const entries = await it.nextv(COPIES_READ_AT_ONCE);
          more = entries.length === COPIES_READ_AT_ONCE;
          for (const [k, v] of entries) {
            if (!k.startsWith(prefix)) {
              more = false;
              break;
            }
            out.push(v as unknown as CopyRecord);
          }
        }
        found.set(hash, out);
      }
    } finally {
      await it.close();
    }
    return hashes.map((h) => found.get(h) ?? []);
  }

  async namesOf(hash: string): Promise<NameRecord[]> {
    return this.#ofHash<NameRecord>(P.name, hash);
  }

  /** Every record under `<prefix><hash>!` (the copies or the names of one asset). */
  async #ofHash<T>(prefix: Prefix, hash: string): Promise<T[]> {
    const out: T[] = [];
    const it = this.#open().values({ gt: `${prefix}${hash}${SEP}`, lt: `${prefix}${hash}${SEP}\xff` });
    for await (const v of it) out.push(v as unknown as T);
    return out;
  }

  async storedPath(key: string): Promise<StoredPathRecord | undefined> {
    return (await this.#read(P.stored + key)) as StoredPathRecord | undefined;
  }

  /**
   * Stored paths whose key (nameKey of the target-relative path) is in [gte, lt):
   * one range read of the `stored!` index, e.g. every file of one folder with one stem.
   */
  async storedPathsBetween(gte: string, lt: string): Promise<Array<{ key: string; value: StoredPathRecord }>> {
    const out: Array<{ key: string; value: StoredPathRecord }> = [];
    const it = this.#open().iterator({ gte: P.stored + gte, lt: P.stored + lt });
    for await (const [k, v] of it) out.push({ key: k.slice(P.stored.length), value: v as unknown as StoredPathRecord });
    return out;
  }

  #bumpCopy(next: CatalogueCounters, c: CopyRecord, sign: 1 | -1): void {
    const per = c.kind === 'agent' ? (next.field[c.agentId ?? ''] ??= {}) : next.copies;
    const t = (per[c.target] ??= { count: 0, bytes: 0 });
    t.count += sign;
    t.bytes += sign * c.size;
  }

  /**
   * The receipt-making batch: asset, names, both local copies, stored-path index
   * and counters, `sync: true`. Idempotent: an asset already present is not counted twice.
   * `dirs`: directories whose new names this record counts (written with fsyncDir: false);
   * they are fsync'd before the batch. Commits (and intents) that arrive together share ONE
   * directory fsync per folder and ONE synced batch (the group commit, #group).
   */
  commitAsset(rec: CommitRecord, dirs: readonly string[] = []): Promise<void> {
    this.#open();
    return this.#clearingWhile(rec.clearIntents ?? [], this.#group.commit({ commit: rec }, dirs));
  }

  /** `ids`' deletes are queued in the group until `write` settles (#clearing: their puts go after them). */
  #clearingWhile(ids: readonly string[], write: Promise<void>): Promise<void> {
    if (ids.length === 0) return write;
    for (const id of ids) this.#clearing.set(id, (this.#clearing.get(id) ?? 0) + 1);
    const done = (): void => {
      for (const id of ids) {
        const n = (this.#clearing.get(id) ?? 1) - 1;
        if (n === 0) this.#clearing.delete(id);
        else this.#clearing.set(id, n);
      }
    };
    write.then(done, done);
    return write;
  }

  /** Durably note that a commit of `hash` may leave temp files in `dirs` (grouped like commitAsset). */
  putIntent(rec: CommitIntentRecord & { hash: string }): Promise<void> {
    this.#open();
    return this.#group.commit({ intents: [{ id: rec.hash, value: rec }] });
  }

  /** Durably note that commits may leave temp files in each of `dirs`: `intent!<dir>` each (grouped like commitAsset). */
  putFolderIntents(dirs: readonly string[], startedAt: number): Promise<void> {
    this.#open();
    const intents = dirs.map((d) => ({ id: d, value: { dirs: [d], startedAt } }));
    // Behind a queued delete of one of them: in the group, after it. Otherwise the lane of its own.
    if (dirs.some((d) => this.#clearing.has(d))) return this.#group.commit({ intents });
    return this.#intentLane.commit(intents);
  }

  /** Deletes the intents `intent!<id>` of `ids` (grouped like commitAsset). */
  clearIntents(ids: readonly string[]): Promise<void> {
    this.#open();
    return this.#clearingWhile(ids, this.#group.commit({ clearIntents: ids }));
  }

  /** Synced batches the group commit and the intents' lane wrote, and the intents and commits in them (the benches read these). */
  get groupStats(): { batches: number; items: number } {
    return {
      batches: this.#group.groups + this.#intentLane.groups,
      items: this.#group.items + this.#intentLane.items,
    };
  }

  /**
   * One group of intents and commit records, in the order they came, as ONE synced batch:
   * counters read-modify-written once, the hooks (ledger, cloud) prepared once for every
   * asset the group changes.
   */
  async #writeGroup(items: GroupItem[]): Promise<void> {
    const next = structuredClone(this.#counters);
    const ops: Op[] = [];
    const extra: HookOp[] = [];
    const changes: AssetChange[] = [];
    // Records of this group not yet in the database: an asset or copy put twice in one group counts once.
    const created = new Set<string>();
    const copiesPut = new Set<string>();
    const copiesAfter = new Map<string, CopyRecord[]>();
    // What the group's records find already stored: two reads for the whole group, not one per record.
    const commits = items.flatMap((i) => ('commit' in i ? [i.commit] : []));
    const assetHashes = [...new Set(commits.map((r) => r.asset.hash))];
    const copyKeys = [...new Set(commits.flatMap((r) => r.copies.map(copyKey)))];
    const db = this.#open();
    const [assetValues, copyValues] = await Promise.all([
      assetHashes.length === 0 ? [] : db.getMany(assetHashes.map((h) => P.asset + h)),
      copyKeys.length === 0 ? [] : db.getMany(copyKeys.map((k) => P.copy + k)),
    ]);
    const storedAssets = new Map(assetHashes.map((h, i) => [h, assetValues[i] as AssetRecord | undefined]));
    const storedCopies = new Set(copyKeys.filter((_, i) => copyValues[i] !== undefined));
    for (const item of items) {
      if ('intents' in item) {
        for (const i of item.intents)
          ops.push({ type: 'put', key: P.intent + i.id, value: i.value as unknown as Json });
        continue;
      }
      if ('clearIntents' in item) {
        for (const id of item.clearIntents) ops.push({ type: 'del', key: P.intent + id });
        continue;
      }
      const rec = item.commit;
      const hash = rec.asset.hash;
      const existing = created.has(hash) ? rec.asset : storedAssets.get(hash);
      if (existing === undefined) {
        next.assets += 1;
        next.bytes += rec.asset.size;
        created.add(hash);
        ops.push({ type: 'put', key: P.asset + hash, value: rec.asset as unknown as Json });
      }
      for (const n of rec.names)
        ops.push({ type: 'put', key: `${P.name}${hash}${SEP}${n.key}`, value: n.value as unknown as Json });
      for (const c of rec.copies) {
        const key = copyKey(c);
        if (!copiesPut.has(key) && !storedCopies.has(key)) this.#bumpCopy(next, c, 1);
        copiesPut.add(key);
        ops.push({ type: 'put', key: P.copy + key, value: c as unknown as Json });
      }
      for (const s of rec.storedPaths)
        ops.push({ type: 'put', key: P.stored + s.key, value: s.value as unknown as Json });
      for (const id of rec.clearIntents ?? [hash]) ops.push({ type: 'del', key: P.intent + id });
      for (const op of rec.extra ?? []) extra.push(op);
      if (this.#hooks.length > 0) {
        // A new asset has no copy stored yet (copies are written with their asset): no range read.
        const none = existing === undefined && !rec.copies.some((c) => storedCopies.has(copyKey(c)));
        const before = copiesAfter.get(hash) ?? (none ? [] : await this.copiesOf(hash));
        copiesAfter.set(hash, Catalogue.#mergeCopies(before, rec.copies));
        changes.push({
          hash,
          asset: existing ?? rec.asset,
          created: existing === undefined,
          before,
          after: Catalogue.#mergeCopies(before, rec.copies),
          names: rec.names.map((n) => n.value),
        });
      }
    }
    // A group of intents alone changes no counter.
    if (commits.length > 0) ops.push({ type: 'put', key: `${P.counter}all`, value: next as unknown as Json });
    const hooks = await this.#runHooks(changes);
    await this.#batch(ops, [...hooks.ops, ...extra]);
    this.#counters = next;
    hooks.commit();
  }

  /** Deletes `intent!<id>` (a hash, or a folder: see CommitIntentRecord). */
  clearIntent(id: string): Promise<void> {
    return this.#write(() => this.#open().del(P.intent + id, SYNC));
  }

  /** Every intent left, with its id (what clearIntent takes). */
  async intents(): Promise<Array<CommitIntentRecord & { id: string }>> {
    const out: Array<CommitIntentRecord & { id: string }> = [];
    for await (const [k, v] of this.#open().iterator({ gt: P.intent, lt: `${P.intent}\xff` }))
      out.push({ id: k.slice(P.intent.length), ...(v as unknown as CommitIntentRecord) });
    return out;
  }

  /**
   * What an agent says about an asset the studio already holds (the `have` of
   * an Offer): its names and its field claims, both under `agentId` — the
   * authenticated session's, never one the agent names. The claims take the
   * asset's own size, not the size the Offer gave.
   */
  addAgentNames(
    hash: string,
    agentId: string,
    names: Array<{ key: string; value: NameRecord }>,
    claims: readonly AgentCopy[],
  ): Promise<void> {
    return this.#write(async () => {
      const asset = await this.#get<AssetRecord>(P.asset, hash);
      if (asset === undefined) return;
      await this.#addNamesAndCopies(hash, asset, names, fieldClaimRecords(agentId, asset, claims));
    });
  }

  /**
   * Record (or refresh) one verified copy the studio itself made or checked: a
   * commit's local copy made again, an upload, a verify. Never a field claim
   * (those come only with the agent's identity: `addAgentNames`, `commitAsset`).
   */
  recordCopy(copy: CopyRecord): Promise<void> {
    return this.recordCopies([copy]);
  }

  /**
   * recordCopy of many copies (of any assets) in ONE synced batch, with their counters and
   * hooks: `studioctl verify` refreshes the copies it found intact this way, not one batch each.
   */
  recordCopies(copies: readonly CopyRecord[]): Promise<void> {
    if (copies.some((c) => c.kind === 'agent'))
      throw new TypeError('recordCopy: field claims are recorded by addAgentNames');
    const byHash = new Map<string, CopyRecord[]>();
    for (const c of copies) byHash.set(c.hash, [...(byHash.get(c.hash) ?? []), c]);
    return this.#write(async () => {
      const next = structuredClone(this.#counters);
      const ops: Op[] = [];
      const changes: AssetChange[] = [];
      for (const [hash, cs] of byHash) {
        const before = this.#hooks.length > 0 ? await this.copiesOf(hash) : [];
        for (const c of cs) {
          const key = copyKey(c);
          if ((await this.#get<CopyRecord>(P.copy, key)) === undefined) this.#bumpCopy(next, c, 1);
          ops.push({ type: 'put', key: P.copy + key, value: c as unknown as Json });
        }
        if (this.#hooks.length > 0)
          changes.push({
            hash,
            asset: await this.#get<AssetRecord>(P.asset, hash),
            created: false,
            before,
            after: Catalogue.#mergeCopies(before, cs),
            names: [],
          });
      }
      if (ops.length === 0) return;
      ops.push({ type: 'put', key: `${P.counter}all`, value: next as unknown as Json });
      const hooks = await this.#runHooks(changes);
      await this.#batch(ops, hooks.ops);
      this.#counters = next;
      hooks.commit();
    });
  }

  /** Inside the write section: names and copies added to one asset, with counters and hooks, one batch. */
  async #addNamesAndCopies(
    hash: string,
    asset: AssetRecord | undefined,
    names: Array<{ key: string; value: NameRecord }>,
    copies: CopyRecord[],
  ): Promise<void> {
    const next = structuredClone(this.#counters);
    const ops: Op[] = [];
    const added: NameRecord[] = [];
    for (const n of names) {
      const key = `${hash}${SEP}${n.key}`;
      if ((await this.#get<NameRecord>(P.name, key)) === undefined) {
        ops.push({ type: 'put', key: P.name + key, value: n.value as unknown as Json });
        added.push(n.value);
      }
    }
    const before = this.#hooks.length > 0 ? await this.copiesOf(hash) : [];
    for (const c of copies) {
      const key = copyKey(c);
      if ((await this.#get<CopyRecord>(P.copy, key)) === undefined) this.#bumpCopy(next, c, 1);
      ops.push({ type: 'put', key: P.copy + key, value: c as unknown as Json });
    }
    if (ops.length === 0) return;
    ops.push({ type: 'put', key: `${P.counter}all`, value: next as unknown as Json });
    let hooks = { ops: [] as HookOp[], commit: (): void => undefined };
    if (this.#hooks.length > 0) {
      hooks = await this.#runHooks([
        { hash, asset, created: false, before, after: Catalogue.#mergeCopies(before, copies), names: added },
      ]);
    }
    await this.#batch(ops, hooks.ops);
    this.#counters = next;
    hooks.commit();
  }

  /** Remove a copy that no longer verifies (`studioctl verify`). */
  removeCopy(copy: Pick<CopyRecord, 'hash' | 'target' | 'kind' | 'agentId'>): Promise<boolean> {
    return this.#write(async () => {
      const key = copyKey(copy);
      const existing = await this.#get<CopyRecord>(P.copy, key);
      if (existing === undefined) return false;
      const next = structuredClone(this.#counters);
      this.#bumpCopy(next, existing, -1);
      let hooks = { ops: [] as HookOp[], commit: (): void => undefined };
      if (this.#hooks.length > 0) {
        const before = await this.copiesOf(copy.hash);
        hooks = await this.#runHooks([
          {
            hash: copy.hash,
            asset: await this.#get<AssetRecord>(P.asset, copy.hash),
            created: false,
            before,
            after: Catalogue.#mergeCopies(before, [], [key]),
            names: [],
          },
        ]);
      }
      await this.#batch(
        [
          { type: 'del', key: P.copy + key },
          { type: 'put', key: `${P.counter}all`, value: next as unknown as Json },
        ],
        hooks.ops,
      );
      this.#counters = next;
      hooks.commit();
      return true;
    });
  }

  async *assets(opts: { gt?: string; limit?: number } = {}): AsyncGenerator<AssetRecord> {
    yield* this.#values<AssetRecord>(P.asset, opts.gt ?? '', opts.limit ?? -1);
  }

  /**
   * Every asset with its copy records (and its name records when `names`), in hash order: one
   * range read of each kind side by side, not one read per asset, so a pass over an archive of
   * millions (the ledger's recount) costs what reading the records costs. Copy or name records
   * whose asset record is missing are skipped. `after`/`limit`: the assets past that hash, at
   * most `limit` of them (a pass in slices, each under `exclusive`).
   */
  async *assetsWithRecords(
    opts: { names?: boolean; after?: string; limit?: number } = {},
  ): AsyncGenerator<{ asset: AssetRecord; copies: CopyRecord[]; names: NameRecord[] | undefined }> {
    const db = this.#open();
    const after = opts.after ?? '';
    const copies = new HashCursor<CopyRecord>(db, P.copy, after);
    const names = opts.names === true ? new HashCursor<NameRecord>(db, P.name, after) : undefined;
    try {
      const assets = db.values({
        gt: P.asset + after,
        lt: `${P.asset}\xff`,
        limit: opts.limit ?? -1,
        highWaterMarkBytes: PASS_READ_BYTES,
      });
      for await (const value of assets) {
        const asset = value as unknown as AssetRecord;
        yield { asset, copies: await copies.take(asset.hash), names: await names?.take(asset.hash) };
      }
    } finally {
      await copies.close();
      await names?.close();
    }
  }

  /** Every name record (one pass over the `name!` index, in hash order): the shoots and cards known. */
  async *names(): AsyncGenerator<NameRecord> {
    yield* this.#values<NameRecord>(P.name);
  }

  /**
   * Bulk import of assets NOT yet in the catalogue (benchmarks, migrations):
   * like commitAsset for each record, all in ONE batch, without reads. The
   * caller guarantees the hashes are new; hooks see `created: true, before: []`.
   */
  importAssets(recs: CommitRecord[]): Promise<void> {
    return this.#write(async () => {
      const next = structuredClone(this.#counters);
      const ops: Op[] = [];
      for (const rec of recs) {
        next.assets += 1;
        next.bytes += rec.asset.size;
        ops.push({ type: 'put', key: P.asset + rec.asset.hash, value: rec.asset as unknown as Json });
        for (const n of rec.names)
          ops.push({ type: 'put', key: `${P.name}${rec.asset.hash}${SEP}${n.key}`, value: n.value as unknown as Json });
        for (const c of rec.copies) {
          this.#bumpCopy(next, c, 1);
          ops.push({ type: 'put', key: P.copy + copyKey(c), value: c as unknown as Json });
        }
        for (const s of rec.storedPaths)
          ops.push({ type: 'put', key: P.stored + s.key, value: s.value as unknown as Json });
      }
      ops.push({ type: 'put', key: `${P.counter}all`, value: next as unknown as Json });
      const hooks = await this.#runHooks(
        recs.map((rec) => ({
          hash: rec.asset.hash,
          asset: rec.asset,
          created: true,
          before: [],
          after: rec.copies,
          names: rec.names.map((n) => n.value),
        })),
      );
      await this.#batch(ops, hooks.ops);
      this.#counters = next;
      hooks.commit();
    });
  }

  // ── agents and pairing ──────────────────────────────────────────────

  async getAgent(agentId: string): Promise<AgentRecord | undefined> {
    return this.#get<AgentRecord>(P.agent, agentId);
  }

  async listAgents(): Promise<AgentRecord[]> {
    const out: AgentRecord[] = [];
    for await (const v of this.#values<AgentRecord>(P.agent)) out.push(v);
    return out;
  }

  putPairingCode(rec: PairingCodeRecord): Promise<void> {
    return this.#write(() => this.#open().put(P.pairing + rec.code, rec as unknown as Json, SYNC));
  }

  /** Delete every outstanding pairing code (pairing locked out after too many refusals). Returns how many. */
  dropPairingCodes(): Promise<number> {
    return this.#write(async () => {
      const codes: string[] = [];
      for await (const v of this.#values<PairingCodeRecord>(P.pairing)) codes.push(v.code);
      if (codes.length > 0) await this.#batch(codes.map((c) => ({ type: 'del' as const, key: P.pairing + c })));
      return codes.length;
    });
  }

  /**
   * Atomically consume a pairing code and register the agent (one batch).
   * Returns false when the code is unknown, used or expired (an expired code is deleted).
   */
  pairAgent(code: string, now: number, agent: AgentRecord): Promise<boolean> {
    return this.#write(() =>
      this.#agentWrite(async () => {
        const rec = await this.#get<PairingCodeRecord>(P.pairing, code);
        if (rec === undefined) return false;
        if (rec.expiresAt <= now) {
          await this.#open().del(P.pairing + code, SYNC);
          return false;
        }
        await this.#batch([
          { type: 'del', key: P.pairing + code },
          { type: 'put', key: P.agent + agent.agentId, value: agent as unknown as Json },
        ]);
        await this.#agentsChanged();
        return true;
      }),
    );
  }

  /** Mark an agent revoked. Returns false when the id is unknown. */
  revokeAgent(agentId: string, now: number): Promise<boolean> {
    return this.#write(() =>
      this.#agentWrite(async () => {
        const rec = await this.#get<AgentRecord>(P.agent, agentId);
        if (rec === undefined) return false;
        await this.#open().put(P.agent + agentId, { ...rec, revokedAt: now } as unknown as Json, SYNC);
        await this.#agentsChanged();
        return true;
      }),
    );
  }

  /**
   * The agent was seen now (authenticated, or its session ended); `queue`: what it has left to send, when known.
   * Written on the agents' own chain, not behind the commits' group batches (twenty agents connecting at
   * once wrote twenty records there, up to 4 s each under load, and every session's first commit waited
   * behind them for its folders' intents), and not synced: a last-seen time is not a promise (a power cut
   * may lose the latest; a killed process does not). The updates asked for while one waits for its turn
   * join it: one read and one batch for all of them. A close() asked meanwhile waits for it.
   */
  touchAgent(agentId: string, now: number, queue?: { files: number; bytes: number }): Promise<void> {
    const db = this.#open();
    const q = queue ?? this.#seen.get(agentId)?.queue;
    this.#seen.set(agentId, { now, ...(q === undefined ? {} : { queue: q }) });
    this.#seenWrite ??= this.#agentWrite(async () => {
      const seen = [...this.#seen];
      this.#seen = new Map();
      this.#seenWrite = undefined;
      const recs = (await db.getMany(seen.map(([id]) => P.agent + id))) as unknown as Array<AgentRecord | undefined>;
      const ops: Op[] = [];
      seen.forEach(([id, s], i) => {
        const rec = recs[i];
        if (rec !== undefined)
          ops.push({
            type: 'put',
            key: P.agent + id,
            value: {
              ...rec,
              lastSeenAt: s.now,
              ...(s.queue === undefined ? {} : { queue: s.queue }),
            } as unknown as Json,
          });
      });
      if (ops.length > 0) await writeLevelBatch(db, { sync: false }, ops);
    });
    return this.#seenWrite;
  }

  /**
   * Called (inside the write section, after the batch) with every agent record
   * whenever a pairing or a revocation changed them: studiod keeps its pairing
   * store outside the catalogue with it (recovery/pairing-store.ts).
   */
  setAgentsListener(fn: ((agents: AgentRecord[]) => Promise<void>) | undefined): void {
    this.#agentsListener = fn;
  }

  async #agentsChanged(): Promise<void> {
    if (this.#agentsListener !== undefined) await this.#agentsListener(await this.listAgents());
  }

  // ── export, import, recount (snapshots and rebuild: recovery/) ───────

  /** True when the catalogue holds at least one asset. */
  async hasAssets(): Promise<boolean> {
    for await (const _ of this.#values<AssetRecord>(P.asset, '', 1)) return true;
    return false;
  }

  /**
   * Every exported record, in key order, from ONE LevelDB iterator: the iterator
   * reads an implicit snapshot taken when it is created, so the export is one
   * consistent state while commits go on. Sublevels (keys starting with `!`),
   * counters, intents, pairing codes and `meta!` are not exported.
   */
  async *exportRecords(): AsyncGenerator<ExportedRecord> {
    const it = this.#open().iterator({ gt: '"' });
    for await (const [key, value] of it) {
      const bang = key.indexOf(SEP);
      const kind = KIND_OF_PREFIX.get(key.slice(0, bang + 1));
      if (kind === undefined) continue;
      yield { t: kind, k: key.slice(bang + 1), v: value };
    }
  }

  /**
   * Raw puts of exported records (the rebuild, with studiod stopped): no hooks,
   * no counters — `recountCounters()` recomputes them once at the end. Idempotent.
   */
  importRecords(recs: readonly ExportedRecord[], opts: { sync?: boolean } = {}): Promise<void> {
    return this.#write(async () => {
      if (recs.length === 0) return;
      const ops = recs.map((r) => {
        if (!EXPORTED_KINDS.includes(r.t)) throw new TypeError(`importRecords: unknown kind ${String(r.t)}`);
        return { type: 'put' as const, key: P[r.t] + r.k, value: r.v };
      });
      await this.#open().batch(ops, { sync: opts.sync ?? false });
    });
  }

  /** Recompute `counter!all` from the asset and copy records (one pass each) and write it with `sync: true`. */
  recountCounters(): Promise<CatalogueCounters> {
    return this.#write(async () => {
      const next: CatalogueCounters = { assets: 0, bytes: 0, copies: {}, field: {} };
      for await (const a of this.#values<AssetRecord>(P.asset)) {
        next.assets += 1;
        next.bytes += a.size;
      }
      for await (const c of this.#values<CopyRecord>(P.copy)) this.#bumpCopy(next, c, 1);
      await this.#open().put(`${P.counter}all`, next as unknown as Json, SYNC);
      this.#counters = next;
      return structuredClone(next);
    });
  }

  /** Every copy record, in key order (the rebuild's check of snapshot copies). */
  async *copies(opts: { gt?: string } = {}): AsyncGenerator<CopyRecord> {
    yield* this.#values<CopyRecord>(P.copy, opts.gt ?? '');
  }

  /** Delete every root record under one exported kind's prefix (`asset!`, `name!`, `copy!`, `stored!`): the rebuild's clean slate. */
  clearPrefix(prefix: string): Promise<void> {
    if (![...KIND_OF_PREFIX.keys()].includes(prefix))
      throw new TypeError(`clearPrefix: ${prefix} is not an exported kind's prefix`);
    return this.#write(() => this.#open().clear({ gt: prefix, lt: `${prefix}\xff` }));
  }
}
