/**
 * The catalogue snapshot format (docs/design.md §Catalogue snapshots): gzip of
 * NDJSON, one JSON value per line —
 *
 *   {"format":"studio321-catalogue","version":1,"createdAt":"…","catalogueFormat":1,"software":"studiod/…"}
 *   {"t":"asset","k":"<hash>","v":{…AssetRecord}}
 *   {"t":"name","k":"<hash>!<nameKey>","v":{…NameRecord}}
 *   {"t":"copy","k":"<hash>!<target>","v":{…CopyRecord}}
 *   {"t":"stored","k":"<nameKey>","v":{…StoredPathRecord}}
 *   {"t":"agent","k":"<agentId>","v":{…AgentRecord}}
 *   {"t":"cloud-object","k":"<target>!<blake3>","v":{…CloudObject}}   (the forwarder's obj! records)
 *   {"t":"end","records":N,"assets":A}
 *
 * A reader MUST refuse a header with another `format` or a higher `version`,
 * MUST ignore unknown fields and unknown record kinds of the same version
 * (a later version may add kinds), and MUST treat a stream without its `end`
 * line, or with a count that differs, as truncated. Counters are not exported:
 * the rebuild recomputes them. Both sides stream: memory does not grow with the
 * catalogue.
 */
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, createGzip } from 'node:zlib';
import { FORMAT_VERSION } from '@studio321/protocol';
import { EXPORTED_KINDS, type Catalogue, type ExportedKind, type ExportedRecord } from '../catalogue.js';
import { RECOVERY_CODES, RecoveryError } from './errors.js';

export const SNAPSHOT_FORMAT = 'studio321-catalogue';
export const SNAPSHOT_VERSION = 1;
/** Folder under the RAID root and key infix under a cloud target's prefix. */
export const SNAPSHOT_DIR = '.s321-catalogue';
export const SNAPSHOT_SUFFIX = '.ndjson.gz';

export interface SnapshotHeader {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  createdAt: string;
  catalogueFormat: number;
  software: string;
}

export interface SnapshotCounts {
  records: number;
  assets: number;
}

/** `2026-11-26T10-00-00-000Z.ndjson.gz`: sorts by time, safe on every file system and as an S3 key. */
export function snapshotName(at: number): string {
  return `${new Date(at).toISOString().replace(/[:.]/g, '-')}${SNAPSHOT_SUFFIX}`;
}

/** Lines are gathered into buffers of about this size before gzip. */
const FLUSH_BYTES = 256 * 1024;

/**
 * The gzip-compressed export of `catalogue`, as a stream of buffers. `counts` is
 * filled in as it is read (complete when the stream ended).
 */
export function encodeSnapshot(
  catalogue: Catalogue,
  header: Omit<SnapshotHeader, 'format' | 'version' | 'catalogueFormat'>,
  counts: SnapshotCounts,
): AsyncIterable<Uint8Array> {
  async function* lines(): AsyncGenerator<Buffer> {
    const head: SnapshotHeader = {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_VERSION,
      createdAt: header.createdAt,
      catalogueFormat: FORMAT_VERSION,
      software: header.software,
    };
    let buf = `${JSON.stringify(head)}\n`;
    const all = async function* (): AsyncGenerator<SnapshotRecord> {
      yield* catalogue.exportRecords();
      yield* cloudObjectRecords(catalogue);
    };
    for await (const r of all()) {
      buf += `${JSON.stringify(r)}\n`;
      counts.records += 1;
      if (r.t === 'asset') counts.assets += 1;
      if (buf.length >= FLUSH_BYTES) {
        yield Buffer.from(buf);
        buf = '';
      }
    }
    buf += `${JSON.stringify({ t: 'end', records: counts.records, assets: counts.assets })}\n`;
    yield Buffer.from(buf);
  }
  return Readable.from(lines(), { objectMode: false }).pipe(createGzip({ level: 6 }));
}

function unreadable(what: string, why: string, cause?: unknown): RecoveryError {
  return new RecoveryError(
    RECOVERY_CODES.snapshotUnreadable,
    `Snapshot ${what} cannot be read (${why}); the rebuild tries the next older one.`,
    { ...(cause === undefined ? {} : { cause }), detail: { snapshot: what } },
  );
}

/** Record kinds of a snapshot: the catalogue's own, and the cloud forwarder's verified objects. */
export type SnapshotKind = ExportedKind | 'cloud-object';
export interface SnapshotRecord {
  t: SnapshotKind;
  k: string;
  v: Record<string, unknown>;
}
const KINDS = new Set<string>([...EXPORTED_KINDS, 'cloud-object']);

/** The forwarder's `obj!<target>!<blake3>` records (sublevel `cloud`): a restored cloud copy needs its object record for `verify`. */
const CLOUD_OBJ = 'obj!';

export async function* cloudObjectRecords(catalogue: Catalogue): AsyncGenerator<SnapshotRecord> {
  for await (const [k, v] of catalogue.sublevel('cloud').iterator({ gt: CLOUD_OBJ, lt: `${CLOUD_OBJ}\xff` }))
    yield { t: 'cloud-object', k: k.slice(CLOUD_OBJ.length), v };
}

/** Raw puts of snapshot records into the catalogue (and its `cloud` sublevel), no hooks, no counters. */
export async function importSnapshotRecords(catalogue: Catalogue, recs: SnapshotRecord[], sync = false): Promise<void> {
  const own: ExportedRecord[] = [];
  const objs: Array<{ type: 'put'; key: string; value: Record<string, unknown> }> = [];
  for (const r of recs) {
    if (r.t === 'cloud-object') objs.push({ type: 'put', key: CLOUD_OBJ + r.k, value: r.v });
    else own.push(r as ExportedRecord);
  }
  if (objs.length > 0) await catalogue.sublevel('cloud').batch(objs);
  await catalogue.importRecords(own, { sync });
}

/**
 * Decode a snapshot stream (gzip bytes). Yields its records; throws
 * RECOVERY_SNAPSHOT_UNREADABLE (not gzip, not ours, truncated, a bad line) or
 * RECOVERY_SNAPSHOT_TOO_NEW. `onHeader` is called once the header was checked;
 * the generator returns the end line's counts.
 */
export async function* decodeSnapshot(
  source: AsyncIterable<Uint8Array>,
  what: string,
  onHeader?: (h: SnapshotHeader) => void,
): AsyncGenerator<SnapshotRecord, SnapshotCounts> {
  const input = Readable.from(source, { objectMode: false });
  const gunzip = createGunzip();
  input.on('error', (err) => gunzip.destroy(err));
  input.pipe(gunzip);
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let header: SnapshotHeader | undefined;
  let end: SnapshotCounts | undefined;
  let records = 0;
  let assets = 0;
  const handle = (line: string): SnapshotRecord | undefined => {
    if (line === '') return undefined;
    if (end !== undefined) throw unreadable(what, 'data after the end line');
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      throw unreadable(what, `line ${records + 2} is not JSON`, err);
    }
    if (header === undefined) {
      if (v['format'] !== SNAPSHOT_FORMAT || typeof v['version'] !== 'number')
        throw unreadable(what, 'not a studio321 catalogue snapshot');
      if (v['version'] > SNAPSHOT_VERSION) {
        throw new RecoveryError(
          RECOVERY_CODES.snapshotTooNew,
          `Snapshot ${what} has format version ${String(v['version'])}, newer than this studioctl reads (${SNAPSHOT_VERSION}). Upgrade studiod.`,
          { detail: { snapshot: what } },
        );
      }
      header = v as unknown as SnapshotHeader;
      onHeader?.(header);
      return undefined;
    }
    if (v['t'] === 'end') {
      end = { records: Number(v['records']), assets: Number(v['assets']) };
      if (end.records !== records || end.assets !== assets)
        throw unreadable(what, `the end line counts ${end.records} records, the file holds ${records}`);
      return undefined;
    }
    records += 1;
    if (typeof v['t'] !== 'string' || typeof v['k'] !== 'string' || v['v'] === null || typeof v['v'] !== 'object')
      throw unreadable(what, `line ${records + 1} is not a record`);
    if (v['t'] === 'asset') assets += 1;
    if (!KINDS.has(v['t'])) return undefined; // a kind a later minor writer added: ignored
    return { t: v['t'] as SnapshotKind, k: v['k'], v: v['v'] as Record<string, unknown> };
  };
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      rest += decoder.write(chunk);
      let nl = rest.indexOf('\n');
      let from = 0;
      while (nl >= 0) {
        const r = handle(rest.slice(from, nl));
        if (r !== undefined) yield r;
        from = nl + 1;
        nl = rest.indexOf('\n', from);
      }
      rest = rest.slice(from);
    }
  } catch (err) {
    if (err instanceof RecoveryError) throw err;
    throw unreadable(what, (err as Error).message, err);
  } finally {
    input.destroy();
    gunzip.destroy();
  }
  rest += decoder.end();
  if (rest !== '') {
    const r = handle(rest);
    if (r !== undefined) yield r;
  }
  if (header === undefined) throw unreadable(what, 'empty');
  if (end === undefined) throw unreadable(what, 'truncated: no end line');
  return end;
}
