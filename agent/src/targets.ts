/**
 * The agent's own destinations: the laptop store and the optional field drives
 * (`field-drive`, `field-drive-2`… in config order: fieldDriveName).
 *
 * Each is identified by the physical disk(s) under its root (disk-identity.ts), so
 * two folders on one disk, or two partitions of one disk, are one device for
 * safe-to-format, and a destination whose disk cannot be known (tmpfs, a network
 * file system…) adds no device. The field drive folder must already exist (the
 * photographer creates it once on the external disk): if its disk is not
 * mounted the folder is missing and the agent copies to the laptop only
 * (AGENT_FIELD_DRIVE_MISSING) instead of writing into an empty mount point on
 * the laptop's own disk.
 *
 * The laptop store may live on an external disk too. It carries a marker file
 * (STORE_MARKER, written durably when the store is first used): a store root
 * without it — the folder is gone, or an empty mount point is there — while the
 * state records copies in that store is *unavailable* (AGENT_STORE_UNAVAILABLE),
 * like an unplugged field drive: nothing is written there (no copies on the
 * laptop's own disk under the mount point, no `~2` names next to copies that come
 * back when it is plugged in again), and its copies are neither checked nor
 * declared lost until it is back.
 */
import type { Stats } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CopyFact } from '@studio321/protocol';
import { errorCode } from '@studio321/protocol/base';
import type { DurableCopy } from '@studio321/protocol/durable';
import { AGENT_CODES, AgentError } from './errors.js';
import { diskIdentity, LEGACY_DEVICE_PREFIX, type DiskProbeOptions } from './disk-identity.js';

/** The laptop store's marker file, at its root. */
export const STORE_MARKER = '.studio321-store.json';

/** Whether the laptop store at `root` is there: its marker is (a pulled disk or an empty mount point has none). */
export async function storeAvailable(root: string): Promise<boolean> {
  try {
    await access(join(root, STORE_MARKER));
    return true;
  } catch {
    return false;
  }
}

function storeUnavailable(store: string, why: string, cause?: unknown): AgentError {
  return new AgentError(
    AGENT_CODES.storeUnavailable,
    `The laptop store ${store} is not available (${why}): connect its disk. Nothing was written; its copies are kept as recorded and checked again when it is back.`,
    { retryable: true, detail: { path: store }, ...(cause === undefined ? {} : { cause }) },
  );
}

/**
 * Makes sure `store` is the laptop store the state knows (its marker is there), or a new one
 * (created with its marker). `hasCopies` says whether the state records copies in it; it is
 * asked only when the marker is missing.
 */
async function openStore(store: string, hasCopies: () => Promise<boolean>): Promise<Stats> {
  // Loaded here, not with the module: `field-agent status` probes the targets and writes nothing.
  const { durableWrite, ensureDir, sweepStaleTemps } = await import('@studio321/protocol/durable');
  if (await storeAvailable(store)) {
    // Only the marker is ever written at the root (copies live under shoot/card): a temp there is
    // one a kill left between linking the marker and removing its temp.
    await sweepStaleTemps(store).catch(() => undefined);
    return stat(store);
  }
  let entries: string[] | undefined;
  try {
    entries = await readdir(store);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw unwritable(store, err);
  }
  // A folder that holds files but no marker is a store from before markers: it is adopted.
  // Missing or empty while the state has copies there: the disk is not plugged in.
  if ((entries === undefined || entries.length === 0) && (await hasCopies()))
    throw storeUnavailable(store, entries === undefined ? 'the folder is not there' : 'an empty folder, not the store');
  try {
    await ensureDir(store); // each folder it creates is fsynced into its parent: a power cut does not lose the store root
    await sweepStaleTemps(store);
    const body = Buffer.from(`${JSON.stringify({ store: 'laptop', createdAt: new Date().toISOString() })}\n`);
    await durableWrite(
      (async function* () {
        yield body;
      })(),
      { targets: [{ dir: store, name: STORE_MARKER }], createDirs: false },
    );
  } catch (err) {
    // Two processes creating the store at once: the other one's marker is as good.
    if (!(await storeAvailable(store))) throw unwritable(store, err);
  }
  return stat(store);
}

function unwritable(store: string, err: unknown): AgentError {
  return new AgentError(
    AGENT_CODES.storeUnwritable,
    `The laptop store ${store} cannot be created (${errorCode(err) ?? (err as { code?: string }).code ?? 'error'}): check the path in the config and its permissions.`,
    { cause: err, detail: { path: store } },
  );
}

/** The target name of the i-th configured field drive (0-based): `field-drive`, then `field-drive-2`… */
export function fieldDriveName(i: number): string {
  return i === 0 ? 'field-drive' : `field-drive-${i + 1}`;
}

/** Whether a target name is one of the field drives'. */
export function isFieldDrive(name: string): boolean {
  return /^field-drive(-[0-9]+)?$/.test(name);
}

export interface AgentTarget {
  /** `laptop`, or a field drive's name (fieldDriveName). */
  name: string;
  root: string;
  /** The physical disk(s) under `root`: `disk:<id>,…`, or `nodisk:<st_dev>` when not known (disk-identity.ts). */
  device: string;
  /** Why the physical disk is not known (the copies here add no device to safe to format); absent when known. */
  diskUnknown?: string;
  /** The device string agents before disk identities recorded for copies here (`local:<st_dev>`). */
  legacyDevice: string;
  media: string;
}

async function target(
  name: string,
  root: string,
  st: Stats,
  media: string,
  probe: DiskProbeOptions | undefined,
): Promise<AgentTarget> {
  const disk = await diskIdentity(root, probe);
  return {
    name,
    root,
    device: disk.device,
    ...(disk.unknown === undefined ? {} : { diskUnknown: disk.unknown }),
    legacyDevice: `${LEGACY_DEVICE_PREFIX}${st.dev}`,
    media,
  };
}

export interface ResolvedTargets {
  targets: AgentTarget[];
  /** One per configured field drive that is not there (AGENT_FIELD_DRIVE_MISSING, detail.path and detail.target). */
  fieldDriveProblems: AgentError[];
}

/** The field drive folder's stat; throws (ENOENT, ENOTDIR…) when it is not there as a folder. */
export async function statFieldDrive(path: string): Promise<Stats> {
  const st = await stat(path);
  if (!st.isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: 'ENOTDIR' });
  return st;
}

/**
 * The destinations to write to. Throws AGENT_STORE_UNAVAILABLE when the laptop store's disk is
 * not there (see the header); `storeHasCopies` tells whether the state records copies in `store`
 * (state/agent-state.ts `hasCopiesUnder`; default: none, a fresh store).
 */
export async function resolveTargets(
  store: string,
  fieldDrives: readonly string[],
  opts: { storeHasCopies?: () => Promise<boolean>; probe?: DiskProbeOptions } = {},
): Promise<ResolvedTargets> {
  const st = await openStore(store, opts.storeHasCopies ?? (async () => false));
  const targets: AgentTarget[] = [await target('laptop', store, st, 'laptop-disk', opts.probe)];
  const fieldDriveProblems: AgentError[] = [];
  for (const [i, path] of fieldDrives.entries()) {
    const fd = await resolveFieldDrive(path, fieldDriveName(i), opts.probe);
    if (fd.target === undefined) fieldDriveProblems.push(fd.problem);
    else targets.push(fd.target);
  }
  return { targets, fieldDriveProblems };
}

/** A field drive as a destination, or why it is not one now: each drive on its own, one missing does not stop the others. */
export async function resolveFieldDrive(
  fieldDrive: string,
  name: string,
  probe?: DiskProbeOptions,
): Promise<{ target: AgentTarget; problem?: undefined } | { target?: undefined; problem: AgentError }> {
  let fd: Stats;
  try {
    fd = await statFieldDrive(fieldDrive);
  } catch (err) {
    return {
      problem: new AgentError(
        AGENT_CODES.fieldDriveMissing,
        `The field drive folder ${fieldDrive} is not there (${errorCode(err) ?? 'error'}): connect the drive (or create the folder on it); until then it gets no copies (the others do) and cards may not be safe to format.`,
        { cause: err, retryable: true, detail: { path: fieldDrive, target: name } },
      ),
    };
  }
  return { target: await target(name, fieldDrive, fd, 'external-drive', probe) };
}

/**
 * The destinations there now, looked at without writing anything (status): the laptop store
 * only when its marker is there, the field drive when its folder is.
 */
export async function probeTargets(
  store: string | undefined,
  fieldDrives: readonly string[],
  probe?: DiskProbeOptions,
): Promise<AgentTarget[]> {
  const out: AgentTarget[] = [];
  if (store !== undefined && (await storeAvailable(store))) {
    const st = await stat(store).catch(() => undefined);
    if (st !== undefined) out.push(await target('laptop', store, st, 'laptop-disk', probe));
  }
  for (const [i, path] of fieldDrives.entries()) {
    const fd = await resolveFieldDrive(path, fieldDriveName(i), probe);
    if (fd.target !== undefined) out.push(fd.target);
  }
  return out;
}

export function copyFact(target: AgentTarget, copy: DurableCopy): CopyFact {
  return {
    target: target.name,
    device: target.device,
    media: target.media,
    location: 'field',
    offsite: false,
    verified: true,
    verifiedAt: copy.verifiedAt,
    method: copy.method,
  };
}
