/**
 * One `field-agent run` per data directory.
 *
 * The lock itself is LevelDB's LOCK file (an fcntl lock held by the kernel
 * for as long as the process lives): a tiny database at
 * `<dataDir>/instance-lock/` is opened and kept open. A second process gets
 * LEVEL_LOCKED; a process killed with SIGKILL (or a power cut) releases it, so
 * there is no stale lock to clean up by hand and no pid-reuse guess.
 *
 * Next to it `<dataDir>/field-agent.pid` holds the owner's pid, only so that the
 * refusal can say which process holds the lock. It is written atomically
 * (temp + rename) after the lock is held and removed on release.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@studio321/protocol/durable';
import { Level } from 'level';
import { EXIT, hasCodeInChain } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from './errors.js';

/** `field-agent run` exits with this when another agent holds the lock (the service units do not restart on it). */
export const ALREADY_RUNNING_EXIT_CODE = EXIT.notSafe;

/** AGENT_ALREADY_RUNNING or AGENT_LOCK_FAILED (its own class for its name in logs). */
export class InstanceLockError extends AgentError {}

export interface InstanceLockInfo {
  pid: number;
  startedAt: string;
}

type State = 'closed' | 'opening' | 'open' | 'closing';

export class InstanceLock {
  readonly dataDir: string;
  readonly pidFile: string;
  readonly lockDir: string;
  #db: Level<string, string> | undefined;
  #state: State = 'closed';

  constructor(dataDir: string) {
    this.dataDir = dataDir;
    this.pidFile = join(dataDir, 'field-agent.pid');
    this.lockDir = join(dataDir, 'instance-lock');
  }

  get state(): State {
    return this.#state;
  }

  /** Take the lock or throw AGENT_ALREADY_RUNNING (naming the holder's pid) / AGENT_LOCK_FAILED. */
  async open(): Promise<void> {
    if (this.#state !== 'closed') throw new TypeError(`InstanceLock.open() while ${this.#state}`);
    this.#state = 'opening';
    try {
      await mkdir(this.dataDir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
        throw new InstanceLockError(
          AGENT_CODES.lockFailed,
          `cannot create the agent data directory ${this.dataDir}. Check the path and its permissions.`,
          { cause: err, detail: { dataDir: this.dataDir } },
        );
      });
      const db = new Level<string, string>(this.lockDir);
      try {
        await db.open();
      } catch (err) {
        if (hasCodeInChain(err, 'LEVEL_LOCKED')) {
          const holder = await this.readHolder();
          const who = holder ? `process ${holder.pid} (started ${holder.startedAt})` : 'another process';
          throw new InstanceLockError(
            AGENT_CODES.alreadyRunning,
            `field-agent is already running as ${who} with data directory ${this.dataDir}. ` +
              'Use that one (field-agent status), or stop it before starting another.',
            { cause: err, detail: { dataDir: this.dataDir, ...(holder ? { pid: holder.pid } : {}) } },
          );
        }
        throw new InstanceLockError(
          AGENT_CODES.lockFailed,
          `cannot take the agent lock in ${this.lockDir}. Check that the data directory is writable.`,
          { cause: err, detail: { dataDir: this.dataDir } },
        );
      }
      this.#db = db;
      const info: InstanceLockInfo = { pid: process.pid, startedAt: new Date().toISOString() };
      await writeFileAtomic(this.pidFile, `${JSON.stringify(info)}\n`, { mode: 0o600 });
      this.#state = 'open';
    } catch (err) {
      await this.#db?.close().catch(() => undefined);
      this.#db = undefined;
      this.#state = 'closed';
      throw err;
    }
  }

  /** The pid file's content, or undefined when there is none (or it is unreadable). */
  async readHolder(): Promise<InstanceLockInfo | undefined> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.pidFile, 'utf8'));
      if (
        typeof parsed === 'object' &&
        parsed !== null &&
        typeof (parsed as InstanceLockInfo).pid === 'number' &&
        typeof (parsed as InstanceLockInfo).startedAt === 'string'
      ) {
        return parsed as InstanceLockInfo;
      }
      return undefined;
    } catch {
      return undefined;
    }
  }

  /** Release the lock (idempotent). */
  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    const holder = await this.readHolder();
    if (holder?.pid === process.pid) await rm(this.pidFile, { force: true });
    await this.#db?.close();
    this.#db = undefined;
    this.#state = 'closed';
  }
}
