/**
 * One agent session on the studio side (protocol/SPEC.md §3): Hello, pairing,
 * authentication, then the files (Offer → Want → Chunk/Ack → FileEnd →
 * Receipt | Nack), which a FileReceiver handles.
 *
 * The session is one state machine; every change of state goes through
 * `#transition`, which checks it against TRANSITIONS:
 *
 *   awaiting-hello --Hello--> awaiting-proof --AuthProof--> authenticating --verified--> ready
 *   any of those four --Error sent or received, superseded--> closing --teardown done--> closed
 *   any of those four --the socket closed--> draining --teardown done--> closed
 *   draining --superseded--> closing
 *
 * What each state accepts (frames are handled strictly in arrival order, one at a time):
 *   awaiting-hello   Hello{role: agent}; anything else: PROTO_UNEXPECTED_MESSAGE
 *   awaiting-proof   PairRequest, AuthProof; a data frame: PROTO_NOT_AUTHENTICATED (never acted on)
 *   authenticating   the proof is being checked (the nonce is spent): a second proof is refused
 *   ready            Offer, Chunk, FileEnd (to the FileReceiver), Error from the agent (closes)
 *   closing          nothing: after a protocol error (or a cut by us) no frame is acted on
 *   draining         Chunks already received only: they become durable staging bytes, not sent again
 *   closed           nothing; `closed` has resolved
 * Ping and Pong are answered at arrival in every live state; Chunk bytes count
 * against the window at arrival (FileReceiver.admit), before they are queued.
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  CodedError,
  ProtocolError,
  PROTO_CODES,
  decodeFrame,
  encodeFrame,
  authPayload,
  verifyAuth,
  parseAgentPublicKey,
  generateNonce,
  generateSessionId,
  normalizePairingCode,
  MAGIC,
  MAX_CHUNK_BYTES,
  PROTOCOL_VERSION,
  StudioFeature,
  type AssetVerdict,
  type Logger,
  type Message,
  type MessageOf,
} from '@studio321/protocol';
import type { Catalogue } from '../catalogue.js';
import type { Committer } from '../commit/commit.js';
import type { Staging } from '../commit/staging.js';
import { FileReceiver } from './file-receiver.js';
import type { BudgetReader, MemoryBudget } from './memory-budget.js';
import type { SmallSlabs } from './small-slabs.js';
import type { ChunkPool } from './chunk-receive.js';
import { fairCommitter, type FairScheduler } from './fair-scheduler.js';
import type { PairingThrottle } from './pairing-throttle.js';

export interface SessionDeps {
  catalogue: Catalogue;
  staging: Staging;
  committer: Committer;
  fingerprint: string;
  windowBytes: number;
  software: string;
  log: Logger;
  now: () => number;
  authTimeoutMs: number;
  pingIntervalMs: number;
  deadLinkMs: number;
  /** Slows and locks out refused pairing attempts (shared by every session). */
  pairing: PairingThrottle;
  /**
   * Called after a successful AuthProof, before AuthAccepted: the server closes
   * older sessions of the same agent (a reconnect after a half-open link) and
   * waits until they released their staged files.
   */
  onAuthenticated?: (session: LinkSession, agentId: string) => Promise<void>;
  /**
   * The ledger's verdicts of the assets this agent sent or holds (LedgerService.agentVerdicts);
   * when given, the Hello lists the `verdict` feature and VerdictRequest is answered (SPEC §3.10).
   */
  verdicts?: (agentId: string, hashes: readonly string[]) => Promise<AssetVerdict[]>;
  /**
   * Keeps an agent's ASC MHL generation durably (StudioMhl.receiveAgentGeneration); when given, the
   * Hello lists the `mhl` feature and MhlGeneration is answered with MhlStored (SPEC §3.11).
   */
  mhl?: (agentId: string, g: MessageOf<'mhl-generation'>) => Promise<void>;
  /** The Chunk bytes all sessions may hold unwritten (memory-budget.ts); past it this socket is not read. */
  budget?: MemoryBudget;
  /** Chunk bytes this session may have waiting for their turn; past it its socket is not read. Default SESSION_QUEUE_BYTES. */
  queueBytes?: number;
  /** Where every session notes its most queued Chunk bytes and its pauses at `queueBytes` (LinkMemory.sessionQueues). */
  queueStats?: { maxBytes: number; pauses: number };
  /** Commit slots shared round-robin between sessions (fair-scheduler.ts); absent: none. */
  scheduler?: FairScheduler;
  /** The slabs small files received whole are kept in (small-slabs.ts); absent: a Buffer each. */
  slabs?: SmallSlabs;
  /** The link's chunk pool: a streamed commit reads its staged file back into its buffers; absent: a buffer each. */
  chunks?: ChunkPool;
  /** Files past FileEnd whose commit has not ended, at most (FileReceiverOptions.maxCommitting). */
  maxCommitting?: number;
}

export type SessionState =
  | 'awaiting-hello'
  | 'awaiting-proof'
  | 'authenticating'
  | 'ready'
  | 'closing'
  | 'draining'
  | 'closed';

/** The allowed edges of the session's state machine (see the module comment). */
const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  'awaiting-hello': ['awaiting-proof', 'closing', 'draining'],
  'awaiting-proof': ['authenticating', 'closing', 'draining'],
  authenticating: ['ready', 'closing', 'draining'],
  ready: ['closing', 'draining'],
  closing: ['closed'],
  draining: ['closing', 'closed'],
  closed: [],
};

/** States in which the socket is open and frames from it are read. */
const LIVE: ReadonlySet<SessionState> = new Set(['awaiting-hello', 'awaiting-proof', 'authenticating', 'ready']);
/** States before AuthAccepted (the authentication deadline applies). */
const UNAUTHENTICATED: ReadonlySet<SessionState> = new Set(['awaiting-hello', 'awaiting-proof', 'authenticating']);

export interface SessionInfo {
  sessionId: string;
  agentId: string | undefined;
  remote: string;
  connectedAt: number;
  bytesReceived: number;
  filesCommitted: number;
  state: SessionState;
}

const noop = (): void => undefined;

/**
 * Chunk bytes one session may have waiting for their turn in its frame queue; past it its socket is
 * not read until they are back under half (the rest of the window waits in the socket and the
 * agent). The queue waits for the disks; without this bound it grew to the whole window (64 MiB by
 * default), every MiB of it a pooled buffer touched for the first time (bench:sync 1 GiB: studiod
 * peak RSS 169–171 MiB and 40–45 k minor faults, against 127–130 MiB and 31–36 k with this bound).
 */
export const SESSION_QUEUE_BYTES = 16 * 1024 * 1024;

const CLOSE_CODE: Record<string, number> = {
  [PROTO_CODES.frameTooLarge]: 1009,
  [PROTO_CODES.authRefused]: 1008,
  [PROTO_CODES.pairingRefused]: 1008,
  [PROTO_CODES.notAuthenticated]: 1008,
  [PROTO_CODES.shuttingDown]: 1001,
};

export class LinkSession {
  readonly sessionId = generateSessionId();
  readonly #ws: WebSocket;
  readonly #d: SessionDeps;
  readonly #nonce = generateNonce();
  readonly #log: Logger;
  readonly #remote: string;
  /** The peer's source address (pairing lockouts are per address). */
  readonly #address: string;
  readonly #connectedAt: number;
  readonly #files: FileReceiver;
  #state: SessionState = 'awaiting-hello';
  #agentId: string | undefined;
  /** The agent's queue as its Hello reported it, less the receipts sent since (undefined: not reported). */
  #agentQueue: { files: number; bytes: number } | undefined;
  #queue: Promise<void> = Promise.resolve();
  #firstOfferLogged = false;
  #lastReceived: number;
  #lastSent: number;
  #timers: NodeJS.Timeout[] = [];
  /** The socket as the receive budget pauses it; a paused socket is quiet by our doing, not a dead link. */
  readonly #reader: BudgetReader = {
    pause: () => this.#ws.pause(),
    resume: () => {
      if (this.#queueFull) return; // read again once this session's own queue is short (#dequeued)
      this.#lastReceived = this.#d.now();
      this.#ws.resume();
    },
  };
  /** SessionDeps.queueBytes, or SESSION_QUEUE_BYTES. */
  readonly #queueBytes: number;
  /** Chunk bytes arrived on this socket whose turn in the frame queue is not over (SessionDeps.queueBytes). */
  #queuedChunkBytes = 0;
  /** The socket is not read because #queuedChunkBytes passed `queueBytes` (until it is back under half). */
  #queueFull = false;
  #closedResolve!: () => void;
  readonly closed: Promise<void> = new Promise((r) => {
    this.#closedResolve = r;
  });

  constructor(ws: WebSocket, remote: { address: string; port: number }, deps: SessionDeps) {
    this.#ws = ws;
    this.#d = deps;
    this.#queueBytes = deps.queueBytes ?? SESSION_QUEUE_BYTES;
    this.#remote = `${remote.address}:${remote.port}`;
    this.#address = remote.address;
    this.#connectedAt = deps.now();
    this.#lastReceived = this.#connectedAt;
    this.#lastSent = this.#connectedAt;
    this.#log = deps.log.child({ sessionId: this.sessionId, remote: this.#remote });
    this.#files = new FileReceiver(
      { send: (msg) => this.#send(msg), fail: (err) => this.#fail(err), log: this.#log },
      {
        sessionId: this.sessionId,
        catalogue: deps.catalogue,
        staging: deps.staging,
        committer:
          deps.scheduler === undefined
            ? deps.committer
            : fairCommitter(deps.committer, deps.scheduler, this.sessionId, (stagesMs) =>
                this.#log.info({ stagesMs }, 'first commit stages'),
              ),
        windowBytes: deps.windowBytes,
        now: deps.now,
        ...(deps.budget === undefined ? {} : { holdSmall: (bytes: number) => this.#holdSmall(bytes) }),
        ...(deps.slabs === undefined ? {} : { smallBytes: (size: number) => (deps.slabs as SmallSlabs).take(size) }),
        ...(deps.chunks === undefined ? {} : { readBuffer: () => (deps.chunks as ChunkPool).take(MAX_CHUNK_BYTES) }),
        ...(deps.maxCommitting === undefined ? {} : { maxCommitting: deps.maxCommitting }),
      },
    );
  }

  info(): SessionInfo {
    return {
      sessionId: this.sessionId,
      agentId: this.#agentId,
      remote: this.#remote,
      connectedAt: this.#connectedAt,
      bytesReceived: this.#files.bytesReceived,
      filesCommitted: this.#files.filesCommitted,
      state: this.#state,
    };
  }

  get state(): SessionState {
    return this.#state;
  }

  get agentId(): string | undefined {
    return this.#agentId;
  }

  /** The one place the state changes; an edge not in TRANSITIONS is a bug here, not the peer's fault. */
  #transition(to: SessionState): void {
    const from = this.#state;
    if (!TRANSITIONS[from].includes(to)) throw new TypeError(`LinkSession: no transition from ${from} to ${to}`);
    this.#state = to;
  }

  /** Start the session: send Hello and AuthChallenge, arm timers. */
  start(): void {
    this.#ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer | Buffer[] | ArrayBuffer, isBinary));
    this.#ws.on('close', () => {
      void this.#teardown();
    });
    this.#ws.on('error', (err) => {
      this.#log.warn({ err }, 'link socket error');
    });
    this.#send({
      t: 'hello',
      magic: MAGIC,
      version: PROTOCOL_VERSION,
      role: 'studio',
      software: this.#d.software,
      window: this.#d.windowBytes,
      ...(this.#d.verdicts === undefined && this.#d.mhl === undefined
        ? {}
        : {
            features: [
              ...(this.#d.verdicts === undefined ? [] : [StudioFeature.Verdict]),
              ...(this.#d.mhl === undefined ? [] : [StudioFeature.Mhl]),
            ],
          }),
    });
    this.#send({ t: 'auth-challenge', nonce: this.#nonce, sessionId: this.sessionId });
    const authTimer = setTimeout(() => {
      if (UNAUTHENTICATED.has(this.#state))
        this.#fail(
          new ProtocolError(PROTO_CODES.timeout, 'Not authenticated in time. Reconnect and authenticate.', {
            retryable: true,
          }),
        );
    }, this.#d.authTimeoutMs);
    const tick = Math.max(10, Math.min(this.#d.pingIntervalMs, Math.floor(this.#d.deadLinkMs / 3)));
    const hb = setInterval(() => this.#heartbeat(), tick);
    authTimer.unref();
    hb.unref();
    this.#timers.push(authTimer, hb);
  }

  /** The same agent connected again (or was revoked): this (maybe half-open) session is cut, nothing more is acted on. */
  supersede(): void {
    this.#log.info({ agentId: this.#agentId }, 'superseded by a new session of the same agent');
    if (LIVE.has(this.#state) || this.#state === 'draining') this.#transition('closing');
    this.#ws.terminate();
  }

  /** Close with an Error frame (shutdown). */
  shutdown(): void {
    this.#fail(
      new ProtocolError(PROTO_CODES.shuttingDown, 'The studio is shutting down. The agent reconnects by itself.', {
        retryable: true,
      }),
    );
  }

  #heartbeat(): void {
    const now = this.#d.now();
    if (
      now - this.#lastReceived >= this.#d.deadLinkMs &&
      !this.#queueFull &&
      this.#d.budget?.isPaused(this.#reader) !== true
    ) {
      this.#log.warn({ code: PROTO_CODES.timeout }, 'dead link: nothing received, closing');
      this.#ws.terminate();
      return;
    }
    if (now - this.#lastSent >= this.#d.pingIntervalMs) this.#send({ t: 'ping', ts: Math.max(0, now) });
  }

  #send(msg: Message): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    if (msg.t === 'receipt' && this.#agentQueue !== undefined) {
      // The agent drops a queue entry per receipt: what it still holds is the report less these.
      this.#agentQueue.files = Math.max(0, this.#agentQueue.files - 1);
      this.#agentQueue.bytes = Math.max(0, this.#agentQueue.bytes - msg.size);
    }
    this.#lastSent = this.#d.now();
    this.#ws.send(encodeFrame(msg));
  }

  /** Send an Error frame and close this connection only. A session already ending ignores it. */
  #fail(err: CodedError): void {
    if (!LIVE.has(this.#state)) return;
    const level = err.code === PROTO_CODES.shuttingDown ? 'info' : 'warn';
    this.#log[level]({ err, agentId: this.#agentId }, 'closing session');
    this.#send({ t: 'error', code: err.code, message: err.message.slice(0, 1000), retryable: err.retryable });
    this.#transition('closing');
    this.#ws.close(CLOSE_CODE[err.code] ?? 1002, err.code);
    // A peer that does not complete the close handshake is cut (the teardown clears the timer:
    // it would keep the ended session, and what it holds, alive for its 2 s).
    const t = setTimeout(() => this.#ws.terminate(), 2000);
    t.unref();
    this.#timers.push(t);
  }

  #onMessage(data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
    if (!LIVE.has(this.#state)) return;
    this.#lastReceived = this.#d.now();
    if (!isBinary) {
      this.#fail(
        new ProtocolError(
          PROTO_CODES.malformed,
          'Text WebSocket messages are not allowed; every frame is binary msgpack.',
        ),
      );
      return;
    }
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    let msg: Message;
    try {
      msg = decodeFrame(buf);
    } catch (err) {
      this.#fail(
        err instanceof CodedError ? err : new ProtocolError(PROTO_CODES.malformed, 'Malformed frame.', { cause: err }),
      );
      return;
    }
    this.#accept(msg, noop);
  }

  /**
   * A Chunk frame the receive path parsed itself (chunk-receive.ts), in arrival order
   * with the frames `ws` delivers; `release` gives its pooled buffer back once handled.
   */
  receiveChunk(msg: MessageOf<'chunk'>, release: () => void): void {
    if (!LIVE.has(this.#state)) {
      release();
      return;
    }
    this.#lastReceived = this.#d.now();
    this.#accept(msg, release);
  }

  /** A small file's bytes count against the receive budget until its commit ends (FileReceiverOptions.holdSmall). */
  #holdSmall(bytes: number): () => void {
    const budget = this.#d.budget;
    budget?.take(this.#reader, bytes);
    let held = true;
    return () => {
      if (held) budget?.release(bytes);
      held = false;
    };
  }

  /** A decoded frame: answered at once (Ping) or queued; `release` runs once the frame is done with. */
  #accept(msg: Message, release: () => void): void {
    try {
      // Window accounting at arrival, before queueing: bounds what this session buffers.
      if (msg.t === 'chunk') this.#files.admit(msg);
    } catch (err) {
      release();
      this.#fail(
        err instanceof CodedError ? err : new ProtocolError(PROTO_CODES.malformed, 'Malformed frame.', { cause: err }),
      );
      return;
    }
    if (msg.t === 'ping') {
      this.#send({ t: 'pong', ts: msg.ts });
      return;
    }
    if (msg.t === 'pong') return;
    // A Chunk's bytes count against the receive budget and this session's queue from now until its
    // turn in the queue is over.
    const held = msg.t === 'chunk' ? msg.data.byteLength : 0;
    if (held > 0) {
      this.#d.budget?.take(this.#reader, held);
      this.#queuedChunkBytes += held;
      const stats = this.#d.queueStats;
      if (stats !== undefined && this.#queuedChunkBytes > stats.maxBytes) stats.maxBytes = this.#queuedChunkBytes;
      if (this.#queuedChunkBytes > this.#queueBytes && !this.#queueFull) {
        this.#queueFull = true;
        if (stats !== undefined) stats.pauses++;
        this.#ws.pause();
      }
    }
    this.#queue = this.#queue
      .then(() => this.#handle(msg))
      .finally(() => {
        if (held > 0) {
          this.#dequeued(held);
          this.#d.budget?.release(held);
        }
      })
      .catch((err: unknown) => {
        this.#fail(
          err instanceof CodedError
            ? err
            : new ProtocolError(PROTO_CODES.unexpectedMessage, `Internal error handling ${msg.t}.`, { cause: err }),
        );
      })
      .finally(release);
  }

  /** `bytes` of Chunk data had their turn in the frame queue: back under half of `queueBytes`, the socket is read again. */
  #dequeued(bytes: number): void {
    this.#queuedChunkBytes -= bytes;
    if (!this.#queueFull || this.#queuedChunkBytes > this.#queueBytes / 2) return;
    this.#queueFull = false;
    if (this.#d.budget?.isPaused(this.#reader) === true) return; // the budget resumes it
    this.#lastReceived = this.#d.now();
    this.#ws.resume();
  }

  /** One frame, in the state the session is in when its turn comes. */
  async #handle(msg: Message): Promise<void> {
    switch (this.#state) {
      case 'awaiting-hello':
        if (msg.t !== 'hello') throw new ProtocolError(PROTO_CODES.unexpectedMessage, 'The first frame must be Hello.');
        if (msg.role !== 'agent')
          throw new ProtocolError(PROTO_CODES.unexpectedMessage, 'Hello role must be "agent" on the studio side.');
        if (msg.queue !== undefined) this.#agentQueue = { ...msg.queue };
        this.#transition('awaiting-proof');
        return;
      case 'awaiting-proof':
        if (msg.t === 'hello') throw LinkSession.#secondHello();
        if (msg.t === 'pair-request') return this.#pair(msg);
        if (msg.t === 'auth-proof') return this.#auth(msg);
        throw LinkSession.#notAuthenticated(msg);
      case 'authenticating':
        if (msg.t === 'hello') throw LinkSession.#secondHello();
        if (msg.t === 'pair-request')
          throw new ProtocolError(PROTO_CODES.unexpectedMessage, 'PairRequest after AuthProof.');
        if (msg.t === 'auth-proof') throw LinkSession.#authRefused(); // at most one proof per session
        throw LinkSession.#notAuthenticated(msg);
      case 'ready':
        switch (msg.t) {
          case 'hello':
            throw LinkSession.#secondHello();
          case 'offer':
            return this.#offer(msg);
          case 'chunk':
            return this.#files.chunk(msg);
          case 'file-end':
            return this.#files.fileEnd(msg);
          case 'verdict-request':
            return this.#verdict(msg);
          case 'mhl-generation':
            return this.#mhlGeneration(msg);
          case 'error':
            this.#log.warn({ code: msg.code, peerMessage: msg.message }, 'agent sent an error');
            this.#transition('closing');
            this.#ws.close(1000);
            return;
          default:
            throw new ProtocolError(PROTO_CODES.unexpectedMessage, `"${msg.t}" is not allowed from an agent now.`);
        }
      case 'draining':
        // After a plain network cut, chunks already received are still written: they become
        // durable staging bytes and are not sent again. Nothing else is acted on.
        if (msg.t === 'chunk') return this.#files.chunk(msg);
        return;
      case 'closing':
      case 'closed':
        return;
    }
  }

  /** An Offer, answered by the FileReceiver with a Want; the first one's time is logged (where a first commit's wait goes). */
  async #offer(msg: MessageOf<'offer'>): Promise<void> {
    if (this.#firstOfferLogged) return this.#files.offer(msg, this.#agentId ?? '');
    this.#firstOfferLogged = true;
    const t0 = performance.now();
    await this.#files.offer(msg, this.#agentId ?? '');
    this.#log.info({ files: msg.files.length, ms: Math.round(performance.now() - t0) }, 'first offer answered');
  }

  /** VerdictRequest: the ledger's verdicts, one per hash in its order (SPEC §3.10); refused when not offered in the Hello. */
  async #verdict(msg: MessageOf<'verdict-request'>): Promise<void> {
    const verdicts = this.#d.verdicts;
    if (verdicts === undefined)
      throw new ProtocolError(PROTO_CODES.unexpectedMessage, 'This studio did not offer verdicts in its Hello.');
    this.#send({ t: 'verdict', requestId: msg.requestId, verdicts: await verdicts(this.#agentId ?? '', msg.hashes) });
  }

  /** MhlGeneration: kept durably, then MhlStored (SPEC §3.11); refused when not offered in the Hello. */
  async #mhlGeneration(msg: MessageOf<'mhl-generation'>): Promise<void> {
    const keep = this.#d.mhl;
    if (keep === undefined)
      throw new ProtocolError(PROTO_CODES.unexpectedMessage, 'This studio did not offer mhl in its Hello.');
    await keep(this.#agentId ?? '', msg);
    this.#send({ t: 'mhl-stored', requestId: msg.requestId });
  }

  static #secondHello(): ProtocolError {
    return new ProtocolError(PROTO_CODES.unexpectedMessage, 'A second Hello in one session.');
  }

  static #notAuthenticated(msg: Message): ProtocolError {
    return new ProtocolError(
      PROTO_CODES.notAuthenticated,
      `"${msg.t}" before authentication. Pair the agent (field-agent pair) and authenticate first.`,
    );
  }

  /** One refusal for every reason: the Error frame MUST NOT say which it was (SPEC §3.3). */
  static #authRefused(): ProtocolError {
    return new ProtocolError(
      PROTO_CODES.authRefused,
      'Authentication refused. If this laptop should sync here, pair it again (studioctl pair, then field-agent pair).',
    );
  }

  async #pair(msg: MessageOf<'pair-request'>): Promise<void> {
    this.#d.pairing.check(this.#address); // PROTO_PAIRING_LOCKED after too many refusals
    parseAgentPublicKey(msg.publicKey); // PROTO_INVALID_FIELD unless an Ed25519 SPKI key
    const publicKey = Buffer.from(msg.publicKey).toString('base64');
    // A laptop is known by its key (field-agent keeps it across re-pairing): pairing it again
    // renews its agent record under the same id instead of adding a second agent.
    const known = (await this.#d.catalogue.listAgents()).find((a) => a.publicKey === publicKey);
    const agentId = known?.agentId ?? `agt_${randomBytes(8).toString('hex')}`;
    const now = this.#d.now();
    const ok = await this.#d.catalogue.pairAgent(normalizePairingCode(msg.code), now, {
      agentId,
      name: msg.agentName,
      publicKey,
      pairedAt: now,
      ...(known?.lastSeenAt === undefined ? {} : { lastSeenAt: known.lastSeenAt }),
    });
    if (!ok) {
      const { delayMs, lockedAll } = this.#d.pairing.refused(this.#address);
      if (lockedAll) {
        const dropped = await this.#d.catalogue.dropPairingCodes();
        this.#log.warn(
          { code: PROTO_CODES.pairingLocked, dropped },
          'too many refused pairing attempts: outstanding codes invalidated, pairing locked',
        );
      }
      // Guessing is slowed: the refusal waits longer with each one from this address.
      await new Promise<void>((r) => setTimeout(r, delayMs).unref());
      throw new ProtocolError(
        PROTO_CODES.pairingRefused,
        'Pairing code unknown, expired or already used. Run `studioctl pair` for a new code.',
      );
    }
    this.#d.pairing.accepted(this.#address);
    this.#log.info(
      { agentId, agentName: msg.agentName, ...(known === undefined ? {} : { previouslyPairedAt: known.pairedAt }) },
      known === undefined ? 'agent paired' : 'agent paired again: its pairing is renewed under the same agent id',
    );
    this.#send({ t: 'pair-accepted', agentId, studioFingerprint: this.#d.fingerprint });
  }

  async #auth(msg: MessageOf<'auth-proof'>): Promise<void> {
    this.#transition('authenticating'); // at most one proof per session; the nonce is forgotten after it
    const agent = await this.#d.catalogue.getAgent(msg.agentId);
    if (agent === undefined || agent.revokedAt !== undefined) throw LinkSession.#authRefused();
    const payload = authPayload({
      nonce: this.#nonce,
      sessionId: this.sessionId,
      studioFingerprint: this.#d.fingerprint,
      agentId: msg.agentId,
    });
    if (!verifyAuth(Buffer.from(agent.publicKey, 'base64'), payload, msg.signature)) throw LinkSession.#authRefused();
    this.#agentId = msg.agentId;
    await this.#d.onAuthenticated?.(this, msg.agentId);
    // Waiting for older sessions took time: the deadline, a shutdown or a cut may have ended this one.
    if (this.#state !== 'authenticating') return;
    this.#transition('ready');
    this.#log.info({ agentId: msg.agentId }, 'agent authenticated');
    this.#send({ t: 'auth-accepted', agentId: msg.agentId });
    // When it was last seen is kept for the alert on quiet laptops, not for this session: written
    // behind the catalogue's writes in flight (with twenty agents, group commits), which the
    // agent's AuthAccepted and first Offer do not wait for. The teardown's write follows it.
    this.#d.catalogue
      .touchAgent(msg.agentId, this.#d.now(), this.#agentQueue)
      .catch((err: unknown) => this.#log.warn({ err }, 'could not record when the agent was last seen'));
  }

  /** The socket closed (a cut, our close, the peer's close): drain, release staged files, settle commits. */
  async #teardown(): Promise<void> {
    if (LIVE.has(this.#state)) this.#transition('draining');
    this.#files.linkLost();
    for (const t of this.#timers) clearTimeout(t);
    await this.#queue.catch(() => undefined);
    this.#d.budget?.forget(this.#reader);
    await this.#files.close();
    if (this.#agentId !== undefined) {
      // Last seen now, with what it still had to send (the alert on laptops gone quiet reads it).
      await this.#d.catalogue
        .touchAgent(this.#agentId, this.#d.now(), this.#agentQueue)
        .catch((err: unknown) => this.#log.warn({ err }, 'could not record when the agent was last seen'));
    }
    this.#transition('closed');
    this.#log.info(
      {
        agentId: this.#agentId,
        bytesReceived: this.#files.bytesReceived,
        filesCommitted: this.#files.filesCommitted,
      },
      'session closed',
    );
    this.#closedResolve();
  }
}
