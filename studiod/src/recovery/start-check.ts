/**
 * What studiod checks at start before it serves anything (docs/design.md
 * §Catalogue recovery): a rebuild left unfinished, or an empty catalogue over
 * targets that hold committed files, is refused — an empty catalogue would
 * answer "0 assets" for an archive that holds every file.
 */
import type { Catalogue } from '../catalogue.js';
import { LOCAL_TARGETS, type StudiodConfig } from '../config.js';
import { RECOVERY_CODES, RecoveryError } from './errors.js';
import { rebuildInProgress } from './rebuild.js';
import { holdsCommittedFiles } from './target-files.js';

export async function refuseUnsafeStart(catalogue: Catalogue, config: StudiodConfig): Promise<void> {
  const how = `Stop studiod and run \`studioctl --config <config> catalogue rebuild\`, then start studiod again.`;
  if (await rebuildInProgress(catalogue)) {
    throw new RecoveryError(
      RECOVERY_CODES.rebuildIncomplete,
      `A catalogue rebuild of ${catalogue.location} was interrupted. ${how}`,
      { detail: { location: catalogue.location } },
    );
  }
  if (await catalogue.hasAssets()) return;
  for (const t of LOCAL_TARGETS) {
    const root = config.targets[t].root;
    if (await holdsCommittedFiles(root)) {
      throw new RecoveryError(
        RECOVERY_CODES.catalogueEmpty,
        `The catalogue at ${catalogue.location} is empty, but the ${t} target at ${root} holds committed files: the catalogue was lost or replaced. ${how}`,
        { detail: { location: catalogue.location, target: t, root } },
      );
    }
  }
}
