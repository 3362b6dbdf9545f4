/**
 * The link server: `ws` over TLS at `wss://host:port/v1` (protocol/SPEC.md §2).
 * `maxPayload` = MAX_FRAME_BYTES, no compression; one LinkSession per connection;
 * a failing session never affects the others. Before authentication a connection
 * is bounded by the PreAuthGuard (caps, deadline, MAX_PREAUTH_BYTES) and pairing
 * attempts by the PairingThrottle.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import {
  AUTH_TIMEOUT_MS,
  DEAD_LINK_MS,
  MAX_CHUNK_BYTES,
  MAX_FRAME_BYTES,
  PING_INTERVAL_MS,
  PROTOCOL_PATH,
  type Logger,
} from '@studio321/protocol';
import type { Catalogue } from '../catalogue.js';
import type { Committer } from '../commit/commit.js';
import { STUDIO_CODES, StudioError } from '../errors.js';
import { mallocTrim, type MallocTrim, type MallocTrimStatus } from '../malloc-trim.js';
import { LinkSession, type SessionDeps, type SessionInfo } from './session.js';
import type { Staging } from '../commit/staging.js';
import type { TlsIdentity } from './tls-identity.js';
import { PairingThrottle, type PairingLimits } from './pairing-throttle.js';
import { PreAuthGuard, type PreAuthLimits } from './pre-auth-guard.js';
import { ChunkPool, interceptChunkFrames, type ChunkIntercept } from './chunk-receive.js';
import { fullGc, IdleReclaim, MemoryBudget } from './memory-budget.js';
import { SmallSlabs } from './small-slabs.js';
import { FairScheduler } from './fair-scheduler.js';

export interface LinkServerOptions {
  host: string;
  port: number;
  tls: TlsIdentity;
  windowBytes: number;
  catalogue: Catalogue;
  staging: Staging;
  committer: Committer;
  log: Logger;
  software: string;
  now?: () => number;
  /** Unauthenticated connections: caps and the deadline from accept to AuthAccepted. */
  preAuth: PreAuthLimits;
  pairing: PairingLimits;
  authTimeoutMs?: number;
  pingIntervalMs?: number;
  deadLinkMs?: number;
  /** Answers agents' VerdictRequests (session.ts); absent: the feature is not offered. */
  verdicts?: SessionDeps['verdicts'];
  mhl?: SessionDeps['mhl'];
  /** Chunk bytes all sessions together may hold unwritten (memory-budget.ts); default RECEIVE_BUDGET_BYTES. */
  receiveBudgetBytes?: number;
  /** Chunk bytes one session may have waiting for their turn (session.ts); default SESSION_QUEUE_BYTES. */
  sessionQueueBytes?: number;
  /** Files of one session past FileEnd whose commit has not ended, at most (file-receiver.ts MAX_COMMITTING). */
  maxCommitting?: number;
  /** Commits in flight for all sessions together, shared round-robin (fair-scheduler.ts); default COMMIT_SLOTS. */
  commitSlots?: number;
  /** How long the link is quiet before its memory is given back (memory-budget.ts IdleReclaim); default LINK_QUIET_MS. */
  quietMs?: number;
  /** The growth of heap and Buffers since the last reclaim that is worth a full GC; default RECLAIM_MIN_BYTES. */
  reclaimMinBytes?: number;
}

/** Where the link's memory is (tests, status). */
export interface LinkMemory {
  /** Chunk buffers allocated, in use (a session or a commit holds them) and idle in the pool. */
  chunkBuffers: { allocated: number; inUse: number; idle: number };
  /** Slabs of small files' bytes (small-slabs.ts): allocated, holding a file (or being cut), idle. */
  smallSlabs: { allocated: number; inUse: number; idle: number };
  /** Chunk bytes received and not yet handled, all sessions. */
  receiveHeld: number;
  /** The most Chunk bytes one session had waiting for their turn, and the times a session's socket paused at its bound. */
  sessionQueues: { maxBytes: number; pauses: number };
  /** Times the link gave its memory back after going quiet, and settling GCs after those (memory-budget.ts). */
  reclaims: number;
  settles: number;
  /** glibc's malloc_trim after those GCs (malloc-trim.ts): whether it is to be had, why not, what it gave back. */
  mallocTrim: MallocTrimStatus;
  /**
   * Sockets read into the receive path's own buffers (chunk-receive.ts ChunkIntercept.ownReads;
   * authenticated sessions, so far), and the Chunk data bytes read straight into pooled buffers.
   */
  ownReads: { sockets: number; directBytes: number };
}

export class LinkServer {
  readonly #o: LinkServerOptions;
  #https: Server | undefined;
  #wss: WebSocketServer | undefined;
  #sessions = new Set<LinkSession>();
  #port = 0;
  readonly #guard: PreAuthGuard;
  readonly #pairing: PairingThrottle;
  /**
   * Chunk buffers (MAX_CHUNK_BYTES each) shared by every session. It keeps as many idle as one
   * session's window and streamed-commit queue hold: fewer, and a busy link frees and allocates
   * 1 MiB buffers all the time, each costing page faults on its first write.
   */
  readonly #chunks: ChunkPool;
  /** Small files' bytes while they commit, all sessions (small-slabs.ts). */
  readonly #slabs = new SmallSlabs();
  /** One receive budget for every session (memory-budget.ts). */
  readonly budget: MemoryBudget;
  /** One commit scheduler for every session (fair-scheduler.ts). */
  readonly scheduler: FairScheduler;
  /** Gives a burst's memory back once the link is quiet. */
  readonly #reclaim: IdleReclaim;
  /** The process' malloc_trim, run by the reclaim after its GCs (or unavailable, and why). */
  readonly #trim: MallocTrim;
  /** The receive paths of live sessions, and the own-read figures of ended ones (memory()). */
  readonly #intercepts = new Set<ChunkIntercept>();
  readonly #ownReadsEnded = { sockets: 0, directBytes: 0 };
  /** Every session's most queued Chunk bytes and its pauses at its bound (memory()). */
  readonly #queueStats = { maxBytes: 0, pauses: 0 };

  constructor(opts: LinkServerOptions) {
    this.#o = opts;
    this.budget = new MemoryBudget(opts.receiveBudgetBytes);
    this.scheduler = new FairScheduler(opts.commitSlots);
    this.#guard = new PreAuthGuard(opts.preAuth, opts.log);
    this.#pairing = new PairingThrottle(opts.pairing, opts.now ?? Date.now);
    this.#chunks = new ChunkPool(Math.ceil(opts.windowBytes / MAX_CHUNK_BYTES) + 8);
    const trim = mallocTrim();
    this.#trim = trim;
    if (trim.unavailable !== undefined)
      opts.log.warn({ code: trim.unavailable.code, err: trim.unavailable }, trim.unavailable.message);
    this.#reclaim = new IdleReclaim({
      ...(opts.quietMs === undefined ? {} : { quietMs: opts.quietMs }),
      ...(opts.reclaimMinBytes === undefined ? {} : { minBytes: opts.reclaimMinBytes }),
      busy: () => this.scheduler.inFlight > 0 || this.scheduler.waiting > 0 || this.budget.held > 0,
      release: () => {
        this.#chunks.trim();
        this.#slabs.trim();
      },
      gc: fullGc(),
      trim: trim.available ? () => trim.trim() : undefined,
      ...(opts.now === undefined ? {} : { now: opts.now }),
    });
  }

  memory(): LinkMemory {
    const c = this.#chunks;
    const s = this.#slabs;
    return {
      chunkBuffers: { allocated: c.allocated, inUse: c.inUse, idle: c.idle },
      smallSlabs: { allocated: s.allocated, inUse: s.inUse, idle: s.idle },
      receiveHeld: this.budget.held,
      sessionQueues: { ...this.#queueStats },
      reclaims: this.#reclaim.reclaims,
      settles: this.#reclaim.settles,
      mallocTrim: this.#trim.status(),
      ownReads: [...this.#intercepts].reduce(
        (sum, i) => ({ sockets: sum.sockets + (i.owned ? 1 : 0), directBytes: sum.directBytes + i.directBytes }),
        { ...this.#ownReadsEnded },
      ),
    };
  }

  /** The operator made a pairing code: a lockout of everyone lifts. */
  pairingCodeCreated(): void {
    this.#pairing.codeCreated();
  }

  /** Connections not authenticated now, and refused at accept so far (status). */
  unauthenticated(): { pending: number; refused: number } {
    return { pending: this.#guard.pending, refused: this.#guard.refused };
  }

  get port(): number {
    return this.#port;
  }

  /** Cut every live session of `agentId` (after a revoke). Returns how many. */
  disconnectAgent(agentId: string): number {
    const live = [...this.#sessions].filter((s) => s.agentId === agentId);
    for (const s of live) s.supersede();
    return live.length;
  }

  sessions(): SessionInfo[] {
    return [...this.#sessions].map((s) => s.info());
  }

  async open(): Promise<number> {
    const o = this.#o;
    const https = createServer({
      key: o.tls.key,
      cert: o.tls.cert,
      minVersion: 'TLSv1.2',
      handshakeTimeout: o.preAuth.deadlineMs,
      headersTimeout: o.preAuth.deadlineMs,
      requestTimeout: o.preAuth.deadlineMs,
    });
    // Counted (or refused) at TCP accept, before the TLS handshake spends anything on it.
    https.prependListener('connection', (socket: Socket) => {
      this.#guard.accept(socket);
    });
    const wss = new WebSocketServer({
      server: https,
      path: PROTOCOL_PATH,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      clientTracking: false,
    });
    wss.on('connection', (ws, req) => {
      const socket = req.socket;
      if (!this.#guard.watch(socket)) {
        ws.terminate(); // cut while upgrading (deadline, byte limit)
        return;
      }
      const remote = { address: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 };
      const session = new LinkSession(ws, remote, {
        catalogue: o.catalogue,
        staging: o.staging,
        committer: o.committer,
        fingerprint: o.tls.fingerprint,
        windowBytes: o.windowBytes,
        software: o.software,
        log: o.log,
        now: o.now ?? Date.now,
        authTimeoutMs: o.authTimeoutMs ?? AUTH_TIMEOUT_MS,
        pingIntervalMs: o.pingIntervalMs ?? PING_INTERVAL_MS,
        deadLinkMs: o.deadLinkMs ?? DEAD_LINK_MS,
        pairing: this.#pairing,
        budget: this.budget,
        queueStats: this.#queueStats,
        ...(o.sessionQueueBytes === undefined ? {} : { queueBytes: o.sessionQueueBytes }),
        ...(o.maxCommitting === undefined ? {} : { maxCommitting: o.maxCommitting }),
        scheduler: this.scheduler,
        slabs: this.#slabs,
        chunks: this.#chunks,
        ...(o.verdicts === undefined ? {} : { verdicts: o.verdicts }),
        ...(o.mhl === undefined ? {} : { mhl: o.mhl }),
        onAuthenticated: async (current, agentId) => {
          this.#guard.authenticated(socket);
          // No longer counted by the pre-auth guard: the socket can be read into our own buffers.
          intercept?.ownReads();
          const older = [...this.#sessions].filter((s) => s !== current && s.agentId === agentId);
          for (const s of older) s.supersede();
          await Promise.all(older.map((s) => s.closed));
        },
      });
      // Chunk frames are parsed off the socket's reads into pooled buffers (chunk-receive.ts).
      const intercept = interceptChunkFrames(
        ws,
        this.#chunks,
        (msg, release) => {
          this.#reclaim.touch(msg.data.byteLength);
          session.receiveChunk(msg, release);
        },
        o.log,
      );
      // Frames keep the link busy; a session's end is when its memory can go.
      ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) =>
        this.#reclaim.touch(Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength),
      );
      ws.on('close', () => this.#reclaim.touch());
      if (intercept !== undefined) {
        this.#intercepts.add(intercept);
        ws.once('close', () => {
          this.#intercepts.delete(intercept);
          this.#ownReadsEnded.sockets += intercept.owned ? 1 : 0;
          this.#ownReadsEnded.directBytes += intercept.directBytes;
        });
      }
      this.#sessions.add(session);
      void session.closed.then(() => this.#sessions.delete(session));
      session.start();
    });
    wss.on('error', (err) => o.log.error({ err }, 'link server error'));
    https.on('tlsClientError', (err) => o.log.debug({ err }, 'TLS handshake failed'));
    await new Promise<void>((resolve, reject) => {
      https.once('error', (err) =>
        reject(
          new StudioError(
            STUDIO_CODES.targetIo,
            `Cannot listen on ${o.host}:${o.port} (${(err as NodeJS.ErrnoException).code ?? err.message}). Is another studiod running? Change listen.port.`,
            { cause: err },
          ),
        ),
      );
      https.listen(o.port, o.host, () => resolve());
    });
    this.#https = https;
    this.#wss = wss;
    this.#port = (https.address() as AddressInfo).port;
    return this.#port;
  }

  /** Stop accepting, tell every session we are shutting down, wait for them to finish. */
  async close(): Promise<void> {
    const https = this.#https;
    if (https === undefined) return;
    this.#https = undefined;
    this.#reclaim.close();
    https.close();
    for (const s of this.#sessions) s.shutdown();
    await Promise.all([...this.#sessions].map((s) => s.closed));
    this.#wss?.close();
    https.closeAllConnections();
  }
}
