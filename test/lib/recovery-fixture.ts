/**
 * A studio on disk for the recovery tests: a real Catalogue (LevelDB), real
 * mirror and RAID folders with their markers, and a MemorySink cloud (the
 * in-process CloudSink with S3's semantics). Files are committed the way the
 * committer leaves them: the same bytes at `<date>/<shoot>/<card>/<path>` on both
 * targets, and one catalogue batch with the asset, its name, both copies and the
 * stored path. Cloud objects carry the forwarder's metadata (blake3, size, sha256).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { hashBytes, nameKey } from '@studio321/protocol';
import {
  Catalogue,
  localCopyRecord,
  parseStudiodConfig,
  type CopyRecord,
  type StudiodConfig,
} from '@studio321/studiod';
import {
  MemoryCloud,
  MemorySink,
  objectKey,
  objectMetadata,
  type AssetOrigin,
  type CloudTargetConfig,
} from '@studio321/studiod/cloud';
import { pairingsPath, writePairings } from '@studio321/studiod/recovery';
import { target } from './cloud-fixture.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface RecoveryStudio {
  dir: string;
  config: StudiodConfig;
  cloud: MemoryCloud;
  cloudTarget: CloudTargetConfig;
  sink: MemorySink;
  catalogue: Catalogue;
}

export async function recoveryStudio(
  t: Teardown,
  snapshots?: { intervalMinutes?: number; keepLocal?: number },
): Promise<RecoveryStudio> {
  const dir = await mkdtemp(join(tmpdir(), 's321-recovery-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = parseStudiodConfig({
    stateDir: join(dir, 'state'),
    targets: {
      mirror: { root: join(dir, 'mirror'), media: 'hdd-mirror', location: 'calgary', device: 'mirror-1' },
      raid: { root: join(dir, 'raid'), media: 'hdd-raid', location: 'calgary', device: 'raid-1' },
    },
    ...(snapshots === undefined ? {} : { snapshots }),
  });
  for (const [name, cfg] of Object.entries(config.targets)) {
    await mkdir(cfg.root, { recursive: true });
    await writeFile(
      join(cfg.root, '.studio321-target.json'),
      JSON.stringify({ target: name, device: cfg.device, createdAt: 1 }),
    );
  }
  const cloud = new MemoryCloud({ buckets: ['hot'] });
  const cloudTarget = target('cloud-east', 'http://memory.invalid', 'hot', { prefix: 'studio/' });
  const sink = new MemorySink(cloudTarget, { cloud });
  await sink.open();
  const catalogue = await openCatalogue(t, config);
  return { dir, config, cloud, cloudTarget, sink, catalogue };
}

/** Open the configured catalogue, with the pairing store kept as studiod keeps it. */
export async function openCatalogue(t: Teardown, config: StudiodConfig): Promise<Catalogue> {
  const catalogue = new Catalogue(config.catalogue);
  await catalogue.open();
  catalogue.setAgentsListener((agents) => writePairings(pairingsPath(config.stateDir), agents, Date.now()));
  t.teardown(() => catalogue.close());
  return catalogue;
}

export function studioCopy(
  config: StudiodConfig,
  t: 'mirror' | 'raid',
  hash: string,
  rel: string,
  size: number,
): CopyRecord {
  return localCopyRecord(t, config.targets[t], {
    hash,
    path: rel,
    size,
    method: 'readback-blake3',
    verifiedAt: 1_795_000_000_000,
  });
}

export interface Committed {
  hash: string;
  size: number;
  rel: string;
  bytes: Buffer;
}

/** Commit one file as the committer would (files on both targets, one catalogue batch). */
export async function commitFile(
  s: RecoveryStudio,
  card: string,
  path: string,
  bytes: Buffer = randomBytes(1000 + Math.floor(Math.random() * 3000)),
  opts: { catalogue?: Catalogue; targets?: Array<'mirror' | 'raid'> } = {},
): Promise<Committed> {
  const hash = hashBytes(bytes);
  const mtime = Date.parse('2026-11-26T10:00:00Z');
  const rel = posix.join('2026-11-26', 'wedding', card, path);
  for (const t of opts.targets ?? ['mirror', 'raid']) {
    const abs = join(s.config.targets[t].root, rel);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, bytes);
  }
  // A path with `~N` is a distinct name the committer chose: the card's name is without it.
  const cardPath = path.replace(/~\d+(\.[^.]*)?$/, '$1');
  await (opts.catalogue ?? s.catalogue).commitAsset({
    asset: { hash, size: bytes.length, committedAt: mtime + 1000 },
    names: [
      {
        key: nameKey(posix.join('wedding', card, cardPath)),
        value: { hash, shoot: 'wedding', card, path: cardPath, mtime, agentId: 'agt_1', seenAt: mtime + 1000 },
      },
    ],
    copies: [
      studioCopy(s.config, 'mirror', hash, rel, bytes.length),
      studioCopy(s.config, 'raid', hash, rel, bytes.length),
    ],
    storedPaths: [{ key: nameKey(rel), value: { hash, path: rel } }],
  });
  return { hash, size: bytes.length, rel, bytes };
}

/** Upload a committed file as the forwarder does (content-addressed key, its metadata); optionally record it. */
export async function uploadToCloud(
  s: RecoveryStudio,
  c: Committed,
  record: boolean,
  catalogue = s.catalogue,
  origins: AssetOrigin[] = [],
): Promise<string> {
  const key = objectKey(s.cloudTarget, c.hash);
  const file = join(s.config.targets.mirror.root, c.rel);
  const sha = createHash('sha256').update(c.bytes);
  const sha256b64 = sha.copy().digest('base64');
  await s.sink.putObject(
    { key, path: file, start: 0, end: c.size, sha256b64, signal: new AbortController().signal },
    origins.length === 0
      ? { blake3: c.hash, size: String(c.size), sha256: sha.digest('hex'), name: encodeURIComponent(c.rel) }
      : objectMetadata({ blake3: c.hash, size: c.size, sha256: sha.digest('hex') }, origins),
  );
  if (record) {
    await catalogue.recordCopy({
      hash: c.hash,
      target: s.cloudTarget.name,
      kind: 'cloud',
      path: key,
      size: c.size,
      device: `cloud:${s.cloudTarget.name}`,
      media: s.cloudTarget.media,
      location: s.cloudTarget.location,
      offsite: true,
      method: 'head-size-sha256-meta',
      verifiedAt: 1_795_000_000_000,
    });
    await catalogue.sublevel('cloud').put(`obj!${s.cloudTarget.name}!${c.hash}`, {
      target: s.cloudTarget.name,
      blake3: c.hash,
      key,
      generation: 1,
      size: c.size,
      name: c.rel,
      sha256: createHash('sha256').update(c.bytes).digest('hex'),
      verifiedAt: new Date(1_795_000_000_000).toISOString(),
      method: 'head-size-sha256-meta',
      serverChecksum: true,
    });
  }
  return key;
}

/** Pair an agent through the catalogue's real pairing path. */
export async function pairAgent(catalogue: Catalogue, agentId: string, name: string): Promise<void> {
  const code = `CODE${agentId.slice(-6).toUpperCase()}`;
  await catalogue.putPairingCode({ code, createdAt: 1, expiresAt: Date.now() + 600_000 });
  const ok = await catalogue.pairAgent(code, Date.now(), {
    agentId,
    name,
    publicKey: randomBytes(44).toString('base64'),
    pairedAt: Date.now(),
  });
  if (!ok) throw new Error('pairing failed');
}

/** Every exported record (and cloud object record), as sorted JSON lines: what a round trip must keep. */
export async function dump(catalogue: Catalogue): Promise<string[]> {
  const out: string[] = [];
  for await (const r of catalogue.exportRecords()) out.push(JSON.stringify(r));
  for await (const [k, v] of catalogue.sublevel('cloud').iterator({ gt: 'obj!', lt: 'obj!\xff' }))
    out.push(JSON.stringify({ t: 'cloud-object', k, v }));
  return out.sort();
}

export * from './heal-fixture.js';
