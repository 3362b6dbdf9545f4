/**
 * `studioctl assets --unprotected` lists only assets that are below the policy when they are read:
 * the list walks the ledger's index of unprotected assets as it was when the list began (a LevelDB
 * iterator's snapshot), so an asset whose missing copy is recorded meanwhile is still in that walk;
 * it must be left out, not shown inside the "unprotected" list with a compliant view, and the
 * total must count the assets still unprotected. Real LevelDB catalogue and ledger, the real
 * control socket and its client; the policy is two copies on two kinds of disk (mirror + RAID), so
 * the RAID copy recorded during the list is what makes an asset compliant. The list is paused at a
 * fixed point (the catalogue's lookup of the first listed asset) to record that copy there.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, nameKey } from '@studio321/protocol';
import { Catalogue, ControlSocket, controlRequest, parseStudiodConfig, type CommitRecord } from '@studio321/studiod';
import { LedgerService } from '@studio321/studiod/ledger';
import { copy } from '../../lib/ledger-records.mjs';

const hashOf = (i: number): string => createHash('sha256').update(`u${i}`).digest('hex');

/** An asset with its mirror copy only: below a policy of two copies on two kinds of disk. */
function record(hash: string): CommitRecord {
  return {
    asset: { hash, size: 1000, committedAt: 1_000_000 },
    names: [
      {
        key: nameKey(`s/c/${hash}.CR3`),
        value: { hash, shoot: 's', card: 'c', path: `${hash}.CR3`, mtime: 0, agentId: 'a', seenAt: 0 },
      },
    ],
    copies: [copy(hash, 'mirror', 1000)],
    storedPaths: [],
  };
}

interface AssetsReply {
  unprotected: boolean;
  total: number;
  more: boolean;
  items: Array<{ hash: string; compliant: boolean }>;
}

interface Listing {
  catalogue: Catalogue;
  service: LedgerService;
  ctl: ControlSocket;
  hashes: string[];
  /** Two later assets whose RAID copies are recorded at the list's first lookup. */
  healed: string[];
  /** True once the list reached its first lookup (and the copies were recorded there). */
  paused: () => boolean;
}

const n = 6;

/**
 * A studio of `n` assets, each with its mirror copy only, served on a real control socket; its
 * catalogue's first asset lookup records the RAID copies of `healed` before it answers.
 */
async function listing(t: Test): Promise<Listing> {
  const base = await mkdtemp(join(tmpdir(), 's321-unprot-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const config = parseStudiodConfig({
    stateDir: join(base, 'state'),
    targets: {
      mirror: { root: join(base, 'mirror'), media: 'hdd', location: 'studio', device: 'mirror-dev' },
      raid: { root: join(base, 'raid'), media: 'raid-hdd', location: 'studio', device: 'raid-dev' },
    },
    policy: { copies: 2, media: 2, offsite: 0 },
  });
  const catalogue = new Catalogue(join(base, 'state', 'catalogue'));
  await catalogue.open();
  t.teardown(() => catalogue.close());
  const log = createLogger({ name: 'test', level: 'silent' });
  const service = new LedgerService({ config, catalogue, log, availabilityIntervalMs: 0 });
  await service.open();
  t.teardown(() => service.close());
  const hashes = Array.from({ length: n }, (_, i) => hashOf(i)).sort();
  for (const h of hashes) await catalogue.commitAsset(record(h));
  t.equal(service.ledger.counters().notCompliant, n, 'every asset starts with its mirror copy only');

  const ctl = new ControlSocket(join(base, 'ctl.sock'), log);
  service.registerCommands(ctl);
  await ctl.open();
  t.teardown(() => ctl.close());

  const healed = [hashes[2] as string, hashes[4] as string];
  const getAsset = catalogue.getAsset.bind(catalogue);
  let paused = false;
  catalogue.getAsset = async (hash) => {
    if (!paused) {
      paused = true;
      for (const h of healed) await catalogue.recordCopy(copy(h, 'raid', 1000));
    }
    return getAsset(hash);
  };
  t.teardown(() => {
    catalogue.getAsset = getAsset;
  });
  return { catalogue, service, ctl, hashes, healed, paused: () => paused };
}

t.test('an asset made compliant while the unprotected list is read is not listed', async (t) => {
  const { service, ctl, hashes, healed, paused } = await listing(t);
  const reply = (await controlRequest(ctl.path, 'assets', { unprotected: true })) as AssetsReply;
  t.ok(paused(), 'the copies were recorded while the list was read');
  const listed = reply.items.map((a) => a.hash);
  t.same(
    listed,
    hashes.filter((h) => !healed.includes(h)),
    'every asset still unprotected is listed, in hash order; the two made compliant are not',
  );
  t.ok(
    reply.items.every((a) => !a.compliant),
    'no listed asset is compliant',
  );
  t.equal(reply.total, n - healed.length, 'the total counts the assets still unprotected');
  t.equal(reply.more, false);
  t.equal(service.ledger.counters().notCompliant, n - healed.length);

  const again = (await controlRequest(ctl.path, 'assets', { unprotected: true })) as AssetsReply;
  t.same(
    again.items.map((a) => a.hash),
    listed,
    'a fresh list agrees',
  );
});

t.test('a filtered list past its limit counts only the assets still unprotected', async (t) => {
  // With --shoot every match is looked at: the first is listed (limit 1), the rest only counted.
  const { ctl, hashes, healed, paused } = await listing(t);
  const reply = (await controlRequest(ctl.path, 'assets', { unprotected: true, shoot: 's', limit: 1 })) as AssetsReply;
  t.ok(paused(), 'the copies were recorded while the list was read');
  t.same(
    reply.items.map((a) => a.hash),
    [hashes[0]],
  );
  t.equal(reply.total, n - healed.length, 'the two made compliant past the limit are not counted');
  t.equal(reply.more, true);
});
