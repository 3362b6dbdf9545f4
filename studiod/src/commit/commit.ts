/**
 * Commit at the studio (docs/design.md §Studio write order):
 *
 *   1. both target roots present and the configured disks (target-check.ts)
 *   2. choose the target-relative path `<YYYY-MM-DD>/<shoot>/<card>/<card path>`
 *      (date = the capture day of its sidecar group the agent sent, else the UTC day
 *      of the name's mtime); a path whose nameKey (NFC+casefold)
 *      is already stored for OTHER content, or that another in-flight commit
 *      reserved, gets a distinct name `stem~2.ext`, `stem~3.ext`…
 *   3. RAID copy: ONE durableWrite (temp → write → fsync → read back → link)
 *      with `expected` = the offered size and BLAKE3, fed by the staged file: read
 *      back behind its fsyncs while it arrives (streamed, StagedRead: that read is
 *      also the mirror copy's read-back) or read at FileEnd (resumed); a mismatch
 *      removes the temp, the caller discards the staged file and Nacks
 *   4. mirror copy: the staged file IS the mirror copy (it lives in the mirror's
 *      file system, staging.ts): fsynced, read back in full and compared with
 *      the offered BLAKE3, then given its final name by link(2) (placeVerified)
 *      — every byte is written twice in all (mirror, RAID), not three times.
 *      DURABLE_NAME_TAKEN (a final file with other content) on either target →
 *      next distinct name; an identical final file left by an earlier crash is
 *      reused. When that name is THIS asset's own stored path, the file there
 *      is a damaged copy of it: `onDamagedCopy` moves it into the quarantine
 *      (recovery/quarantine.ts) and the same name is tried once more
 *   5. ONE catalogue batch, `sync: true`: asset, names, the two copies, agent
 *      copies, stored-path index, counters — after an fsync of both final folders
 *      (steps 3 and 4 leave it to this step). Commits that reach step 5 together (and
 *      step 2's intents) share the folders' fsyncs and the batch: the catalogue's
 *      group commit (protocol/src/durable/group-commit.ts)
 *   6. only then the Receipt is returned (the caller sends it), and the staged
 *      file's name is removed; `onCommitted` (the cloud forwarder's enqueue) is called.
 */
import { posix } from 'node:path';
import {
  CodedError,
  DurableWriteError,
  MAX_NAME_BYTES,
  readFileChunks,
  createXxh3,
  hashBytes,
  nameKey,
  xxh3File,
  safeJoin,
  utcDay,
  type AgentCopy,
  type FileName,
  type ReceiptMessage,
  type StudioCopy,
} from '@studio321/protocol';
import {
  DURABLE_CODES,
  durableError,
  durableWrite,
  isDurableCode,
  placeVerified,
  translateDurable,
  type DurableSource,
} from '@studio321/protocol/durable';
import { fieldClaimRecords, localCopyRecord, type Catalogue, type CopyRecord, type NameRecord } from '../catalogue.js';
import { LOCAL_TARGETS, type LocalTargetConfig, type LocalTargetName } from '../config.js';
import { STUDIO_CODES, StudioError } from '../errors.js';
import { COMMIT_FAILURES } from './durable-failures.js';
import { checkTarget } from './target-check.js';
import type { StagedFile } from './staging.js';
import type { StudioMhl } from './mhl-history.js';
import { SmallGroupWriter, type SmallTargetDone } from './small-commit.js';
import { FolderIntents } from './folder-intents.js';

/** The most distinct-name suffixes tried before giving up (STUDIO_NO_FREE_NAME). */
const MAX_NAME_SUFFIX = 1000;
/** Read size when streaming the staged file into durableWrite. */
const COMMIT_READ_CHUNK = 4 * 1024 * 1024;
/**
 * The streamed RAID write's fdatasync interval grows to this (durableWrite `syncEveryMax`, from its
 * 8 MiB, half of what is synced): a 2 GiB file costs about 40 flushes of the disk's cache instead of
 * 256, and a file of a few tens of MiB still has its read-back close behind. Alternating 2 GiB syncs
 * (README "Session 19", 8 pairs): transfer 258 against 226 MiB/s and end to end 226 against 196
 * (higher in 8 of 8 pairs), CPU a GiB the same. A fixed 64 MiB left files under it to be read back
 * whole after their last byte (96 MiB files: −12 % end to end).
 */
export const RAID_SYNC_EVERY_MAX = 64 * 1024 * 1024;

export interface CommitInput {
  hash: string;
  size: number;
  /**
   * The staged file in the mirror's file system, holding exactly `size` bytes
   * (when `source` is given: by the time `source` ends). It becomes the mirror copy.
   */
  staged: Pick<StagedFile, 'path' | 'verify'>;
  /**
   * Streamed commit: the staged file read back behind its fsyncs while it arrives
   * (StagedFile.readBehind, staged-read.ts), read by the RAID durableWrite, so the
   * commit overlaps the transfer and the same read is the staged copy's read-back
   * (`staged.verify()` returns what it read). A retry under a distinct name re-reads the staged file.
   */
  source?: DurableSource;
  /**
   * Streamed commit: the XXH3-64 of the bytes as they arrived (from FileEnd on). A staged copy that
   * does not read back as the offer is the mirror disk's doing unless it reads back as these bytes
   * (then the bytes received were wrong).
   */
  receivedXxh3?: () => string | undefined;
  /** Names offered by the agent (already validated with names.ts). */
  names: FileName[];
  /** Copies the agent says it holds: recorded as its field claims, never archive copies. */
  agentCopies: AgentCopy[];
  /** The authenticated session's agent: the claims and names are recorded under it. */
  agentId: string;
  /** The XXH3-64 the agent offered (the ASC MHL hash); kept on the asset record as told. */
  xxh3?: string;
}

/** A small file committed whole from memory (Committer.commitSmall, small-commit.ts). */
export interface SmallCommitInput extends Omit<CommitInput, 'staged' | 'source'> {
  /** The file's `size` bytes (at most SMALL_COMMIT_BYTES). */
  bytes: Uint8Array;
  /** Its session's first commit: written ahead of the queued groups (SmallGroupWriter.write). */
  first?: boolean;
  /** When each step of the commit ended (performance.now()), filled in as it goes: where a first file waits. */
  stages?: SmallCommitStages;
}

/**
 * The steps of a small commit, each marked when it ended: `targets` (both targets checked), `intent`
 * (its folders' intents durable and a free name found), `write` (both copies written, read back and
 * linked by the group worker), `record` (the catalogue's batch with its record written).
 */
export type SmallCommitStages = Partial<Record<'targets' | 'intent' | 'write' | 'record', number>>;

/** Both copies verified under their final names, by one of the two ways of writing them. */
interface WrittenCopies {
  committedAt: number;
  verified: Record<LocalTargetName, { size: number; method: StudioCopy['method']; verifiedAt: number }>;
  /** The XXH3-64 of the bytes (asked only when ASC MHL histories are kept). */
  xxh3: () => Promise<string>;
  hashDate: number;
  /** Each copy's mtime when the writer read it (the small-commit worker): its ASC MHL entry needs no stat. */
  mtimeMs?: Partial<Record<LocalTargetName, number>>;
  /** Folders the catalogue's group commit must fsync before the record (those not fsync'd yet). */
  syncDirs: string[];
}

export interface CommittedAsset {
  hash: string;
  size: number;
  committedAt: number;
  copies: CopyRecord[];
  /** How long the commit took, from its target check to the catalogue write (the commit latency metric). */
  ms: number;
}

export interface CommitterOptions {
  catalogue: Catalogue;
  targets: Record<LocalTargetName, LocalTargetConfig>;
  /** Hook for the cloud forwarder: called after the catalogue batch (errors are logged, not fatal). */
  onCommitted?: (asset: CommittedAsset) => Promise<void> | void;
  /** Told what each target check found (undefined: fine) — target availability. */
  onTargetCheck?: (target: LocalTargetName, err: unknown) => Promise<void> | void;
  /**
   * A final name that is this asset's own stored path holds other bytes (a
   * damaged copy): move it aside. Returns true when the name is free now.
   */
  onDamagedCopy?: (damaged: { target: LocalTargetName; path: string; hash: string }) => Promise<boolean>;
  /** The folders' ASC MHL histories (mhl-history.ts): each commit's pending entry, then its generation. */
  mhl?: StudioMhl;
  now?: () => number;
  signal?: AbortSignal;
}

/**
 * The source as it is read by the RAID write, XXH3-64 hashed on the way (the ASC MHL hash): the
 * same pass over the same bytes, which both copies' BLAKE3 read-backs then match. `digest` is
 * undefined unless every byte went through (a reused final file may leave the source unread).
 */
function xxh3Tap(source: DurableSource): {
  stream: DurableSource;
  digest(size: number): string | undefined;
} {
  const h = createXxh3();
  let bytes = 0;
  return {
    stream: (async function* () {
      for await (const chunk of source) {
        for (const c of chunk instanceof Uint8Array ? [chunk] : chunk) {
          h.update(c);
          bytes += c.byteLength;
        }
        yield chunk;
      }
    })(),
    digest: (size) => (bytes === size ? h.digest() : undefined),
  };
}

/**
 * Target-relative directory and file name for one offered name: under its sidecar group's
 * capture day when the agent sent one (a RAW and its XMP written a minute apart around
 * midnight share it), else the UTC day of the file's own mtime (agents before it).
 */
export function layoutFor(name: FileName): { dir: string; base: string } {
  const rel = posix.join(name.capture?.day ?? utcDay(name.mtime), name.shoot, name.card, name.path);
  return { dir: posix.dirname(rel), base: posix.basename(rel) };
}

/** `IMG_0001.CR3` → `IMG_0001~2.CR3` (n >= 2). */
export function distinctName(base: string, n: number): string {
  if (n < 2) return base;
  const dot = base.lastIndexOf('.');
  let stem = dot > 0 ? base.slice(0, dot) : base;
  const ext = dot > 0 ? base.slice(dot) : '';
  const suffix = `~${n}`;
  // Stay within one path segment's limit (255 UTF-8 bytes): shorten the stem, never the extension.
  while (stem.length > 1 && Buffer.byteLength(stem + suffix + ext, 'utf8') > MAX_NAME_BYTES)
    stem = [...stem].slice(0, -1).join('');
  return `${stem}${suffix}${ext}`;
}

/** Maps a durable-write failure to the studio code the agent and status show. */
export function classifyCommitError(err: unknown): CodedError {
  if (err instanceof StudioError) return err;
  if (err instanceof DurableWriteError) {
    const t = translateDurable(err, COMMIT_FAILURES, err);
    return t === undefined ? err : new StudioError(t.code, t.message, t.options);
  }
  if (err instanceof CodedError) return err;
  return new StudioError(
    STUDIO_CODES.targetIo,
    `Commit failed (${err instanceof Error ? err.message : String(err)}). It is retried.`,
    { cause: err, retryable: true },
  );
}

export class Committer {
  readonly #catalogue: Catalogue;
  readonly #targets: Record<LocalTargetName, LocalTargetConfig>;
  readonly #onCommitted: CommitterOptions['onCommitted'];
  readonly #onTargetCheck: CommitterOptions['onTargetCheck'];
  readonly #onDamagedCopy: CommitterOptions['onDamagedCopy'];
  readonly #mhl: StudioMhl | undefined;
  readonly #now: () => number;
  readonly #signal: AbortSignal | undefined;
  /** nameKeys of target-relative paths reserved by in-flight commits. */
  readonly #reserved = new Set<string>();
  /**
   * One AbortController per commit in flight, aborted from the one listener on `signal`:
   * each commit waits on its signal in a few places (durable write, read-back), so many
   * concurrent commits on the studio's signal would pass its listener limit (10).
   */
  readonly #live = new Set<AbortController>();
  /** The small-file group worker (started on first use). */
  readonly #small = new SmallGroupWriter();
  /** The `intent!<folder>` records of the folders commits write in (step 4). */
  readonly #intents: FolderIntents;
  #inFlight = 0;

  constructor(opts: CommitterOptions) {
    this.#catalogue = opts.catalogue;
    this.#targets = opts.targets;
    this.#onCommitted = opts.onCommitted;
    this.#onTargetCheck = opts.onTargetCheck;
    this.#onDamagedCopy = opts.onDamagedCopy;
    this.#mhl = opts.mhl;
    this.#now = opts.now ?? Date.now;
    this.#intents = new FolderIntents(this.#catalogue, this.#now);
    this.#signal = opts.signal;
    this.#signal?.addEventListener(
      'abort',
      () => {
        for (const c of this.#live) c.abort(this.#signal?.reason);
      },
      { once: true },
    );
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Check both targets; throws STUDIO_TARGET_MISSING / _FULL / _IO. */
  async checkTargets(): Promise<void> {
    for (const t of LOCAL_TARGETS) {
      try {
        await checkTarget(t, this.#targets[t], this.#catalogue.hasCopiesOn(t), this.#now);
      } catch (err) {
        await Promise.resolve(this.#onTargetCheck?.(t, err)).catch(() => undefined);
        throw err;
      }
      await Promise.resolve(this.#onTargetCheck?.(t, undefined)).catch(() => undefined);
    }
  }

  /** Commit one fully staged file; returns the Receipt to send. See the module comment for the order. */
  async commit(input: CommitInput): Promise<ReceiptMessage> {
    this.#inFlight++;
    const ac = new AbortController();
    if (this.#signal?.aborted === true) ac.abort(this.#signal.reason);
    this.#live.add(ac);
    try {
      return await this.#commit(input, this.#signal === undefined ? undefined : ac.signal);
    } finally {
      this.#live.delete(ac);
      this.#inFlight--;
    }
  }

  async #commit(input: CommitInput, signal: AbortSignal | undefined): Promise<ReceiptMessage> {
    const started = performance.now();
    await this.checkTargets();
    const expected = { size: input.size, blake3: input.hash };
    let live = input.source;
    // Mirror: the staged file, read back in full once (whatever name it ends up under),
    // and only after its last byte (a streamed RAID write ends after FileEnd).
    let stagedCheck: Promise<{ size: number; blake3: string; verifiedAt: number }> | undefined;
    const checkStaged = (): Promise<{ size: number; blake3: string; verifiedAt: number }> =>
      (stagedCheck ??= input.staged.verify().then((r) => ({ ...r, verifiedAt: this.#now() })));
    const isOffered = (r: { size: number; blake3: string }): boolean =>
      r.size === input.size && r.blake3 === input.hash;
    const stagedMismatch = (staged: { size: number; blake3: string }, cause: unknown): Error =>
      durableError(
        DURABLE_CODES.readbackMismatch,
        `The staged file ${input.staged.path} reads back differently from the ${input.size} bytes received and verified for ${input.hash}: the mirror disk (or its cable/RAM) is corrupting data; check it. The file is received again.`,
        {
          ...(cause === undefined ? {} : { cause }),
          retryable: true,
          detail: { path: input.staged.path, expected, actual: { size: staged.size, blake3: staged.blake3 } },
        },
      );
    return this.#underFreeName(input, started, async ({ dirs, name, at }) => {
      const source = xxh3Tap(live ?? readFileChunks(input.staged.path, { chunkSize: COMMIT_READ_CHUNK }));
      live = undefined; // a live stream is read once
      // RAID: the durable primitive; its read-back must equal the offered size and BLAKE3
      // (hashSource: false — the read-backs of both copies are the checks against the offer).
      let raid;
      at.writing = 'raid';
      try {
        raid = await durableWrite(source.stream, {
          targets: [{ dir: dirs.raid, name }],
          expected,
          hashSource: false,
          directIo: true, // pooled chunks go from their buffer to the disk; the read-back reads the disk
          // Its fdatasyncs only let the read-back follow (the O_DIRECT bytes are on the disk): fewer as the file grows.
          syncEveryMax: RAID_SYNC_EVERY_MAX,
          fsyncDir: false, // step 5's group commit fsyncs the folder, once for the commits of its group
          ...(signal === undefined ? {} : { signal }),
        });
      } catch (err) {
        // The staged file could not be read back (the mirror disk): its own code, not the source's.
        if (
          err instanceof DurableWriteError &&
          err.code === DURABLE_CODES.sourceFailed &&
          err.cause instanceof StudioError
        )
          throw err.cause;
        if (err instanceof DurableWriteError && err.code === DURABLE_CODES.readbackMismatch) {
          const staged = await checkStaged().catch(() => undefined);
          // A streamed RAID copy was written from the staged file's read-back, so both are wrong when
          // it is: the mirror disk's doing when that read is not the bytes received.
          const received = staged !== undefined && !isOffered(staged) ? input.receivedXxh3?.() : undefined;
          if (staged !== undefined && received !== undefined && source.digest(input.size) !== received)
            throw stagedMismatch(staged, err);
          if (staged !== undefined && !isOffered(staged)) {
            // Both copies disagree with the offer: it is the bytes received, not a disk.
            throw durableError(
              DURABLE_CODES.hashMismatch,
              `The bytes received for ${input.hash} do not hash to it; nothing was kept.`,
              {
                cause: err,
                retryable: true,
                detail: { expected, actual: { size: staged.size, blake3: staged.blake3 } },
              },
            );
          }
        }
        throw err;
      }
      const staged = await checkStaged();
      if (!isOffered(staged)) throw stagedMismatch(staged, undefined);
      at.writing = 'mirror';
      await placeVerified(
        input.staged.path,
        { dir: dirs.mirror, name },
        expected,
        signal === undefined ? { fsyncDir: false } : { signal, fsyncDir: false },
      );
      const committedAt = this.#now();
      return {
        committedAt,
        verified: {
          mirror: { size: staged.size, method: 'readback-blake3', verifiedAt: staged.verifiedAt },
          raid: {
            size: raid.size,
            method: raid.copies[0]?.method ?? 'readback-blake3',
            verifiedAt: Date.parse(raid.copies[0]?.verifiedAt ?? '') || committedAt,
          },
        },
        // Only when ASC MHL histories are kept: an unread source (a reused final) is hashed from the verified mirror copy.
        xxh3: async () => source.digest(input.size) ?? (await xxh3File(safeJoin(dirs.mirror, name))),
        hashDate: staged.verifiedAt,
        syncDirs: [dirs.raid, dirs.mirror],
      };
    });
  }

  /**
   * Commit one small file whole from memory (small-commit.ts): the same names, intent, records
   * and Receipt as commit(), with both copies written, read back and linked by the group
   * worker, and their folders fsync'd there once for its group.
   */
  async commitSmall(input: SmallCommitInput): Promise<ReceiptMessage> {
    this.#inFlight++;
    try {
      const started = performance.now();
      if (this.#signal?.aborted === true)
        throw classifyCommitError(durableError(DURABLE_CODES.aborted, 'The studio is stopping.', { retryable: true }));
      if (input.bytes.byteLength !== input.size)
        throw new TypeError(`commitSmall: ${input.bytes.byteLength} bytes for a file of ${input.size}`);
      await this.checkTargets();
      const stages = input.stages;
      if (stages !== undefined) stages.targets = performance.now();
      const receipt = await this.#underFreeName(input, started, async ({ dirs, name, at }) => {
        if (stages !== undefined) stages.intent = performance.now();
        const o = await this.#small.write(
          {
            bytes: input.bytes,
            size: input.size,
            blake3: input.hash,
            targets: { raid: { dir: dirs.raid, name }, mirror: { dir: dirs.mirror, name } },
          },
          input.first === true,
        );
        if (stages !== undefined) stages.write = performance.now();
        if (!o.ok) {
          at.writing = o.target;
          const opts = { retryable: o.retryable, ...(o.detail === undefined ? {} : { detail: o.detail }) };
          if (o.code === DURABLE_CODES.readbackMismatch && hashBytes(input.bytes) !== input.hash)
            // The copy disagrees with the offer because the bytes received do: not a disk.
            throw durableError(
              DURABLE_CODES.hashMismatch,
              `The bytes received for ${input.hash} do not hash to it; nothing was kept.`,
              { ...opts, retryable: true },
            );
          throw isDurableCode(o.code)
            ? durableError(o.code, o.message, opts)
            : Object.assign(new Error(o.message), { code: o.code });
        }
        return {
          committedAt: this.#now(),
          verified: {
            mirror: { size: input.size, ...o.mirror },
            raid: { size: input.size, ...o.raid },
          },
          xxh3: async () => {
            const h = createXxh3();
            h.update(input.bytes);
            return h.digest();
          },
          hashDate: o.mirror.verifiedAt,
          mtimeMs: mtimesOf(o),
          syncDirs: [], // fsync'd by the worker
        };
      });
      if (stages !== undefined) stages.record = performance.now();
      return receipt;
    } finally {
      this.#inFlight--;
    }
  }

  /** Small-file groups written and files in them (the benches read these). */
  get smallGroupStats(): { groups: number; files: number } {
    return { groups: this.#small.groups, files: this.#small.files };
  }

  /** Stops the small-commit worker (tests; the studio's shutdown). */
  async close(): Promise<void> {
    await this.#small.close();
  }

  /**
   * Steps 2 and 5–6 around one way of writing both copies (`write`, steps 3–4): the first free
   * name (reserved while in flight), the intent before any temp or final name can appear, a
   * taken name tried under the next distinct name (a damaged copy of this asset moved aside and
   * its name tried once more), the catalogue record once both copies are verified, the Receipt.
   */
  async #underFreeName(
    input: Omit<CommitInput, 'staged' | 'source'>,
    started: number,
    write: (to: {
      dirs: Record<LocalTargetName, string>;
      name: string;
      /** The target being written when a failure is thrown (a taken name is handled for it). */
      at: { writing: LocalTargetName };
    }) => Promise<WrittenCopies>,
  ): Promise<ReceiptMessage> {
    const first = input.names[0];
    if (first === undefined) throw new TypeError('commit() needs at least one name');
    const { dir, base } = layoutFor(first);
    const dirs: Record<LocalTargetName, string> = {
      mirror: safeJoin(this.#targets.mirror.root, dir),
      raid: safeJoin(this.#targets.raid.root, dir),
    };
    /** Names whose damaged copy was already moved aside once (tried again once, never in a loop). */
    const cleared = new Set<string>();
    const at: { writing: LocalTargetName } = { writing: 'raid' };
    // Step 4, before any temp or final name can appear: the folders' intents (written by the
    // first commit into them, found durable by the others), held until this commit's batch.
    const folders = [dirs.mirror, dirs.raid];
    await this.#intents.acquire(folders);
    let held = true;
    try {
      for (let n = 1; n <= MAX_NAME_SUFFIX; n++) {
        const name = distinctName(base, n);
        const rel = posix.join(dir, name);
        const key = nameKey(rel);
        if (this.#reserved.has(key)) continue;
        const stored = await this.#catalogue.storedPath(key);
        if (stored !== undefined && stored.hash !== input.hash) continue;
        this.#reserved.add(key);
        try {
          at.writing = 'raid';
          const w = await write({ dirs, name, at });
          const { committedAt } = w;
          const copies: CopyRecord[] = LOCAL_TARGETS.map((t) => {
            const c = w.verified[t];
            return localCopyRecord(t, this.#targets[t], {
              hash: input.hash,
              path: rel,
              size: c.size,
              method: c.method,
              verifiedAt: c.verifiedAt,
            });
          });
          const xxh3 = this.#mhl === undefined ? undefined : await w.xxh3();
          const claims = fieldClaimRecords(input.agentId, input, input.agentCopies);
          const names = input.names.map((nm) => ({
            key: nameKey(posix.join(nm.shoot, nm.card, nm.path)),
            value: { hash: input.hash, ...nm, agentId: input.agentId, seenAt: committedAt } satisfies NameRecord,
          }));
          // Both copies are linked and their temps gone: the folders this commit leaves idle
          // lose their intents in its own batch (queued at once: no await in between).
          held = false;
          const idle = this.#intents.release(folders);
          try {
            await this.#catalogue.commitAsset(
              {
                asset: {
                  hash: input.hash,
                  size: input.size,
                  committedAt,
                  ...(input.xxh3 === undefined ? {} : { xxh3: input.xxh3 }),
                },
                names,
                copies: [...copies, ...claims],
                storedPaths: [{ key, value: { hash: input.hash, path: rel } }],
                ...(xxh3 === undefined || this.#mhl === undefined
                  ? {}
                  : {
                      extra: this.#mhl.commitOps(rel, {
                        size: input.size,
                        xxh3,
                        hashDate: w.hashDate,
                        ...(w.mtimeMs === undefined ? {} : { mtimeMs: w.mtimeMs }),
                      }),
                    }),
                clearIntents: idle,
              },
              w.syncDirs,
            );
          } catch (err) {
            await this.#intents.clearIdle(idle);
            throw err;
          }
          this.#mhl?.committed(rel);
          if (this.#onCommitted !== undefined) {
            await Promise.resolve(
              this.#onCommitted({
                hash: input.hash,
                size: input.size,
                committedAt,
                copies,
                ms: performance.now() - started,
              }),
            ).catch(() => undefined);
          }
          return { t: 'receipt', hash: input.hash, size: input.size, committedAt, copies: copies.map(toStudioCopy) };
        } catch (err) {
          if (held && err instanceof DurableWriteError && err.code === DURABLE_CODES.nameTaken) {
            // This asset's own path holding other bytes: a damaged copy of it. Move it aside, retry the name once.
            const writing = at.writing;
            if (
              stored?.hash === input.hash &&
              this.#onDamagedCopy !== undefined &&
              !cleared.has(`${writing}:${key}`) &&
              (await this.#onDamagedCopy({ target: writing, path: rel, hash: input.hash }).catch(() => false))
            ) {
              cleared.add(`${writing}:${key}`);
              n--;
            }
            continue;
          }
          throw classifyCommitError(err);
        } finally {
          this.#reserved.delete(key);
        }
      }
      throw new StudioError(
        STUDIO_CODES.noFreeName,
        `No free name for ${base} after ${MAX_NAME_SUFFIX} tries in ${dir}. Look at that folder on the targets.`,
        { detail: { dir, base } },
      );
    } finally {
      if (held) await this.#intents.releaseAndClear(folders);
    }
  }

  /** A Receipt for an asset already in the catalogue (content the studio has); undefined when not both local copies exist. */
  async receiptFor(hash: string): Promise<ReceiptMessage | undefined> {
    const asset = await this.#catalogue.getAsset(hash);
    if (asset === undefined) return undefined;
    const copies = (await this.#catalogue.copiesOf(hash)).filter((c) => c.kind === 'studio');
    if (!LOCAL_TARGETS.every((t) => copies.some((c) => c.target === t))) return undefined;
    return { t: 'receipt', hash, size: asset.size, committedAt: asset.committedAt, copies: copies.map(toStudioCopy) };
  }
}

/** The copies' mtimes the small-commit worker read (those it could). */
function mtimesOf(o: { raid: SmallTargetDone; mirror: SmallTargetDone }): Partial<Record<LocalTargetName, number>> {
  const m: Partial<Record<LocalTargetName, number>> = {};
  for (const t of LOCAL_TARGETS) {
    const v = o[t].mtimeMs;
    if (v !== undefined) m[t] = v;
  }
  return m;
}

export function toStudioCopy(c: CopyRecord): StudioCopy {
  return {
    target: c.target,
    path: c.path,
    device: c.device,
    media: c.media,
    location: c.location,
    verifiedAt: c.verifiedAt,
    method: c.method,
  };
}
