/**
 * Test harness: a REAL s3rver (S3-compatible server) in a child process on
 * loopback, on a free port, with a data directory that survives stop/restart,
 * so tests can SIGKILL it mid-upload and bring it back on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./s3rver-child.mjs', import.meta.url));

/** s3rver's built-in account. It checks the access key id, not the V4 signature. */
export const S3RVER_KEY = 'S3RVER';
export const S3RVER_SECRET = 'S3RVER';

export class S3rverProcess {
  readonly buckets: string[];
  dir = '';
  port = 0;
  #child: ChildProcess | undefined;
  #ownDir = false;

  constructor(opts: { buckets: string[]; dir?: string }) {
    this.buckets = opts.buckets;
    if (opts.dir !== undefined) this.dir = opts.dir;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  async start(): Promise<void> {
    if (this.#child !== undefined) throw new TypeError('s3rver already running');
    if (this.dir === '') {
      this.dir = await mkdtemp(join(tmpdir(), 's321-s3rver-'));
      this.#ownDir = true;
    }
    const child = spawn(process.execPath, [CHILD, this.dir, String(this.port), ...this.buckets], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.#child = child;
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    this.port = await new Promise<number>((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`s3rver exited with ${code} before listening`));
      child.once('exit', onExit);
      lines.once('line', (line) => {
        child.off('exit', onExit);
        resolve((JSON.parse(line) as { port: number }).port);
      });
    });
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined;
    });
  }

  /** SIGKILL: the server vanishes mid-request, as a crashed or unreachable server would. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Same port, same data directory. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** Path of the file holding an object's bytes in s3rver's store (to alter it behind the forwarder's back). */
  objectPath(bucket: string, key: string): string {
    const parts = key.split('/');
    const last = parts.pop() as string;
    return join(this.dir, bucket, ...parts, `${last}._S3rver_object`);
  }

  async close(): Promise<void> {
    await this.kill();
    if (this.#ownDir) await rm(this.dir, { recursive: true, force: true });
  }
}
