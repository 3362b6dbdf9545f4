/**
 * `studioctl catalogue rebuild` (docs/design.md §Catalogue rebuild): recreate a
 * lost catalogue from the newest readable snapshot plus what the targets hold
 * since. Runs with studiod stopped: it opens the catalogue itself, so the
 * LevelDB lock refuses it (STUDIO_CATALOGUE_LOCKED) while studiod runs.
 *
 * Steps (the phase is recorded in the `recovery` sublevel, `rebuild!state`,
 * `sync: true`; every step is idempotent, so a killed rebuild is run again and
 * goes on; studiod refuses to start while the state record exists):
 *   1. begin: refuse a catalogue that holds assets (RECOVERY_CATALOGUE_NOT_EMPTY)
 *      unless a rebuild of it is in progress
 *   2. import: the newest readable snapshot, RAID first, then each cloud target,
 *      streamed in batches; an unreadable one is cleared again and the next
 *      older is tried; none at all is reported (every file is then hashed)
 *   3. pairings: `pairings.json` merged in (it is written on every pairing and
 *      revocation, so it wins over the snapshot), and written back
 *   4. check: each snapshot copy on a local target whose file is gone or has
 *      another size is removed (reported)
 *   5. local: every committed file of the mirror not in the catalogue is hashed
 *      (BLAKE3) with the file at the same path on the RAID: equal → an asset
 *      with two copies; unequal → reported, not recorded; on one target only →
 *      recorded with its one copy, and reported. Then RAID files that the
 *      mirror does not have. One catalogue batch per file found.
 *   6. cloud: every object under `<prefix>blake3/` of each cloud target whose
 *      asset lacks that cloud copy: HEAD, metadata blake3 and size must equal the
 *      asset's → copy (method `head-size-sha256-meta`) and the forwarder's
 *      object record; an object whose asset the catalogue does not hold becomes
 *      an asset when its metadata describes it (blake3 and size equal to the
 *      object's; shoot, card, names and capture time from cloud/object-metadata.ts,
 *      a shortened or missing name reported); otherwise it is reported
 *   7. finish: counters recomputed, the ledger's counters dropped (studiod
 *      rebuilds them at start and queues what lacks a cloud copy), the report
 *      kept as `rebuild!last`, the state and its items deleted in one batch
 *
 * Copies it adds are verified now: local ones by hashing their bytes (method
 * `verify-blake3`), cloud ones by HEAD size + metadata (`head-size-sha256-meta`).
 */
import { stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { CodedError, hashFile, nameKey, errorCode, type Logger } from '@studio321/protocol';
import { localCopyRecord, type AssetRecord, type Catalogue, type CopyRecord, type NameRecord } from '../catalogue.js';
import type { CloudSink } from '../cloud/s3-sink.js';
import { describeObject, type DescribedObject } from '../cloud/object-metadata.js';
import { LOCAL_TARGETS, type LocalTargetName, type StudiodConfig } from '../config.js';
import { RECOVERY_CODES, RecoveryError } from './errors.js';
import { pairingsPath, readPairings, writePairings } from './pairing-store.js';
import {
  SNAPSHOT_DIR,
  SNAPSHOT_SUFFIX,
  decodeSnapshot,
  importSnapshotRecords,
  type SnapshotRecord,
} from './snapshot-format.js';
import { localSnapshots } from './snapshot.js';
import { committedFiles, hasMarker } from './target-files.js';
import { createReadStream } from 'node:fs';

const SYNC = { sync: true } as object;
const IMPORT_BATCH = 5000;
/** Report items kept in the report itself (all are counted). */
const MAX_REPORT_ITEMS = 1000;

export type UnaccountedKind =
  | 'one-target-only'
  | 'hash-mismatch'
  | 'copy-missing'
  | 'cloud-orphan'
  | 'cloud-mismatch'
  | 'unknown-layout'
  | 'unreadable'
  | 'cloud-only';

export interface UnaccountedItem {
  kind: UnaccountedKind;
  target: string;
  path: string;
  hash?: string;
  why: string;
}

export interface RebuildReport {
  snapshot: { where: string; createdAt: string; records: number; assets: number } | null;
  snapshotsTried: Array<{ where: string; code: string; message: string }>;
  agents: number;
  removedCopies: number;
  local: { files: number; hashed: number; hashedBytes: number; assetsAdded: number; copiesAdded: number };
  /** assetsAdded: assets known from the cloud alone (their names from the objects' metadata). */
  cloud: { objects: number; copiesAdded: number; assetsAdded: number };
  counters: { assets: number; bytes: number };
  unaccounted: { count: number; items: UnaccountedItem[] };
  ms: number;
}

type Phase = 'import' | 'check' | 'local' | 'cloud' | 'finish';
interface RebuildState {
  startedAt: number;
  phase: Phase;
  snapshot: RebuildReport['snapshot'];
  snapshotsTried: RebuildReport['snapshotsTried'];
  agents: number;
}

export interface RebuildOptions {
  config: StudiodConfig;
  /** Opened sinks of the cloud targets. */
  sinks: readonly CloudSink[];
  now?: () => number;
  log?: Logger;
  /** Progress lines (studioctl prints them on stderr). */
  onProgress?: (event: { phase: Phase | 'begin'; message: string }) => void;
}

/** A rebuild in progress? (studiod refuses to start then.) */
export async function rebuildInProgress(catalogue: Catalogue): Promise<boolean> {
  return (await catalogue.sublevel('recovery').get('rebuild!state')) !== undefined;
}

const itemKey = (i: UnaccountedItem): string => `rebuild!item!${i.kind}!${i.target}!${i.path}`;

/** `2026-11-26/wedding/CARD1/DCIM/100CANON/IMG_0001~2.CR3` → the name the agent offered. */
export function nameFromStoredPath(
  rel: string,
  mtimeMs: number,
): Omit<NameRecord, 'hash' | 'agentId' | 'seenAt'> | undefined {
  const segs = rel.split('/');
  if (segs.length < 4) return undefined;
  const [date, shoot, card] = segs as [string, string, string];
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) return undefined;
  const rest = segs.slice(3);
  // A distinct name `stem~N.ext` (commit.ts distinctName) was `stem.ext` on the card.
  rest[rest.length - 1] = rest[rest.length - 1]!.replace(/~\d+(\.[^.]*)?$/, '$1');
  const day = new Date(mtimeMs).toISOString().slice(0, 10);
  return { shoot, card, path: rest.join('/'), mtime: day === date ? mtimeMs : Date.parse(`${date}T12:00:00Z`) };
}

class Rebuild {
  readonly #c: Catalogue;
  readonly #o: RebuildOptions;
  readonly #now: () => number;
  readonly #rec;
  #state!: RebuildState;
  readonly #report: Omit<RebuildReport, 'snapshot' | 'snapshotsTried' | 'agents' | 'counters' | 'unaccounted' | 'ms'> =
    {
      removedCopies: 0,
      local: { files: 0, hashed: 0, hashedBytes: 0, assetsAdded: 0, copiesAdded: 0 },
      cloud: { objects: 0, copiesAdded: 0, assetsAdded: 0 },
    };

  constructor(catalogue: Catalogue, opts: RebuildOptions) {
    this.#c = catalogue;
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#rec = catalogue.sublevel('recovery');
  }

  #progress(phase: Phase | 'begin', message: string): void {
    this.#o.onProgress?.({ phase, message });
    this.#o.log?.info({ phase }, message);
  }

  async #setPhase(phase: Phase): Promise<void> {
    this.#state = { ...this.#state, phase };
    // sync: also makes every earlier unsynced import batch durable (LevelDB's log is ordered).
    await this.#rec.put('rebuild!state', this.#state as unknown as Record<string, unknown>, SYNC);
  }

  async #note(item: UnaccountedItem): Promise<void> {
    await this.#rec.put(itemKey(item), item as unknown as Record<string, unknown>, SYNC);
  }

  async run(): Promise<RebuildReport> {
    const started = Date.now();
    // 1. begin
    const existing = (await this.#rec.get('rebuild!state')) as unknown as RebuildState | undefined;
    if (existing === undefined) {
      // Killed after step 7 but before it could print: the finished rebuild's report, until studiod has served.
      const done = (await this.#rec.get('rebuild!last')) as unknown as RebuildReport | undefined;
      if (done !== undefined) {
        this.#progress('finish', 'this catalogue was already rebuilt; its report follows');
        return done;
      }
      if (await this.#c.hasAssets()) {
        throw new RecoveryError(
          RECOVERY_CODES.catalogueNotEmpty,
          `The catalogue at ${this.#c.location} already holds assets: there is nothing to rebuild. To rebuild it anyway, stop studiod and move that directory aside first.`,
          { detail: { location: this.#c.location } },
        );
      }
      this.#state = { startedAt: this.#now(), phase: 'import', snapshot: null, snapshotsTried: [], agents: 0 };
      await this.#setPhase('import');
      this.#progress('begin', 'rebuild started');
    } else {
      this.#state = existing;
      this.#progress('begin', `resuming an interrupted rebuild at step "${existing.phase}"`);
    }
    const order: Phase[] = ['import', 'check', 'local', 'cloud', 'finish'];
    for (let i = order.indexOf(this.#state.phase); i < order.length; i++) {
      const phase = order[i]!;
      if (phase !== this.#state.phase) await this.#setPhase(phase);
      if (phase === 'import') await this.#import();
      else if (phase === 'check') await this.#check();
      else if (phase === 'local') await this.#local();
      else if (phase === 'cloud') await this.#cloud();
      else return this.#finish(started);
    }
    throw new TypeError('unreachable');
  }

  // 2–3. import the newest readable snapshot, then the pairing store
  async #import(): Promise<void> {
    this.#state.snapshotsTried = [];
    this.#state.snapshot = null;
    for (const cand of await this.#candidates()) {
      await this.#clearImported();
      this.#progress('import', `reading snapshot ${cand.where}`);
      try {
        let createdAt = cand.name.replace(SNAPSHOT_SUFFIX, '');
        const gen = decodeSnapshot(await cand.open(), cand.where, (h) => {
          createdAt = h.createdAt;
        });
        let batch: SnapshotRecord[] = [];
        let step = await gen.next();
        while (step.done !== true) {
          batch.push(step.value);
          if (batch.length >= IMPORT_BATCH) {
            await importSnapshotRecords(this.#c, batch);
            batch = [];
          }
          step = await gen.next();
        }
        await importSnapshotRecords(this.#c, batch);
        this.#state.snapshot = { where: cand.where, createdAt, ...step.value };
        this.#progress(
          'import',
          `imported ${step.value.records} records (${step.value.assets} assets) from ${cand.where}`,
        );
        break;
      } catch (err) {
        const e = err instanceof CodedError ? err : undefined;
        this.#state.snapshotsTried.push({
          where: cand.where,
          code: e?.code ?? errorCode(err) ?? RECOVERY_CODES.snapshotUnreadable,
          message: err instanceof Error ? err.message : String(err),
        });
        this.#progress(
          'import',
          `snapshot ${cand.where} cannot be used: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    if (this.#state.snapshot === null) {
      await this.#clearImported();
      this.#progress(
        'import',
        `${RECOVERY_CODES.noSnapshot}: no readable snapshot; every file on the targets is hashed`,
      );
    }
    // 3. pairings: the store is written on every pairing and revocation, so it is the newest word.
    const path = pairingsPath(this.#o.config.stateDir);
    const stored = await readPairings(path).catch((err: unknown) => {
      this.#progress(
        'import',
        `the pairing store cannot be read (${(err as Error).message}); agents come from the snapshot`,
      );
      return [];
    });
    if (stored.length > 0) {
      await this.#c.importRecords(
        stored.map((a) => ({ t: 'agent' as const, k: a.agentId, v: a as unknown as Record<string, unknown> })),
      );
    }
    const agents = await this.#c.listAgents();
    if (stored.length === 0 && agents.length > 0) await writePairings(path, agents, this.#now());
    this.#state.agents = agents.length;
  }

  /** Snapshots, newest first: the RAID's, then each cloud target's. */
  async #candidates(): Promise<Array<{ where: string; name: string; open: () => Promise<AsyncIterable<Uint8Array>> }>> {
    const out: Array<{ where: string; name: string; open: () => Promise<AsyncIterable<Uint8Array>> }> = [];
    const dir = join(this.#o.config.targets.raid.root, SNAPSHOT_DIR);
    for (const name of (await localSnapshots(dir).catch(() => [])).reverse()) {
      const p = join(dir, name);
      out.push({ where: p, name, open: async () => createReadStream(p) });
    }
    for (const sink of this.#o.sinks) {
      const prefix = `${sink.target.prefix ?? ''}${SNAPSHOT_DIR}/`;
      const keys: string[] = [];
      try {
        for await (const o of sink.list(prefix)) if (o.key.endsWith(SNAPSHOT_SUFFIX)) keys.push(o.key);
      } catch (err) {
        this.#state.snapshotsTried.push({
          where: `s3://${sink.target.bucket}/${prefix}`,
          code: err instanceof CodedError ? err.code : 'ERROR',
          message: err instanceof Error ? err.message : String(err),
        });
        continue;
      }
      for (const key of keys.sort().reverse()) {
        out.push({ where: `s3://${sink.target.bucket}/${key}`, name: posix.basename(key), open: () => sink.read(key) });
      }
    }
    return out;
  }

  /** Remove what an unreadable snapshot may have imported (assets, names, copies, stored paths, cloud objects; agents stay). */
  async #clearImported(): Promise<void> {
    for (const p of ['asset!', 'name!', 'copy!', 'stored!']) await this.#clearRange(p);
    const cloud = this.#c.sublevel('cloud');
    await cloud.clear({ gt: 'obj!', lt: 'obj!\xff' });
  }

  async #clearRange(prefix: string): Promise<void> {
    // The root DB through the catalogue's own range clear.
    await this.#c.clearPrefix(prefix);
  }

  // 4. check the snapshot's local copies
  async #check(): Promise<void> {
    const avail = await this.#available();
    let seen = 0;
    for await (const copy of this.#c.copies()) {
      if (copy.kind !== 'studio' || !(LOCAL_TARGETS as readonly string[]).includes(copy.target)) continue;
      const t = copy.target as LocalTargetName;
      if (!avail[t]) continue;
      seen++;
      const abs = join(this.#o.config.targets[t].root, copy.path);
      const st = await stat(abs).catch(() => undefined);
      if (st?.isFile() && st.size === copy.size) continue;
      await this.#c.removeCopy(copy);
      this.#report.removedCopies++;
      await this.#note({
        kind: 'copy-missing',
        target: t,
        path: copy.path,
        hash: copy.hash,
        why:
          st === undefined
            ? 'in the snapshot, but the file is gone'
            : `in the snapshot with ${copy.size} bytes, the file has ${st.size}`,
      });
    }
    this.#progress('check', `checked ${seen} local copies of the snapshot`);
  }

  async #available(): Promise<Record<LocalTargetName, boolean>> {
    return {
      mirror: await hasMarker(this.#o.config.targets.mirror.root),
      raid: await hasMarker(this.#o.config.targets.raid.root),
    };
  }

  /** A copy record for a local file hashed now. */
  #localCopy(t: LocalTargetName, hash: string, rel: string, size: number): CopyRecord {
    return localCopyRecord(t, this.#o.config.targets[t], {
      hash,
      path: rel,
      size,
      method: 'verify-blake3',
      verifiedAt: this.#now(),
    });
  }

  async #hash(t: LocalTargetName, abs: string, rel: string): Promise<{ blake3: string; size: number } | undefined> {
    try {
      const r = await hashFile(abs);
      this.#report.local.hashed++;
      this.#report.local.hashedBytes += r.size;
      return r;
    } catch (err) {
      await this.#note({
        kind: 'unreadable',
        target: t,
        path: rel,
        why: `cannot be read (${errorCode(err) ?? 'error'})`,
      });
      return undefined;
    }
  }

  /** Is this target-relative path already in the catalogue? */
  async #known(rel: string): Promise<boolean> {
    const sp = await this.#c.storedPath(nameKey(rel));
    return sp !== undefined;
  }

  async #record(rel: string, mtimeMs: number, hash: string, size: number, copies: CopyRecord[]): Promise<void> {
    const name = nameFromStoredPath(rel, mtimeMs);
    const existing = await this.#c.getAsset(hash);
    // The studio's own copies only: an agent's claim labelled `mirror` is no mirror copy.
    const have = new Set((await this.#c.copiesOf(hash)).filter((c) => c.kind !== 'agent').map((c) => c.target));
    const fresh = copies.filter((c) => !have.has(c.target));
    const now = this.#now();
    await this.#c.commitAsset({
      asset: existing ?? { hash, size, committedAt: Math.trunc(mtimeMs) },
      names:
        name === undefined
          ? []
          : [
              {
                key: nameKey(posix.join(name.shoot, name.card, name.path)),
                value: { hash, ...name, agentId: '', seenAt: now },
              },
            ],
      copies: fresh,
      storedPaths: [{ key: nameKey(rel), value: { hash, path: rel } }],
    });
    if (existing === undefined) this.#report.local.assetsAdded++;
    this.#report.local.copiesAdded += fresh.length;
  }

  // 5. local files not in the catalogue
  async #local(): Promise<void> {
    const avail = await this.#available();
    const { mirror, raid } = this.#o.config.targets;
    if (avail.mirror) {
      for await (const f of committedFiles(mirror.root)) {
        this.#report.local.files++;
        if (await this.#known(f.rel)) continue;
        if (nameFromStoredPath(f.rel, f.mtimeMs) === undefined) {
          await this.#note({
            kind: 'unknown-layout',
            target: 'mirror',
            path: f.rel,
            why: 'not under <date>/<shoot>/<card>/',
          });
          continue;
        }
        const m = await this.#hash('mirror', f.abs, f.rel);
        if (m === undefined) continue;
        const raidAbs = join(raid.root, f.rel);
        const onRaid =
          avail.raid &&
          (await stat(raidAbs).then(
            (s) => s.isFile(),
            () => false,
          ));
        if (!onRaid) {
          await this.#record(f.rel, f.mtimeMs, m.blake3, m.size, [this.#localCopy('mirror', m.blake3, f.rel, m.size)]);
          await this.#note({
            kind: 'one-target-only',
            target: 'mirror',
            path: f.rel,
            hash: m.blake3,
            why: 'not on the RAID; recorded with its mirror copy',
          });
          continue;
        }
        const r = await this.#hash('raid', raidAbs, f.rel);
        if (r === undefined) continue;
        if (r.blake3 !== m.blake3 || r.size !== m.size) {
          await this.#note({
            kind: 'hash-mismatch',
            target: 'mirror+raid',
            path: f.rel,
            hash: m.blake3,
            why: `mirror ${m.blake3.slice(0, 12)}… (${m.size} B), RAID ${r.blake3.slice(0, 12)}… (${r.size} B): not recorded`,
          });
          continue;
        }
        await this.#record(f.rel, f.mtimeMs, m.blake3, m.size, [
          this.#localCopy('mirror', m.blake3, f.rel, m.size),
          this.#localCopy('raid', r.blake3, f.rel, r.size),
        ]);
      }
    }
    if (avail.raid) {
      for await (const f of committedFiles(raid.root)) {
        this.#report.local.files++;
        if (await this.#known(f.rel)) continue;
        // On the mirror too: handled above (a mismatch, or unreadable there).
        if (
          avail.mirror &&
          (await stat(join(mirror.root, f.rel)).then(
            (s) => s.isFile(),
            () => false,
          ))
        )
          continue;
        if (nameFromStoredPath(f.rel, f.mtimeMs) === undefined) {
          await this.#note({
            kind: 'unknown-layout',
            target: 'raid',
            path: f.rel,
            why: 'not under <date>/<shoot>/<card>/',
          });
          continue;
        }
        const r = await this.#hash('raid', f.abs, f.rel);
        if (r === undefined) continue;
        await this.#record(f.rel, f.mtimeMs, r.blake3, r.size, [this.#localCopy('raid', r.blake3, f.rel, r.size)]);
        await this.#note({
          kind: 'one-target-only',
          target: 'raid',
          path: f.rel,
          hash: r.blake3,
          why: 'not on the mirror; recorded with its RAID copy',
        });
      }
    }
    this.#progress('local', `walked ${this.#report.local.files} files, hashed ${this.#report.local.hashed}`);
  }

  // 6. cloud objects
  async #cloud(): Promise<void> {
    for (const sink of this.#o.sinks) {
      const t = sink.target;
      const prefix = `${t.prefix ?? ''}blake3/`;
      const objects = this.#c.sublevel('cloud');
      for await (const o of sink.list(prefix)) {
        this.#report.cloud.objects++;
        const m = /^([0-9a-f]{64})(?:\.(\d+))?$/.exec(o.key.slice(prefix.length).split('/')[1] ?? '');
        if (m === null) continue;
        const hash = m[1]!;
        const generation = m[2] === undefined ? 1 : Number(m[2]);
        let asset = await this.#c.getAsset(hash);
        const has =
          asset !== undefined && (await this.#c.copiesOf(hash)).some((c) => c.kind === 'cloud' && c.target === t.name);
        const hasObj = (await objects.get(`obj!${t.name}!${hash}`)) !== undefined;
        if (has && hasObj) continue;
        const head = await sink.head(o.key);
        const meta = head === null ? undefined : describeObject(head.metadata);
        const size = asset?.size ?? meta?.size;
        const ok = head !== null && meta?.blake3 === hash && meta.size === size && head.size === size;
        if (!ok || size === undefined) {
          await this.#note(
            asset === undefined
              ? {
                  kind: 'cloud-orphan',
                  target: t.name,
                  path: o.key,
                  hash,
                  why: 'no file with this BLAKE3 on the mirror or the RAID, and its metadata does not describe it',
                }
              : {
                  kind: 'cloud-mismatch',
                  target: t.name,
                  path: o.key,
                  hash,
                  why: 'size or blake3 metadata differ from the asset',
                },
          );
          continue;
        }
        if (asset === undefined) {
          // Known from the cloud alone: the object's metadata gives the asset, its names and capture time.
          asset = { hash, size, committedAt: meta?.origins[0]?.mtime ?? this.#now() };
          await this.#fromMetadata(t.name, o.key, asset, meta?.origins ?? [], meta?.namesLeftOut === true);
        }
        const verifiedAt = this.#now();
        const name = (await this.#c.namesOf(hash))[0];
        await objects.put(
          `obj!${t.name}!${hash}`,
          {
            target: t.name,
            blake3: hash,
            key: o.key,
            generation,
            size: asset.size,
            name: name === undefined ? hash : posix.join(name.shoot, name.card, name.path),
            sha256: head.metadata['sha256'] ?? '',
            verifiedAt: new Date(verifiedAt).toISOString(),
            method: 'head-size-sha256-meta',
            serverChecksum: head.checksumSha256 !== undefined,
          },
          SYNC,
        );
        if (!has) {
          await this.#c.recordCopy({
            hash,
            target: t.name,
            kind: 'cloud',
            path: o.key,
            size: asset.size,
            device: `cloud:${t.name}`,
            media: t.media,
            location: t.location,
            offsite: true,
            method: 'head-size-sha256-meta',
            verifiedAt,
          });
          this.#report.cloud.copiesAdded++;
        }
      }
    }
    this.#progress(
      'cloud',
      `listed ${this.#report.cloud.objects} cloud objects, ${this.#report.cloud.copiesAdded} copies added`,
    );
  }

  /** An asset only a cloud object holds: recorded with the names its metadata carries (step 6). */
  async #fromMetadata(
    target: string,
    key: string,
    asset: AssetRecord,
    origins: DescribedObject['origins'],
    namesLeftOut: boolean,
  ): Promise<void> {
    const now = this.#now();
    await this.#c.commitAsset({
      asset,
      names: origins.map(({ truncated, originalName, ...o }) => ({
        key: nameKey(posix.join(o.shoot, o.card, o.path)),
        value: {
          hash: asset.hash,
          ...o,
          mtime: o.mtime ?? 0,
          agentId: '',
          seenAt: now,
          // A renamed file keeps its name on the card; its day is the file's time on the card, as the
          // agent's own fallback dates it, since the camera's date is not in the metadata.
          ...(originalName === undefined || truncated || o.mtime === undefined
            ? {}
            : {
                capture: {
                  day: new Date(o.mtime).toISOString().slice(0, 10),
                  dateSource: 'mtime' as const,
                  originalName,
                },
              }),
        },
      })),
      copies: [],
      storedPaths: [],
    });
    this.#report.cloud.assetsAdded++;
    const shortened = namesLeftOut || origins.some((o) => o.truncated);
    await this.#note({
      kind: 'cloud-only',
      target,
      path: key,
      hash: asset.hash,
      why:
        origins.length === 0
          ? 'on no local target, and the object carries no name: recorded by its BLAKE3 with its cloud copy'
          : `on no local target: recorded with its cloud copy and the ${origins.length} name(s) its metadata holds` +
            (shortened ? ' (shortened to fit S3’s 2 KB; the full names were in the catalogue)' : ''),
    });
  }

  // 7. finish
  async #finish(started: number): Promise<RebuildReport> {
    const counters = await this.#c.recountCounters();
    await this.#c.sublevel('ledger').clear();
    const items: UnaccountedItem[] = [];
    let count = 0;
    const dels: string[] = [];
    for await (const [k, v] of this.#rec.iterator({ gt: 'rebuild!item!', lt: 'rebuild!item!\xff' })) {
      count++;
      dels.push(k);
      if (items.length < MAX_REPORT_ITEMS) items.push(v as unknown as UnaccountedItem);
    }
    const report: RebuildReport = {
      snapshot: this.#state.snapshot,
      snapshotsTried: this.#state.snapshotsTried,
      agents: this.#state.agents,
      ...this.#report,
      counters: { assets: counters.assets, bytes: counters.bytes },
      unaccounted: { count, items },
      ms: Date.now() - started,
    };
    await this.#rec.batch(
      [
        ...dels.map((key) => ({ type: 'del' as const, key })),
        { type: 'del' as const, key: 'rebuild!state' },
        { type: 'put' as const, key: 'rebuild!last', value: report as unknown as Record<string, unknown> },
      ],
      SYNC,
    );
    this.#progress('finish', `catalogue rebuilt: ${counters.assets} assets, ${count} item(s) not accounted for`);
    return report;
  }
}

/**
 * studiod's start, once it serves a rebuilt catalogue: the report moves from
 * `rebuild!last` to `rebuild!served`, so a later `catalogue rebuild` is refused
 * (RECOVERY_CATALOGUE_NOT_EMPTY) instead of printing a stale report.
 */
export async function markRebuildServed(catalogue: Catalogue): Promise<void> {
  const rec = catalogue.sublevel('recovery');
  const last = await rec.get('rebuild!last');
  if (last === undefined) return;
  await rec.batch(
    [
      { type: 'put', key: 'rebuild!served', value: last },
      { type: 'del', key: 'rebuild!last' },
    ],
    SYNC,
  );
}

/** Steps 1–7 on an opened catalogue (see the file comment). */
export function rebuildCatalogue(catalogue: Catalogue, opts: RebuildOptions): Promise<RebuildReport> {
  return new Rebuild(catalogue, opts).run();
}
