/**
 * The status snapshot: what `field-agent status` read from the state the last time a process
 * closed it, kept in `<data dir>/status-snapshot.json` (docs/design.md, "Status summary"), so
 * that the next status with no agent running answers without loading LevelDB or opening the
 * state (its open replays the log and writes a new manifest: most of status's time at 100,000
 * files).
 *
 * The snapshot holds the answers of the state reads status makes (StatusReads, keyed by method
 * and arguments), recorded as the closing process ran status over the state with no writer
 * between, and the state's mark: the identity, size and times of its write-ahead logs and of
 * CURRENT. Every write to the state appends to a log, and every open of it (any field-agent,
 * any version) writes a new log and a new CURRENT, so a mark that is the same now says that the
 * state holds what the snapshot read. Anything else — another mark, a read status now makes that
 * the snapshot does not hold (another config: copies before format, field drives), an unreadable
 * or torn file, another snapshot version — and status opens the state as before: a stale
 * snapshot is never an answer. The live parts of status (the destinations' disks) are probed
 * again each time, only the state's answers come from the snapshot.
 */
import { readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AgentState } from './agent-state.js';

export const STATUS_SNAPSHOT_FILE = 'status-snapshot.json';
const SNAPSHOT_VERSION = 1;

/** The state reads `buildStatus` makes (status.ts): AgentState, or a snapshot of its answers. */
export type StatusReads = Pick<
  AgentState,
  'refreshLegacyDevices' | 'listCards' | 'cardSums' | 'summaryIndex' | 'getAsset' | 'queueDepth' | 'backfillWaiting'
>;

type ReadName = keyof StatusReads;
const READS: readonly ReadName[] = [
  'refreshLegacyDevices',
  'listCards',
  'cardSums',
  'summaryIndex',
  'getAsset',
  'queueDepth',
  'backfillWaiting',
];

/** A read status makes now that the snapshot did not record: status opens the state instead. */
export class SnapshotMiss extends Error {}

interface SnapshotFile {
  version: number;
  mark: string;
  reads: Record<string, unknown>;
}

const bigStat = (path: string) => stat(path, { bigint: true });

/**
 * The state's mark: its folder's inode, then CURRENT and every write-ahead log (`*.log`) by name,
 * inode, size, modification and change time. A write appends to the newest log; an open rolls to
 * a new log and rewrites CURRENT; a compaction changes neither.
 */
export async function stateMark(stateDir: string): Promise<string> {
  const logs = (await readdir(stateDir)).filter((n) => n.endsWith('.log')).sort();
  const parts: string[] = [];
  // The folder by its inode only: its times move with every table a compaction writes.
  parts.push(`.:${(await bigStat(stateDir)).ino}`);
  for (const name of ['CURRENT', ...logs]) {
    const st = await bigStat(join(stateDir, name));
    parts.push(`${name}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
  }
  return parts.join('|');
}

const readKey = (name: ReadName, args: readonly unknown[]): string => JSON.stringify([name, ...args]);

/**
 * `state`'s reads, each answer kept (a copy) under its method and arguments. refreshLegacyDevices
 * is kept only once no legacy device is left (it then never writes): until then `settled` is false.
 */
function recorder(state: AgentState): { view: StatusReads; reads: Record<string, unknown>; settled: () => boolean } {
  const reads: Record<string, unknown> = {};
  let settled = true;
  const view = {} as Record<ReadName, (...args: unknown[]) => Promise<unknown>>;
  for (const name of READS) {
    view[name] = async (...args: unknown[]) => {
      const fn = state[name] as (...a: unknown[]) => Promise<unknown>;
      const got = await fn.apply(state, args);
      if (name === 'refreshLegacyDevices') {
        if (!(await state.legacyDevicesSettled())) settled = false;
        reads[readKey(name, [])] = got;
      } else reads[readKey(name, args)] = got === undefined ? null : structuredClone(got);
      return got;
    };
  }
  return { view: view as unknown as StatusReads, reads, settled: () => settled };
}

/** The reads a snapshot holds, as StatusReads; a read it does not hold throws SnapshotMiss. */
function replay(reads: Record<string, unknown>): StatusReads {
  const view = {} as Record<ReadName, (...args: unknown[]) => Promise<unknown>>;
  for (const name of READS) {
    view[name] = async (...args: unknown[]) => {
      const key = readKey(name, name === 'refreshLegacyDevices' ? [] : args);
      if (!Object.hasOwn(reads, key)) throw new SnapshotMiss(key);
      const v = reads[key];
      return v === null ? undefined : structuredClone(v);
    };
  }
  return view as unknown as StatusReads;
}

/** A snapshot being taken by a closing AgentState (takeStatusSnapshot, then writeStatusSnapshot once closed). */
export interface PendingSnapshot {
  stateDir: string;
  mark: string;
  reads: Record<string, unknown>;
}

/**
 * Runs `status` over `state` (open, no writer left: it is closing), recording its reads; the
 * snapshot to write once the state is closed, or undefined when one cannot be kept (something
 * wrote meanwhile, a legacy device is left, a read failed).
 */
export async function takeStatusSnapshot(
  state: AgentState,
  status: (reads: StatusReads) => Promise<unknown>,
): Promise<PendingSnapshot | undefined> {
  try {
    const mark = await stateMark(state.dir);
    const rec = recorder(state);
    await status(rec.view);
    if (!rec.settled() || (await stateMark(state.dir)) !== mark) return undefined;
    return { stateDir: state.dir, mark, reads: rec.reads };
  } catch {
    return undefined; // status itself will say what failed
  }
}

/**
 * Writes the snapshot beside the state (a temp renamed over the last one) if the state's mark
 * is still the one its reads were made under now that it is closed. A snapshot that cannot be
 * written is no error: status opens the state.
 */
export async function writeStatusSnapshot(snap: PendingSnapshot): Promise<void> {
  const file = join(dirname(snap.stateDir), STATUS_SNAPSHOT_FILE);
  const temp = `${file}.${process.pid}.tmp`;
  try {
    if ((await stateMark(snap.stateDir)) !== snap.mark) return;
    const body: SnapshotFile = { version: SNAPSHOT_VERSION, mark: snap.mark, reads: snap.reads };
    await writeFile(temp, JSON.stringify(body), { mode: 0o600 });
    await rename(temp, file);
  } catch {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * The snapshot's reads when it still says what the state under `dataDir` holds (its mark is the
 * state's now), else undefined (then open the state).
 */
export async function readStatusSnapshot(dataDir: string): Promise<StatusReads | undefined> {
  let snap: SnapshotFile;
  try {
    snap = JSON.parse(await readFile(join(dataDir, STATUS_SNAPSHOT_FILE), 'utf8')) as SnapshotFile;
  } catch {
    return undefined;
  }
  if (snap?.version !== SNAPSHOT_VERSION || typeof snap.mark !== 'string' || typeof snap.reads !== 'object')
    return undefined;
  const mark = await stateMark(join(dataDir, 'state')).catch(() => undefined);
  return mark === snap.mark ? replay(snap.reads) : undefined;
}
