/**
 * Before a commit: is each local target's root there, and is it the configured
 * disk? A root that is missing means the disk is unmounted; a root that exists
 * but has lost the marker file `.studio321-target.json` while the catalogue
 * holds copies on it means an empty mount point — both are STUDIO_TARGET_MISSING
 * (retryable: work resumes when the disk returns). The marker is written (durably)
 * on the first commit to a target.
 */
import { open, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { CodedError, errorCode, KeyedLocks } from '@studio321/protocol';
import { DURABLE_CODES, durableWrite, isDurableCode, sweepStaleTemps } from '@studio321/protocol/durable';
import type { LocalTargetConfig } from '../config.js';
import { STUDIO_CODES, StudioError } from '../errors.js';
import { COMMIT_FAILURES } from './durable-failures.js';

export const TARGET_MARKER = '.studio321-target.json';

export interface TargetMarker {
  target: string;
  device: string;
  createdAt: number;
}

function missing(name: string, cfg: LocalTargetConfig, why: string, cause?: unknown): StudioError {
  return new StudioError(
    STUDIO_CODES.targetMissing,
    `Target "${name}" at ${cfg.root} is not available (${why}). Mount the ${cfg.device} disk; waiting work is committed when it returns.`,
    {
      retryable: true,
      ...(cause === undefined ? {} : { cause }),
      detail: { target: name, root: cfg.root, device: cfg.device },
    },
  );
}

const sweptRoots = new Set<string>();

/**
 * The marker last read at each root, with the identity of its file (device, inode, size,
 * mtime, ctime). Every commit and every staged offer checks both targets: one stat of the
 * marker that finds the same file stands for the stat of the root and the marker's read
 * (another disk mounted there, or the marker replaced or gone, changes the identity).
 */
const knownMarkers = new Map<string, { id: string; marker: TargetMarker }>();

/**
 * The marker's stat for the fast path, shared by the checks that ask while one is in flight
 * (the commits and offers of a batch of small files ask together): one stat for all of them.
 */
const markerStats = new Map<string, Promise<Stats | undefined>>();

function markerStat(root: string): Promise<Stats | undefined> {
  let p = markerStats.get(root);
  if (p === undefined) {
    p = stat(join(root, TARGET_MARKER))
      .catch(() => undefined)
      .finally(() => markerStats.delete(root));
    markerStats.set(root, p);
  }
  return p;
}

function fileIdentity(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/**
 * Throws STUDIO_TARGET_MISSING when the root is absent or is not the
 * configured disk. `hasCopies`: the catalogue records copies on this target.
 */
export async function checkTarget(
  name: string,
  cfg: LocalTargetConfig,
  hasCopies: boolean,
  now: () => number = Date.now,
): Promise<void> {
  const known = knownMarkers.get(cfg.root);
  if (known !== undefined && sweptRoots.has(cfg.root)) {
    const st = await markerStat(cfg.root);
    if (st !== undefined && fileIdentity(st) === known.id) {
      if (known.marker.target !== name)
        throw missing(name, cfg, `the disk mounted there is target "${known.marker.target}"`);
      return;
    }
  }
  try {
    const st = await stat(cfg.root);
    if (!st.isDirectory()) throw missing(name, cfg, 'the root is not a directory');
  } catch (err) {
    if (err instanceof StudioError) throw err;
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') {
      if (cfg.requireExistingRoot) throw missing(name, cfg, 'the root directory does not exist', err);
    } else {
      throw new StudioError(
        STUDIO_CODES.targetIo,
        `Target "${name}" at ${cfg.root} cannot be read (${errorCode(err) ?? 'error'}). Check the disk.`,
        { cause: err, retryable: true, detail: { target: name } },
      );
    }
  }
  // Fast path: the marker is there and this process swept the root already. A marker,
  // once linked, stays; everything else (sweep, first write) runs under the root's lock.
  const marker = await readMarker(name, cfg);
  if (marker !== undefined && sweptRoots.has(cfg.root)) {
    if (marker.target !== name) throw missing(name, cfg, `the disk mounted there is target "${marker.target}"`);
    return;
  }
  await underRootLock(cfg.root, async () => {
    // Read again under the lock: a concurrent first commit may have written it meanwhile.
    const m = await readMarker(name, cfg);
    if (m !== undefined) {
      if (m.target !== name) throw missing(name, cfg, `the disk mounted there is target "${m.target}"`);
      // A studiod killed between linking the marker and removing its temp leaves a
      // root-level *.s321tmp: swept once per process (only markers are written at the
      // root, and only under this lock, so no live temp is there now).
      if (!sweptRoots.has(cfg.root)) {
        await sweepStaleTemps(cfg.root).catch(() => undefined);
        sweptRoots.add(cfg.root);
      }
      return;
    }
    if (hasCopies) throw missing(name, cfg, 'the target marker is gone: an empty mount point?');
    await writeMarker(name, cfg, now());
    sweptRoots.add(cfg.root);
  });
}

async function readMarker(name: string, cfg: LocalTargetConfig): Promise<TargetMarker | undefined> {
  const markerPath = join(cfg.root, TARGET_MARKER);
  knownMarkers.delete(cfg.root);
  try {
    const fh = await open(markerPath, 'r');
    try {
      const st = await fh.stat();
      const marker = JSON.parse(await fh.readFile('utf8')) as TargetMarker;
      knownMarkers.set(cfg.root, { id: fileIdentity(st), marker });
      return marker;
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || err instanceof SyntaxError) return undefined;
    throw new StudioError(
      STUDIO_CODES.targetIo,
      `Target "${name}": marker ${markerPath} cannot be read. Check the disk.`,
      { cause: err, retryable: true, detail: { target: name } },
    );
  }
}

/**
 * One marker writer per root: the root's sweep and first marker write run one at a
 * time in this process. Without it, a new studio's concurrent first commits raced:
 * the second one's stale-temp sweep deleted the first one's live temp
 * (DURABLE_TARGET_MISSING: "raid cannot be written … Check the disk" on a healthy disk).
 */
const rootLocks = new KeyedLocks();

function underRootLock(root: string, fn: () => Promise<void>): Promise<void> {
  return rootLocks.run(root, fn);
}

/**
 * The marker is written like every other file on a target: by the one durable
 * primitive (temp in the root → fsync → read back → link, never replacing an
 * existing marker → fsync root). A studiod killed while writing it leaves only a
 * `*.s321tmp` at the root, swept here before the next attempt (archive files
 * never live at the root: they are under date/shoot/card).
 */
async function writeMarker(name: string, cfg: LocalTargetConfig, at: number): Promise<void> {
  const body: TargetMarker = { target: name, device: cfg.device, createdAt: at };
  try {
    await sweepStaleTemps(cfg.root);
    const bytes = Buffer.from(`${JSON.stringify(body)}\n`);
    await durableWrite(
      (async function* () {
        yield bytes;
      })(),
      { targets: [{ dir: cfg.root, name: TARGET_MARKER }], createDirs: false },
    );
  } catch (err) {
    const code = err instanceof CodedError ? err.code : errorCode(err);
    // The studio code of a durable failure as in a commit (durable-failures.ts); anything else is an I/O error.
    throw new StudioError(
      (isDurableCode(code) ? COMMIT_FAILURES[code]?.code : undefined) ?? STUDIO_CODES.targetIo,
      `Target "${name}" at ${cfg.root} cannot be written (${code ?? 'error'}). Check the disk and its permissions.`,
      { cause: err, retryable: code !== DURABLE_CODES.accessDenied, detail: { target: name } },
    );
  }
}
