/**
 * The agent's local status page: cards being offloaded (progress, speed, ETA,
 * safe to format), the queue to the studio, the link state and recent errors,
 * updated live with Server-Sent Events.
 *
 * Who can read it:
 *  - the server binds 127.0.0.1 only;
 *  - every request needs the per-install token (random, in `<dataDir>/status-token`,
 *    mode 0600, so other local users cannot read it): `?token=` on first load
 *    (answered with an HttpOnly SameSite=Strict cookie and a redirect that drops
 *    the token from the address bar), the cookie after that, or
 *    `Authorization: Bearer <token>` for scripts. Without it: 401, no data;
 *  - the Host header must be 127.0.0.1:<port> or localhost:<port> (403 otherwise),
 *    so a DNS-rebinding page cannot talk to it even with the cookie;
 *  - POSTs (pause/resume, the card commands, sync now) also need a same-origin Origin header;
 *  - a strict Content-Security-Policy; card labels are rendered as text only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@studio321/protocol/durable';
import { CodedError, errorCode, type Logger } from '@studio321/protocol';
import { AGENT_CODES, AgentError } from '../errors.js';
import { NDJSON } from '../paths.js';
import { STATUS_PAGE_CSS, STATUS_PAGE_HTML, STATUS_PAGE_JS } from './status-page-assets.js';
import type { LiveSnapshot, StatusActions, StatusProvider } from './snapshot.js';

// ---------------------------------------------------------------- token

export const STATUS_TOKEN_FILE = 'status-token';
export const STATUS_COOKIE = 's321_status';

export class StatusPageError extends AgentError {}

/** Read the per-install token, creating it (0600) on first use. */
export async function loadOrCreateStatusToken(dataDir: string): Promise<string> {
  const file = join(dataDir, STATUS_TOKEN_FILE);
  const fresh = randomBytes(32).toString('base64url');
  try {
    // Durable and never replacing: the first token written is the one every later start reads.
    await writeFileAtomic(file, `${fresh}\n`, { mode: 0o600, replace: false });
    return fresh;
  } catch (err) {
    if (errorCode(err) !== 'EEXIST') {
      throw new StatusPageError(
        AGENT_CODES.statusToken,
        `cannot create ${file}. Check that the agent's data directory is writable.`,
        { cause: err },
      );
    }
  }
  const st = await stat(file);
  if ((st.mode & 0o077) !== 0) await chmod(file, 0o600); // tighten a copied/restored file
  const token = (await readFile(file, 'utf8')).trim();
  if (!/^[A-Za-z0-9_-]{32,}$/.test(token)) {
    throw new StatusPageError(
      AGENT_CODES.statusToken,
      `${file} does not hold a valid token. Delete it and restart the agent to make a new one.`,
    );
  }
  return token;
}

// ---------------------------------------------------------------- server

export interface StatusPageOptions {
  provider: StatusProvider;
  /** Where the token lives (the agent's data directory). */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 picks a free one. Default 7322. */
  port?: number;
  actions?: StatusActions;
  /** Unmount a card that is safe to format (eject.ts); rejects with a CodedError otherwise. */
  eject?: (card: string) => Promise<unknown>;
  /**
   * What the field-agent CLI asks the running agent for while it holds the state DB
   * (cli/running-agent.ts), and the page's buttons: `POST /api/<name>?<query>`: agent-status, resolve,
   * ingest, sync, verify, forget, sync-now.
   */
  commands?: Record<string, AgentCommand>;
  log?: Logger;
  /** Least time between two live updates to one page, ms (default 250). */
  minUpdateIntervalMs?: number;
}

/** One command the running agent answers: the request's query, and its events (streamed to a CLI that asks so). */
export type AgentCommand = (
  query: URLSearchParams,
  io: { emit: (event: Record<string, unknown>) => void; signal: AbortSignal },
) => Promise<unknown>;

function cardCommand(fn: ((card: string) => Promise<unknown>) | undefined): AgentCommand | undefined {
  return fn && ((query) => fn(query.get('card') ?? ''));
}

export const DEFAULT_STATUS_PORT = 7322;

/** Which command buttons the page shows (the server has a handler for each). */
export interface PageCommands {
  verify: boolean;
  resolve: boolean;
  forget: boolean;
  syncNow: boolean;
}
const BIND_HOST = '127.0.0.1';

type State = 'closed' | 'opening' | 'open' | 'closing';

function tokenEquals(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

export class StatusPage {
  readonly #options: StatusPageOptions;
  #state: State = 'closed';
  #server: Server | undefined;
  #token = '';
  #port = 0;
  #streams = new Set<ServerResponse>();
  #sockets = new Set<Socket>();

  constructor(options: StatusPageOptions) {
    if (!options?.provider || typeof options.provider.snapshot !== 'function')
      throw new TypeError('StatusPage needs a provider');
    if (typeof options.dataDir !== 'string') throw new TypeError('StatusPage needs dataDir');
    this.#options = options;
  }

  get state(): State {
    return this.#state;
  }

  /** Port bound (after open). */
  get port(): number {
    return this.#port;
  }

  /** The address to open in a browser, with the token (tray menu "Open status page"). */
  get url(): string {
    if (this.#state !== 'open') throw new TypeError('StatusPage.url before open()');
    return `http://${BIND_HOST}:${this.#port}/?token=${this.#token}`;
  }

  async open(): Promise<void> {
    if (this.#state !== 'closed') throw new TypeError(`StatusPage.open() while ${this.#state}`);
    this.#state = 'opening';
    try {
      this.#token = await loadOrCreateStatusToken(this.#options.dataDir);
      const server = createServer((req, res) => {
        this.#handle(req, res).catch((err: unknown) => {
          this.#options.log?.error({ event: 'status-page-error', err }, 'status page request failed');
          if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end('internal error');
        });
      });
      server.on('connection', (s: Socket) => {
        this.#sockets.add(s);
        s.once('close', () => this.#sockets.delete(s));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: this.#options.port ?? DEFAULT_STATUS_PORT, host: BIND_HOST, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch((err: unknown) => {
        const code = errorCode(err);
        throw new StatusPageError(
          AGENT_CODES.statusPort,
          code === 'EADDRINUSE'
            ? `port ${this.#options.port ?? DEFAULT_STATUS_PORT} on ${BIND_HOST} is in use. Set statusPage.port in the agent config to a free port (or 0).`
            : `cannot serve the status page on ${BIND_HOST}. ${String(code ?? '')}`.trim(),
          { cause: err, retryable: code === 'EADDRINUSE' },
        );
      });
      this.#server = server;
      this.#port = (server.address() as AddressInfo).port;
      this.#state = 'open';
      this.#options.log?.info(
        { event: 'status-page-open', port: this.#port },
        `status page on http://${BIND_HOST}:${this.#port}/`,
      );
    } catch (err) {
      this.#state = 'closed';
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    const server = this.#server!;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of this.#sockets) s.destroy();
    });
    this.#server = undefined;
    this.#state = 'closed';
  }

  #hostAllowed(req: IncomingMessage): boolean {
    const host = req.headers.host;
    return host === `${BIND_HOST}:${this.#port}` || host === `localhost:${this.#port}`;
  }

  #authorised(req: IncomingMessage, url: URL): 'cookie' | 'header' | 'query' | undefined {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ') && tokenEquals(auth.slice(7).trim(), this.#token)) return 'header';
    const cookie = cookieValue(req.headers.cookie, STATUS_COOKIE);
    if (cookie !== undefined && tokenEquals(cookie, this.#token)) return 'cookie';
    const q = url.searchParams.get('token');
    if (q !== null && tokenEquals(q, this.#token)) return 'query';
    return undefined;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#hostAllowed(req)) {
      res.writeHead(403, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Forbidden: this page answers only to http://127.0.0.1 or http://localhost on its own port.\n');
      return;
    }
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const how = this.#authorised(req, url);
    if (how === undefined) {
      res.writeHead(401, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(
        "Unauthorised: open the status page from the field agent's tray menu, or open the address written in the file status-url in the agent's data directory.\n",
      );
      return;
    }
    if (how === 'query') {
      // Trade the token in the address for a cookie, and drop it from history.
      url.searchParams.delete('token');
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        'Set-Cookie': `${STATUS_COOKIE}=${this.#token}; HttpOnly; SameSite=Strict; Path=/`,
        Location: url.pathname + (url.search || ''),
      });
      res.end();
      return;
    }
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    switch (route) {
      case 'GET /':
        return this.#send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
      case 'GET /app.js':
        return this.#send(res, 200, 'text/javascript; charset=utf-8', STATUS_PAGE_JS);
      case 'GET /app.css':
        return this.#send(res, 200, 'text/css; charset=utf-8', STATUS_PAGE_CSS);
      case 'GET /api/status':
        return this.#send(
          res,
          200,
          'application/json',
          JSON.stringify(this.#decorate(await this.#options.provider.snapshot())),
        );
      case 'GET /events':
        return this.#events(req, res);
      case 'POST /api/pause':
      case 'POST /api/resume':
        return this.#action(req, res, how, url.pathname === '/api/pause' ? 'pause' : 'resume');
      case 'POST /api/eject':
        return this.#call(req, res, how, cardCommand(this.#options.eject), url.searchParams);
      default: {
        const name = url.pathname.startsWith('/api/') ? url.pathname.slice('/api/'.length) : '';
        const commands = this.#options.commands ?? {};
        if (req.method === 'POST' && Object.hasOwn(commands, name))
          return this.#call(req, res, how, commands[name], url.searchParams);
        return this.#send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      }
    }
  }

  #decorate(s: LiveSnapshot): LiveSnapshot & { controls: boolean; eject: boolean; commands: PageCommands } {
    const o = this.#options;
    return {
      ...s,
      controls: o.actions !== undefined,
      eject: o.eject !== undefined,
      commands: {
        verify: o.commands?.verify !== undefined,
        resolve: o.commands?.resolve !== undefined,
        forget: o.commands?.forget !== undefined,
        syncNow: o.commands?.['sync-now'] !== undefined,
      },
    };
  }

  #send(res: ServerResponse, status: number, type: string, body: string): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** A POST authorised by the cookie must come from this page (CSRF); a bearer token cannot be sent by another site. */
  #sameOrigin(req: IncomingMessage, how: 'cookie' | 'header'): boolean {
    return how === 'header' || req.headers.origin === `http://${req.headers.host}`;
  }

  /**
   * A command (eject, verify, and the CLI's `commands`): 200 with its result, 409 with a coded
   * error. Asked with `Accept: application/x-ndjson` (the CLI), the answer is a stream of JSON
   * lines instead: the command's events (progress, files) as they happen, then
   * `{"event":"result","result":…}` or `{"event":"error","error":{code,message,…}}`. The caller
   * going away aborts the command.
   */
  async #call(
    req: IncomingMessage,
    res: ServerResponse,
    how: 'cookie' | 'header',
    fn: AgentCommand | undefined,
    query: URLSearchParams,
  ): Promise<void> {
    if (!this.#sameOrigin(req, how))
      return this.#send(res, 403, 'text/plain; charset=utf-8', 'Forbidden: cross-origin request\n');
    if (!fn) return this.#send(res, 404, 'text/plain; charset=utf-8', 'not available\n');
    req.resume();
    const gone = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished)
        gone.abort(new AgentError(AGENT_CODES.aborted, 'the command that asked went away', { retryable: true }));
    };
    res.once('close', onClose);
    const stream = (req.headers.accept ?? '').includes(NDJSON);
    if (stream) res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': NDJSON });
    const line = (e: object): void => {
      if (!res.writableEnded) res.write(`${JSON.stringify(e)}\n`);
    };
    try {
      const result = await fn(query, { emit: stream ? line : () => undefined, signal: gone.signal });
      if (stream) {
        line({ event: 'result', result });
        res.end();
      } else this.#send(res, 200, 'application/json', JSON.stringify(result));
    } catch (err) {
      if (!(err instanceof CodedError)) throw err;
      if (stream) {
        line({ event: 'error', error: err.toJSON() });
        res.end();
      } else this.#send(res, 409, 'application/json', JSON.stringify(err.toJSON()));
    } finally {
      res.off('close', onClose);
    }
  }

  async #action(
    req: IncomingMessage,
    res: ServerResponse,
    how: 'cookie' | 'header',
    which: 'pause' | 'resume',
  ): Promise<void> {
    if (!this.#sameOrigin(req, how)) {
      return this.#send(res, 403, 'text/plain; charset=utf-8', 'Forbidden: cross-origin request\n');
    }
    const actions = this.#options.actions;
    if (!actions) return this.#send(res, 404, 'text/plain; charset=utf-8', 'not available\n');
    req.resume();
    if (which === 'pause') await actions.pauseSync();
    else await actions.resumeSync();
    this.#send(res, 204, 'text/plain', '');
  }

  #events(req: IncomingMessage, res: ServerResponse): void {
    const provider = this.#options.provider;
    const minInterval = this.#options.minUpdateIntervalMs ?? 250;
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
    this.#streams.add(res);
    let lastSent = 0;
    let timer: NodeJS.Timeout | undefined;
    let sending = false;
    let again = false;
    const push = async (): Promise<void> => {
      if (sending) {
        again = true;
        return;
      }
      sending = true;
      try {
        do {
          again = false;
          const snap = await provider.snapshot();
          if (res.writableEnded) return;
          res.write(`event: status\ndata: ${JSON.stringify(this.#decorate(snap))}\n\n`);
          lastSent = Date.now();
        } while (again);
      } catch (err) {
        this.#options.log?.warn({ event: 'status-snapshot-failed', err }, 'status snapshot failed');
      } finally {
        sending = false;
      }
    };
    const onChange = (): void => {
      if (timer) return;
      const wait = Math.max(0, lastSent + minInterval - Date.now());
      timer = setTimeout(() => {
        timer = undefined;
        void push();
      }, wait);
    };
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    heartbeat.unref();
    provider.on('change', onChange);
    const cleanup = (): void => {
      provider.off('change', onChange);
      clearInterval(heartbeat);
      if (timer) clearTimeout(timer);
      this.#streams.delete(res);
    };
    req.once('close', cleanup);
    res.once('close', cleanup);
    void push();
  }
}
