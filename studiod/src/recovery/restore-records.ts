/**
 * The durable records of restores (sublevel `restore` of the catalogue,
 * valueEncoding json, every write `sync: true`; docs/design.md "Recovery"):
 *
 *   req!<blake3>!<absolute destination path>   an archive restore requested, not yet written
 *   dir!<absolute directory>                   a restore is writing into this directory (its temps are swept at start)
 */
import type { Catalogue } from '../catalogue.js';
import type { RestoreTier } from '../cloud/cloud-target.js';

/** When an archive-class restore request is typically readable (S3 Bulk/Standard tiers). */
export const ARCHIVE_READY_HINT = 'typically ready within 12–48 h';

export interface ArchiveRequestRecord {
  v: 1;
  hash: string;
  size: number;
  /** The cloud target holding the archive-class copy, and its object key. */
  target: string;
  key: string;
  /** The restore's DIR (absolute) and the file's target-relative path under it. */
  dir: string;
  path: string;
  tier: RestoreTier;
  days: number;
  requestedAt: number;
  /** Last time studiod looked at it (HEAD), and what stood in the way then. */
  checkedAt: number | null;
  lastError: { code: string; message: string } | null;
  /**
   * Set when asking again failed permanently (the server cannot restore, the key is gone…):
   * the request is over; `studioctl restore --pending` reports it with `lastError` once, then it is removed.
   */
  failedAt?: number;
}

export interface DirIntentRecord {
  dir: string;
  startedAt: number;
}

const SYNC = { sync: true } as const;
type Json = Record<string, unknown>;

/** The part of the sublevel used here; `sync` is passed through to classic-level (abstract-level's typings omit it). */
interface RestoreDb {
  put(key: string, value: Json, options: { sync: boolean }): Promise<void>;
  del(key: string, options: { sync: boolean }): Promise<void>;
  get(key: string): Promise<Json | undefined>;
  values(range: { gt: string; lt: string }): AsyncIterable<Json>;
}

export class RestoreRecords {
  readonly #db: RestoreDb;

  constructor(catalogue: Catalogue) {
    this.#db = catalogue.sublevel('restore') as unknown as RestoreDb;
  }

  static requestKey(r: Pick<ArchiveRequestRecord, 'hash' | 'dir' | 'path'>): string {
    return `req!${r.hash}!${r.dir.replace(/\/+$/, '')}/${r.path}`;
  }

  async putRequest(r: ArchiveRequestRecord): Promise<void> {
    await this.#db.put(RestoreRecords.requestKey(r), r as unknown as Json, SYNC);
  }

  async getRequest(key: string): Promise<ArchiveRequestRecord | undefined> {
    return (await this.#db.get(key)) as unknown as ArchiveRequestRecord | undefined;
  }

  async deleteRequest(r: ArchiveRequestRecord): Promise<void> {
    await this.#db.del(RestoreRecords.requestKey(r), SYNC);
  }

  async requests(): Promise<ArchiveRequestRecord[]> {
    const out: ArchiveRequestRecord[] = [];
    for await (const v of this.#db.values({ gt: 'req!', lt: 'req!\xff' }))
      out.push(v as unknown as ArchiveRequestRecord);
    return out;
  }

  async putDir(dir: string, startedAt: number): Promise<void> {
    await this.#db.put(`dir!${dir}`, { dir, startedAt } satisfies DirIntentRecord as unknown as Json, SYNC);
  }

  async deleteDir(dir: string): Promise<void> {
    await this.#db.del(`dir!${dir}`, SYNC);
  }

  async dirs(): Promise<DirIntentRecord[]> {
    const out: DirIntentRecord[] = [];
    for await (const v of this.#db.values({ gt: 'dir!', lt: 'dir!\xff' })) out.push(v as unknown as DirIntentRecord);
    return out;
  }
}
