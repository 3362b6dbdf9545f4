/**
 * The quarantine: a damaged file on a local target is never deleted or
 * overwritten. It is moved aside, within the target's own file system, to
 *
 *   <target root>/.s321-quarantine/<YYYY-MM-DD>/<target-relative path>
 *
 * (the UTC day it was found; a name already taken there gets `~2`, `~3`… —
 * nothing in the quarantine is ever replaced either), and a record of it is
 * kept in the catalogue's `quarantine` sublevel with the per-target totals
 * `studioctl status` shows (one batch, `sync: true`; status never scans).
 *
 * The move is link(2) then unlink(2) of the old name, then fsync of both
 * directories: a rename that cannot replace an existing name. A crash between
 * link and unlink leaves the damaged bytes under both names (the next heal
 * moves the old name aside again); a crash before the record leaves a file in
 * the quarantine tree that the totals do not count — never the other way round.
 */
import { link, lstat, unlink } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { errorCode, safeJoin, utcDay } from '@studio321/protocol';
import { ensureDir, fsyncDir } from '@studio321/protocol/durable';
import type { Catalogue, CopyRecord } from '../catalogue.js';
import { distinctName } from '../commit/commit.js';
import type { LocalTargetConfig, LocalTargetName } from '../config.js';
import { RECOVERY_CODES, RecoveryError } from './errors.js';

/** The quarantine folder's name inside a target's root. */
export const QUARANTINE_DIR = '.s321-quarantine';

/** Most `~N` suffixes tried for one quarantined name. */
const MAX_SUFFIX = 1000;

export interface QuarantineRecord {
  target: string;
  hash: string;
  /** Where the file was (target-relative). */
  path: string;
  /** Where it is now (target-relative, under `.s321-quarantine/`). */
  quarantinedPath: string;
  /** Its size when it was moved. */
  size: number;
  /** Why: DURABLE_HASH_MISMATCH, DURABLE_SIZE_MISMATCH, DURABLE_IO_ERROR, DURABLE_NAME_TAKEN… */
  reason: string;
  /** Who found it: `verify`, `commit` or `heal`. */
  foundBy: string;
  at: number;
  /** The copy record it had (kept for forensics), when there was one. */
  copy?: CopyRecord;
}

export type QuarantineTotals = Record<string, { count: number; bytes: number }>;

const K = { item: 'item!', totals: 'totals' } as const;
const SYNC = { sync: true } as object;

type QuarantineDb = ReturnType<Catalogue['sublevel']>;

export class Quarantine {
  readonly #catalogue: Catalogue;
  readonly #targets: Record<LocalTargetName, LocalTargetConfig>;
  readonly #now: () => number;
  #db: QuarantineDb | undefined;
  #totals: QuarantineTotals = {};
  #chain: Promise<unknown> = Promise.resolve();

  constructor(opts: {
    catalogue: Catalogue;
    targets: Record<LocalTargetName, LocalTargetConfig>;
    now?: () => number;
  }) {
    this.#catalogue = opts.catalogue;
    this.#targets = opts.targets;
    this.#now = opts.now ?? Date.now;
  }

  async open(): Promise<void> {
    this.#db = this.#catalogue.sublevel('quarantine');
    const t = (await this.#db.get(K.totals)) as QuarantineTotals | undefined;
    if (t !== undefined) this.#totals = t;
  }

  #sub(): QuarantineDb {
    if (this.#db === undefined) throw new TypeError('Quarantine used before open()');
    return this.#db;
  }

  totals(): QuarantineTotals {
    return structuredClone(this.#totals);
  }

  /** Quarantine records of one target, oldest day first. */
  async *records(target: string): AsyncGenerator<QuarantineRecord> {
    const prefix = `${K.item}${target}!`;
    for await (const v of this.#sub().values({ gt: prefix, lt: `${prefix}\xff` }))
      yield v as unknown as QuarantineRecord;
  }

  /**
   * Move the file at `rel` on `target` aside and record it. Returns null when
   * there is nothing at `rel`. Throws RECOVERY_QUARANTINE_FAILED when it
   * cannot be moved (the file is then left where it was, untouched).
   */
  moveAside(
    target: LocalTargetName,
    rel: string,
    info: { hash: string; reason: string; foundBy: string; copy?: CopyRecord },
  ): Promise<QuarantineRecord | null> {
    const p = this.#chain.then(() => this.#moveAside(target, rel, info));
    this.#chain = p.catch(() => undefined);
    return p;
  }

  async #moveAside(
    target: LocalTargetName,
    rel: string,
    info: { hash: string; reason: string; foundBy: string; copy?: CopyRecord },
  ): Promise<QuarantineRecord | null> {
    const root = this.#targets[target].root;
    const src = safeJoin(root, rel);
    const at = this.#now();
    const fail = (err: unknown, what: string): RecoveryError =>
      new RecoveryError(
        RECOVERY_CODES.quarantineFailed,
        `The damaged ${target} copy ${src} could not be moved into ${QUARANTINE_DIR} (${what}: ${errorCode(err) ?? String(err)}); it was left where it is and nothing was written over it. Check the disk.`,
        { cause: err, retryable: true, detail: { target, path: rel } },
      );
    let size: number;
    try {
      const st = await lstat(src);
      if (!st.isFile()) throw Object.assign(new Error(`${src} is not a regular file`), { code: 'ENOTFILE' });
      size = st.size;
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return null;
      throw fail(err, 'stat');
    }
    const base = posix.join(QUARANTINE_DIR, utcDay(at), posix.dirname(rel));
    const name = posix.basename(rel);
    const destDir = join(root, base);
    try {
      await ensureDir(destDir);
    } catch (err) {
      throw fail(err, 'mkdir');
    }
    let quarantinedPath: string | undefined;
    for (let n = 1; n <= MAX_SUFFIX && quarantinedPath === undefined; n++) {
      const candidate = distinctName(name, n);
      try {
        await link(src, join(destDir, candidate));
        quarantinedPath = posix.join(base, candidate);
      } catch (err) {
        if (errorCode(err) === 'EEXIST') continue;
        if (errorCode(err) === 'ENOENT') return null; // moved by someone else meanwhile
        throw fail(err, 'link');
      }
    }
    if (quarantinedPath === undefined) throw fail(new Error('no free name'), 'link');
    try {
      await fsyncDir(destDir);
      await unlink(src);
      await fsyncDir(dirname(src));
    } catch (err) {
      throw fail(err, 'unlink');
    }
    const rec: QuarantineRecord = {
      target,
      hash: info.hash,
      path: rel,
      quarantinedPath,
      size,
      reason: info.reason,
      foundBy: info.foundBy,
      at,
      ...(info.copy === undefined ? {} : { copy: info.copy }),
    };
    const next = structuredClone(this.#totals);
    const t = (next[target] ??= { count: 0, bytes: 0 });
    t.count += 1;
    t.bytes += size;
    await this.#sub().batch(
      [
        { type: 'put', key: `${K.item}${target}!${quarantinedPath}`, value: rec as unknown as Record<string, unknown> },
        { type: 'put', key: K.totals, value: next as unknown as Record<string, unknown> },
      ],
      SYNC,
    );
    this.#totals = next;
    return rec;
  }
}
