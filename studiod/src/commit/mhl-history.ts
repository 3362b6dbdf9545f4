/**
 * studiod's ASC MHL generations (protocol/src/durable/mhl.ts; docs/design.md "ASC MHL"): each
 * studio card folder `<YYYY-MM-DD>/<shoot>/<card>/` on the mirror and on the RAID carries its
 * history in `ascmhl/`, from the card to the archive:
 *
 *  1. A commit writes, in its own catalogue batch, a `pending` record per file (folder-relative
 *     path, size, the XXH3-64 of the bytes committed, hashed in the RAID write's pass over them
 *     and covered by both copies' BLAKE3 read-backs) and the folder's `folder` record.
 *  2. The folder's generation is written `delayMs` after the last commit into it (debounced: a
 *     card's files arrive one by one, in batches of a sync pass), at close, and at the next start
 *     for whatever a crash left pending (files, or an agent generation received but not adopted).
 *  3. Per target, in that folder: first each field agent generation of the card (MhlGeneration,
 *     SPEC §3.11, kept in the `inbox`) that is not in the chain yet and whose every file is in
 *     this folder with the very XXH3 the studio committed (its bytes as the agent wrote them, so
 *     its C4 stays); then studiod's `transfer` generation listing the pending files (`verified`
 *     when an earlier generation of the folder recorded the same hash, else `original`). A file
 *     studiod already listed with that hash is not listed again (a crash between the targets).
 *  4. Then (one synced batch) each pending record loses the targets whose generation lists it, and
 *     goes when none is left: a target that failed (its disk away, being refilled) is tried
 *     again at the next commit into the folder or the next start; a refill copies the other
 *     target's history first (recovery/mhl-copy.ts), and what it lists is not listed again.
 *
 * An agent generation that does not fit a folder (the card spread over several capture days, a
 * name the studio gave another suffix, a file still missing) is not copied there: other ASC MHL
 * tools would report its files missing. A card that brought its own `ascmhl/` (an archive file
 * then) gets no generation from studiod: ours would replace its chain file.
 */
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { posix } from 'node:path';
import { nameKey, safeJoin, validateSegment, type Logger } from '@studio321/protocol';
import {
  appendMhlGeneration,
  appendMhlGenerationBytes,
  c4Id,
  MHL_CHAIN_FILE,
  MHL_FOLDER,
  mhlCreationDate,
  mhlCreatorTool,
  mhlToolVersion,
  parseMhlHashes,
  readMhlHistory,
  writeLevelBatch,
  type ChainedLevelBatch,
  type MhlFile,
} from '@studio321/protocol/durable';
import type { Catalogue, HookOp } from '../catalogue.js';
import { LOCAL_TARGETS, type LocalTargetConfig, type LocalTargetName } from '../config.js';

/** The tool name studiod writes in its generations' creator info. */
export const STUDIOD_MHL_TOOL = 'studiod';
/** A generation is written this long after the last commit into its folder. */
export const MHL_DELAY_MS = 2000;
/** Folders remembered as holding their `folder` record (StudioMhl.#stored). */
const FOLDERS_KEPT = 10_000;
const S = '\x00';
const SYNC = { sync: true };

interface PendingRecord {
  folder: string;
  path: string;
  size: number;
  xxh3: string;
  hashDate: string;
  /** The targets whose generation does not list it yet (absent: both). */
  targets?: LocalTargetName[];
  /**
   * Each copy's mtime as its writer read it right after linking it (the small-commit worker);
   * a target without one is stat'd when its generation is written.
   */
  mtimeMs?: Partial<Record<LocalTargetName, number>>;
}

interface InboxRecord {
  agentId: string;
  shoot: string;
  card: string;
  name: string;
  c4: string;
  xml: string;
  receivedAt: number;
}

interface MhlDb {
  put(key: string, value: unknown, options: { sync?: boolean }): Promise<void>;
  batch(): ChainedLevelBatch;
  values(options: { gte: string; lt: string }): AsyncIterable<unknown>;
}

export interface StudioMhlOptions {
  catalogue: Catalogue;
  targets: Record<LocalTargetName, LocalTargetConfig>;
  log?: Logger;
  delayMs?: number;
  now?: () => number;
}

/** The studio card folder (`<day>/<shoot>/<card>`) of a target-relative path and the path within it. */
export function mhlFolderOf(rel: string): { folder: string; path: string } | undefined {
  const parts = rel.split('/');
  if (parts.length < 4) return undefined;
  return { folder: parts.slice(0, 3).join('/'), path: parts.slice(3).join('/') };
}

export class StudioMhl {
  readonly #catalogue: Catalogue;
  readonly #targets: Record<LocalTargetName, LocalTargetConfig>;
  readonly #log: Logger | undefined;
  readonly #delayMs: number;
  readonly #now: () => number;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Flushes run one at a time per folder. */
  readonly #flushing = new Map<string, Promise<void>>();
  /**
   * Folders whose `folder` record a durable batch already holds (it is never deleted): the
   * commits that follow into them add only their pending record. Forgotten wholesale past
   * FOLDERS_KEPT (the record is then put again, the same value).
   */
  readonly #stored = new Set<string>();
  #closed = false;

  constructor(opts: StudioMhlOptions) {
    this.#catalogue = opts.catalogue;
    this.#targets = opts.targets;
    this.#log = opts.log;
    this.#delayMs = opts.delayMs ?? MHL_DELAY_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** The `mhl` sublevel of the catalogue (structural: classic-level's `sync` option is not in abstract-level's types). */
  get #db(): MhlDb {
    return this.#catalogue.sublevel('mhl') as unknown as MhlDb;
  }

  /** Step 1: the records a commit of `rel` adds to its catalogue batch (none outside a card folder). */
  commitOps(
    rel: string,
    rec: { size: number; xxh3: string; hashDate: number; mtimeMs?: Partial<Record<LocalTargetName, number>> },
  ): HookOp[] {
    const f = mhlFolderOf(rel);
    if (f === undefined) return [];
    const [, shoot, card] = f.folder.split('/') as [string, string, string];
    const pending: PendingRecord = {
      folder: f.folder,
      path: f.path,
      size: rec.size,
      xxh3: rec.xxh3,
      hashDate: new Date(rec.hashDate).toISOString(),
      ...(rec.mtimeMs === undefined || Object.keys(rec.mtimeMs).length === 0 ? {} : { mtimeMs: rec.mtimeMs }),
    };
    const ops: HookOp[] = [
      { type: 'put', key: `pending${S}${f.folder}${S}${f.path}`, value: pending, sublevel: this.#db },
    ];
    if (!this.#stored.has(f.folder))
      ops.push({
        type: 'put',
        key: `folder${S}${shoot}${S}${card}${S}${f.folder}`,
        value: f.folder,
        sublevel: this.#db,
      });
    return ops;
  }

  /** Step 2: a commit into `rel`'s folder is durable (its batch held commitOps): its generation follows after the delay. */
  committed(rel: string): void {
    const f = mhlFolderOf(rel);
    if (f === undefined) return;
    if (this.#stored.size >= FOLDERS_KEPT) this.#stored.clear();
    this.#stored.add(f.folder);
    this.#schedule(f.folder);
  }

  #schedule(folder: string): void {
    if (this.#closed) return;
    clearTimeout(this.#timers.get(folder));
    const t = setTimeout(() => {
      this.#timers.delete(folder);
      void this.flush(folder);
    }, this.#delayMs);
    t.unref();
    this.#timers.set(folder, t);
  }

  /**
   * Start: the folders a crash left with pending files, or with an agent generation received
   * but not yet adopted (its `due` record), get their generation.
   */
  async open(): Promise<void> {
    const folders = new Set<string>();
    for await (const v of this.#db.values({ gte: `pending${S}`, lt: `pending${S}\xff` }))
      folders.add((v as PendingRecord).folder);
    for await (const v of this.#db.values({ gte: `due${S}`, lt: `due${S}\xff` })) folders.add(v as string);
    for (const f of folders) await this.flush(f);
  }

  /** Close: every scheduled generation is written now. */
  async close(): Promise<void> {
    this.#closed = true;
    const folders = [...this.#timers.keys()];
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    for (const f of folders) await this.flush(f);
    await Promise.all([...this.#flushing.values()]);
  }

  /**
   * An agent's generation (MhlGeneration): kept durably in the inbox, then adopted by every
   * folder of its card it fits (under a name of the folder's own numbering). Each folder of the
   * card already committed gets a `due` record in the same synced batch, deleted once the folder's
   * flush has written both targets: a studiod killed before that flush adopts the generation at
   * its next start, not only at the next commit into the folder. Throws
   * PROTO_BAD_NAME (names.ts) when a name is not a single safe segment.
   */
  async receiveAgentGeneration(
    agentId: string,
    g: { shoot: string; card: string; name: string; data: Uint8Array },
  ): Promise<void> {
    const shoot = validateSegment(g.shoot);
    const card = validateSegment(g.card);
    const name = validateSegment(g.name);
    // Kept as text (the catalogue's values are JSON); the C4 is of the bytes that text gives back,
    // the very bytes adopted later (a generation that is not UTF-8 would otherwise never match its chain entry).
    const xml = Buffer.from(g.data).toString('utf8');
    const rec: InboxRecord = {
      agentId,
      shoot,
      card,
      name,
      c4: c4Id(Buffer.from(xml, 'utf8')),
      xml,
      receivedAt: this.#now(),
    };
    const folders: string[] = [];
    for await (const folder of this.#db.values({
      gte: `folder${S}${shoot}${S}${card}${S}`,
      lt: `folder${S}${shoot}${S}${card}${S}\xff`,
    }))
      folders.push(folder as string);
    await writeLevelBatch(this.#db, SYNC, [
      { type: 'put', key: `inbox${S}${shoot}${S}${card}${S}${name}`, value: rec },
      ...folders.map((f) => ({ type: 'put' as const, key: `due${S}${f}`, value: f })),
    ]);
    for (const f of folders) this.#schedule(f);
  }

  /** Steps 3 and 4 for one folder (one at a time per folder); a failure is logged and retried later. */
  flush(folder: string): Promise<void> {
    const prev = this.#flushing.get(folder) ?? Promise.resolve();
    const run = prev.then(() =>
      this.#flush(folder).catch((err: unknown) => {
        this.#log?.warn(
          { event: 'mhl-failed', folder, err },
          `The ASC MHL generation of ${folder} could not be written; its files are committed and verified all the same, and it is tried again after the next commit there or at the next start.`,
        );
      }),
    );
    this.#flushing.set(folder, run);
    void run.then(() => {
      if (this.#flushing.get(folder) === run) this.#flushing.delete(folder);
    });
    return run;
  }

  async #flush(folder: string): Promise<void> {
    const [, shoot, card] = folder.split('/') as [string, string, string];
    const pending: PendingRecord[] = [];
    for await (const v of this.#db.values({ gte: `pending${S}${folder}${S}`, lt: `pending${S}${folder}${S}\xff` }))
      pending.push(v as PendingRecord);
    const inbox: InboxRecord[] = [];
    for await (const v of this.#db.values({
      gte: `inbox${S}${shoot}${S}${card}${S}`,
      lt: `inbox${S}${shoot}${S}${card}${S}\xff`,
    }))
      inbox.push(v as InboxRecord);
    if (await this.#cardHasOwnHistory(folder)) {
      this.#log?.info(
        { event: 'mhl-card-history', folder },
        `${folder} came with its own ${MHL_FOLDER}/ folder: studiod adds no generation there (it would replace the card's chain file).`,
      );
      await this.#settle(folder, pending, [...LOCAL_TARGETS], inbox.length > 0);
      return;
    }
    const written: LocalTargetName[] = [];
    let failure: unknown;
    for (const t of LOCAL_TARGETS) {
      try {
        await this.#writeTarget(
          t,
          folder,
          pending.filter((p) => p.targets === undefined || p.targets.includes(t)),
          inbox,
        );
        written.push(t);
      } catch (err) {
        failure ??= err; // this target only: the other one still gets its generation
      }
    }
    await this.#settle(folder, pending, written, inbox.length > 0 && failure === undefined);
    if (failure !== undefined) throw failure;
  }

  /**
   * Step 4: the pending records of the targets written leave; a record is deleted when no target
   * is left. `doneDue`: every target was written with the card's agent generations in view, so the
   * folder's `due` record (if any) goes too.
   */
  async #settle(
    folder: string,
    pending: readonly PendingRecord[],
    written: readonly LocalTargetName[],
    doneDue: boolean,
  ): Promise<void> {
    const ops: Array<{ type: 'del'; key: string } | { type: 'put'; key: string; value: unknown }> =
      written.length === 0
        ? []
        : pending.map((p) => {
            const key = `pending${S}${folder}${S}${p.path}`;
            const left = (p.targets ?? LOCAL_TARGETS).filter((t) => !written.includes(t));
            return left.length === 0
              ? { type: 'del' as const, key }
              : { type: 'put' as const, key, value: { ...p, targets: left } satisfies PendingRecord };
          });
    if (doneDue) ops.push({ type: 'del', key: `due${S}${folder}` });
    if (ops.length === 0) return;
    await writeLevelBatch(this.#db, SYNC, ops);
  }

  async #cardHasOwnHistory(folder: string): Promise<boolean> {
    return (await this.#catalogue.storedPath(nameKey(`${folder}/${MHL_FOLDER}/${MHL_CHAIN_FILE}`))) !== undefined;
  }

  async #writeTarget(
    target: LocalTargetName,
    folder: string,
    pending: readonly PendingRecord[],
    inbox: readonly InboxRecord[],
  ): Promise<void> {
    const root = safeJoin(this.#targets[target].root, folder);
    // The folder must be there (its files were committed into it): never made here, on an empty mount point.
    await stat(root); // ENOENT: this target fails, its pending records stay
    const history = await readMhlHistory(root);
    const inChain = new Set(history.map((g) => g.c4));
    /** Per path: the latest recorded XXH3 and who recorded it. */
    const latest = new Map<string, { xxh3: string | undefined; tool: string | undefined }>();
    for (const g of history) {
      if (g.xml === undefined) continue;
      const xml = g.xml.toString('utf8');
      const tool = mhlCreatorTool(xml);
      for (const h of parseMhlHashes(xml, g.sequence)) latest.set(h.path, { xxh3: h.hashes.xxh3, tool });
    }
    const committed = new Map(pending.map((p) => [p.path, p.xxh3]));
    for (const [path, v] of latest)
      if (v.tool === STUDIOD_MHL_TOOL && v.xxh3 !== undefined) committed.set(path, v.xxh3);
    for (const g of [...inbox].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (inChain.has(g.c4)) continue;
      const hashes = parseMhlHashes(g.xml, 0);
      if (
        hashes.length === 0 ||
        !hashes.every((h) => h.hashes.xxh3 !== undefined && committed.get(h.path) === h.hashes.xxh3)
      )
        continue; // not (yet) this folder's files: see the module comment
      await appendMhlGenerationBytes(
        root,
        Buffer.from(g.xml, 'utf8'),
        mhlCreationDate(g.xml) ?? new Date(g.receivedAt),
      );
      inChain.add(g.c4);
      const tool = mhlCreatorTool(g.xml);
      for (const h of hashes) latest.set(h.path, { xxh3: h.hashes.xxh3, tool });
      this.#log?.info(
        { event: 'mhl-adopted', target, folder, generation: g.name, agentId: g.agentId },
        'agent ASC MHL generation added',
      );
    }
    const files: MhlFile[] = [];
    for (const p of pending) {
      const before = latest.get(p.path);
      if (before?.tool === STUDIOD_MHL_TOOL && before.xxh3 === p.xxh3) continue;
      const mtimeMs = p.mtimeMs?.[target] ?? (await stat(safeJoin(root, p.path))).mtimeMs;
      files.push({
        path: p.path,
        size: p.size,
        mtimeMs,
        xxh3: p.xxh3,
        action: before?.xxh3 === p.xxh3 ? 'verified' : 'original',
        hashDate: p.hashDate,
      });
    }
    if (files.length === 0) return;
    const g = await appendMhlGeneration({
      root,
      process: 'transfer',
      tool: { name: STUDIOD_MHL_TOOL, version: mhlToolVersion() },
      hostname: hostname(),
      comment: `studiod pid ${process.pid}: ${target} copy of shoot ${posix.basename(posix.dirname(folder))}, card ${posix.basename(folder)}, committed and read back (BLAKE3)`,
      files,
      now: new Date(this.#now()),
    });
    this.#log?.info(
      { event: 'mhl-generation', target, folder, generation: g.generation, files: files.length },
      'ASC MHL generation written',
    );
  }
}
