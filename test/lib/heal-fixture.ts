/**
 * An in-process studio for recovery tests: a real Catalogue (LevelDB), real
 * mirror and RAID folders with their markers, the real LedgerService (ledger,
 * cloud forwarder, availability, quarantine) whose cloud targets are
 * MemorySinks on one MemoryCloud — a hot one (STANDARD) and a tape-class one
 * (DEEP_ARCHIVE). Assets are committed as the Committer does: the bytes
 * written to both targets by the durable write, then one commitAsset batch
 * (with a laptop field copy), then the cloud uploads awaited.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { createLogger, hashBytes, nameKey, type Logger } from '@studio321/protocol';
import { durableWrite } from '@studio321/protocol/durable';
import {
  Catalogue,
  fieldClaimRecords,
  parseStudiodConfig,
  type CopyRecord,
  type StudiodConfig,
} from '@studio321/studiod';
import { MemoryCloud, MemorySink, type CloudTargetConfig } from '@studio321/studiod/cloud';
import { checkTarget } from '@studio321/studiod/commit';
import { LedgerService } from '@studio321/studiod/ledger';
import { target as cloudTarget } from './cloud-fixture.js';
import { testBytes } from './lying-source.js';

export interface FixtureAsset {
  hash: string;
  size: number;
  rel: string;
  bytes: Uint8Array;
}

export interface RecoveryFixture {
  dir: string;
  config: StudiodConfig;
  catalogue: Catalogue;
  service: LedgerService;
  cloud: MemoryCloud;
  log: Logger;
  /** Change the time the services see. */
  clock: { now: number };
  commit(count: number, size?: number, seed?: number): Promise<FixtureAsset[]>;
  /** Close and open the catalogue and service again (a restart). */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export async function recoveryFixture(
  opts: {
    cloud?: boolean;
    /** LedgerService options (the refill's and the scrub's rate limiters, the scrub's random choice). */
    service?: Pick<
      ConstructorParameters<typeof LedgerService>[0],
      'limiters' | 'random' | 'scrubChunk' | 'recountWaitMs'
    >;
    /** Config keys merged in (`scrub`, `refill`). */
    config?: Record<string, unknown>;
  } = {},
): Promise<RecoveryFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'recovery-'));
  const mirror = join(dir, 'mirror');
  const raid = join(dir, 'raid');
  await mkdir(mirror);
  await mkdir(raid);
  const clouds: CloudTargetConfig[] =
    opts.cloud === false
      ? []
      : [
          cloudTarget('cloud-east', 'http://memory.invalid', 'hot'),
          cloudTarget('cloud-west', 'http://memory.invalid', 'cold', {
            storageClass: 'DEEP_ARCHIVE',
            media: 'tape',
            location: 'cloud-west',
          }),
        ];
  const config = parseStudiodConfig({
    stateDir: join(dir, 'state'),
    targets: {
      mirror: { root: mirror, media: 'hdd-mirror', location: 'calgary', device: 'mirror-1' },
      raid: { root: raid, media: 'hdd-raid', location: 'calgary', device: 'raid-1' },
    },
    ...(clouds.length === 0 ? {} : { cloud: clouds }),
    ...opts.config,
  });
  const memory = new MemoryCloud({ buckets: ['hot', 'cold'] });
  const log = createLogger({ name: 'recovery-test', level: 'error', stream: { write: () => true } });
  const clock = { now: Date.parse('2024-05-01T12:00:00Z') };
  const now = (): number => clock.now;
  let catalogue!: Catalogue;
  let service!: LedgerService;
  const open = async (): Promise<void> => {
    catalogue = new Catalogue(join(dir, 'catalogue'));
    await catalogue.open();
    service = new LedgerService({
      config,
      catalogue,
      log,
      now,
      availabilityIntervalMs: 0,
      ...opts.service,
      cloudOptions: {
        sinkFactory: (cfg: CloudTargetConfig) => new MemorySink(cfg, { cloud: memory }),
        retry: { baseMs: 5, maxMs: 20, parkedMs: 1000 },
      },
    });
    await service.open();
  };
  await open();
  for (const t of ['mirror', 'raid'] as const) await checkTarget(t, config.targets[t], false, now);

  let n = 0;
  const fx: RecoveryFixture = {
    dir,
    config,
    get catalogue() {
      return catalogue;
    },
    get service() {
      return service;
    },
    cloud: memory,
    log,
    clock,
    async commit(count, size = 64 * 1024, seed = 1) {
      const out: FixtureAsset[] = [];
      for (let i = 0; i < count; i++) {
        n++;
        const bytes = testBytes(size + n, seed * 100_000 + n);
        const hash = hashBytes(bytes);
        const path = `DCIM/100CANON/IMG_${String(n).padStart(4, '0')}.CR3`;
        const rel = posix.join('2024-05-01', 'shoot', 'card-a', path);
        for (const t of ['mirror', 'raid'] as const) {
          await durableWrite(
            (async function* () {
              yield bytes;
            })(),
            {
              targets: [{ dir: join(config.targets[t].root, posix.dirname(rel)), name: posix.basename(rel) }],
              expected: { size: bytes.byteLength, blake3: hash },
            },
          );
        }
        const local = (t: 'mirror' | 'raid'): CopyRecord => ({
          hash,
          target: t,
          kind: 'studio',
          path: rel,
          size: bytes.byteLength,
          device: config.targets[t].device,
          media: config.targets[t].media,
          location: 'calgary',
          offsite: false,
          method: 'readback-blake3',
          verifiedAt: clock.now,
        });
        await catalogue.commitAsset({
          asset: { hash, size: bytes.byteLength, committedAt: clock.now },
          names: [
            {
              key: nameKey(posix.join('shoot', 'card-a', path)),
              value: { hash, shoot: 'shoot', card: 'card-a', path, mtime: clock.now, agentId: 'agent-1', seenAt: 0 },
            },
          ],
          copies: [
            local('mirror'),
            local('raid'),
            ...fieldClaimRecords('agent-1', { hash, size: bytes.byteLength }, [
              {
                target: 'laptop',
                device: 'laptop-ssd',
                media: 'ssd',
                location: 'field',
                method: 'readback-blake3',
                verifiedAt: clock.now,
              },
            ]),
          ],
          storedPaths: [{ key: nameKey(rel), value: { hash, path: rel } }],
        });
        out.push({ hash, size: bytes.byteLength, rel, bytes });
      }
      await service.cloud?.idle();
      return out;
    },
    async reopen() {
      await service.close();
      await catalogue.close();
      await open();
    },
    async close() {
      await service.close();
      await catalogue.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fx;
}
