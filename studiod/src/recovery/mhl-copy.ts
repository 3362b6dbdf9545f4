/**
 * A refilled disk's ASC MHL histories (commit/mhl-history.ts): a card folder's `ascmhl/` is not
 * an archive file, so the refill (adopt.ts) does not make it again asset by asset. After the
 * assets, each folder the refill filled gets the generations the other local target's folder has
 * and it lacks (by the C4 of their bytes, in the other's chain order), copied as they are, so the
 * history lists the very hashes recorded when the files were committed. No hash is made up: a file
 * the refill could not make again stays listed, and `studioctl mhl verify` says it is missing.
 */
import { opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@studio321/protocol';
import { appendMhlGenerationBytes, MHL_FOLDER, mhlCreationDate, readMhlHistory } from '@studio321/protocol/durable';

async function subdirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of await opendir(dir)) if (e.isDirectory() && !e.name.startsWith('.')) out.push(e.name);
  } catch {
    return [];
  }
  return out.sort();
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() === true;
}

/** Copies the missing generations of every `<day>/<shoot>/<card>/ascmhl/` of `from` into `to`; returns how many. */
export async function copyMhlHistories(from: string, to: string, log?: Logger): Promise<number> {
  let copied = 0;
  for (const day of await subdirs(from))
    for (const shoot of await subdirs(join(from, day)))
      for (const card of await subdirs(join(from, day, shoot))) {
        const rel = join(day, shoot, card);
        if (!(await isDir(join(from, rel, MHL_FOLDER))) || !(await isDir(join(to, rel)))) continue;
        const have = new Set((await readMhlHistory(join(to, rel))).map((g) => g.c4));
        for (const g of await readMhlHistory(join(from, rel))) {
          if (have.has(g.c4)) continue;
          if (g.xml === undefined) {
            log?.warn(
              { event: 'mhl-copy-missing', folder: rel, generation: g.name },
              `generation ${g.name} of ${rel} is missing on the source target; not copied`,
            );
            continue;
          }
          await appendMhlGenerationBytes(join(to, rel), g.xml, mhlCreationDate(g.xml.toString('utf8')) ?? new Date());
          have.add(g.c4);
          copied++;
        }
      }
  return copied;
}
