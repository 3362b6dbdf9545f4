/**
 * The local control socket studioctl talks to: a Unix socket, mode 0600
 * (owner only), JSON lines. Request `{"id":1,"cmd":"status","args":{}}`,
 * response `{"id":1,"ok":true,"result":…}` or
 * `{"id":1,"ok":false,"error":{"code","message","retryable"}}`. A long command
 * (restore) may send progress lines `{"id":1,"progress":{…}}` before its reply.
 *
 * Commands are registered by name (`register`) so later modules (ledger,
 * verify, cloud) add theirs without touching this file.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CodedError, errorCode, type Logger } from '@studio321/protocol';
import { STUDIO_CODES, StudioError } from './errors.js';

/** What a handler gets besides its arguments: a progress channel and the client's going away. */
export interface ControlContext {
  /** Sends `{"id", "progress": p}` to the client before the reply (dropped once the client is gone). */
  progress(p: unknown): void;
  /** Aborted when the client disconnects (studioctl interrupted). */
  signal: AbortSignal;
}

export type ControlHandler = (args: Record<string, unknown>, ctx: ControlContext) => Promise<unknown>;

/** Largest request line accepted (bytes). */
const MAX_REQUEST_BYTES = 64 * 1024;

export class ControlSocket {
  readonly path: string;
  readonly #log: Logger;
  readonly #handlers = new Map<string, ControlHandler>();
  #server: Server | undefined;
  #clients = new Set<Socket>();

  constructor(path: string, log: Logger) {
    this.path = path;
    this.#log = log;
  }

  /**
   * While set, every command is answered with STUDIO_STARTING and this sentence (what studiod is
   * doing and how far it is): studioctl can tell a starting studiod from one that is not running.
   */
  starting: (() => string) | undefined;

  register(cmd: string, handler: ControlHandler): void {
    if (this.#handlers.has(cmd)) throw new TypeError(`control command "${cmd}" registered twice`);
    this.#handlers.set(cmd, handler);
  }

  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    if (await isLive(this.path)) {
      throw new StudioError(
        STUDIO_CODES.controlSocket,
        `Another studiod is already serving ${this.path}. Stop it first, or use another stateDir.`,
        { detail: { path: this.path } },
      );
    }
    await unlink(this.path).catch((err: unknown) => {
      if (errorCode(err) !== 'ENOENT') throw err;
    });
    const server = createServer((sock) => this.#serve(sock));
    const oldMask = process.umask(0o177); // the socket is created 0600: no window where others could connect
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) =>
          reject(
            new StudioError(
              STUDIO_CODES.controlSocket,
              `Cannot bind the control socket ${this.path} (${errorCode(err) ?? err.message}).`,
              { cause: err },
            ),
          ),
        );
        server.listen(this.path, () => resolve());
      });
    } finally {
      process.umask(oldMask);
    }
    await chmod(this.path, 0o600);
    this.#server = server;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    for (const c of this.#clients) c.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(this.path).catch(() => undefined);
  }

  #serve(sock: Socket): void {
    this.#clients.add(sock);
    sock.on('close', () => this.#clients.delete(sock));
    sock.on('error', () => undefined);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (data: string) => {
      buf += data;
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.end(
          `${JSON.stringify({
            id: null,
            ok: false,
            error: { code: STUDIO_CODES.controlRequest, message: 'Request too large.', retryable: false },
          })}\n`,
        );
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== '') void this.#answer(sock, line);
      }
    });
  }

  async #answer(sock: Socket, line: string): Promise<void> {
    let id: unknown = null;
    try {
      let req: unknown;
      try {
        req = JSON.parse(line);
      } catch (err) {
        throw new StudioError(STUDIO_CODES.controlRequest, 'Control request is not JSON.', { cause: err });
      }
      if (req === null || typeof req !== 'object')
        throw new StudioError(STUDIO_CODES.controlRequest, 'Control request must be an object.');
      const r = req as { id?: unknown; cmd?: unknown; args?: unknown };
      id = r.id ?? null;
      if (this.starting !== undefined)
        throw new StudioError(
          STUDIO_CODES.starting,
          `studiod is starting: ${this.starting()}. Run the command again when it has started.`,
          { retryable: true },
        );
      const handler = typeof r.cmd === 'string' ? this.#handlers.get(r.cmd) : undefined;
      if (handler === undefined)
        throw new StudioError(
          STUDIO_CODES.controlRequest,
          `Unknown command ${JSON.stringify(r.cmd)}. Known: ${[...this.#handlers.keys()].join(', ')}.`,
        );
      const args = r.args !== null && typeof r.args === 'object' ? (r.args as Record<string, unknown>) : {};
      const gone = new AbortController();
      const onClose = (): void => gone.abort(new Error('the control client disconnected'));
      sock.once('close', onClose);
      const ctx: ControlContext = {
        progress: (p) => {
          if (!sock.destroyed && sock.writable) sock.write(`${JSON.stringify({ id, progress: p })}\n`);
        },
        signal: gone.signal,
      };
      let result: unknown;
      try {
        result = await handler(args, ctx);
      } finally {
        sock.off('close', onClose);
      }
      sock.write(`${JSON.stringify({ id, ok: true, result })}\n`);
    } catch (err) {
      const coded =
        err instanceof CodedError
          ? err
          : new StudioError(
              STUDIO_CODES.controlRequest,
              `Command failed: ${err instanceof Error ? err.message : String(err)}`,
              { cause: err },
            );
      if (!(err instanceof CodedError)) this.#log.error({ err }, 'control command failed');
      sock.write(
        `${JSON.stringify({
          id,
          ok: false,
          error: { code: coded.code, message: coded.message, retryable: coded.retryable },
        })}\n`,
      );
    }
  }
}

function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Client side (studioctl, tests): one request, one response. Progress lines the
 * server sends before the reply go to `onProgress`; each one restarts the timeout.
 */
export async function controlRequest(
  path: string,
  cmd: string,
  args: Record<string, unknown> = {},
  timeoutMs = 30_000,
  onProgress?: (p: unknown) => void,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        s.destroy();
        reject(
          new StudioError(STUDIO_CODES.notRunning, `studiod did not answer on ${path} within ${timeoutMs} ms.`, {
            retryable: true,
          }),
        );
      }, timeoutMs);
    };
    arm();
    s.setEncoding('utf8');
    s.once('connect', () => s.write(`${JSON.stringify({ id: 1, cmd, args })}\n`));
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let res: {
          ok?: boolean;
          progress?: unknown;
          result?: unknown;
          error?: { code: string; message: string; retryable: boolean };
        };
        try {
          res = JSON.parse(line) as typeof res;
        } catch (err) {
          clearTimeout(timer);
          s.destroy();
          reject(new StudioError(STUDIO_CODES.controlRequest, 'studiod sent an unreadable answer.', { cause: err }));
          return;
        }
        if (res.ok === undefined && res.progress !== undefined) {
          arm();
          onProgress?.(res.progress);
          continue;
        }
        clearTimeout(timer);
        s.destroy();
        if (res.ok === true) resolve(res.result);
        else
          reject(
            StudioError.fromPeer(res.error?.code ?? STUDIO_CODES.controlRequest, res.error?.message ?? 'error', {
              retryable: res.error?.retryable ?? false,
            }),
          );
        return;
      }
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new StudioError(
          STUDIO_CODES.notRunning,
          `Cannot reach studiod at ${path} (${errorCode(err) ?? err.message}). Is studiod running, and are you its user?`,
          { cause: err, retryable: true },
        ),
      );
    });
    // studiod went away mid-command (stopped, killed): no reply will come. A settled promise ignores this.
    s.once('close', () => {
      clearTimeout(timer);
      reject(
        new StudioError(
          STUDIO_CODES.notRunning,
          `studiod at ${path} closed the connection before answering (stopped or restarted?). Run the command again.`,
          { retryable: true },
        ),
      );
    });
  });
}
