/**
 * Shared setup for cloud forwarder tests: a real LevelDB in a temp dir, a
 * forwarder on its 'cloud' sublevel, source files by hash, copies recorded.
 */
import { mkdtemp, rm, writeFile, truncate, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { Level } from 'level';
import { hashFile } from '@studio321/protocol';
import { S3Client, HeadObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import {
  CloudForwarder,
  type CloudCopyRecord,
  type CloudTargetConfig,
  type CloudDb,
  type CloudForwarderOptions,
} from '@studio321/studiod/cloud';
import { S3RVER_KEY, S3RVER_SECRET } from './s3rver.js';
import { waitFor as pollFor } from './wait-for.js';

export interface Asset {
  blake3: string;
  size: number;
  name: string;
  path: string;
}

export function target(
  name: string,
  endpoint: string,
  bucket: string,
  extra: Partial<CloudTargetConfig> = {},
): CloudTargetConfig {
  return {
    name,
    endpoint,
    region: 'us-east-1',
    bucket,
    accessKeyId: S3RVER_KEY,
    secretAccessKey: S3RVER_SECRET,
    storageClass: 'STANDARD',
    media: 'cloud-ssd',
    location: 'cloud-east',
    forcePathStyle: true,
    partSizeBytes: 5 * 1024 * 1024,
    ...extra,
  };
}

export class CloudFixture {
  dir = '';
  db!: Level<string, unknown>;
  sub!: CloudDb;
  forwarder!: CloudForwarder;
  copies: CloudCopyRecord[] = [];
  lost: Array<{ target: string; blake3: string; key: string; code: string }> = [];
  events: Array<Record<string, unknown>> = [];
  sources = new Map<string, string>();

  async setup(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 's321-cloud-'));
    this.db = new Level<string, unknown>(join(this.dir, 'catalogue'), { valueEncoding: 'json' });
    await this.db.open();
    this.sub = this.db.sublevel<string, unknown>('cloud', { valueEncoding: 'json' });
  }

  async start(targets: CloudTargetConfig[], extra: Partial<CloudForwarderOptions> = {}): Promise<CloudForwarder> {
    this.forwarder = new CloudForwarder({
      db: this.sub,
      targets,
      resolveSource: async (h) => {
        const p = this.sources.get(h);
        if (p === undefined) throw new Error(`no source for ${h}`);
        return p;
      },
      onCopyVerified: async (c) => {
        this.copies.push(c);
      },
      onCopyLost: async (l) => {
        this.lost.push(l);
      },
      log: (e) => {
        this.events.push(e);
      },
      retry: { baseMs: 20, maxMs: 200, parkedMs: 3600_000 },
      ...extra,
    });
    await this.forwarder.open();
    return this.forwarder;
  }

  async stop(): Promise<void> {
    await this.forwarder?.close();
  }

  /** A file of random bytes (or a sparse file when `sparse`), registered as a mirror copy. */
  async asset(size: number, name: string, opts: { sparse?: boolean } = {}): Promise<Asset> {
    const path = join(this.dir, `${name.replace(/[^A-Za-z0-9.]/g, '_')}.${randomBytes(4).toString('hex')}`);
    if (opts.sparse === true) {
      await writeFile(path, randomBytes(4096)); // a unique head, then a hole
      await truncate(path, size);
    } else {
      await writeFile(path, randomBytes(size));
    }
    const { blake3 } = await hashFile(path);
    this.sources.set(blake3, path);
    return { blake3, size, name, path };
  }

  async close(): Promise<void> {
    await this.stop().catch(() => undefined);
    await this.db?.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** An independent S3 client (not the forwarder's) to check what the server holds. */
export function independentClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_SECRET },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function headOrNull(
  c: S3Client,
  bucket: string,
  key: string,
): Promise<{ size: number; metadata: Record<string, string> } | null> {
  try {
    const r = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { size: r.ContentLength ?? -1, metadata: r.Metadata ?? {} };
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
    throw err;
  }
}

/** SHA-256 (hex) of an object as downloaded by the independent client. */
export async function downloadSha256(c: S3Client, bucket: string, key: string): Promise<string> {
  const r = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const h = createHash('sha256');
  for await (const chunk of r.Body as AsyncIterable<Uint8Array>) h.update(chunk);
  return h.digest('hex');
}

export async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path);
  try {
    for await (const chunk of fh.createReadStream({ highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Polls a condition until true or the deadline passes (no fixed sleeps). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  await pollFor(cond, what, timeoutMs, 10);
}
