/**
 * Lists every file on a card without ever leaving it.
 *
 * The walk uses lstat: a symbolic link is reported (AGENT_SYMLINK_SKIPPED) and
 * never followed; FIFOs, sockets and device nodes are reported
 * (AGENT_SPECIAL_FILE_SKIPPED) and never opened (opening a FIFO would block); a
 * directory on another device (something mounted inside the card) is not entered.
 * Names that cannot be stored safely are reported (AGENT_BAD_NAME). Operating
 * system litter (.Trashes, .Spotlight-V100, System Volume Information, ._* …) is
 * not part of the shoot and is left out.
 *
 * Paths are relative to the card root, '/'-separated, sorted, and exactly what
 * readdir returned: a name is bytes on disk, so a name in NFD (macOS), NFKC or
 * NFKD is opened as it is. Two names that differ only by Unicode form are two
 * files; the offloader compares names NFC for clashes (naming.ts).
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode, validateRelativePath } from '@studio321/protocol';
import { AGENT_CODES, AgentError, type AgentCode } from '../errors.js';
import { diskIdentity } from '../disk-identity.js';
import { mtimeMsOf } from './source-reader.js';

export interface ScannedFile {
  path: string;
  size: number;
  mtimeMs: number;
}

export interface ScanWarning {
  path: string;
  code: AgentCode;
  message: string;
}

export interface ScanResult {
  root: string;
  /** st_dev of the card root. */
  dev: number;
  /** The physical disk(s) under the card root (disk-identity.ts): copies on it are not off the card. */
  disk: string;
  files: ScannedFile[];
  warnings: ScanWarning[];
}

const OS_LITTER = new Set([
  '.TRASHES',
  '.SPOTLIGHT-V100',
  '.FSEVENTSD',
  '.TEMPORARYITEMS',
  '.DS_STORE',
  'SYSTEM VOLUME INFORMATION',
  '$RECYCLE.BIN',
  '.METADATA_NEVER_INDEX',
  'THUMBS.DB',
  'DESKTOP.INI',
]);

export function isOsLitter(name: string): boolean {
  return name.startsWith('._') || OS_LITTER.has(name.toUpperCase());
}

function isRemovedCode(code: string | undefined): boolean {
  return code === 'ENOENT' || code === 'EIO' || code === 'ENODEV' || code === 'ENXIO' || code === 'ESTALE';
}

export async function scanCard(root: string, opts: { signal?: AbortSignal } = {}): Promise<ScanResult> {
  let rootStat;
  try {
    rootStat = await lstat(root);
  } catch (err) {
    throw new AgentError(
      AGENT_CODES.notAFolder,
      `${root} cannot be read (${errorCode(err) ?? 'error'}): check the card is inserted and the path is right.`,
      { cause: err, detail: { path: root } },
    );
  }
  if (!rootStat.isDirectory()) {
    throw new AgentError(
      AGENT_CODES.notAFolder,
      `${root} is not a folder: give the card's mount point or a folder of images.`,
      { detail: { path: root } },
    );
  }
  const dev = rootStat.dev;
  const disk = (await diskIdentity(root)).device;
  const files: ScannedFile[] = [];
  const warnings: ScanWarning[] = [];
  const warn = (path: string, code: AgentCode, message: string): void => {
    warnings.push({ path, code, message });
  };

  const walk = async (rel: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    const abs = rel === '' ? root : join(root, rel);
    let names: string[];
    try {
      names = await readdir(abs);
    } catch (err) {
      if (rel === '' || isRemovedCode(errorCode(err))) {
        // The card itself went away (or its root cannot be listed): the listing is incomplete.
        throw new AgentError(
          AGENT_CODES.cardRemoved,
          `The card at ${root} disappeared while it was being listed: insert it again and the offload resumes.`,
          { cause: err, retryable: true, detail: { path: root } },
        );
      }
      warn(
        rel,
        AGENT_CODES.unreadableDir,
        `Folder ${rel} on the card cannot be listed (${errorCode(err) ?? 'error'}): its files were not copied; check the card in a reader.`,
      );
      return;
    }
    names.sort();
    for (const name of names) {
      if (isOsLitter(name)) continue;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      // Validated for safety (the checks run on the NFC form); never renamed.
      const shown = childRel;
      try {
        validateRelativePath(childRel);
      } catch (err) {
        warn(
          childRel,
          AGENT_CODES.badName,
          `The name ${JSON.stringify(childRel)} cannot be stored safely: it was not copied; copy it by hand after renaming.`,
        );
        void err;
        continue;
      }
      let st;
      try {
        st = await lstat(join(root, childRel), { bigint: true });
      } catch (err) {
        if (isRemovedCode(errorCode(err))) {
          throw new AgentError(
            AGENT_CODES.cardRemoved,
            `The card at ${root} disappeared while it was being listed: insert it again and the offload resumes.`,
            { cause: err, retryable: true, detail: { path: root } },
          );
        }
        warn(
          shown,
          AGENT_CODES.unreadableFile,
          `${shown} cannot be read (${errorCode(err) ?? 'error'}): check the card in a reader.`,
        );
        continue;
      }
      if (st.isSymbolicLink()) {
        warn(
          shown,
          AGENT_CODES.symlinkSkipped,
          `${shown} is a symbolic link: links are never followed off a card; it was not copied. Review it, then run field-agent resolve.`,
        );
      } else if (st.isDirectory()) {
        if (Number(st.dev) !== dev) {
          warn(
            shown,
            AGENT_CODES.specialFileSkipped,
            `${shown} is another volume mounted inside the card: it was not entered.`,
          );
        } else {
          await walk(childRel);
        }
      } else if (st.isFile()) {
        files.push({ path: shown, size: Number(st.size), mtimeMs: mtimeMsOf(st) });
      } else {
        warn(
          shown,
          AGENT_CODES.specialFileSkipped,
          `${shown} is not a regular file (FIFO, socket or device): it was not copied. Review it, then run field-agent resolve.`,
        );
      }
    }
  };
  await walk('');
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { root, dev, disk, files, warnings };
}
