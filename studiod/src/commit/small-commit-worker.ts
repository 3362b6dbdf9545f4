/**
 * The file-system half of a group of small commits (small-commit.ts), on its own thread: for
 * each file, the durable write of its bytes (already whole in memory) to the RAID, then to the
 * mirror — temp, write, fsync, read back and hash, link under the final name, never
 * replacing — then ONE fsync per folder for the group. The durable write's steps for bytes in
 * memory (durableWriteBytes, protocol/src/durable/durable-write.ts): synchronous calls, so a
 * small file's calls cost system calls here, not round trips through libuv's thread pool or
 * promise hops, but for the fsyncs (which wait on the disk): those of the group's files, written
 * side by side, still overlap in that pool.
 *
 * Each file's outcome is its own: a taken name, a damaged read-back or a full disk fails that
 * file only, and the group goes on. A file that failed leaves no temp (durableWrite's clean-up)
 * and no final name it linked: the RAID copy of a file whose mirror copy failed is unlinked.
 */
import { statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { CodedError } from '@studio321/protocol';
import { durableWriteBytes, fsyncTargetDir, makeDir, syncFs } from '@studio321/protocol/durable';
import type {
  SmallFileOutcome,
  SmallFileRequest,
  SmallGroupReply,
  SmallGroupRequest,
  SmallTargetDone,
} from './small-commit.js';

/** Files of a group written side by side (libuv's pool runs 4 fsyncs at once). */
const FILES_AT_ONCE = 8;

function errorOf(err: unknown): SmallFileOutcome & { ok: false } {
  if (err instanceof CodedError)
    return {
      ok: false,
      target: 'raid',
      code: err.code,
      message: err.message,
      retryable: err.retryable,
      ...(err.detail === undefined ? {} : { detail: err.detail }),
    };
  const e = err as Error & { code?: unknown };
  return {
    ok: false,
    target: 'raid',
    code: typeof e.code === 'string' ? e.code : 'EIO',
    message: e instanceof Error ? e.message : String(err),
    retryable: true,
  };
}

async function writeGroup(req: SmallGroupRequest): Promise<SmallGroupReply> {
  // FILES_AT_ONCE files side by side: their fsyncs overlap, and the read-backs' buffers (1 MiB
  // each, read-back-lane.ts) stay few.
  const done: Array<{ outcome: SmallFileOutcome; dirs: string[] }> = new Array(req.files.length);
  /** Each target folder made (mkdir -p) once for the group: its files' writes do not look again. */
  const made = new Map<string, Promise<void>>();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < req.files.length) {
      const i = next++;
      done[i] = await writeFile(req.files[i] as SmallFileRequest, made);
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILES_AT_ONCE, req.files.length) }, lane));
  const outcomes = done.map((d) => d.outcome);
  /** Folders each file linked a final name in: fsync'd once for the group. */
  const dirsOf = done.map((d) => d.dirs);
  const badDir = new Map<string, SmallFileOutcome & { ok: false }>();
  await Promise.all(
    [...new Set(dirsOf.flat())].map((dir) =>
      fsyncTargetDir(dir, syncFs).catch((err: unknown) => {
        badDir.set(dir, errorOf(err));
      }),
    ),
  );
  return {
    id: req.id,
    outcomes: outcomes.map((o, i) => {
      const bad = (dirsOf[i] ?? []).find((d) => badDir.has(d));
      return bad === undefined ? o : (badDir.get(bad) as SmallFileOutcome);
    }),
  };
}

/**
 * `dir` made (durableWrite's step 2, mkdir -p with each new folder's parent fsync'd) once per
 * group: a failure is each file's own (the next group looks again).
 */
function madeOnce(dir: string, made: Map<string, Promise<void>>): Promise<void> {
  let p = made.get(dir);
  if (p === undefined) {
    p = makeDir(dir, syncFs);
    p.catch(() => undefined);
    made.set(dir, p);
  }
  return p;
}

/** Both copies of one file, RAID then mirror; the folders it linked a final name in. */
async function writeFile(
  f: SmallFileRequest,
  made: Map<string, Promise<void>>,
): Promise<{ outcome: SmallFileOutcome; dirs: string[] }> {
  const done: Partial<Record<'raid' | 'mirror', SmallTargetDone>> = {};
  const dirs: string[] = [];
  let failed: SmallFileOutcome | undefined;
  /** The RAID final this file linked (not one found there with the same bytes). */
  let linked: string | undefined;
  for (const t of ['raid', 'mirror'] as const) {
    const target = f.targets[t];
    try {
      await madeOnce(target.dir, made);
      // Each copy's read-back is checked against the offered BLAKE3 (the bytes are not hashed
      // first); the folder was made once for the group above and is fsynced once below.
      const c = await durableWriteBytes(f.bytes, target, { size: f.size, blake3: f.blake3 });
      done[t] = {
        method: c.method,
        verifiedAt: Date.parse(c.verifiedAt) || Date.now(),
        // For the folder's ASC MHL generation (mhl-history.ts), which would otherwise stat each
        // copy on the main thread through libuv's pool: one synchronous stat here.
        mtimeMs: mtimeOf(join(target.dir, target.name)),
      };
      dirs.push(target.dir);
      if (t === 'raid' && !c.reused) linked = join(target.dir, target.name);
    } catch (err) {
      failed = { ...errorOf(err), target: t };
      break;
    }
  }
  // The mirror copy failed (its name taken, most often): the RAID copy just linked goes too,
  // so a file tried again under the next free name leaves no unrecorded copy behind.
  if (failed !== undefined && linked !== undefined) {
    try {
      unlinkSync(linked);
    } catch {
      // Left as an unrecorded copy of verified bytes: a later commit of them reuses it.
    }
  }
  return {
    outcome: failed ?? { ok: true, raid: done.raid as SmallTargetDone, mirror: done.mirror as SmallTargetDone },
    dirs: failed === undefined ? dirs : [],
  };
}

/** The final name's mtime; undefined when it cannot be read (the MHL flush then stats it itself). */
function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

const port = parentPort;
if (port === null) throw new TypeError('small-commit-worker must run in a worker thread');
port.on('message', (req: SmallGroupRequest) => {
  void writeGroup(req).then(
    (reply) => port.postMessage(reply),
    (err: unknown) => port.postMessage({ id: req.id, fault: err instanceof Error ? err.message : String(err) }),
  );
});
