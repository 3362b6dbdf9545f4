/**
 * Test harness: a REAL S3 server, Ceph's RADOS Gateway on a single-node
 * cluster started by scripts/rgw.sh (which installs Debian's packages when
 * missing). Started once per test file: it takes seconds, not milliseconds.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/rgw.sh', import.meta.url));

export class RgwCluster {
  endpoint = '';
  accessKeyId = '';
  secretAccessKey = '';
  dir = '';
  /** Wall time of `rgw.sh start` up to the first signed PUT, in ms. */
  startMs = 0;

  async start(): Promise<void> {
    const t0 = performance.now();
    const dir = await mkdtemp(join(tmpdir(), 's321-rgw-'));
    this.dir = dir;
    const { stdout } = await run('sh', [SCRIPT, 'start', dir], { maxBuffer: 1 << 20 });
    const line = stdout.trim().split('\n').pop() ?? '';
    const info = JSON.parse(line) as { endpoint: string; accessKeyId: string; secretAccessKey: string };
    this.endpoint = info.endpoint;
    this.accessKeyId = info.accessKeyId;
    this.secretAccessKey = info.secretAccessKey;
    await this.createBucket('rgw-ready-probe');
    this.startMs = performance.now() - t0;
  }

  /** A client with the cluster's keys (or other ones), configured as a studiod target would be. */
  client(secretAccessKey = this.secretAccessKey): S3Client {
    return new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: this.accessKeyId, secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
    });
  }

  async createBucket(bucket: string, opts: { objectLock?: boolean } = {}): Promise<void> {
    const c = this.client();
    try {
      await c.send(
        new CreateBucketCommand({
          Bucket: bucket,
          ...(opts.objectLock === true ? { ObjectLockEnabledForBucket: true } : {}),
        }),
      );
    } finally {
      c.destroy();
    }
  }

  /** Resident memory of the cluster's daemons (mon, OSD, radosgw), in bytes. */
  async rss(): Promise<number> {
    let total = 0;
    const runDir = join(this.dir, 'run');
    for (const f of await readdir(runDir)) {
      if (!f.endsWith('.pid')) continue;
      const pid = (await readFile(join(runDir, f), 'utf8')).trim();
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
      if (kb !== undefined) total += Number(kb) * 1024;
    }
    return total;
  }

  async stop(): Promise<void> {
    if (this.dir === '') return;
    await run('sh', [SCRIPT, 'stop', this.dir]);
    this.dir = '';
  }
}
