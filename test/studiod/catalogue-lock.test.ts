/**
 * Two studiods on one catalogue: the second is refused with
 * STUDIO_CATALOGUE_LOCKED (LevelDB's own lock, found on the error's cause
 * chain), and the first keeps working with nothing changed.
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalogue } from '@studio321/studiod';

t.test('a second open of a held catalogue is refused with STUDIO_CATALOGUE_LOCKED', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'catalogue-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = new Catalogue(join(dir, 'catalogue'));
  await first.open();
  t.teardown(() => first.close());
  const before = first.counters();

  const second = new Catalogue(join(dir, 'catalogue'));
  await t.rejects(second.open(), { code: 'STUDIO_CATALOGUE_LOCKED' });
  t.equal(second.state, 'closed', 'the refused catalogue is closed, not half-open');
  t.equal(first.state, 'open', 'the first is still open');
  t.same(first.counters(), before, 'nothing changed in the held catalogue');
});
