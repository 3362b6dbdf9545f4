/**
 * One reading of the figures (what /metrics and the alerts show) is consistent with itself: the
 * catalogue's copy counters and the ledger's verdict counters move in one turn after each batch, so
 * a reading never counts an asset 3-2-1 compliant without counting the cloud copy that made it so,
 * even when that copy is recorded while the reading waits on its slower parts. The same holds for
 * `studioctl status`'s report, built after the studio's status and an availability check. Real LevelDB
 * catalogue and ledger; the availability, scrub and cloud parts are empty stand-ins (no target here
 * changes availability, scrubs or uploads), and `status` is the studio's own shape.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PolicyConfig } from '@studio321/protocol';
import { Catalogue, type CommitRecord } from '@studio321/studiod';
import {
  buildStatusReport,
  Ledger,
  type LedgerService,
  type StatusInputs,
  type StudioStatus,
} from '@studio321/studiod/ledger';
import { readFigures } from '@studio321/studiod/ops';
import { copy } from '../../lib/ledger-records.mjs';

const POLICY: PolicyConfig = { copies: 3, media: 2, offsite: 1 };
const hashOf = (i: number): string => createHash('sha256').update(`f${i}`).digest('hex');

function record(i: number): CommitRecord {
  const hash = hashOf(i);
  return {
    asset: { hash, size: 1000 + i, committedAt: 1_000_000 + i },
    names: [],
    copies: [copy(hash, 'mirror', 1000 + i), copy(hash, 'raid', 1000 + i)],
    storedPaths: [],
  };
}

/** A real catalogue and ledger in a temporary folder, with `n` assets on mirror and RAID only. */
async function openWith(t: Test, n: number): Promise<{ dir: string; catalogue: Catalogue; ledger: Ledger }> {
  const dir = await mkdtemp(join(tmpdir(), 'ops-figures-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const catalogue = new Catalogue(join(dir, 'catalogue'));
  await catalogue.open();
  t.teardown(() => catalogue.close());
  const ledger = new Ledger({ catalogue, policy: POLICY, targets: ['mirror', 'raid', 'cloud-east'] });
  await ledger.open();
  for (let i = 0; i < n; i++) await catalogue.commitAsset(record(i));
  return { dir, catalogue, ledger };
}

t.test('a copy recorded while a reading is under way is counted with its verdict, not apart', async (t) => {
  const n = 5;
  const { catalogue, ledger } = await openWith(t, n);
  const service = {
    ledger,
    availability: { states: () => [] },
    scrubber: { statuses: () => [] },
    cloud: undefined,
  } as unknown as LedgerService;
  for (let i = 0; i < n; i++) {
    // The studio's status answers, then the upload of asset i is recorded before the reading goes on.
    const status = async (): Promise<StudioStatus> => {
      const base = { counters: catalogue.counters(), sessions: [], targets: {} } as unknown as StudioStatus;
      await catalogue.recordCopy(copy(hashOf(i), 'cloud-east', 1000 + i));
      return base;
    };
    const f = await readFigures({ catalogue, ledger: service, status, now: () => 0 });
    t.equal(f.ledger.compliant, i + 1, `reading ${i}: the asset uploaded meanwhile is compliant`);
    t.equal(f.copies['cloud-east']?.count, i + 1, `reading ${i}: and its cloud copy is counted with it`);
  }
});

t.test('the status report counts the copies recorded after the base status with their verdicts', async (t) => {
  const { dir, catalogue, ledger } = await openWith(t, 1);
  const target = (root: string) => ({ root, media: 'hdd', location: 'studio' });
  const inputs = (base: StudioStatus): StatusInputs =>
    ({
      base,
      availability: [],
      quarantine: {},
      ledger,
      catalogue,
      config: { targets: { mirror: target(join(dir, 'm')), raid: target(join(dir, 'r')) } },
      cloudTargets: [{ name: 'cloud-east', media: 'cloud', location: 'offsite', storageClass: 'hot', bucket: 'b' }],
      lastVerify: null,
      verifying: false,
    }) as unknown as StatusInputs;
  // The studio's status is taken, then the upload is recorded while the availability check runs.
  const base = { counters: catalogue.counters(), sessions: [], targets: {} } as unknown as StudioStatus;
  await catalogue.recordCopy(copy(hashOf(0), 'cloud-east', 1000));
  const r = await buildStatusReport(inputs(base));
  t.equal(r.ledger.compliant, 1, 'the asset is compliant');
  t.equal(r.targetReport.find((x) => x.target === 'cloud-east')?.copies, 1, 'its cloud copy is in the target row');
  t.equal(r.targetReport.find((x) => x.target === 'cloud-east')?.missing?.count, 0, 'and nothing lacks it');
  t.equal(r.counters.copies['cloud-east']?.count, 1, "the report's counters are those of the same reading");
});
