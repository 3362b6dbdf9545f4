/**
 * A Committer over a mirror and a RAID folder in a fresh test dir, with its catalogue: the
 * in-process commit tests' common start. Both are closed at teardown.
 */
import type { Test } from 'tap';
import { join } from 'node:path';
import { Catalogue, type LocalTargetConfig, type LocalTargetName } from '@studio321/studiod';
import { Committer, type CommitterOptions } from '@studio321/studiod/commit';
import { localTargets } from './studio-harness.js';

export interface CommitterFixture {
  dir: string;
  targets: Record<LocalTargetName, LocalTargetConfig>;
  catalogue: Catalogue;
  committer: Committer;
}

export async function committerFixture(
  t: Test,
  opts: Omit<CommitterOptions, 'catalogue' | 'targets'> = {},
): Promise<CommitterFixture> {
  const dir = t.testdir({ mirror: {}, raid: {} });
  const targets = localTargets(dir);
  const catalogue = new Catalogue(join(dir, 'catalogue'));
  await catalogue.open();
  t.teardown(() => catalogue.close());
  const committer = new Committer({ catalogue, targets, ...opts });
  t.teardown(() => committer.close());
  return { dir, targets, catalogue, committer };
}
