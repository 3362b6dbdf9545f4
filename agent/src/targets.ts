/**
 * The agent's own destinations: the laptop store and the optional field drive.
 *
 * Each is identified by the st_dev of its root, so two folders on one disk are
 * one device for safe-to-format. The field drive folder must already exist (the
 * photographer creates it once on the external disk): if its disk is not
 * mounted the folder is missing and the agent copies to the laptop only
 * (AGENT_FIELD_DRIVE_MISSING) instead of writing into an empty mount point on
 * the laptop's own disk.
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { errorCode, type CopyFact } from '@studio321/protocol';
import { ensureDir, type DurableCopy } from '@studio321/protocol/durable';
import { AGENT_CODES, AgentError } from './errors.js';

export interface AgentTarget {
  name: 'laptop' | 'field-drive';
  root: string;
  /** `local:<st_dev>` */
  device: string;
  media: string;
}

export interface ResolvedTargets {
  targets: AgentTarget[];
  /** Set when a field drive is configured but not there. */
  fieldDriveProblem?: AgentError;
}

/** The field drive folder's stat; throws (ENOENT, ENOTDIR…) when it is not there as a folder. */
export async function statFieldDrive(path: string): Promise<Stats> {
  const st = await stat(path);
  if (!st.isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: 'ENOTDIR' });
  return st;
}

export async function resolveTargets(store: string, fieldDrive: string | undefined): Promise<ResolvedTargets> {
  try {
    await ensureDir(store); // each folder it creates is fsynced into its parent: a power cut does not lose the store root
  } catch (err) {
    throw new AgentError(
      AGENT_CODES.storeUnwritable,
      `The laptop store ${store} cannot be created (${errorCode(err) ?? 'error'}): check the path in the config and its permissions.`,
      { cause: err, detail: { path: store } },
    );
  }
  const st = await stat(store);
  const targets: AgentTarget[] = [{ name: 'laptop', root: store, device: `local:${st.dev}`, media: 'laptop-disk' }];
  if (fieldDrive === undefined) return { targets };
  try {
    const fd = await statFieldDrive(fieldDrive);
    targets.push({ name: 'field-drive', root: fieldDrive, device: `local:${fd.dev}`, media: 'external-drive' });
    return { targets };
  } catch (err) {
    return {
      targets,
      fieldDriveProblem: new AgentError(
        AGENT_CODES.fieldDriveMissing,
        `The field drive folder ${fieldDrive} is not there (${errorCode(err) ?? 'error'}): connect the drive (or create the folder on it); until then copies go to the laptop only and cards are not safe to format.`,
        { cause: err, retryable: true, detail: { path: fieldDrive } },
      ),
    };
  }
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
