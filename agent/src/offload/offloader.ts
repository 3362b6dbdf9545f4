/**
 * Verified offload of one card (or hot-folder files) into the agent's store.
 *
 * Per file: read ONCE from the card (readCardFile), written by durableWrite to
 * the laptop store and the field drive at the same time, fsynced, read back and
 * hashed; only then is it recorded verified, its directories fsync'd and its record
 * written in one synced state batch with the other files that finished meanwhile
 * (group-commit.ts); it counts as copied once that batch is written. A file read whole
 * (READ_WHOLE) is read by the small card reader's worker (card/small-read.ts, the same checks),
 * written and read back by the small writer's worker in a group with other small files
 * (protocol/src/durable/small-writer.ts), then committed the same way.
 *
 * Dual-slot dedup: when an asset of the same size is already stored, the file is
 * hashed first; if its content is known it only gains a name (nothing written).
 * Clashes: store names are reserved (claimed) per sidecar group before writing;
 * a name held by other content moves the group to `~2`, `~3`… (naming.ts).
 * With a rename template (rename-template.ts) the group's files are stored under
 * one new stem, each with its own extension; the same clash rules apply.
 *
 * Stops (throws OffloadStop) on: card removed, store full or unwritable, a
 * destination missing, abort. Per-file problems (unreadable file, file changed,
 * a failed read-back) are recorded on the file and the offload carries on.
 */
import { join, posix } from 'node:path';
import { stat } from 'node:fs/promises';
import { getMaxListeners, setMaxListeners } from 'node:events';
import {
  CodedError,
  DurableWriteError,
  errorCode,
  hashStream,
  utcDay,
  type FileCapture,
  type Logger,
} from '@studio321/protocol';
import {
  applyTranslation,
  DURABLE_CODES,
  durableWrite,
  GroupCommit,
  translateDurable,
  type DurableTarget,
  type SmallWriter,
} from '@studio321/protocol/durable';
import { AGENT_CODES, AgentError, type AgentCode } from '../errors.js';
import {
  OFFLOAD_COPY_FAILED,
  OFFLOAD_FAILURES,
  OFFLOAD_UNREADABLE,
  type OffloadFailureContext,
} from './durable-failures.js';
import { hasLaptopCopyIn, hasVerifiedCopy, type AgentState, type FileEntry } from '../state/agent-state.js';
import type { CardRecord, ClaimRecord, FileRecord, GroupRecord } from '../state/records.js';
import { groupKey, splitName, storeName, suffixedPath } from './naming.js';
import { renderRename, type RenameOption } from './rename-template.js';
import { readCardFile, type SourceOpener } from '../card/source-reader.js';
import { sharedSmallCardReader, sharedSmallFileWriter } from '../card/small-read.js';
import { CAPTURE_HEAD_BYTES, captureDay, readCapture, type CaptureMeta } from '../card/capture.js';
import { copyFact, type AgentTarget } from '../targets.js';
import { KeyedLocks, type ProgressTracker } from '@studio321/protocol';

export type FileResult = 'copied' | 'duplicate' | 'failed';

export interface FileOutcome {
  path: string;
  result: FileResult;
  bytes: number;
  blake3?: string;
  /** Copied: the XXH3-64, the targets written and when they were verified (the ASC MHL generation). */
  xxh3?: string;
  targets?: string[];
  verifiedAt?: string;
  storePath?: string;
  code?: AgentCode;
  message?: string;
}

export interface OffloadContext {
  state: AgentState;
  targets: AgentTarget[];
  signal?: AbortSignal;
  log?: Logger;
  progress?: ProgressTracker;
  /** Fault-injection seam for the card side (default readCardFile). */
  openSource?: SourceOpener;
  onFile?: (outcome: FileOutcome) => void;
  /** Sidecar groups copied at the same time (default DEFAULT_OFFLOAD_CONCURRENCY). */
  concurrency?: number;
  /** Of those, how many read the card at the same time (default DEFAULT_CARD_READERS). */
  cardReaders?: number;
  /**
   * The source is a tethered hot folder: a file that changes while it is copied is still being
   * written by the tethering software and is copied again once stable, so that is logged as
   * information, not as a failure that asks the photographer for attention.
   */
  sourceStillWritten?: boolean;
  /** Rename each new sidecar group by this template (absent: the card's names are kept). */
  rename?: RenameOption;
  /**
   * Keep every file's outcome for run()'s answer (default true). A card's offload passes false:
   * it needs only the tally (a card of 100,000 files would hold 100,000 outcomes to its end).
   */
  keepOutcomes?: boolean;
  /**
   * Where files read whole (READ_WHOLE) are written: a SmallWriter (default: the process's, one
   * worker thread writing them in groups), or false for durableWrite on this thread as larger files are.
   */
  smallWriter?: SmallWriter | false;
}

/** What a run did, in counts: kept whole for the failures only (they are reported one by one). */
export interface OffloadTally {
  copied: number;
  duplicates: number;
  bytesCopied: number;
  failed: FileOutcome[];
}

/** The whole offload had to stop; `cause` is the coded reason. */
export class OffloadStop extends Error {
  readonly error: AgentError;
  constructor(error: AgentError) {
    super(error.message, { cause: error });
    this.name = 'OffloadStop';
    this.error = error;
  }
}

const MAX_SUFFIX = 999;

/**
 * Sidecar groups in flight by default. Only DEFAULT_CARD_READERS of them read
 * the card at a time; the others are writing, or in their fsync, read-back and
 * directory fsync. Each fsync is a journal commit and a disk cache flush; with 8
 * groups in flight their fsyncs share journal commits and overlap the next
 * files' reads and writes (README, Performance).
 */
export const DEFAULT_OFFLOAD_CONCURRENCY = 8;

/**
 * Files read from the card at the same time. A card just inserted is not in the
 * page cache: its reads wait on the device, and two files read at once keep the
 * device's queue busy across file boundaries. With the card in the page cache 2
 * readers are as fast as 1, for about 10 MiB more memory (README, Performance).
 */
export const DEFAULT_CARD_READERS = 2;

/**
 * A group whose files are all smaller than this is small: up to SMALL_GROUPS_FACTOR ×
 * the concurrency of small groups are in flight. A small file's time is its fsyncs, not
 * its bytes; more of them in flight share journal commits, and the group commit
 * (group-commit.ts) records more of them per synced state batch and directory fsync.
 */
const SMALL_GROUP_FILE = 1024 * 1024;
const SMALL_GROUPS_FACTOR = 4;

/**
 * A file up to this size is read from the card ONCE, whole, when its group starts (with the
 * source reader's checks that it did not change while read): the same bytes give its capture
 * header, its dedup hash and its copy. A larger file's header is read apart and its copy
 * streamed (its bytes are not held).
 */
const READ_WHOLE = CAPTURE_HEAD_BYTES;

/** A file's bytes read whole (READ_WHOLE), or why they could not be read. */
type Whole = { bytes: Uint8Array } | { error: unknown };

/** One chunk, as a source for durableWrite or hashStream. */
async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array, void, undefined> {
  if (bytes.byteLength > 0) yield bytes;
}

/** A counting semaphore: `take()` resolves with the function that gives the slot back (once). */
class Slots {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(n: number) {
    this.#free = n;
  }

  async take(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free++;
    };
  }
}

/**
 * Store paths that can be the same name at some clash suffix share this key: their folder and
 * their stem without `~k` suffixes, in upper case and NFC (`IMG_1.JPG` at suffix 2 is `IMG_1~2.JPG`,
 * which a card can also hold under that very name; a store on a case- or normalization-insensitive
 * file system takes two spellings as one name). The key only decides which claims wait for each
 * other: a name taken all the same is refused by the durable write's link (DURABLE_NAME_TAKEN).
 */
export function clashKey(storePath: string): string {
  const { dir, stem } = splitName(storePath);
  return `${dir}/${stem.replace(/(?:~\d+)+$/, '').toUpperCase()}`.normalize('NFC');
}

/** `src`, read only while holding a card-read slot (taken at the first read, given back at the end or on return()). */
async function* withReadSlot(
  src: AsyncIterable<Uint8Array>,
  slots: Slots,
): AsyncGenerator<Uint8Array, void, undefined> {
  const give = await slots.take();
  try {
    yield* src;
  } finally {
    give();
  }
}

function asCoded(err: unknown): CodedError | undefined {
  return err instanceof CodedError ? err : undefined;
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || asCoded(err)?.code === DURABLE_CODES.aborted);
}

async function cardPresent(root: string, card: CardRecord): Promise<boolean> {
  try {
    const st = await stat(root);
    return st.isDirectory() && (card.dev === undefined || st.dev === card.dev);
  } catch {
    return false;
  }
}

/** A 30-bit hash of a string (FNV-1a): a small integer, kept for every run of a card in sidecarGroups. */
function hash30(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}

/**
 * Offloaders running in this process, per state and card id: a run may take its card's names as
 * its own to know (#fresh) only while it is the sole offloader of that card.
 */
const running = new WeakMap<AgentState, Map<string, number>>();

/**
 * Keys this run may have written records under (a group's key, the clash keys of the names it
 * claimed), as bits of their hash30: a key whose bit is clear has none of this run's; a set bit
 * (written, or another key with the same bits) sends the caller to the state, as without it.
 * 2^21 bits (256 KiB) whatever the card's size.
 */
class TouchedKeys {
  readonly #bits = new Uint32Array(1 << 16);

  add(key: string): void {
    const h = hash30(key) & 0x1fffff;
    const i = h >>> 5;
    this.#bits[i] = (this.#bits[i] ?? 0) | (1 << (h & 31));
  }

  has(key: string): boolean {
    const h = hash30(key) & 0x1fffff;
    return (((this.#bits[h >>> 5] as number) >>> (h & 31)) & 1) === 1;
  }
}

/**
 * The sidecar groups of `files` (sorted by path) with their keys, in the order of their first
 * file, each with its files in path order: what a Map from group key to files gives, without
 * holding a key and an array per group for the whole offload (a card of 100,000 files). In path
 * order a group's files are next to each other but for a stem in another case or a GoPro chapter
 * (IMG_1.JPG … img_1.xmp): runs whose key's hash is met twice are compared by key and joined.
 * `release`: `files` is the caller's to give up (a mutable array): each group's slots are emptied as it
 * is yielded, so the records of the groups already offloaded can be collected while the rest of a large
 * card is (100,000 records held to the end were about 25 MiB of the agent's heap at its peak).
 */
export function* sidecarGroups(
  files: readonly FileRecord[],
  opts: { release?: boolean } = {},
): Generator<[string, FileRecord[]]> {
  const starts: number[] = [];
  const hashes: number[] = [];
  let prev: string | undefined;
  for (let i = 0; i < files.length; i++) {
    const key = groupKey((files[i] as FileRecord).path);
    if (key === prev) continue;
    prev = key;
    starts.push(i);
    hashes.push(hash30(key));
  }
  starts.push(files.length);
  const sorted = Int32Array.from(hashes).sort();
  const twice = new Set<number>();
  for (let j = 1; j < sorted.length; j++) if (sorted[j] === sorted[j - 1]) twice.add(sorted[j] as number);
  const run = (r: number): FileRecord[] => files.slice(starts[r], starts[r + 1]);
  // Runs of a key met again later: the first run's index → all its runs; the later ones are skipped.
  const joined = new Map<number, number[]>();
  const later = new Set<number>();
  if (twice.size > 0) {
    const byKey = new Map<string, number[]>();
    for (let r = 0; r < hashes.length; r++) {
      if (!twice.has(hashes[r] as number)) continue;
      const key = groupKey((files[starts[r] as number] as FileRecord).path);
      const rs = byKey.get(key);
      if (rs === undefined) byKey.set(key, [r]);
      else rs.push(r);
    }
    for (const rs of byKey.values()) {
      if (rs.length < 2) continue;
      joined.set(rs[0] as number, rs);
      for (const r of rs.slice(1)) later.add(r);
    }
  }
  for (let r = 0; r < hashes.length; r++) {
    if (later.has(r)) continue;
    const runs = joined.get(r) ?? [r];
    const members = runs.flatMap(run);
    if (opts.release === true)
      for (const x of runs) (files as FileRecord[]).fill(undefined as unknown as FileRecord, starts[x], starts[x + 1]);
    yield [groupKey((members[0] as FileRecord).path), members];
  }
}

export class CardOffloader {
  readonly ctx: OffloadContext;
  readonly card: CardRecord;
  readonly root: string;
  /** Every file's outcome, when the context keeps them (keepOutcomes). */
  readonly outcomes: FileOutcome[] = [];
  readonly tally: OffloadTally = { copied: 0, duplicates: 0, bytesCopied: 0, failed: [] };
  readonly #readSlots: Slots;
  /** Held while a group chooses its suffix and claims its names: by clashKey of each name. */
  readonly #claimLocks = new KeyedLocks();
  /** Card path → its capture record, from its group's header read until the file is recorded. */
  readonly #captures = new Map<string, FileCapture>();
  /** Card path → its renamed card-relative path (no clash suffix), for files of renamed groups. */
  readonly #renamed = new Map<string, string>();
  /** Files that finished together: one fsync per folder and one synced state batch (recordFiles). */
  readonly #commit: GroupCommit<FileEntry>;
  /**
   * Target directories made (or found) by a durable write of this run: later files in them skip
   * the mkdir -p walk (a stat per file and target). One that went missing since is made again
   * (#copy).
   */
  readonly #dirsMade = new Set<string>();
  /**
   * When run() started, the card had no group record and no name claimed under its store folder
   * (state.hasNamesOf) and no other offloader of it was running: a group or a name this run has
   * not claimed (#touched) is then known to have no record, and is not read (#untouched).
   */
  #fresh = false;
  readonly #touched = new TouchedKeys();

  constructor(ctx: OffloadContext, card: CardRecord, root: string) {
    if (ctx.targets.length === 0 || ctx.targets[0]?.name !== 'laptop')
      throw new TypeError('CardOffloader: the laptop store must be the first target');
    this.ctx = ctx;
    this.card = card;
    this.root = root;
    this.#readSlots = new Slots(Math.max(1, ctx.cardReaders ?? DEFAULT_CARD_READERS));
    this.#commit = new GroupCommit<FileEntry>(async (entries) => {
      await ctx.state.recordFiles(entries);
    });
    // Every file in flight waits on the signal in a few places (durable write, read-back):
    // that many listeners are expected, not a leak.
    const signal = ctx.signal;
    const want = 4 * SMALL_GROUPS_FACTOR * Math.max(1, ctx.concurrency ?? DEFAULT_OFFLOAD_CONCURRENCY) + 10;
    if (signal !== undefined && getMaxListeners(signal) < want) setMaxListeners(want, signal);
  }

  #open(file: FileRecord): AsyncIterable<Uint8Array> {
    const opener = this.ctx.openSource ?? readCardFile;
    const abs = join(this.root, ...file.path.split('/'));
    return withReadSlot(
      opener(
        abs,
        { size: file.size, mtimeMs: file.mtimeMs },
        this.ctx.signal === undefined ? {} : { signal: this.ctx.signal },
      ),
      this.#readSlots,
    );
  }

  /** The file read whole (READ_WHOLE): its bytes, or the error reading it gave. */
  async #readWhole(file: FileRecord): Promise<Whole> {
    try {
      if (this.ctx.openSource === undefined) {
        // Read on the small card reader's thread, with no card-read slot: it reads one file at a
        // time, and its bytes are a buffer of their own.
        const abs = join(this.root, ...file.path.split('/'));
        const expect = { size: file.size, mtimeMs: file.mtimeMs };
        const signal = this.ctx.signal;
        return { bytes: await sharedSmallCardReader().read(abs, expect, signal === undefined ? {} : { signal }) };
      }
      // Another opener's chunk is valid only until the next is asked for, so it is copied.
      const chunks: Uint8Array[] = [];
      for await (const c of this.#open(file)) chunks.push(Buffer.from(c));
      return { bytes: chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks) };
    } catch (error) {
      return { error };
    }
  }

  /** The file's bytes as a source: those read whole, else read from the card now. */
  #source(file: FileRecord, whole: Whole | undefined): AsyncIterable<Uint8Array> {
    return whole !== undefined && 'bytes' in whole ? once(whole.bytes) : this.#open(file);
  }

  #done(outcome: FileOutcome): void {
    if (outcome.result === 'copied') {
      this.tally.copied += 1;
      this.tally.bytesCopied += outcome.bytes;
    } else if (outcome.result === 'duplicate') this.tally.duplicates += 1;
    else this.tally.failed.push(outcome);
    if (this.ctx.keepOutcomes !== false) this.outcomes.push(outcome);
    this.ctx.onFile?.(outcome);
  }

  /**
   * Copy these files (all of one card), group by group, with up to `concurrency`
   * groups in flight (default DEFAULT_OFFLOAD_CONCURRENCY), `cardReaders` of them
   * reading the card, so fsyncs and read-backs overlap the next files' reads. A group whose file size equals one in flight waits until
   * nothing is in flight (it may be the same content: dual-slot dedup stays exact).
   * Throws OffloadStop when the whole offload must stop (after the groups in
   * flight settled). `files` (sorted by path) is taken over: each group's slots are emptied once the
   * group is under way (sidecarGroups' `release`), so a large card's records go as they are done.
   */
  async run(files: FileRecord[]): Promise<FileOutcome[]> {
    const { state } = this.ctx;
    const byCard = running.get(state) ?? new Map<string, number>();
    running.set(state, byCard);
    byCard.set(this.card.id, (byCard.get(this.card.id) ?? 0) + 1);
    try {
      // One file (a hot folder's) would spend the two reads it could save.
      this.#fresh =
        files.length > 1 &&
        byCard.get(this.card.id) === 1 &&
        !(await state.hasNamesOf(this.card.id, posix.join(this.card.shoot, this.card.id)));
      return await this.#run(files);
    } finally {
      const n = (byCard.get(this.card.id) ?? 1) - 1;
      if (n === 0) byCard.delete(this.card.id);
      else byCard.set(this.card.id, n);
    }
  }

  /**
   * No record of this run or before it can be under these keys (#fresh), while no other offloader
   * of the card runs (one started since may be claiming names: from then on they are read).
   */
  #untouched(keys: readonly string[]): boolean {
    return (
      this.#fresh && running.get(this.ctx.state)?.get(this.card.id) === 1 && keys.every((k) => !this.#touched.has(k))
    );
  }

  async #run(files: FileRecord[]): Promise<FileOutcome[]> {
    const limit = Math.max(1, this.ctx.concurrency ?? DEFAULT_OFFLOAD_CONCURRENCY);
    const inFlight = new Map<Promise<void>, Set<number>>();
    let stop: OffloadStop | undefined;
    const settle = async (): Promise<void> => {
      await Promise.allSettled([...inFlight.keys()]);
    };
    for (const [key, members] of sidecarGroups(files, { release: true })) {
      if (stop !== undefined) break;
      if (this.ctx.signal?.aborted) {
        stop = await this.#stopFor(this.ctx.signal.reason, undefined);
        break;
      }
      const sizes = new Set(members.map((m) => m.size));
      const clash = [...inFlight.values()].some((s) => [...sizes].some((x) => s.has(x)));
      if (clash) await settle();
      const small = members.every((m) => m.size < SMALL_GROUP_FILE);
      while (inFlight.size >= (small ? limit * SMALL_GROUPS_FACTOR : limit)) await Promise.race(inFlight.keys());
      if (stop !== undefined) break;
      const p: Promise<void> = this.#groupInLayers(key, members)
        .then(
          () => undefined,
          (err: unknown) => {
            if (err instanceof OffloadStop) stop ??= err;
            else
              stop ??= new OffloadStop(
                new AgentError(
                  AGENT_CODES.copyFailed,
                  `Offloading ${key} failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`,
                  { cause: err },
                ),
              );
          },
        )
        .finally(() => {
          inFlight.delete(p);
        });
      inFlight.set(p, sizes);
    }
    await settle();
    if (stop !== undefined) throw stop;
    return this.outcomes;
  }

  /**
   * Card names that differ only by Unicode form share one store name: they go in
   * layers, one after the other, so each layer's suffix is chosen after the one
   * before claimed its names (the second `Café.CR3` becomes `Café~2.CR3`).
   */
  async #groupInLayers(key: string, members: FileRecord[]): Promise<void> {
    const layers: FileRecord[][] = [];
    const seen = new Map<string, number>();
    for (const m of members) {
      const name = storeName(m.path);
      const i = seen.get(name) ?? 0;
      seen.set(name, i + 1);
      (layers[i] ??= []).push(m);
    }
    for (const layer of layers) await this.#group(key, layer);
  }

  /**
   * One date folder for the whole group: the capture day of its first file that has one
   * (the JPEG's or the RAW's EXIF; an XMP has none), else the UTC day of its oldest mtime.
   * A group seen before keeps the day it was given. Reads each image's header only
   * (capture.ts); those bytes are then in the page cache for the copy.
   */
  async #groupCapture(
    key: string,
    members: FileRecord[],
  ): Promise<{
    date: Pick<FileCapture, 'day' | 'dateSource'> & { name?: string };
    known: GroupRecord | undefined;
    wholes: Map<string, Whole>;
  }> {
    const metas = new Map<string, CaptureMeta>();
    const wholes = new Map<string, Whole>();
    for (const m of members) {
      const whole = m.size < READ_WHOLE ? await this.#readWhole(m) : undefined;
      if (whole !== undefined) wholes.set(m.path, whole);
      // A file that could not be read fails with that error in #group; its date falls back to mtime.
      if (whole !== undefined && 'error' in whole) continue;
      const meta = await readCapture(join(this.root, ...m.path.split('/')), whole?.bytes);
      if (meta !== undefined) metas.set(m.path, meta);
    }
    const known = this.#untouched([`group:${key}`]) ? undefined : await this.ctx.state.getGroup(this.card.id, key);
    let date: Pick<FileCapture, 'day' | 'dateSource'>;
    if (known?.day !== undefined) date = { day: known.day, dateSource: known.dateSource ?? 'mtime' };
    else {
      const taken = members.map((m) => metas.get(m.path)?.takenAt).find((t) => t !== undefined);
      date =
        taken !== undefined
          ? { day: captureDay(taken), dateSource: 'exif' }
          : { day: utcDay(Math.min(...members.map((m) => m.mtimeMs))), dateSource: 'mtime' };
    }
    for (const m of members) this.#captures.set(m.path, { ...date, ...metas.get(m.path) });
    const name = known !== undefined ? known.name : this.#renameGroup(members, metas);
    if (name !== undefined)
      for (const m of members) {
        const { dir, rest } = splitName(storeName(m.path));
        const renamed = `${dir === '' ? '' : `${dir}/`}${name}${rest}`;
        if (renamed !== storeName(m.path)) this.#renamed.set(m.path, renamed);
      }
    return { date: { ...date, ...(name === undefined ? {} : { name }) }, known, wholes };
  }

  /**
   * The new stem of a group seen for the first time, by the rename template: its first capture
   * time, body and image number (from the files that have them), else the group's oldest mtime
   * and its DCF name (rename-template.ts says what each token falls back to).
   */
  #renameGroup(members: readonly FileRecord[], metas: ReadonlyMap<string, CaptureMeta>): string | undefined {
    const rename = this.ctx.rename;
    if (rename === undefined) return undefined;
    const first = <K extends keyof CaptureMeta>(k: K): CaptureMeta[K] | undefined =>
      members.map((m) => metas.get(m.path)?.[k]).find((v) => v !== undefined);
    // The group's own stem: its largest file's (the RAW or the video, not a sidecar).
    const main = members.reduce((a, b) => (b.size > a.size ? b : a));
    const takenAt = first('takenAt');
    const camera = first('camera');
    const serial = first('serial');
    const imageNumber = first('imageNumber');
    return renderRename(rename.template, {
      ...(takenAt === undefined ? {} : { takenAt }),
      mtimeMs: Math.min(...members.map((m) => m.mtimeMs)),
      ...(camera === undefined ? {} : { camera }),
      ...(serial === undefined ? {} : { serial }),
      ...(imageNumber === undefined ? {} : { imageNumber }),
      name: splitName(storeName(main.path)).stem,
      shoot: this.card.shoot,
      card: this.card.label,
      ...(rename.bodies === undefined ? {} : { bodies: rename.bodies }),
    });
  }

  /** Renamed at ingest: the card-relative path it is stored under (with the suffix of store path `storePath`). */
  #renamedAs(file: FileRecord, storePath?: string): { renamed?: string } {
    if (!this.#renamed.has(file.path)) return {};
    const prefix = `${posix.join(this.card.shoot, this.card.id)}/`;
    return { renamed: storePath?.slice(prefix.length) ?? (this.#renamed.get(file.path) as string) };
  }

  /** The file's capture record (once: it is recorded with the file). */
  #takeCapture(file: FileRecord): { capture?: FileCapture } {
    const capture = this.#captures.get(file.path);
    this.#captures.delete(file.path);
    return capture === undefined ? {} : { capture };
  }

  async #group(key: string, members: FileRecord[]): Promise<void> {
    const { date, known, wholes } = await this.#groupCapture(key, members);
    const toWrite: Array<{
      file: FileRecord;
      whole?: Whole;
      expected?: { size: number; blake3: string };
      skip?: ReadonlySet<string>;
      /** Its verified laptop copy is in another laptop store: its store name may be used again here. */
      otherStore?: boolean;
    }> = [];
    for (const file of members) {
      const whole = wholes.get(file.path);
      if (whole !== undefined && 'error' in whole) {
        await this.#fileFailed(file, whole.error);
        continue;
      }
      if (file.size === 0 || (await this.ctx.state.hasAssetOfSize(file.size))) {
        let pre: { size: number; blake3: string };
        try {
          pre = await hashStream(this.#source(file, whole));
        } catch (err) {
          await this.#fileFailed(file, err);
          continue;
        }
        const stored = await this.ctx.state.getAsset(pre.blake3);
        if (hasLaptopCopyIn(stored, this.#laptopRoot)) {
          await this.#commit.commit(
            {
              kind: 'duplicate',
              card: this.card,
              file,
              blake3: pre.blake3,
              verifiedAt: new Date().toISOString(),
              ...zeroByteWarning(file),
              ...this.#takeCapture(file),
              ...this.#renamedAs(file),
            },
            [],
          );
          this.#renamed.delete(file.path);
          this.ctx.progress?.fileDone(file.size);
          this.#done({ path: file.path, result: 'duplicate', bytes: 0, blake3: pre.blake3 });
          continue;
        }
        // Stored, but its laptop copy was found damaged (backfill.ts), or lies in another laptop
        // store than this one: copy it again from the card (a damaged file is never
        // overwritten: under a new name), to the laptop and the targets that have no verified copy.
        const skip = new Set(
          this.ctx.targets.filter((t) => t.name !== 'laptop' && hasVerifiedCopy(stored, t.name)).map((t) => t.name),
        );
        toWrite.push({
          file,
          expected: pre,
          skip,
          otherStore: hasVerifiedCopy(stored, 'laptop'),
          ...(whole === undefined ? {} : { whole }),
        });
      } else {
        toWrite.push({ file, ...(whole === undefined ? {} : { whole }) });
      }
    }
    if (toWrite.length === 0) return;
    const k = await this.#claimed(
      key,
      toWrite.map((w) => w.file),
      async () => {
        const { k, claims } = await this.#chooseSuffix(key, toWrite, known?.k ?? 1);
        await this.ctx.state.claimNames(
          this.card.id,
          key,
          k,
          toWrite.map((w) => ({
            storePath: this.#storePath(w.file, k),
            path: w.file.path,
            ...(w.expected === undefined || w.otherStore !== true ? {} : { blake3: w.expected.blake3 }),
          })),
          date,
          // Read just now, and only this task writes this group (claims: under this lock).
          { group: { record: known }, claims },
        );
        return k;
      },
    );
    for (const w of toWrite) await this.#copy(w.file, w.whole, w.expected, k, key, w.skip);
  }

  #storePath(file: FileRecord, k: number): string {
    const name = this.#renamed.get(file.path) ?? storeName(file.path);
    return posix.join(this.card.shoot, this.card.id, suffixedPath(name, k));
  }

  /**
   * Choosing a suffix and claiming the names of `files`, one group at a time among groups whose
   * names may clash (clashKey): renamed groups in flight may want the same new names (two groups
   * of one template without `{seq}`), and a group's name at a suffix may be another's own name.
   * Groups whose names never clash claim at the same time.
   */
  async #claimed<T>(key: string, files: readonly FileRecord[], fn: () => Promise<T>): Promise<T> {
    const clashKeys = files.map((f) => clashKey(this.#storePath(f, 1)));
    const give = await this.#claimLocks.take(clashKeys);
    try {
      return await fn();
    } finally {
      // Under the lock: the next group of one of these clash keys reads what this one claimed.
      this.#touched.add(`group:${key}`);
      for (const c of clashKeys) this.#touched.add(`claim:${c}`);
      give();
    }
  }

  get #smallWriter(): SmallWriter | undefined {
    const w = this.ctx.smallWriter;
    return w === false ? undefined : (w ?? sharedSmallFileWriter());
  }

  get #laptopRoot(): string {
    return (this.ctx.targets[0] as AgentTarget).root;
  }

  /**
   * The smallest suffix from `start` (the group's current one) whose names are free or already ours:
   * reserved for this file, or bound to the very content it is expected to have (the same
   * card offloaded into another laptop store: store names are claimed per store-relative path).
   */
  async #chooseSuffix(
    key: string,
    files: ReadonlyArray<{ file: FileRecord; expected?: { blake3: string }; otherStore?: boolean }>,
    start: number,
  ): Promise<{ k: number; claims: ReadonlyMap<string, ClaimRecord | undefined> }> {
    if (this.#untouched(files.map((f) => `claim:${clashKey(this.#storePath(f.file, 1))}`)))
      return { k: start, claims: new Map(files.map((f) => [this.#storePath(f.file, start), undefined])) };
    for (let k = start; k <= MAX_SUFFIX; k++) {
      let free = true;
      const claims = await this.ctx.state.getClaims(files.map((f) => this.#storePath(f.file, k)));
      for (const { file: f, expected, otherStore } of files) {
        const claim = claims.get(this.#storePath(f, k));
        if (
          claim !== undefined &&
          !(
            claim.card === this.card.id &&
            claim.path === f.path &&
            (claim.blake3 === undefined || (otherStore === true && claim.blake3 === expected?.blake3))
          )
        ) {
          free = false;
          break;
        }
      }
      if (free) return { k, claims };
    }
    throw new OffloadStop(
      new AgentError(
        AGENT_CODES.copyFailed,
        `More than ${MAX_SUFFIX} different files are named like ${files[0]?.file.path ?? key} on this card: rename them on a reader and ingest again.`,
        { detail: { group: key } },
      ),
    );
  }

  async #copy(
    file: FileRecord,
    whole: Whole | undefined,
    expected: { size: number; blake3: string } | undefined,
    k: number,
    key: string,
    skip?: ReadonlySet<string>,
  ): Promise<void> {
    const storePath = this.#storePath(file, k);
    const dir = posix.dirname(storePath);
    const name = posix.basename(storePath);
    const writeTo = this.ctx.targets.filter((t) => skip?.has(t.name) !== true);
    const targets: DurableTarget[] = writeTo.map((t) => ({ dir: join(t.root, ...dir.split('/')), name }));
    const createDirs = targets.some((t) => !this.#dirsMade.has(t.dir));
    let last = 0;
    let result;
    const small = whole !== undefined && 'bytes' in whole ? this.#smallWriter : undefined;
    try {
      if (small !== undefined && whole !== undefined && 'bytes' in whole) {
        // Written and read back by the small writer's worker, in a group with other small files.
        result = await small.write(
          {
            bytes: whole.bytes,
            targets,
            createDirs,
            xxh3: true,
            // The directories are fsync'd by the group commit, with the state batch that records the files.
            fsyncDir: false,
            ...(expected === undefined ? {} : { expected }),
          },
          this.ctx.signal === undefined ? {} : { signal: this.ctx.signal },
        );
        last = result.size;
        this.ctx.progress?.addBytes(last);
      } else
        result = await durableWrite(this.#source(file, whole), {
          targets,
          createDirs,
          // The directories are fsync'd by the group commit, once for the files that finish together.
          fsyncDir: false,
          xxh3: true,
          ...(expected === undefined ? {} : { expected }),
          ...(this.ctx.signal === undefined ? {} : { signal: this.ctx.signal }),
          onProgress: (bytes) => {
            this.ctx.progress?.addBytes(bytes - last);
            last = bytes;
          },
        });
      for (const t of targets) this.#dirsMade.add(t.dir);
    } catch (err) {
      this.ctx.progress?.addBytes(-last);
      if (!createDirs && asCoded(err)?.code === DURABLE_CODES.targetMissing) {
        // A folder made earlier in this run is gone (removed by hand): the write makes it again,
        // and fails as before when the target itself is missing.
        for (const t of targets) this.#dirsMade.delete(t.dir);
        await this.#copy(file, whole, expected, k, key, skip);
        return;
      }
      if (asCoded(err)?.code === DURABLE_CODES.nameTaken) {
        // Something the state does not know holds that name (a file put in the store by hand):
        // never touch it; move this file (and later members of its group) to the next suffix.
        await this.ctx.state.markNameForeign(storePath, this.card.id, file.path);
        const next = await this.#claimed(key, [file], async () => {
          const { k: next } = await this.#chooseSuffix(key, [{ file }], k);
          await this.ctx.state.claimNames(this.card.id, key, next, [
            { storePath: this.#storePath(file, next), path: file.path },
          ]);
          return next;
        });
        await this.#copy(file, whole, expected, next, key, skip);
        return;
      }
      await this.#fileFailed(file, err);
      return;
    }
    const laptop = result.copies[0];
    if (laptop === undefined) throw new TypeError('durableWrite returned no copies');
    const paths: Record<string, string> = {};
    const copies = result.copies.map((c, i) => {
      const t = writeTo[i] as AgentTarget;
      paths[t.name] = c.path;
      return copyFact(t, c);
    });
    try {
      await this.#commit.commit(
        {
          kind: 'verified',
          card: this.card,
          file,
          blake3: result.blake3,
          size: result.size,
          ...(result.xxh3 === undefined ? {} : { xxh3: result.xxh3 }),
          storePath,
          paths,
          copies,
          verifiedAt: laptop.verifiedAt,
          ...zeroByteWarning(file),
          ...this.#takeCapture(file),
          ...this.#renamedAs(file, storePath),
        },
        targets.map((t) => t.dir),
      );
      this.#renamed.delete(file.path);
    } catch (err) {
      // The state failed: the whole offload stops (run()). A directory that could not be
      // fsync'd fails this file only, as in the durable write.
      if (err instanceof AgentError) throw err;
      this.ctx.progress?.addBytes(-last);
      await this.#fileFailed(file, err);
      return;
    }
    this.ctx.progress?.fileDone();
    this.#done({
      path: file.path,
      result: 'copied',
      bytes: result.size,
      blake3: result.blake3,
      ...(result.xxh3 === undefined ? {} : { xxh3: result.xxh3 }),
      targets: writeTo.map((t) => t.name),
      verifiedAt: laptop.verifiedAt,
      storePath,
    });
  }

  /** Record a per-file failure and carry on, or throw OffloadStop when the whole offload must stop. */
  async #fileFailed(file: FileRecord, err: unknown): Promise<void> {
    this.#captures.delete(file.path);
    this.#renamed.delete(file.path);
    const stop = await this.#stopFor(err, file);
    if (stop !== undefined) {
      await this.ctx.state.recordFileError(this.card.id, file.path, stop.error).catch(() => undefined);
      throw stop;
    }
    const fileErr = this.#fileError(err, file);
    await this.ctx.state.recordFileError(this.card.id, file.path, fileErr);
    if (this.ctx.sourceStillWritten === true && fileErr.code === AGENT_CODES.sourceChanged)
      this.ctx.log?.info(
        { event: 'file-still-written', card: this.card.id, path: file.path, reason: fileErr.code },
        `${file.path} is still being written; it is copied again once it is stable`,
      );
    else
      this.ctx.log?.warn({ event: 'file-failed', card: this.card.id, path: file.path, err: fileErr }, fileErr.message);
    this.ctx.progress?.fileDone(file.size);
    this.#done({ path: file.path, result: 'failed', bytes: 0, code: fileErr.code, message: fileErr.message });
  }

  async #stopFor(err: unknown, file: FileRecord | undefined): Promise<OffloadStop | undefined> {
    if (err instanceof OffloadStop) return err;
    const code = asCoded(err)?.code;
    const where = file === undefined ? '' : ` while copying ${file.path}`;
    if (err instanceof AgentError && err.code === AGENT_CODES.stateFailed) return new OffloadStop(err);
    const removed = (): OffloadStop =>
      new OffloadStop(
        new AgentError(
          AGENT_CODES.cardRemoved,
          `The card ${this.card.label} (${this.card.id}) was removed${where}: nothing half-copied was kept; insert it again and the offload resumes where it stopped.`,
          {
            cause: err,
            retryable: true,
            detail: { card: this.card.id, ...(file === undefined ? {} : { path: file.path }) },
          },
        ),
      );
    const sourceSide = code === DURABLE_CODES.sourceFailed || isAbort(err) || !(err instanceof DurableWriteError);
    if (sourceSide && !(err instanceof AgentError) && !(await cardPresent(this.root, this.card))) return removed();
    // Once the offload is being stopped, whatever a file failed with is that stop, never a
    // per-file failure: a file that was waiting for the card reader sees the signal's reason.
    const reason: unknown = this.ctx.signal?.aborted === true ? this.ctx.signal.reason : undefined;
    if (reason instanceof AgentError && reason.code === AGENT_CODES.cardRemoved) return removed();
    if (isAbort(err) || reason !== undefined) {
      return new OffloadStop(
        new AgentError(
          AGENT_CODES.aborted,
          `The offload of ${this.card.id} was stopped${where}; nothing half-copied was kept and it resumes next time.`,
          { cause: err, retryable: true, detail: { card: this.card.id } },
        ),
      );
    }
    const t = translateDurable(err, OFFLOAD_FAILURES, this.#failureContext(err, file, where));
    return t?.entry.stops === true ? new OffloadStop(new AgentError(t.code, t.message, t.options)) : undefined;
  }

  #failureContext(err: unknown, file: FileRecord | undefined, where: string, errno?: string): OffloadFailureContext {
    const coded = asCoded(err);
    return {
      where,
      card: this.card.id,
      path: file?.path ?? '',
      errno,
      code: coded?.code ?? '',
      text: coded?.message ?? '',
    };
  }

  #fileError(err: unknown, file: FileRecord): AgentError {
    const coded = asCoded(err);
    const inner = coded?.code === DURABLE_CODES.sourceFailed ? coded.cause : err;
    if (inner instanceof AgentError) return inner;
    const x = this.#failureContext(err, file, '', errorCode(inner));
    const t =
      translateDurable(err, OFFLOAD_FAILURES, x) ??
      applyTranslation(coded === undefined ? OFFLOAD_UNREADABLE : OFFLOAD_COPY_FAILED, err, x);
    return new AgentError(t.code, t.message, t.options);
  }
}

function zeroByteWarning(file: FileRecord): { warning?: { code: AgentCode; message: string } } {
  if (file.size !== 0) return {};
  return {
    warning: {
      code: AGENT_CODES.zeroByteFile,
      message: `${file.path} is empty (0 bytes), often a failed camera write: it was kept, but check the camera's copy before formatting, then run field-agent resolve.`,
    },
  };
}
