/**
 * The agent's durable state: one LevelDB at <data dir>/state.
 *
 * Every state change is ONE batch written with `sync: true`, so after kill -9 or
 * a power cut the database says exactly what was verified, and nothing more.
 * Writers are serialised inside the process (read-modify-write of an asset must
 * not interleave); LevelDB's LOCK keeps other processes out.
 *
 * Key schema (docs/design.md "Field agent" has an example of each):
 *   meta:format                     → 1
 *   meta:seq                        → next studio-queue sequence number
 *   meta:devices                    → 'disk' (no copy left with a `local:<st_dev>` device: refreshLegacyDevices)
 *   card:<cardId>                   → CardRecord
 *   file:<cardId>/<path on card>    → FileRecord
 *   asset:<blake3>                  → AssetRecord
 *   size:<size, 16 digits>:<blake3> → true     (which sizes have an asset: dual-slot dedup check)
 *   queue:<seq, 16 digits>          → { blake3, size }   (verified here, not yet receipted by the studio)
 *   claim:<store-relative path>     → ClaimRecord        (a store name reserved before it is written)
 *   group:<cardId>/<group key>      → GroupRecord        (the suffix an image group uses in the store, its date folder)
 *   meta:summary, sum:<cardId>, ix:<cardId>/<epoch>/… → the status summary (summary.ts), kept in the same batches
 */
import { join, sep } from 'node:path';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { Level } from 'level';
import type { CopyFact, FileCapture } from '@studio321/protocol';
import { createLogger, hasCodeInChain, writeLevelBatch, type Logger } from '@studio321/protocol/base';
import { AGENT_CODES, AgentError } from '../errors.js';
import {
  addCounters,
  assetContribution,
  canonical,
  EMPTY,
  epochOf,
  fileContribution,
  pruneSignatures,
  SUMMARY_VERSION,
  type CardSums,
  type Contribution,
  type GlobalSums,
} from './summary.js';
import { LEGACY_DEVICE_PREFIX } from '../disk-identity.js';
import type { ScanResult, ScannedFile } from '../card/scanner.js';
import type {
  AssetName,
  AssetRecord,
  CardRecord,
  ClaimRecord,
  FileRecord,
  GroupRecord,
  FileWarning,
  OffloadRun,
  StudioCopy,
  StudioVerdict,
} from './records.js';

export interface PendingAsset {
  blake3: string;
  size: number;
  /** Absolute path of the verified laptop copy to send. */
  storePath: string;
  names: AssetName[];
  copies: CopyFact[];
  xxh3?: string;
}

export interface StudioReceipt {
  blake3: string;
  size: number;
  committedAt: string;
  copies: StudioCopy[];
}

/** A file copied and verified (recordVerified). */
export interface VerifiedInput {
  card: CardRecord;
  file: FileRecord;
  blake3: string;
  size: number;
  xxh3?: string;
  storePath: string;
  paths: Record<string, string>;
  copies: CopyFact[];
  verifiedAt: string;
  warning?: { code: string; message: string };
  capture?: FileCapture;
  /** The card-relative path the file was renamed to at ingest (rename template), if it was. */
  renamed?: string;
}

/** A file whose content is already stored (recordDuplicate). */
export interface DuplicateInput {
  card: CardRecord;
  file: FileRecord;
  blake3: string;
  verifiedAt: string;
  warning?: { code: string; message: string };
  capture?: FileCapture;
  renamed?: string;
}

/** One file of a group commit (recordFiles). */
export type FileEntry = ({ kind: 'verified' } & VerifiedInput) | ({ kind: 'duplicate' } & DuplicateInput);

/** A card as the offload first sees it; the state adds the rest of its CardRecord. */
export type CardInput = Pick<
  CardRecord,
  'id' | 'label' | 'uuid' | 'kind' | 'source' | 'dev' | 'disk' | 'shoot' | 'store'
>;

type Op = { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string };
type Db = Level<string, unknown>;

/**
 * A key range no key of the state falls in (every key starts with an ASCII prefix: `card:`,
 * `file:`…): compacting it writes the memtable out as a table and touches no table (close()).
 */
const NO_KEYS = { start: '\uffff', end: '\uffff\uffff' } as const;

/**
 * The state's format. 2: every batch keeps the status summary (summary.ts); an agent of format 1
 * does not, so it must not write this state (it refuses a newer format). A state of format 1 is
 * given its summary at open, then marked 2.
 */
export const STATE_FORMAT = 2;

/** Sizes whose "is there an asset of this size" answer AgentState keeps in memory (a few MB at most). */
const SIZES_KEPT = 100_000;

/**
 * LevelDB's write buffer (memtable) for the state, 2× its default. Each flush of the memtable is
 * soon merged (a seek-triggered compaction) with every table of the level below, because a flushed
 * table spans asset hashes, files, claims and queue keys alike: the compactions rewrite the whole
 * state once per flush (~2 GB written for a 100,000-file ingest at 4 MiB). Half the flushes halve that,
 * for about 4 MiB more memory while writing (the next open replays at most this much log).
 */
const WRITE_BUFFER = 8 * 2 ** 20;

/**
 * LevelDB's cache of uncompressed blocks for the state, a quarter of its default (8 MiB): the
 * ingest's reads are of keys not there yet (new hashes, claims, groups: the bloom filters answer
 * them) and of keys it just wrote (in the memtable), so a full cache was RSS that saved no read.
 */
const BLOCK_CACHE = 2 * 2 ** 20;

/** Entries of a card listing written per batch (recordScan). */
export const SCAN_BATCH = 5_000;

const pad = (n: number): string => String(n).padStart(16, '0');
/** The smallest string greater than every string starting with `prefix`. */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

export const keys = {
  format: 'meta:format',
  seq: 'meta:seq',
  devices: 'meta:devices',
  card: (id: string): string => `card:${id}`,
  filePrefix: (card: string): string => `file:${card}/`,
  file: (card: string, path: string): string => `file:${card}/${path}`,
  asset: (blake3: string): string => `asset:${blake3}`,
  sizePrefix: (size: number): string => `size:${pad(size)}:`,
  size: (size: number, blake3: string): string => `size:${pad(size)}:${blake3}`,
  queue: (seq: number): string => `queue:${pad(seq)}`,
  claim: (storePath: string): string => `claim:${storePath}`,
  group: (card: string, key: string): string => `group:${card}/${key}`,
  mhl: (shoot: string, card: string, name: string): string => `mhl:${shoot}/${card}/${name}`,
  summary: 'meta:summary',
  sum: (card: string): string => `sum:${card}`,
  ixCard: (card: string): string => `ix:${card}/`,
  ix: (card: string, epoch: string): string => `ix:${card}/${epoch}/`,
};

/** An ASC MHL generation written in the laptop store, not yet kept by the studio (link/mhl-send.ts). */
export interface MhlOutboxEntry {
  shoot: string;
  card: string;
  /** The generation's file name in the card folder's `ascmhl/`. */
  name: string;
  /** Its absolute path. */
  path: string;
}

function stateError(err: unknown, what: string): AgentError {
  if (err instanceof AgentError) return err;
  return new AgentError(
    AGENT_CODES.stateFailed,
    `The agent state database failed while ${what}: check the disk holding the data directory; nothing was recorded for this step.`,
    { cause: err, retryable: true },
  );
}

export class AgentState {
  readonly dir: string;
  #db: Db;
  #chain: Promise<unknown> = Promise.resolve();
  /** Writes run outside the chain (#unordered), until they settle. */
  readonly #running = new Set<Promise<void>>();
  #seq = 0;
  #closed = false;
  /**
   * Whether an asset of a size exists, as already looked up or written here: size keys are only
   * ever added, and only by recordFiles in this process (LevelDB's lock keeps others out), so a
   * remembered answer stays true. Bounded: forgotten wholesale past SIZES_KEPT.
   */
  readonly #sizes = new Map<number, boolean>();
  /**
   * Every size of an asset is in #sizes (read once, keys only, when there are at most
   * SIZES_KEPT / 2): a size not there has no asset, with no database read per new size
   * (a card of small files has thousands). False again once #sizes is forgotten.
   */
  #sizesComplete = false;
  #sizesLoad: Promise<void> | undefined;

  private constructor(dir: string, db: Db) {
    this.dir = dir;
    this.#db = db;
  }

  /**
   * Open (creating if needed) the state database under `<dataDir>/state`. A state without a
   * status summary of this version (written by an older field-agent, or a rebuild cut short) has
   * it rebuilt here by one scan, said in a log line (`log`; default: stderr).
   */
  static async open(dataDir: string, options: { log?: Logger } = {}): Promise<AgentState> {
    const dir = join(dataDir, 'state');
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const db: Db = new Level<string, unknown>(dir, {
      valueEncoding: 'json',
      writeBufferSize: WRITE_BUFFER,
      cacheSize: BLOCK_CACHE,
    });
    try {
      await db.open();
    } catch (err) {
      if (hasCodeInChain(err, 'LEVEL_LOCKED')) {
        throw new AgentError(
          AGENT_CODES.stateLocked,
          `Another field-agent is using ${dataDir} (its state database is locked): wait for it to finish, or stop it, then try again.`,
          { cause: err, retryable: true, detail: { dataDir } },
        );
      }
      throw stateError(err, 'opening');
    }
    const state = new AgentState(dir, db);
    try {
      const format = await db.get(keys.format);
      if (typeof format === 'number' && format > STATE_FORMAT) {
        throw new AgentError(
          AGENT_CODES.stateFormatTooNew,
          `The state in ${dir} was written by a newer field-agent (format ${format}, this one reads ${STATE_FORMAT}): update field-agent.`,
          { detail: { dir, format } },
        );
      }
      if (format === undefined) {
        await db.put(keys.format, STATE_FORMAT, { sync: true });
        // A new state has no copy from before disk identities (a kill between these two puts
        // costs one scan that finds none).
        await db.put(keys.devices, 'disk', { sync: true });
        const empty: GlobalSums = { version: SUMMARY_VERSION, c: {} };
        await db.put(keys.summary, empty, { sync: true });
      }
      const seq = await db.get(keys.seq);
      state.#seq = typeof seq === 'number' ? seq : 0;
      const summary = (await db.get(keys.summary)) as GlobalSums | undefined;
      if (summary?.version !== SUMMARY_VERSION) {
        const log = options.log ?? createLogger({ name: 'field-agent' });
        const t0 = Date.now();
        const n = await state.#rebuildSummary();
        log.info(
          { event: 'state-summary-rebuilt', was: summary?.version ?? null, ...n, ms: Date.now() - t0 },
          `status summary ${summary === undefined ? 'missing (state written before it)' : `of version ${summary.version}`}: rebuilt by a scan of ${n.cards} cards, ${n.files} files and ${n.assets} assets`,
        );
      }
      if (typeof format === 'number' && format < STATE_FORMAT) await db.put(keys.format, STATE_FORMAT, { sync: true });
    } catch (err) {
      await db.close().catch(() => undefined);
      throw stateError(err, 'reading its format');
    }
    return state;
  }

  /**
   * `whileQuiet`: run once every write is done and the log written out, before the database
   * closes (reads only: the status snapshot, status-snapshot.ts, reads the state as the next
   * `field-agent status` will find it); what it returns runs once the database is closed.
   */
  async close(
    opts: { whileQuiet?: (state: AgentState) => Promise<(() => Promise<void>) | undefined> } = {},
  ): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#chain.catch(() => undefined);
    await Promise.all(this.#running);
    await this.#writeOutLog();
    const afterClose = await opts.whileQuiet?.(this);
    await this.#db.close();
    await afterClose?.();
  }

  /**
   * LevelDB keeps the last writes (up to its write buffer, WRITE_BUFFER) only in its write-ahead log, and
   * every open replays that log and writes it out as a table before it answers: the first
   * `field-agent status` after an ingest or a `run` paid for the writer's last writes (a 3 MiB
   * log at 100,000 files). A process that wrote writes them out once here, so the next open
   * finds an empty log; one that wrote nothing has an empty log and skips it. The records are
   * durable in the log already: a flush that fails (or a kill before it) only leaves the replay
   * to the next open, so its error is not the close's.
   */
  async #writeOutLog(): Promise<void> {
    try {
      const logs = (await readdir(this.dir)).filter((name) => name.endsWith('.log'));
      // A log gone meanwhile (LevelDB rolled it) holds nothing to write out.
      const sizes = await Promise.all(
        logs.map((name) =>
          stat(join(this.dir, name)).then(
            (st) => st.size,
            () => 0,
          ),
        ),
      );
      // `level` is classic-level in node, which has compactRange (not in the universal typings).
      const db = this.#db as Db & { compactRange(start: string, end: string): Promise<void> };
      if (sizes.some((size) => size > 0)) await db.compactRange(NO_KEYS.start, NO_KEYS.end);
    } catch {
      // durable in the log: the next open replays it
    }
  }

  /** A write that reads nothing, run at once (close() waits for it too). */
  #unordered(fn: () => Promise<void>): Promise<void> {
    const run = fn();
    const done = run.catch(() => undefined);
    this.#running.add(done);
    void done.then(() => this.#running.delete(done));
    return run;
  }

  /** Run `fn` after every earlier writer finished (read-modify-write without interleaving). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #get<T>(key: string): Promise<T | undefined> {
    try {
      return (await this.#db.get(key)) as T | undefined;
    } catch (err) {
      throw stateError(err, `reading ${key}`);
    }
  }

  /**
   * `read`: records the caller read in this writer's turn (#getMany), which the summary then
   * does not read again.
   */
  async #write(ops: Op[], what: string, sync = true, read?: Map<string, unknown>): Promise<void> {
    try {
      // The status summary changes in the same batch as what it counts (summary.ts).
      const summary = await this.#summaryOps(ops, read);
      // A chained batch (a third of the CPU of the array form for an ingest's batches, README
      // Performance): one atomic write all the same.
      await writeLevelBatch(this.#db, { sync }, summary.length === 0 ? ops : ops.concat(summary));
    } catch (err) {
      throw stateError(err, what);
    }
  }

  async #range<T>(prefix: string, opts: { gt?: string; limit?: number } = {}): Promise<Array<[string, T]>> {
    const out: Array<[string, T]> = [];
    const range =
      opts.gt !== undefined ? { gt: opts.gt, lt: prefixEnd(prefix) } : { gte: prefix, lt: prefixEnd(prefix) };
    try {
      for await (const [k, v] of this.#db.iterator({
        ...range,
        ...(opts.limit === undefined ? {} : { limit: opts.limit }),
      })) {
        out.push([k, v as T]);
      }
    } catch (err) {
      throw stateError(err, `listing ${prefix}`);
    }
    return out;
  }

  // ---- status summary (summary.ts) ----------------------------------------

  async #getMany(
    ks: readonly string[],
    into: Map<string, unknown>,
    what = 'reading the status summary',
  ): Promise<void> {
    const want = [...new Set(ks)].filter((k) => !into.has(k));
    for (let i = 0; i < want.length; i += 1000) {
      const chunk = want.slice(i, i + 1000);
      let values: unknown[];
      try {
        values = await this.#db.getMany(chunk);
      } catch (err) {
        throw stateError(err, what);
      }
      chunk.forEach((k, j) => {
        into.set(k, values[j]);
      });
    }
  }

  /**
   * The assets of `blake3s` and the status summary, read in the writer's turn for a batch that
   * rewrites those assets: handed to #write as its `read`, so #summaryOps does not read them again.
   */
  async #readAssets(blake3s: readonly string[]): Promise<Map<string, unknown>> {
    const read = new Map<string, unknown>();
    await this.#getMany([keys.summary, ...blake3s.map(keys.asset)], read, 'reading assets');
    return read;
  }

  /**
   * The summary's ops for a batch of `ops`: for every file the batch changes, and every file an
   * asset it changes is named by, minus its old contribution plus its new one (summary.ts). Read
   * inside the writer's turn, so "old" is what the database holds just before the batch.
   */
  async #summaryOps(ops: readonly Op[], read?: Map<string, unknown>): Promise<Op[]> {
    const next = new Map<string, unknown>();
    for (const op of ops) next.set(op.key, op.type === 'put' ? op.value : undefined);
    const cardIds = new Set<string>();
    const files = new Set<string>();
    const assetIds = new Set<string>();
    for (const k of next.keys()) {
      if (k.startsWith('card:')) cardIds.add(k.slice('card:'.length));
      else if (k.startsWith('file:')) files.add(k);
      else if (k.startsWith('asset:')) assetIds.add(k.slice('asset:'.length));
    }
    if (cardIds.size + files.size + assetIds.size === 0) return [];
    const old = read ?? new Map<string, unknown>();
    const before = <T>(k: string): T | undefined => old.get(k) as T | undefined;
    const after = <T>(k: string): T | undefined => (next.has(k) ? next.get(k) : old.get(k)) as T | undefined;
    await this.#getMany([keys.summary, ...[...cardIds].map(keys.card), ...[...assetIds].map(keys.asset)], old);
    const global = before<GlobalSums>(keys.summary);
    if (global?.version !== SUMMARY_VERSION) throw new Error('the status summary is missing');
    // A card whose kind changes (hot folder or not) changes which of its files are current: all are weighed again.
    for (const id of cardIds) {
      const oc = before<CardRecord>(keys.card(id));
      const nc = after<CardRecord>(keys.card(id));
      if (oc !== undefined && nc !== undefined && oc.kind !== nc.kind)
        for (const [k] of await this.#range<unknown>(keys.filePrefix(id))) files.add(k);
    }
    for (const b of assetIds)
      for (const a of [before<AssetRecord>(keys.asset(b)), after<AssetRecord>(keys.asset(b))])
        for (const n of a?.names ?? []) files.add(keys.file(n.card, n.path));
    await this.#getMany([...files], old);
    const cards = new Set(cardIds);
    const hashes = new Set<string>();
    for (const k of files)
      for (const f of [before<FileRecord>(k), after<FileRecord>(k)]) {
        if (f === undefined) continue;
        cards.add(f.card);
        if (f.blake3 !== undefined) hashes.add(keys.asset(f.blake3));
      }
    await this.#getMany([...[...cards].flatMap((id) => [keys.card(id), keys.sum(id)]), ...hashes], old);

    const sums = new Map<string, CardSums>();
    const fresh = new Set<string>();
    for (const id of cards) {
      const oc = before<CardRecord>(keys.card(id));
      const nc = after<CardRecord>(keys.card(id));
      if (nc === undefined) continue;
      if (oc === undefined || epochOf(oc) !== epochOf(nc)) {
        // A new listing: its sums start afresh (a newer scan number than any file held: only this
        // batch's files are in it); the older listing's index entries are swept (#sweepIndex).
        sums.set(id, { epoch: epochOf(nc), c: {}, sigs: {} });
        fresh.add(id);
        continue;
      }
      const stored = before<CardSums>(keys.sum(id));
      if (stored?.epoch !== epochOf(nc)) throw new Error(`the status summary of card ${id} is out of step`);
      sums.set(id, { epoch: stored.epoch, c: { ...stored.c }, sigs: { ...stored.sigs } });
    }
    const out = new Map<string, Op>();
    const assetOf = (get: <T>(k: string) => T | undefined, f: FileRecord | undefined): AssetRecord | undefined =>
      f?.blake3 === undefined ? undefined : get<AssetRecord>(keys.asset(f.blake3));
    for (const k of files) {
      const of = before<FileRecord>(k);
      const nf = after<FileRecord>(k);
      const id = (of ?? nf)?.card;
      const s = id === undefined ? undefined : sums.get(id);
      if (id === undefined || s === undefined) continue;
      const was: Contribution = fresh.has(id)
        ? EMPTY
        : fileContribution(before<CardRecord>(keys.card(id)), of, assetOf(before, of));
      const now = fileContribution(after<CardRecord>(keys.card(id)), nf, assetOf(after, nf));
      if (was === EMPTY && now === EMPTY) continue;
      addCounters(s.c, was.c, -1);
      addCounters(s.c, now.c);
      Object.assign(s.sigs, now.sigs);
      const px = keys.ix(id, s.epoch);
      for (const r of was.ix.keys()) if (!now.ix.has(r)) out.set(px + r, { type: 'del', key: px + r });
      for (const [r, v] of now.ix)
        if (!was.ix.has(r) || JSON.stringify(was.ix.get(r)) !== JSON.stringify(v))
          out.set(px + r, { type: 'put', key: px + r, value: v });
    }
    const result = [...out.values()];
    for (const [id, s] of sums) {
      pruneSignatures(s);
      result.push({ type: 'put', key: keys.sum(id), value: s });
    }
    if (assetIds.size > 0) {
      const g: GlobalSums = { version: SUMMARY_VERSION, c: { ...global.c } };
      for (const b of assetIds) {
        addCounters(g.c, assetContribution(before<AssetRecord>(keys.asset(b))), -1);
        addCounters(g.c, assetContribution(after<AssetRecord>(keys.asset(b))));
      }
      result.push({ type: 'put', key: keys.summary, value: g });
    }
    return result;
  }

  /** Delete the index entries of the card's older listings (never read: deleting them changes nothing). */
  async #sweepIndex(cardId: string, epoch: string): Promise<void> {
    const all = keys.ixCard(cardId);
    const keep = keys.ix(cardId, epoch);
    try {
      await this.#db.clear({ gte: all, lt: keep });
      await this.#db.clear({ gte: prefixEnd(keep), lt: prefixEnd(all) });
    } catch (err) {
      throw stateError(err, 'sweeping the status index');
    }
  }

  /** Records under `prefix`, SCAN_BATCH at a time (bounded memory however many there are). */
  async *#pages<T>(prefix: string): AsyncGenerator<Array<[string, T]>> {
    let gt: string | undefined;
    for (;;) {
      const page = await this.#range<T>(prefix, { ...(gt === undefined ? {} : { gt }), limit: SCAN_BATCH });
      if (page.length === 0) return;
      yield page;
      gt = page[page.length - 1]?.[0];
    }
  }

  /**
   * The summary as a fresh scan of every card, file and asset gives it: `onIndex` gets each
   * card's index entries page by page, `onCard` its sums. Returns the agent-wide sums.
   */
  async #scanSummary(
    onCard: (id: string, sums: CardSums) => Promise<void>,
    onIndex: (id: string, epoch: string, entries: Array<[string, unknown]>) => Promise<void>,
  ): Promise<{ global: GlobalSums; cards: number; files: number; assets: number }> {
    let files = 0;
    let assets = 0;
    const cards = await this.listCards();
    for (const card of cards) {
      const s: CardSums = { epoch: epochOf(card), c: {}, sigs: {} };
      for await (const page of this.#pages<FileRecord>(keys.filePrefix(card.id))) {
        files += page.length;
        const got = await this.getAssets(page.flatMap(([, f]) => (f.blake3 === undefined ? [] : [f.blake3])));
        const entries: Array<[string, unknown]> = [];
        for (const [, f] of page) {
          const c = fileContribution(card, f, f.blake3 === undefined ? undefined : got.get(f.blake3));
          addCounters(s.c, c.c);
          Object.assign(s.sigs, c.sigs);
          for (const [r, v] of c.ix) entries.push([r, v]);
        }
        await onIndex(card.id, s.epoch, entries);
      }
      pruneSignatures(s);
      await onCard(card.id, s);
    }
    const global: GlobalSums = { version: SUMMARY_VERSION, c: {} };
    for await (const page of this.#pages<AssetRecord>('asset:')) {
      assets += page.length;
      for (const [, a] of page) addCounters(global.c, assetContribution(a));
    }
    return { global, cards: cards.length, files, assets };
  }

  /** Rebuild the status summary by a scan; `meta:summary` is written last, so a rebuild cut short is redone. */
  async #rebuildSummary(): Promise<{ cards: number; files: number; assets: number }> {
    try {
      await this.#db.del(keys.summary, { sync: true });
      await this.#db.clear({ gte: 'sum:', lt: prefixEnd('sum:') });
      await this.#db.clear({ gte: 'ix:', lt: prefixEnd('ix:') });
    } catch (err) {
      throw stateError(err, 'clearing the status summary');
    }
    const r = await this.#scanSummary(
      (id, s) => this.#write([{ type: 'put', key: keys.sum(id), value: s }], 'rebuilding the status summary', false),
      (id, epoch, entries) =>
        this.#write(
          entries.map(([r, v]) => ({ type: 'put', key: keys.ix(id, epoch) + r, value: v })),
          'rebuilding the status summary',
          false,
        ),
    );
    await this.#write([{ type: 'put', key: keys.summary, value: r.global }], 'rebuilding the status summary');
    return { cards: r.cards, files: r.files, assets: r.assets };
  }

  /**
   * Compare the stored summary with a fresh scan (tests, diagnosis: reads the whole state).
   * Returns the differences found (empty: the summary is exact).
   */
  verifySummary(): Promise<string[]> {
    return this.#exclusive(async () => {
      const diffs: string[] = [];
      const given = new Set<string>();
      const { global } = await this.#scanSummary(
        async (id, s) => {
          const stored = await this.#get<CardSums>(keys.sum(id));
          if (canonical(stored) !== canonical(s))
            diffs.push(`${keys.sum(id)}: stored ${canonical(stored)}, scan ${canonical(s)}`);
          for await (const page of this.#pages<unknown>(keys.ix(id, s.epoch)))
            for (const [k] of page) if (!given.has(k)) diffs.push(`${k}: stored, not given by the scan`);
        },
        async (id, epoch, entries) => {
          for (const [r, v] of entries) {
            const k = keys.ix(id, epoch) + r;
            given.add(k);
            const stored = await this.#get<unknown>(k);
            if (canonical(stored) !== canonical(v))
              diffs.push(`${k}: stored ${canonical(stored)}, scan ${canonical(v)}`);
          }
        },
      );
      const stored = await this.#get<GlobalSums>(keys.summary);
      if (canonical(stored) !== canonical(global))
        diffs.push(`${keys.summary}: stored ${canonical(stored)}, scan ${canonical(global)}`);
      return diffs;
    });
  }

  /**
   * The card record and its sums, read together (one getMany); re-read when a writer moved
   * between them. The sums always belong to the card's current listing.
   */
  async cardSums(cardId: string): Promise<{ card: CardRecord; sums: CardSums }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const got = new Map<string, unknown>();
      await this.#getMany([keys.card(cardId), keys.sum(cardId)], got);
      const card = got.get(keys.card(cardId)) as CardRecord | undefined;
      const sums = got.get(keys.sum(cardId)) as CardSums | undefined;
      if (card === undefined) throw new TypeError(`cardSums: unknown card ${cardId}`);
      if (sums?.epoch === epochOf(card)) return { card, sums };
    }
    throw stateError(new Error(`the status summary of card ${cardId} is out of step`), 'reading the status summary');
  }

  /** Index entries of the card's listing `epoch` under `rel` (`w/`, `e/`, `n/`, `d/<sig>/`, `v/`, `f/`): keys without the prefix. */
  async summaryIndex(
    cardId: string,
    epoch: string,
    rel: string,
    opts: { limit: number; reverse?: boolean },
  ): Promise<Array<[string, unknown]>> {
    const prefix = keys.ix(cardId, epoch) + rel;
    const out: Array<[string, unknown]> = [];
    try {
      for await (const [k, v] of this.#db.iterator({
        gte: prefix,
        lt: prefixEnd(prefix),
        limit: opts.limit,
        reverse: opts.reverse === true,
      }))
        out.push([k.slice(keys.ix(cardId, epoch).length), v]);
    } catch (err) {
      throw stateError(err, 'reading the status index');
    }
    return out;
  }

  /** The agent-wide counters of the summary (summary.ts assetContribution). */
  async globalSums(): Promise<GlobalSums['c']> {
    const g = await this.#get<GlobalSums>(keys.summary);
    if (g?.version !== SUMMARY_VERSION) throw stateError(new Error('no status summary'), 'reading the status summary');
    return g.c;
  }

  /** Assets the back-fill would copy onto `target` (backfillCandidates), counted by the summary. */
  async backfillWaiting(target: string): Promise<{ files: number; bytes: number }> {
    const c = await this.globalSums();
    return {
      files: (c.open ?? 0) - (c[`fd:${target}`] ?? 0),
      bytes: (c.openBytes ?? 0) - (c[`fdb:${target}`] ?? 0),
    };
  }

  // ---- cards -------------------------------------------------------------

  getCard(id: string): Promise<CardRecord | undefined> {
    return this.#get<CardRecord>(keys.card(id));
  }

  async listCards(): Promise<CardRecord[]> {
    return (await this.#range<CardRecord>('card:')).map(([, v]) => v);
  }

  /** Create or update the card and mark an offload as running (before any copy starts). */
  beginOffload(input: CardInput, now = new Date()): Promise<CardRecord> {
    return this.#exclusive(async () => {
      const at = now.toISOString();
      const old = await this.getCard(input.id);
      const card: CardRecord = {
        id: input.id,
        label: input.label,
        ...(input.uuid === undefined ? {} : { uuid: input.uuid }),
        kind: input.kind,
        source: input.source,
        ...(input.dev === undefined ? {} : { dev: input.dev }),
        ...(input.disk === undefined ? {} : { disk: input.disk }),
        // A card keeps the shoot it was first offloaded into, so a resume writes to the same folder;
        // into another laptop store it is offloaded afresh, under the shoot asked for now.
        shoot: old !== undefined && (old.store === undefined || old.store === input.store) ? old.shoot : input.shoot,
        ...(input.store === undefined ? {} : { store: input.store }),
        firstSeen: old?.firstSeen ?? at,
        lastSeen: at,
        scan: old?.scan ?? 0,
        scanEntries: old?.scanEntries ?? 0,
        scanComplete: old?.scanComplete ?? false,
        lastRun: { state: 'running', startedAt: at },
      };
      await this.#write([{ type: 'put', key: keys.card(card.id), value: card }], 'starting an offload');
      return card;
    });
  }

  endOffload(cardId: string, result: Omit<OffloadRun, 'startedAt' | 'endedAt'>, now = new Date()): Promise<void> {
    return this.#exclusive(async () => {
      const card = await this.getCard(cardId);
      if (card === undefined) return;
      const run: OffloadRun = {
        ...result,
        startedAt: card.lastRun?.startedAt ?? now.toISOString(),
        endedAt: now.toISOString(),
      };
      await this.#write(
        [{ type: 'put', key: keys.card(cardId), value: { ...card, lastRun: run } }],
        'ending an offload',
      );
    });
  }

  /** Cards whose last offload never ended (killed): their store folders may hold stale temps. */
  async interruptedCards(): Promise<CardRecord[]> {
    return (await this.listCards()).filter((c) => c.lastRun?.state === 'running');
  }

  /**
   * Record a full listing of the card. Files already verified with the same size and
   * mtime stay verified (never copied again); new or changed files become `seen`.
   * Returns the files that still need a copy, in path order.
   *
   * A listing of up to SCAN_BATCH entries is ONE batch. A longer one (a card of 100,000 small
   * files: one batch of all of them took ~250 MB) is written SCAN_BATCH entries at a time:
   * first the card record with the new scan number and `scanComplete: false`, then the files,
   * then the card record complete. Until that last batch the card is "never fully listed",
   * which is never safe to format, and a kill in between leaves it so until the next listing.
   */
  recordScan(cardId: string, scan: ScanResult, now = new Date(), store?: string): Promise<FileRecord[]> {
    return this.#exclusive(async () => {
      const card = await this.getCard(cardId);
      if (card === undefined) throw new TypeError(`recordScan: unknown card ${cardId}; call beginOffload first`);
      const n = card.scan + 1;
      let ops: Op[] = [];
      const todo: FileRecord[] = [];
      const inParts = scan.files.length + scan.warnings.length > SCAN_BATCH;
      if (inParts)
        await this.#write(
          [{ type: 'put', key: keys.card(cardId), value: { ...card, scan: n, scanComplete: false } }],
          'recording the card listing',
        );
      const part = async (): Promise<void> => {
        if (!inParts || ops.length < SCAN_BATCH) return;
        await this.#write(ops, 'recording the card listing');
        ops = [];
      };
      // The card's earlier records are read a page at a time, for the page's paths only, never all
      // of a re-inserted card's records at once (a Map of 100,000 of them beside the listing).
      for (let i = 0; i < scan.files.length; i += SCAN_BATCH) {
        const page = scan.files.slice(i, i + SCAN_BATCH);
        const existing = await this.#filesOf(cardId, page);
        const recs: FileRecord[] = page.map((f, j) => {
          const old = existing[j];
          return old !== undefined && old.size === f.size && old.mtimeMs === f.mtimeMs && old.state !== 'skipped'
            ? { ...old, scan: n }
            : { card: cardId, path: f.path, size: f.size, mtimeMs: f.mtimeMs, scan: n, state: 'seen' };
        });
        const assets = await this.getAssets(
          recs.flatMap((r) => (r.state === 'verified' && r.blake3 !== undefined ? [r.blake3] : [])),
        );
        for (const rec of recs) {
          ops.push({ type: 'put', key: keys.file(cardId, rec.path), value: rec });
          if (copyNeeded(rec, rec.blake3 === undefined ? undefined : assets.get(rec.blake3), store)) todo.push(rec);
        }
        await part();
      }
      for (let i = 0; i < scan.warnings.length; i += SCAN_BATCH) {
        const page = scan.warnings.slice(i, i + SCAN_BATCH);
        const existing = await this.#filesOf(cardId, page);
        page.forEach((w, j) => {
          const old = existing[j];
          const warning: FileWarning = {
            code: w.code,
            message: w.message,
            ...(old?.warning?.code === w.code && old.warning.resolvedAt !== undefined
              ? { resolvedAt: old.warning.resolvedAt }
              : {}),
          };
          const rec: FileRecord = {
            card: cardId,
            path: w.path,
            size: 0,
            mtimeMs: 0,
            scan: n,
            state: 'skipped',
            warning,
          };
          ops.push({ type: 'put', key: keys.file(cardId, w.path), value: rec });
        });
        await part();
      }
      const updated: CardRecord = {
        ...card,
        scan: n,
        scanEntries: scan.files.length + scan.warnings.length,
        scanComplete: true,
        lastSeen: now.toISOString(),
        dev: scan.dev,
        disk: scan.disk,
      };
      ops.push({ type: 'put', key: keys.card(cardId), value: updated });
      await this.#write(ops, 'recording the card listing');
      await this.#sweepIndex(cardId, epochOf(updated));
      return todo;
    });
  }

  /** The card's file records at these paths (undefined: none), in one database call. */
  async #filesOf(cardId: string, entries: ReadonlyArray<{ path: string }>): Promise<Array<FileRecord | undefined>> {
    try {
      return (await this.#db.getMany(entries.map((e) => keys.file(cardId, e.path)))) as Array<FileRecord | undefined>;
    } catch (err) {
      throw stateError(err, "reading the card's earlier listing");
    }
  }

  /**
   * Whether a listed file is to be copied (again): not verified yet, or verified but its asset's
   * laptop copy was found damaged since (store-copy.ts): it is copied again from the card or hot
   * folder, under a new name.
   */
  async needsCopy(rec: FileRecord, store?: string): Promise<boolean> {
    return copyNeeded(
      rec,
      rec.state !== 'verified' || rec.blake3 === undefined ? undefined : await this.getAsset(rec.blake3),
      store,
    );
  }

  /** Whether some asset's `target` copy lies under `root` (is that folder a store the state uses?). Stops at the first. */
  async hasCopiesUnder(target: string, root: string): Promise<boolean> {
    const prefix = root.endsWith('/') ? root : `${root}/`;
    try {
      for await (const v of this.#db.values({ gte: 'asset:', lt: prefixEnd('asset:') })) {
        if ((v as AssetRecord).paths[target]?.startsWith(prefix) === true) return true;
      }
    } catch (err) {
      throw stateError(err, 'listing assets');
    }
    return false;
  }

  /** Hot folders: record one file that appeared (or changed). Returns its record. */
  recordSeen(cardId: string, f: ScannedFile): Promise<FileRecord> {
    return this.#exclusive(async () => {
      const old = await this.getFile(cardId, f.path);
      if (old !== undefined && old.size === f.size && old.mtimeMs === f.mtimeMs && old.state === 'verified') return old;
      const rec: FileRecord = { card: cardId, path: f.path, size: f.size, mtimeMs: f.mtimeMs, scan: 0, state: 'seen' };
      const ops: Op[] = [{ type: 'put', key: keys.file(cardId, f.path), value: rec }];
      // A new file in a forgotten hot folder is not yet safe: the folder is listed again.
      const card = await this.getCard(cardId);
      if (card?.forgottenAt !== undefined) {
        const { forgottenAt: _forgotten, ...listed } = card;
        void _forgotten;
        ops.push({ type: 'put', key: keys.card(cardId), value: listed });
      }
      await this.#write(ops, 'recording a new file');
      return rec;
    });
  }

  getFile(cardId: string, path: string): Promise<FileRecord | undefined> {
    return this.#get<FileRecord>(keys.file(cardId, path));
  }

  /** The card's files; `current` keeps only those in the last listing (hot folders: all). */
  async cardFiles(card: CardRecord, opts: { current?: boolean } = {}): Promise<FileRecord[]> {
    const all = (await this.#range<FileRecord>(keys.filePrefix(card.id))).map(([, v]) => v);
    if (!opts.current || card.kind === 'hot-folder') return all;
    return all.filter((f) => f.scan === card.scan);
  }

  async #knownCard(cardId: string): Promise<CardRecord> {
    const card = await this.getCard(cardId);
    if (card !== undefined) return card;
    throw new AgentError(
      AGENT_CODES.unknownCard,
      `No card with id ${cardId}: run field-agent status to see the card ids.`,
      {
        detail: { card: cardId },
      },
    );
  }

  /**
   * Leave the card out of the status list (`field-agent forget`): one flag on its record; its
   * files, assets, queue entries and store names stay, so nothing is copied again or lost.
   * beginOffload (the card inserted again) and a new hot-folder file list it again.
   */
  forgetCard(cardId: string, now = new Date()): Promise<CardRecord> {
    return this.#exclusive(async () => {
      const card = await this.#knownCard(cardId);
      const forgotten: CardRecord = { ...card, forgottenAt: card.forgottenAt ?? now.toISOString() };
      await this.#write([{ type: 'put', key: keys.card(cardId), value: forgotten }], 'forgetting a card');
      return forgotten;
    });
  }

  /** Mark every warning of the card as reviewed. Returns how many were resolved. */
  resolveWarnings(cardId: string, now = new Date()): Promise<number> {
    return this.#exclusive(async () => {
      await this.#knownCard(cardId);
      const ops: Op[] = [];
      for (const [key, f] of await this.#range<FileRecord>(keys.filePrefix(cardId))) {
        if (f.warning !== undefined && f.warning.resolvedAt === undefined) {
          ops.push({ type: 'put', key, value: { ...f, warning: { ...f.warning, resolvedAt: now.toISOString() } } });
        }
      }
      if (ops.length > 0) await this.#write(ops, 'resolving warnings');
      return ops.length;
    });
  }

  // ---- assets and names ---------------------------------------------------

  getAsset(blake3: string): Promise<AssetRecord | undefined> {
    return this.#get<AssetRecord>(keys.asset(blake3));
  }

  /** The assets of these hashes (those that exist), read 1,000 per database call: `status` reads a card's at once. */
  async getAssets(blake3s: Iterable<string>): Promise<Map<string, AssetRecord>> {
    const all = [...new Set(blake3s)];
    const out = new Map<string, AssetRecord>();
    for (let i = 0; i < all.length; i += 1000) {
      const chunk = all.slice(i, i + 1000);
      let values: unknown[];
      try {
        values = await this.#db.getMany(chunk.map((b) => keys.asset(b)));
      } catch (err) {
        throw stateError(err, 'reading assets');
      }
      values.forEach((v, j) => {
        if (v !== undefined) out.set(chunk[j] as string, v as AssetRecord);
      });
    }
    return out;
  }

  /** Whether some asset has this size (only then can a new file be a duplicate). */
  async hasAssetOfSize(size: number): Promise<boolean> {
    const known = this.#sizes.get(size);
    if (known !== undefined) return known;
    this.#sizesLoad ??= this.#loadSizes();
    await this.#sizesLoad;
    if (this.#sizesComplete) return this.#sizes.get(size) ?? false;
    const has = (await this.#range<unknown>(keys.sizePrefix(size), { limit: 1 })).length > 0;
    this.#rememberSize(size, has);
    return has;
  }

  #rememberSize(size: number, has: boolean): void {
    if (this.#sizes.size >= SIZES_KEPT) {
      this.#sizes.clear();
      this.#sizesComplete = false;
    }
    this.#sizes.set(size, has);
  }

  /** Every asset size into #sizes when there are few enough (#sizesComplete); else nothing. */
  async #loadSizes(): Promise<void> {
    const found: number[] = [];
    const start = keys.sizePrefix(0).slice(0, 'size:'.length);
    try {
      for await (const k of this.#db.keys({ gte: start, lt: prefixEnd(start) })) {
        const size = Number(k.slice(start.length, start.length + 16));
        if (found.at(-1) !== size) found.push(size);
        if (found.length > SIZES_KEPT / 2) return;
      }
    } catch (err) {
      throw stateError(err, 'listing asset sizes');
    }
    // Sizes recorded meanwhile stay (the listing is a snapshot from before them).
    for (const size of found) this.#sizes.set(size, true);
    this.#sizesComplete = this.#sizes.size < SIZES_KEPT;
  }

  /** The hashes of the assets of this size. */
  async assetHashesOfSize(size: number): Promise<string[]> {
    const prefix = keys.sizePrefix(size);
    return (await this.#range<unknown>(prefix)).map(([k]) => k.slice(prefix.length));
  }

  getClaim(storePath: string): Promise<ClaimRecord | undefined> {
    return this.#get<ClaimRecord>(keys.claim(storePath));
  }

  /** The claims of these store names (absent: none), in one database call. */
  async getClaims(storePaths: readonly string[]): Promise<Map<string, ClaimRecord | undefined>> {
    let values: unknown[];
    try {
      values = await this.#db.getMany(storePaths.map((p) => keys.claim(p)));
    } catch (err) {
      throw stateError(err, 'reading store name claims');
    }
    return new Map(storePaths.map((p, i) => [p, values[i] as ClaimRecord | undefined]));
  }

  async getGroupSuffix(cardId: string, group: string): Promise<number | undefined> {
    const g = await this.getGroup(cardId, group);
    return g?.k;
  }

  getGroup(cardId: string, group: string): Promise<GroupRecord | undefined> {
    return this.#get<GroupRecord>(keys.group(cardId, group));
  }

  /**
   * Whether the card has any sidecar group record, or any store name claimed under `storeDir`
   * (its `<shoot>/<card id>` in the store): one key read of each range. None: every group of it
   * is new and every name under `storeDir` is free, until something claims one.
   */
  async hasNamesOf(cardId: string, storeDir: string): Promise<boolean> {
    const some = async (prefix: string): Promise<boolean> =>
      (await this.#range<unknown>(prefix, { limit: 1 })).length > 0;
    return (await some(keys.group(cardId, ''))) || (await some(keys.claim(`${storeDir}/`)));
  }

  /**
   * Reserve store names for files of one group (before anything is written under them),
   * with the group's date folder once it was chosen (kept for the group's later files).
   * `known`: the group record and these names' claims as the caller just read them, when
   * nothing else can have written them since (the offload: one task per group, names chosen
   * under a lock per name that may clash); what it leaves out is read here.
   */
  claimNames(
    cardId: string,
    group: string,
    k: number,
    claims: Array<{ storePath: string; path: string; blake3?: string }>,
    date?: Pick<FileCapture, 'day' | 'dateSource'> & { name?: string },
    known?: { group?: { record: GroupRecord | undefined }; claims?: ReadonlyMap<string, ClaimRecord | undefined> },
  ): Promise<void> {
    const run = async (): Promise<void> => {
      const old = known?.group !== undefined ? known.group.record : await this.getGroup(cardId, group);
      const unread = claims.map((c) => c.storePath).filter((p) => known?.claims?.has(p) !== true);
      const read = unread.length === 0 ? undefined : await this.getClaims(unread);
      const day = old?.day !== undefined ? { day: old.day, dateSource: old.dateSource } : date;
      // A group keeps the stem it was first stored under (renamed or not).
      const name = old !== undefined ? old.name : date?.name;
      const rec: GroupRecord = {
        k,
        ...(day === undefined ? {} : { day: day.day, dateSource: day.dateSource }),
        ...(name === undefined ? {} : { name }),
      };
      const ops: Op[] = [{ type: 'put', key: keys.group(cardId, group), value: rec }];
      for (const c of claims) {
        const old = known?.claims?.has(c.storePath) === true ? known.claims.get(c.storePath) : read?.get(c.storePath);
        if (
          old !== undefined &&
          (old.card !== cardId || old.path !== c.path || (old.blake3 !== undefined && old.blake3 !== c.blake3))
        ) {
          throw new TypeError(`claimNames: ${c.storePath} is already claimed`);
        }
        // A name bound to this very content (the card in another laptop store) stays bound.
        if (old?.blake3 !== undefined) continue;
        const rec: ClaimRecord = { card: cardId, path: c.path };
        ops.push({ type: 'put', key: keys.claim(c.storePath), value: rec });
      }
      // Not synced: a claim lost in a crash is harmless (the name then either holds the
      // same verified content → reused, or other content → DURABLE_NAME_TAKEN → next
      // suffix), and the next synced batch makes it durable anyway (LevelDB's log is ordered).
      await this.#write(ops, 'reserving store names', false);
    };
    // Everything known: nothing is read, so nothing can interleave with another writer's read and
    // write. The batch goes at once, not behind the writers queued before it (a synced batch of
    // verified files each), and LevelDB joins batches written at the same time into one log write.
    const readsNothing = known?.group !== undefined && claims.every((c) => known.claims?.has(c.storePath) === true);
    return readsNothing ? this.#unordered(run) : this.#exclusive(run);
  }

  /** A store name found holding content the state does not know: never use it. */
  markNameForeign(storePath: string, cardId: string, path: string): Promise<void> {
    return this.#exclusive(async () => {
      const rec: ClaimRecord = { card: cardId, path, blake3: 'foreign' };
      await this.#write([{ type: 'put', key: keys.claim(storePath), value: rec }], 'marking a store name as taken');
    });
  }

  /**
   * A file was copied and verified: in ONE batch, the file becomes verified, the
   * asset gains this name and copies (or is created and queued for the studio),
   * and the store name is bound to the content.
   */
  async recordVerified(input: VerifiedInput): Promise<AssetRecord> {
    return (await this.recordFiles([{ kind: 'verified', ...input }]))[0] as AssetRecord;
  }

  /** The file's content is already stored (dual-slot duplicate): it only gains a name. */
  async recordDuplicate(input: DuplicateInput): Promise<AssetRecord> {
    return (await this.recordFiles([{ kind: 'duplicate', ...input }]))[0] as AssetRecord;
  }

  /**
   * Files verified or found duplicate, all in ONE synced batch (the offload's group commit,
   * the offloader's GroupCommit): each one exactly as recordVerified / recordDuplicate would
   * record it alone, in order (a later entry sees the asset as the earlier ones left it).
   * Returns each entry's asset.
   */
  recordFiles(entries: readonly FileEntry[]): Promise<AssetRecord[]> {
    return this.#exclusive(async () => {
      const pending = new Map<string, AssetRecord>();
      // One read of the entries' assets, files and cards with their summaries: all that the
      // status summary of this batch reads in the common case (#summaryOps reads only the rest).
      const read = new Map<string, unknown>();
      const cardIds = [...new Set(entries.map((e) => e.card.id))];
      await this.#getMany(
        [
          keys.summary,
          ...cardIds.flatMap((id) => [keys.card(id), keys.sum(id)]),
          ...entries.flatMap((e) => [keys.asset(e.blake3), keys.file(e.card.id, e.file.path)]),
        ],
        read,
        'reading assets',
      );
      const get = (blake3: string): AssetRecord | undefined =>
        pending.get(blake3) ?? (read.get(keys.asset(blake3)) as AssetRecord | undefined);
      const ops: Op[] = [];
      const out: AssetRecord[] = [];
      let seq = this.#seq;
      for (const e of entries) {
        const { card, file } = e;
        const name = assetName(card, file, e.capture, e.renamed);
        let asset = get(e.blake3);
        if (e.kind === 'duplicate') {
          if (asset === undefined) throw new TypeError(`recordDuplicate: unknown asset ${e.blake3}`);
          asset = mergeAsset(asset, name, [], {}, asset.storePath);
        } else if (asset === undefined) {
          asset = {
            blake3: e.blake3,
            size: e.size,
            storePath: e.storePath,
            paths: e.paths,
            copies: e.copies,
            names: [name],
            verifiedAt: e.verifiedAt,
            queueSeq: seq,
          };
          ops.push({ type: 'put', key: keys.size(e.size, e.blake3), value: true });
          ops.push({ type: 'put', key: keys.queue(seq), value: { blake3: e.blake3, size: e.size } });
          seq += 1;
        } else {
          asset = mergeAsset(asset, name, e.copies, e.paths, e.storePath);
        }
        if (e.kind === 'verified') {
          if (e.xxh3 !== undefined && asset.xxh3 === undefined) asset = { ...asset, xxh3: e.xxh3 };
          ops.push({
            type: 'put',
            key: keys.claim(e.storePath),
            value: { card: card.id, path: file.path, blake3: e.blake3 } satisfies ClaimRecord,
          });
        }
        ops.push({ type: 'put', key: keys.asset(e.blake3), value: asset });
        ops.push({
          type: 'put',
          key: keys.file(card.id, file.path),
          value: verifiedFile(file, asset, e.blake3, e.verifiedAt, e.warning),
        });
        pending.set(e.blake3, asset);
        out.push(asset);
      }
      // Once for the batch (a put per new asset was as many ops of the same key).
      if (seq !== this.#seq) ops.push({ type: 'put', key: keys.seq, value: seq });
      await this.#write(
        ops,
        entries.length === 1 ? 'recording a verified copy' : 'recording verified copies',
        true,
        read,
      );
      this.#seq = seq;
      for (const e of entries) if (e.kind === 'verified') this.#rememberSize(e.size, true);
      return out;
    });
  }

  /** Every asset, in hash order. */
  async listAssets(): Promise<AssetRecord[]> {
    return (await this.#range<AssetRecord>('asset:')).map(([, a]) => a);
  }

  /** Assets without a verified copy on `target` (the field drive's back-fill), in hash order. */
  async assetsMissingCopy(target: string): Promise<AssetRecord[]> {
    return (await this.listAssets()).filter((a) => !hasVerifiedCopy(a, target));
  }

  /** More verified copies of a stored asset (the field drive's back-fill): one synced batch. */
  recordCopies(blake3: string, paths: Record<string, string>, copies: CopyFact[]): Promise<AssetRecord> {
    return this.#exclusive(async () => {
      const old = await this.getAsset(blake3);
      if (old === undefined) throw new TypeError(`recordCopies: unknown asset ${blake3}`);
      const asset = replaceCopies(old, copies, paths);
      await this.#write([{ type: 'put', key: keys.asset(blake3), value: asset }], 'recording a field-drive copy');
      return asset;
    });
  }

  /** No copy with a legacy device is left (refreshLegacyDevices then reads one key and writes nothing). */
  async legacyDevicesSettled(): Promise<boolean> {
    return (await this.#get(keys.devices)) === 'disk';
  }

  /**
   * Copies recorded before disk identities (disk-identity.ts) carry `local:<st_dev>` devices, which
   * add no device to safe to format. A copy on a target resolved now (`targets`) with that same
   * st_dev and its path under the target's root is on that file system: its device becomes the
   * target's disk identity, all in one synced batch. Copies on a target not there now keep the old
   * string (and add no device) until it is. Once none is left, `meta:devices` records it and
   * later calls read one key. Returns the number of copies refreshed.
   */
  refreshLegacyDevices(
    targets: ReadonlyArray<{ name: string; root: string; device: string; legacyDevice: string }>,
  ): Promise<number> {
    return this.#exclusive(async () => {
      if ((await this.#db.get(keys.devices)) === 'disk') return 0;
      const ops: Op[] = [];
      let refreshed = 0;
      let left = 0;
      const refresh = (c: CopyFact, path: string | undefined): CopyFact => {
        if (!c.device.startsWith(LEGACY_DEVICE_PREFIX)) return c;
        const t = targets.find(
          (x) =>
            x.name === c.target &&
            x.legacyDevice === c.device &&
            path?.startsWith(`${x.root.replace(/\/+$/, '')}${sep}`) === true,
        );
        if (t === undefined) {
          left += 1;
          return c;
        }
        refreshed += 1;
        return { ...c, device: t.device };
      };
      for (const [key, asset] of await this.#range<AssetRecord>('asset:')) {
        const before = refreshed;
        const copies = asset.copies.map((c) => refresh(c, asset.paths[c.target]));
        const freeing =
          asset.freeing === undefined
            ? undefined
            : { ...asset.freeing, copy: refresh(asset.freeing.copy, asset.freeing.path) };
        if (refreshed > before)
          ops.push({ type: 'put', key, value: { ...asset, copies, ...(freeing === undefined ? {} : { freeing }) } });
      }
      if (left === 0) ops.push({ type: 'put', key: keys.devices, value: 'disk' });
      if (ops.length > 0) await this.#write(ops, 'refreshing the devices of older copies');
      return refreshed;
    });
  }

  /** The file could not be copied this time (kept as not verified, with the reason). */
  recordFileError(
    cardId: string,
    path: string,
    err: { code: string; message: string; retryable: boolean },
    now = new Date(),
  ): Promise<void> {
    return this.#exclusive(async () => {
      const old = await this.getFile(cardId, path);
      if (old === undefined || old.state === 'verified') return;
      const rec: FileRecord = {
        ...old,
        state: 'failed',
        error: { code: err.code, message: err.message, retryable: err.retryable, at: now.toISOString() },
      };
      await this.#write([{ type: 'put', key: keys.file(cardId, path), value: rec }], 'recording a file error');
    });
  }

  // ---- studio queue (used by the link client) ---------------------------

  /**
   * Assets verified here and not yet receipted by the studio, oldest first. `after`: the blake3 of
   * the last one already taken. One range read of the queue and one getMany of its assets: no
   * database call per file.
   */
  async pendingForStudio(limit: number, after?: string): Promise<PendingAsset[]> {
    let gt: string | undefined;
    if (after !== undefined) {
      const a = await this.getAsset(after);
      if (a?.queueSeq !== undefined) gt = keys.queue(a.queueSeq);
    }
    const entries = await this.#range<{ blake3: string; size: number }>('queue:', {
      ...(gt === undefined ? {} : { gt }),
      limit,
    });
    const assets = await this.getAssets(entries.map(([, q]) => q.blake3));
    const out: PendingAsset[] = [];
    for (const [, q] of entries) {
      const a = assets.get(q.blake3);
      if (a === undefined) continue;
      out.push({
        blake3: a.blake3,
        size: a.size,
        storePath: a.paths['laptop'] ?? a.storePath,
        names: a.names,
        copies: a.copies,
        ...(a.xxh3 === undefined ? {} : { xxh3: a.xxh3 }),
      });
    }
    return out;
  }

  /** The studio committed the asset: written with sync before anything acts on it. */
  recordStudioReceipt(r: StudioReceipt): Promise<void> {
    return this.recordStudioReceipts([r]);
  }

  /** recordStudioReceipt of several receipts in ONE synced batch (the sync pass's receipts that came together). */
  recordStudioReceipts(receipts: readonly StudioReceipt[]): Promise<void> {
    return this.#exclusive(async () => {
      const ops: Op[] = [];
      // A receipt of an asset already receipted in this batch builds on that record.
      const updatedHere = new Map<string, AssetRecord>();
      const read = await this.#readAssets(receipts.map((r) => r.blake3));
      for (const r of receipts) {
        const asset = updatedHere.get(r.blake3) ?? (read.get(keys.asset(r.blake3)) as AssetRecord | undefined);
        if (asset === undefined || asset.size !== r.size) {
          throw new TypeError(`recordStudioReceipt: no asset ${r.blake3} of ${r.size} bytes here`);
        }
        const byTarget = new Map((asset.studio?.copies ?? []).map((c) => [c.target, c]));
        for (const c of r.copies) byTarget.set(c.target, c);
        const { queueSeq, ...rest } = asset;
        const updated: AssetRecord = {
          ...rest,
          studio: { committedAt: asset.studio?.committedAt ?? r.committedAt, copies: [...byTarget.values()] },
        };
        updatedHere.set(r.blake3, updated);
        ops.push({ type: 'put', key: keys.asset(r.blake3), value: updated });
        if (queueSeq !== undefined) ops.push({ type: 'del', key: keys.queue(queueSeq) });
      }
      if (ops.length > 0) await this.#write(ops, 'recording a studio receipt', true, read);
    });
  }

  /**
   * The studio's verdicts of these assets (link/verdicts.ts), one synced batch. `compliantSince`
   * is kept while the asset stays compliant and dropped when it is not.
   */
  recordVerdicts(
    verdicts: ReadonlyArray<{ blake3: string; verdict: Omit<StudioVerdict, 'checkedAt' | 'compliantSince'> }>,
    now = new Date(),
  ): Promise<void> {
    return this.#exclusive(async () => {
      const ops: Op[] = [];
      const at = now.toISOString();
      const read = await this.#readAssets(verdicts.map((v) => v.blake3));
      for (const { blake3, verdict } of verdicts) {
        const asset = read.get(keys.asset(blake3)) as AssetRecord | undefined;
        if (asset === undefined) continue;
        const since = verdict.compliant ? (asset.verdict?.compliantSince ?? at) : undefined;
        const v: StudioVerdict = {
          ...verdict,
          checkedAt: at,
          ...(since === undefined ? {} : { compliantSince: since }),
        };
        ops.push({ type: 'put', key: keys.asset(blake3), value: { ...asset, verdict: v } satisfies AssetRecord });
      }
      if (ops.length > 0) await this.#write(ops, 'recording studio verdicts', true, read);
    });
  }

  /**
   * Assets the studio receipted whose verdict is to be asked (again): never asked, not compliant
   * yet, or asked longer than `maxAgeMs` ago. In hash order, at most `limit`.
   */
  async verdictsDue(maxAgeMs: number, now = new Date(), limit = Number.MAX_SAFE_INTEGER): Promise<string[]> {
    const out: string[] = [];
    const oldest = now.getTime() - maxAgeMs;
    for (const a of await this.listAssets()) {
      if (out.length >= limit) break;
      if (a.studio === undefined) continue;
      const v = a.verdict;
      if (v === undefined || !v.compliant || Date.parse(v.checkedAt) < oldest) out.push(a.blake3);
    }
    return out;
  }

  /**
   * Freeing step 1 (free-laptop.ts): the laptop copy stops counting, its fact and path kept in
   * `freeing` (the intent). Returns the path to delete, or undefined when there is no verified
   * laptop copy to free.
   */
  beginFree(blake3: string, now = new Date()): Promise<string | undefined> {
    return this.#exclusive(async () => {
      const asset = await this.getAsset(blake3);
      const path = asset?.paths['laptop'];
      const copy = asset?.copies.find((c) => c.target === 'laptop' && c.verified);
      if (asset === undefined || path === undefined || copy === undefined || asset.freeing !== undefined)
        return undefined;
      const { laptop: _laptop, ...paths } = asset.paths;
      void _laptop;
      const updated: AssetRecord = {
        ...asset,
        paths,
        copies: asset.copies.filter((c) => c !== copy),
        freeing: { path, storePath: asset.storePath, copy, at: now.toISOString() },
      };
      await this.#write([{ type: 'put', key: keys.asset(blake3), value: updated }], 'recording a laptop copy to free');
      return path;
    });
  }

  /** Freeing step 3: the file is gone, the asset is recorded freed. `deleted` false: the file is still there, the copy counts again. */
  endFree(blake3: string, deleted: boolean, now = new Date()): Promise<void> {
    return this.#exclusive(async () => {
      const asset = await this.getAsset(blake3);
      if (asset?.freeing === undefined) return;
      const { freeing, ...rest } = asset;
      const updated: AssetRecord = deleted
        ? { ...rest, freed: { at: now.toISOString(), path: freeing.path } }
        : { ...rest, paths: { ...rest.paths, laptop: freeing.path }, copies: [...rest.copies, freeing.copy] };
      await this.#write(
        [{ type: 'put', key: keys.asset(blake3), value: updated }],
        deleted ? 'recording a freed laptop copy' : 'restoring a laptop copy not freed',
      );
    });
  }

  /** Assets whose freeing a crash interrupted (between steps 1 and 3). */
  async freeingInterrupted(): Promise<AssetRecord[]> {
    return (await this.listAssets()).filter((a) => a.freeing !== undefined);
  }

  // ---- ASC MHL generations for the studio -----------------------------------

  /** Records a laptop-store generation to send to the studio (synced: it must not be forgotten). */
  queueMhlGeneration(e: MhlOutboxEntry): Promise<void> {
    return this.#write(
      [{ type: 'put', key: keys.mhl(e.shoot, e.card, e.name), value: e }],
      'queueing an ASC MHL generation',
    );
  }

  /** The generations not yet kept by the studio, oldest name first per card. */
  async mhlOutbox(): Promise<MhlOutboxEntry[]> {
    return (await this.#range<MhlOutboxEntry>('mhl:')).map(([, v]) => v);
  }

  /** The studio keeps this generation (MhlStored), or it cannot be sent: it leaves the outbox. */
  mhlGenerationSent(e: MhlOutboxEntry): Promise<void> {
    return this.#write(
      [{ type: 'del', key: keys.mhl(e.shoot, e.card, e.name) }],
      'recording an ASC MHL generation sent',
    );
  }

  /** Assets verified here and not yet receipted by the studio (the summary's count of `queue:` entries). */
  async queueDepth(): Promise<{ files: number; bytes: number }> {
    const c = await this.globalSums();
    return { files: c.queueFiles ?? 0, bytes: c.queueBytes ?? 0 };
  }
}

/** Whether the asset has a verified copy on `target` (a copy found damaged is kept as `verified: false`, see store-copy.ts). */
export function hasVerifiedCopy(asset: { copies: readonly CopyFact[] } | undefined, target: string): boolean {
  return asset?.copies.some((c) => c.target === target && c.verified) === true;
}

/** Whether the asset has a verified laptop copy in the store at `store` (any store when undefined). */
export function hasLaptopCopyIn(asset: AssetRecord | undefined, store: string | undefined): boolean {
  if (!hasVerifiedCopy(asset, 'laptop')) return false;
  if (store === undefined) return true;
  return asset?.paths['laptop']?.startsWith(store.endsWith('/') ? store : `${store}/`) === true;
}

/** `asset` with `copies` in place of its facts for the same targets, and those targets' `paths`. */
function replaceCopies(asset: AssetRecord, copies: CopyFact[], paths: Record<string, string>): AssetRecord {
  const targets = new Set(copies.map((c) => c.target));
  const newPaths = Object.fromEntries(Object.entries(paths).filter(([t]) => targets.has(t)));
  return {
    ...asset,
    copies: [...asset.copies.filter((c) => !targets.has(c.target)), ...copies],
    paths: { ...asset.paths, ...newPaths },
  };
}

function assetName(
  card: CardRecord,
  file: FileRecord,
  capture: FileCapture | undefined,
  renamed: string | undefined,
): AssetName {
  return {
    shoot: card.shoot,
    card: card.id,
    path: file.path,
    mtime: file.mtimeMs,
    ...(capture === undefined ? {} : { capture }),
    ...(renamed === undefined ? {} : { renamed }),
  };
}

/**
 * The asset with one more name and the copies of targets it had no verified copy on
 * (a copy that replaces an unverified one takes its place and its path); verified
 * copies and their paths are kept as they are.
 */
function mergeAsset(
  asset: AssetRecord,
  name: AssetName,
  copies: CopyFact[],
  paths: Record<string, string>,
  storePath: string,
): AssetRecord {
  const names = asset.names.some((n) => n.card === name.card && n.path === name.path && n.shoot === name.shoot)
    ? asset.names
    : [...asset.names, name];
  // A laptop copy is only written when the asset has none in the current store (offloader.ts):
  // it replaces a damaged one, or one in a store the agent no longer writes to.
  const added = copies.filter((c) => c.target === 'laptop' || !hasVerifiedCopy(asset, c.target));
  const laptopReplaced = added.some((c) => c.target === 'laptop');
  return { ...replaceCopies(asset, added, paths), names, ...(laptopReplaced ? { storePath } : {}) };
}

/** needsCopy with the record's asset already read (`asset`: undefined when it has none). */
function copyNeeded(rec: FileRecord, asset: AssetRecord | undefined, store: string | undefined): boolean {
  if (rec.state !== 'verified') return true;
  if (rec.blake3 === undefined) return false;
  // A laptop copy freed by policy (free-laptop.ts) is not made again: the studio holds it compliant.
  if (asset?.freed !== undefined || asset?.freeing !== undefined) return false;
  return !hasLaptopCopyIn(asset, store);
}

function verifiedFile(
  file: FileRecord,
  asset: AssetRecord,
  blake3: string,
  verifiedAt: string,
  warning: { code: string; message: string } | undefined,
): FileRecord {
  const { error: _error, warning: oldWarning, ...rest } = file;
  void _error;
  const keepResolved =
    warning !== undefined && oldWarning?.code === warning.code && oldWarning.resolvedAt !== undefined;
  return {
    ...rest,
    state: 'verified',
    blake3,
    storePath: asset.storePath,
    verifiedAt,
    ...(warning === undefined
      ? {}
      : { warning: keepResolved ? { ...warning, resolvedAt: oldWarning?.resolvedAt as string } : warning }),
  };
}

/**
 * The assets the back-fill copies onto the field drive `target` (`field-drive`, `field-drive-2`…):
 * no verified copy there, and not yet committed at the studio (once the studio holds an asset
 * its card no longer needs the drive: a fresh drive plugged in is not filled with the laptop's
 * whole history).
 */
export async function backfillCandidates(state: AgentState, target = 'field-drive'): Promise<AssetRecord[]> {
  return (await state.assetsMissingCopy(target)).filter((a) => a.studio === undefined);
}

/** The card `ref` names: its id, or a label only one card (not a hot folder) has. */
export async function findCard(state: AgentState, ref: string): Promise<CardRecord> {
  const byId = await state.getCard(ref);
  if (byId) return byId;
  // A forgotten card does not make a label ambiguous (cameras reuse labels: EOS_DIGITAL).
  const byLabel = (await state.listCards()).filter(
    (c) => c.label === ref && c.kind !== 'hot-folder' && c.forgottenAt === undefined,
  );
  if (byLabel.length === 1) return byLabel[0]!;
  if (byLabel.length > 1) {
    throw new AgentError(
      AGENT_CODES.cardAmbiguous,
      `${byLabel.length} cards are labelled "${ref}" (${byLabel.map((c) => c.id).join(', ')}). Name it by card id.`,
    );
  }
  throw new AgentError(AGENT_CODES.unknownCard, `No card "${ref}". See the card ids with field-agent status.`);
}

export interface ResolveResult {
  card: string;
  label: string;
  /** Warnings marked as reviewed now. */
  resolved: number;
}

/** `field-agent resolve <ref>`: every warning of the card `ref` names (id or label, findCard) is reviewed. */
export async function resolveCardWarnings(state: AgentState, ref: string): Promise<ResolveResult> {
  const card = await findCard(state, ref);
  return { card: card.id, label: card.label, resolved: await state.resolveWarnings(card.id) };
}
