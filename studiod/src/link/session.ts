/**
 * One agent session on the studio side (protocol/SPEC.md §3): Hello, pairing,
 * authentication, then Offer → Want → Chunk/Ack → FileEnd → Receipt | Nack.
 *
 * Frames are handled strictly in arrival order (one at a time); commits run
 * on a separate per-session chain so the next file's chunks keep flowing while
 * the previous file is committed. Memory per session is bounded by the window
 * (enforced: PROTO_WINDOW_EXCEEDED) plus one frame.
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  CodedError,
  ProtocolError,
  ProtoCode,
  decodeFrame,
  encodeFrame,
  authPayload,
  verifyAuth,
  parseAgentPublicKey,
  generateNonce,
  generateSessionId,
  normalizePairingCode,
  nameKey,
  validateSegment,
  validateRelativePath,
  MAGIC,
  PROTOCOL_VERSION,
  type Logger,
  type Message,
  type MessageOf,
  type OfferFile,
  type FileName,
  type ReceiptMessage,
} from '@studio321/protocol';
import type { Catalogue } from '../catalogue.js';
import type { Committer } from '../commit/commit.js';
import { LiveChunks } from './live-chunks.js';
import type { Staging, StagedFile } from '../commit/staging.js';

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
  /**
   * Called after a successful AuthProof, before AuthAccepted: the server closes
   * older sessions of the same agent (a reconnect after a half-open link) and
   * waits until they released their staged files.
   */
  onAuthenticated?: (session: LinkSession, agentId: string) => Promise<void>;
}

export interface SessionInfo {
  sessionId: string;
  agentId: string | undefined;
  remote: string;
  connectedAt: number;
  bytesReceived: number;
  filesCommitted: number;
  state: string;
}

interface Wanted {
  file: OfferFile;
  staged: StagedFile;
  /** Highest offset acknowledged to the agent. */
  acked: number;
  /** A background fsync + Ack in flight (writing continues meanwhile). */
  syncing?: Promise<void> | undefined;
  /** Streamed commit started with the file's first chunk (offset 0). */
  live?: LiveCommit | undefined;
}

/**
 * A commit whose durableWrite reads the chunks as they arrive (after each is
 * written to staging), so only fsync, read-back, link and the catalogue batch
 * remain after FileEnd. It never settles before FileEnd ends `chunks`; a cut or
 * a bad FileEnd fails `chunks`, which makes durableWrite remove its temps.
 */
interface LiveCommit {
  chunks: LiveChunks;
  /** Never rejects. */
  result: Promise<{ receipt: ReceiptMessage } | { err: unknown }>;
}

/** Chunk bytes queued between the link and a streamed commit's durableWrite. */
const LIVE_QUEUE_BYTES = 4 * 1024 * 1024;

type State = 'auth' | 'authed' | 'closed';

const CLOSE_CODE: Record<string, number> = {
  [ProtoCode.FrameTooLarge]: 1009,
  [ProtoCode.AuthRefused]: 1008,
  [ProtoCode.PairingRefused]: 1008,
  [ProtoCode.NotAuthenticated]: 1008,
  [ProtoCode.ShuttingDown]: 1001,
};

export class LinkSession {
  readonly sessionId = generateSessionId();
  readonly #ws: WebSocket;
  readonly #d: SessionDeps;
  readonly #nonce = generateNonce();
  readonly #log: Logger;
  readonly #remote: string;
  readonly #connectedAt: number;
  #state: State = 'auth';
  #socketGone = false;
  #failed = false;
  #gotHello = false;
  #proofSeen = false;
  #agentId: string | undefined;
  #queue: Promise<void> = Promise.resolve();
  #commitChain: Promise<void> = Promise.resolve();
  #wanted = new Map<string, Wanted>();
  #current: string | undefined;
  /** Chunk bytes received and not yet acknowledged (window accounting). */
  #inFlight = 0;
  #bytesReceived = 0;
  #filesCommitted = 0;
  #lastReceived: number;
  #lastSent: number;
  #timers: NodeJS.Timeout[] = [];
  #closedResolve!: () => void;
  readonly closed: Promise<void> = new Promise((r) => {
    this.#closedResolve = r;
  });

  constructor(ws: WebSocket, remote: string, deps: SessionDeps) {
    this.#ws = ws;
    this.#d = deps;
    this.#remote = remote;
    this.#connectedAt = deps.now();
    this.#lastReceived = this.#connectedAt;
    this.#lastSent = this.#connectedAt;
    this.#log = deps.log.child({ sessionId: this.sessionId, remote });
  }

  info(): SessionInfo {
    return {
      sessionId: this.sessionId,
      agentId: this.#agentId,
      remote: this.#remote,
      connectedAt: this.#connectedAt,
      bytesReceived: this.#bytesReceived,
      filesCommitted: this.#filesCommitted,
      state: this.#state,
    };
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
    });
    this.#send({ t: 'auth-challenge', nonce: this.#nonce, sessionId: this.sessionId });
    const authTimer = setTimeout(() => {
      if (this.#state === 'auth')
        this.#fail(
          new ProtocolError(ProtoCode.Timeout, 'Not authenticated in time. Reconnect and authenticate.', {
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

  get agentId(): string | undefined {
    return this.#agentId;
  }

  /** The same agent connected again: this (half-open) session is cut. */
  supersede(): void {
    this.#log.info({ agentId: this.#agentId }, 'superseded by a new session of the same agent');
    this.#failed = true;
    this.#ws.terminate();
  }

  /** Close with an Error frame (shutdown). */
  shutdown(): void {
    this.#fail(
      new ProtocolError(ProtoCode.ShuttingDown, 'The studio is shutting down. The agent reconnects by itself.', {
        retryable: true,
      }),
    );
  }

  #heartbeat(): void {
    const now = this.#d.now();
    if (now - this.#lastReceived >= this.#d.deadLinkMs) {
      this.#log.warn({ code: ProtoCode.Timeout }, 'dead link: nothing received, closing');
      this.#ws.terminate();
      return;
    }
    if (now - this.#lastSent >= this.#d.pingIntervalMs) this.#send({ t: 'ping', ts: Math.max(0, now) });
  }

  #send(msg: Message): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#lastSent = this.#d.now();
    this.#ws.send(encodeFrame(msg));
  }

  /** Send an Error frame and close this connection only. */
  #fail(err: CodedError): void {
    if (this.#state === 'closed') return;
    this.#failed = true;
    const level = err.code === ProtoCode.ShuttingDown ? 'info' : 'warn';
    this.#log[level]({ err, agentId: this.#agentId }, 'closing session');
    this.#send({ t: 'error', code: err.code, message: err.message.slice(0, 1000), retryable: err.retryable });
    const code = CLOSE_CODE[err.code] ?? 1002;
    this.#state = 'closed';
    this.#ws.close(code, err.code);
    // A peer that does not complete the close handshake is cut.
    const t = setTimeout(() => this.#ws.terminate(), 2000);
    t.unref();
  }

  #onMessage(data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    this.#lastReceived = this.#d.now();
    if (!isBinary) {
      this.#fail(
        new ProtocolError(
          ProtoCode.Malformed,
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
        err instanceof CodedError ? err : new ProtocolError(ProtoCode.Malformed, 'Malformed frame.', { cause: err }),
      );
      return;
    }
    if (msg.t === 'chunk') {
      // Window accounting at arrival, before queueing: bounds what this session buffers.
      this.#inFlight += msg.data.byteLength;
      if (this.#inFlight > this.#d.windowBytes) {
        this.#fail(
          new ProtocolError(
            ProtoCode.WindowExceeded,
            `More than ${this.#d.windowBytes} unacknowledged bytes in flight. Update field-agent.`,
          ),
        );
        return;
      }
    }
    if (msg.t === 'ping') {
      this.#send({ t: 'pong', ts: msg.ts });
      return;
    }
    if (msg.t === 'pong') return;
    this.#queue = this.#queue
      .then(() => this.#handle(msg))
      .catch((err: unknown) => {
        this.#fail(
          err instanceof CodedError
            ? err
            : new ProtocolError(ProtoCode.UnexpectedMessage, `Internal error handling ${msg.t}.`, { cause: err }),
        );
      });
  }

  async #handle(msg: Message): Promise<void> {
    // After a protocol error nothing more is acted on. After a plain network cut
    // (#socketGone) chunks already received are still written: they become durable
    // staging bytes and are not sent again.
    if (this.#state === 'closed' && !(this.#socketGone && !this.#failed && msg.t === 'chunk')) return;
    if (msg.t === 'hello') {
      if (this.#gotHello) throw new ProtocolError(ProtoCode.UnexpectedMessage, 'A second Hello in one session.');
      if (msg.role !== 'agent')
        throw new ProtocolError(ProtoCode.UnexpectedMessage, 'Hello role must be "agent" on the studio side.');
      this.#gotHello = true;
      return;
    }
    if (!this.#gotHello) throw new ProtocolError(ProtoCode.UnexpectedMessage, 'The first frame must be Hello.');
    if (this.#state === 'auth') {
      if (msg.t === 'pair-request') return this.#pair(msg);
      if (msg.t === 'auth-proof') return this.#auth(msg);
      throw new ProtocolError(
        ProtoCode.NotAuthenticated,
        `"${msg.t}" before authentication. Pair the agent (field-agent pair) and authenticate first.`,
      );
    }
    switch (msg.t) {
      case 'offer':
        return this.#offer(msg);
      case 'chunk':
        return this.#chunk(msg);
      case 'file-end':
        return this.#fileEnd(msg);
      case 'error':
        this.#log.warn({ code: msg.code, peerMessage: msg.message }, 'agent sent an error');
        this.#state = 'closed';
        this.#ws.close(1000);
        return;
      default:
        throw new ProtocolError(ProtoCode.UnexpectedMessage, `"${msg.t}" is not allowed from an agent now.`);
    }
  }

  async #pair(msg: MessageOf<'pair-request'>): Promise<void> {
    if (this.#proofSeen) throw new ProtocolError(ProtoCode.UnexpectedMessage, 'PairRequest after AuthProof.');
    parseAgentPublicKey(msg.publicKey); // PROTO_INVALID_FIELD unless an Ed25519 SPKI key
    const agentId = `agt_${randomBytes(8).toString('hex')}`;
    const now = this.#d.now();
    const ok = await this.#d.catalogue.pairAgent(normalizePairingCode(msg.code), now, {
      agentId,
      name: msg.agentName,
      publicKey: Buffer.from(msg.publicKey).toString('base64'),
      pairedAt: now,
    });
    if (!ok)
      throw new ProtocolError(
        ProtoCode.PairingRefused,
        'Pairing code unknown, expired or already used. Run `studioctl pair` for a new code.',
      );
    this.#log.info({ agentId, agentName: msg.agentName }, 'agent paired');
    this.#send({ t: 'pair-accepted', agentId, studioFingerprint: this.#d.fingerprint });
  }

  async #auth(msg: MessageOf<'auth-proof'>): Promise<void> {
    const refused = new ProtocolError(
      ProtoCode.AuthRefused,
      'Authentication refused. If this laptop should sync here, pair it again (studioctl pair, then field-agent pair).',
    );
    if (this.#proofSeen) throw refused;
    this.#proofSeen = true; // at most one proof per session; the nonce is forgotten after it
    const agent = await this.#d.catalogue.getAgent(msg.agentId);
    if (agent === undefined || agent.revokedAt !== undefined) throw refused;
    const payload = authPayload({
      nonce: this.#nonce,
      sessionId: this.sessionId,
      studioFingerprint: this.#d.fingerprint,
      agentId: msg.agentId,
    });
    if (!verifyAuth(Buffer.from(agent.publicKey, 'base64'), payload, msg.signature)) throw refused;
    this.#agentId = msg.agentId;
    await this.#d.onAuthenticated?.(this, msg.agentId);
    this.#state = 'authed';
    this.#log.info({ agentId: msg.agentId }, 'agent authenticated');
    await this.#d.catalogue.touchAgent(msg.agentId, this.#d.now());
    this.#send({ t: 'auth-accepted', agentId: msg.agentId });
  }

  #nack(hash: string, err: CodedError, resumeOffset: number): void {
    this.#send({
      t: 'nack',
      hash,
      code: err.code,
      message: err.message.slice(0, 1000),
      retryable: err.retryable,
      resumeOffset,
    });
  }

  static #cleanNames(names: FileName[]): FileName[] {
    return names.map((n) => ({
      shoot: validateSegment(n.shoot),
      card: validateSegment(n.card),
      path: validateRelativePath(n.path),
      mtime: n.mtime,
    }));
  }

  async #offer(msg: MessageOf<'offer'>): Promise<void> {
    const agentId = this.#agentId ?? '';
    const wants: Array<{ hash: string; offset: number }> = [];
    const have: string[] = [];
    const seen = new Set<string>();
    for (const f of msg.files) {
      if (seen.has(f.hash) || this.#wanted.has(f.hash))
        throw new ProtocolError(ProtoCode.UnexpectedMessage, `Hash ${f.hash} offered twice while outstanding.`);
      seen.add(f.hash);
      let names: FileName[];
      try {
        names = LinkSession.#cleanNames(f.names);
      } catch (err) {
        if (err instanceof ProtocolError) {
          this.#log.warn({ err, hash: f.hash }, 'refused name');
          this.#nack(f.hash, err, 0);
          continue;
        }
        throw err;
      }
      const file: OfferFile = { ...f, names };
      const receipt = await this.#d.committer.receiptFor(f.hash);
      if (receipt !== undefined) {
        have.push(f.hash);
        continue;
      }
      try {
        const staged = await this.#d.staging.acquire(f.hash, f.size, this.sessionId);
        this.#wanted.set(f.hash, { file, staged, acked: staged.durable });
        wants.push({ hash: f.hash, offset: staged.durable });
      } catch (err) {
        if (err instanceof CodedError) {
          this.#nack(f.hash, err, 0);
          continue;
        }
        throw err;
      }
    }
    this.#send({ t: 'want', batchId: msg.batchId, wants, have });
    for (const h of have) {
      const f = msg.files.find((x) => x.hash === h);
      if (f === undefined) continue;
      const names = LinkSession.#cleanNames(f.names);
      const now = this.#d.now();
      await this.#d.catalogue.addNamesAndAgentCopies(
        h,
        names.map((n) => ({
          key: nameKey(`${n.shoot}/${n.card}/${n.path}`),
          value: { hash: h, ...n, agentId, seenAt: now },
        })),
        f.copies.map((c) => ({
          hash: h,
          target: c.target,
          kind: 'agent' as const,
          path: '',
          size: f.size,
          device: c.device,
          media: c.media,
          location: c.location,
          offsite: false,
          method: c.method,
          verifiedAt: c.verifiedAt,
          agentId,
        })),
      );
      const receipt = await this.#d.committer.receiptFor(h);
      if (receipt !== undefined) this.#send(receipt);
    }
  }

  async #ack(w: Wanted): Promise<void> {
    const durable = await w.staged.sync();
    if (durable > w.acked) {
      this.#inFlight = Math.max(0, this.#inFlight - (durable - w.acked));
      w.acked = durable;
      this.#send({ t: 'ack', hash: w.file.hash, offset: durable });
    }
  }

  async #chunk(msg: MessageOf<'chunk'>): Promise<void> {
    const w = this.#wanted.get(msg.hash);
    if (w === undefined)
      throw new ProtocolError(
        ProtoCode.UnexpectedMessage,
        `Chunk for ${msg.hash}, which is not wanted in this session.`,
      );
    if (this.#current !== undefined && this.#current !== msg.hash)
      throw new ProtocolError(ProtoCode.UnexpectedMessage, `Chunk for ${msg.hash} before FileEnd of ${this.#current}.`);
    if (msg.offset !== w.staged.written)
      throw new ProtocolError(
        ProtoCode.UnexpectedMessage,
        `Chunk of ${msg.hash} at offset ${msg.offset}; expected ${w.staged.written} (a wrong or duplicated chunk).`,
        { detail: { expected: w.staged.written, got: msg.offset } },
      );
    if (msg.offset + msg.data.byteLength > w.file.size)
      throw new ProtocolError(
        ProtoCode.UnexpectedMessage,
        `Chunk of ${msg.hash} goes beyond the offered size ${w.file.size}.`,
      );
    this.#current = msg.hash;
    if (msg.offset === 0 && w.live === undefined && !this.#socketGone) w.live = this.#startLive(w);
    await w.staged.write(msg.offset, msg.data);
    this.#bytesReceived += msg.data.byteLength;
    // After staging (the resume point), the same bytes go to the streamed commit; waits while it is behind.
    if (w.live !== undefined && !this.#socketGone) await w.live.chunks.push(msg.data);
    if (w.staged.complete) {
      await this.#settleSync(w);
      await this.#ack(w);
    } else if (w.syncing === undefined && w.staged.written - w.acked >= this.#d.windowBytes / 4) {
      // fsync in the background while the next chunks are written: the Ack (sent after the
      // fsync) covers only bytes written before it started. At most one fsync per file in flight.
      w.syncing = this.#ack(w).then(
        () => {
          w.syncing = undefined;
        },
        (err: unknown) => {
          w.syncing = undefined;
          this.#fail(
            err instanceof CodedError
              ? err
              : new ProtocolError(ProtoCode.UnexpectedMessage, 'Staging fsync failed.', { cause: err }),
          );
        },
      );
    }
  }

  #startLive(w: Wanted): LiveCommit {
    const { hash, size } = w.file;
    const chunks = new LiveChunks(LIVE_QUEUE_BYTES);
    const agentId = this.#agentId ?? '';
    this.#log.debug({ hash, size }, 'streamed commit started');
    const result = this.#d.committer
      .commit({
        hash,
        size,
        staged: w.staged,
        names: w.file.names,
        agentCopies: w.file.copies,
        agentId,
        source: chunks,
      })
      .then(
        (receipt) => ({ receipt }),
        (err: unknown) => {
          chunks.abandon(); // it may have failed before reading: the link must not wait for it
          return { err };
        },
      );
    return { chunks, result };
  }

  /** The streamed commit will not complete (cut, bad FileEnd): its temps are removed before this resolves. */
  async #dropLive(w: Wanted, why: string): Promise<void> {
    const live = w.live;
    if (live === undefined) return;
    w.live = undefined;
    live.chunks.fail(
      new ProtocolError(ProtoCode.UnexpectedMessage, `Streamed commit of ${w.file.hash} stopped: ${why}.`, {
        retryable: true,
      }),
    );
    await live.result;
  }

  async #settleSync(w: Wanted): Promise<void> {
    if (w.syncing !== undefined) await w.syncing;
  }

  async #fileEnd(msg: MessageOf<'file-end'>): Promise<void> {
    const w = this.#wanted.get(msg.hash);
    if (w === undefined)
      throw new ProtocolError(
        ProtoCode.UnexpectedMessage,
        `FileEnd for ${msg.hash}, which is not wanted in this session.`,
      );
    if (this.#current !== undefined && this.#current !== msg.hash)
      throw new ProtocolError(
        ProtoCode.UnexpectedMessage,
        `FileEnd for ${msg.hash} before FileEnd of ${this.#current}.`,
      );
    this.#current = undefined;
    this.#wanted.delete(msg.hash);
    await this.#settleSync(w);
    if (msg.size !== w.file.size || w.staged.written !== w.file.size) {
      const err = new ProtocolError(
        ProtoCode.SizeMismatch,
        `FileEnd of ${msg.hash} says ${msg.size} bytes; offered ${w.file.size}, received ${w.staged.written}. The file is offered again.`,
        { retryable: true },
      );
      await this.#dropLive(w, 'size mismatch at FileEnd');
      await w.staged.close();
      this.#inFlight = Math.max(0, this.#inFlight - (w.staged.written - w.acked));
      this.#nack(msg.hash, err, w.staged.durable);
      return;
    }
    await this.#ack(w);
    w.live?.chunks.end(); // every byte is staged and fsynced: the streamed commit may finish
    const agentId = this.#agentId ?? '';
    this.#commitChain = this.#commitChain.then(() => this.#commit(w, agentId));
  }

  async #commit(w: Wanted, agentId: string): Promise<void> {
    const { hash, size } = w.file;
    try {
      this.#log.info({ hash, size, streamed: w.live !== undefined }, 'committing');
      let receipt: ReceiptMessage;
      if (w.live !== undefined) {
        const r = await w.live.result;
        if ('err' in r) throw r.err;
        receipt = r.receipt;
      } else {
        receipt = await this.#d.committer.commit({
          hash,
          size,
          staged: w.staged,
          names: w.file.names,
          agentCopies: w.file.copies,
          agentId,
        });
      }
      await w.staged.discard();
      this.#filesCommitted++;
      this.#log.info({ hash, size, path: receipt.copies[0]?.path }, 'committed');
      this.#send(receipt);
    } catch (err) {
      const coded =
        err instanceof CodedError
          ? err
          : new ProtocolError(ProtoCode.UnexpectedMessage, 'Commit failed.', { cause: err, retryable: true });
      if (coded.code === 'DURABLE_HASH_MISMATCH' || coded.code === 'DURABLE_SIZE_MISMATCH') {
        await w.staged.discard().catch(() => undefined);
        const mismatch = new ProtocolError(
          ProtoCode.HashMismatch,
          `The bytes received for ${hash} do not hash to it. Staging was discarded; the agent re-reads its verified copy and sends it again.`,
          { cause: err, retryable: true },
        );
        this.#log.warn({ err: mismatch, hash }, 'hash mismatch at commit');
        this.#nack(hash, mismatch, 0);
        return;
      }
      if (coded.code === 'DURABLE_READBACK_MISMATCH') {
        // A target disk returned other bytes than were written: never trust that staged file again.
        await w.staged.discard().catch(() => undefined);
        this.#log.error({ err: coded, hash }, 'read-back mismatch at commit: a target disk is corrupting data');
        this.#nack(hash, new CodedError(coded.code, coded.message, { cause: err, retryable: true }), 0);
        return;
      }
      await w.staged.close().catch(() => undefined);
      this.#log.error({ err: coded, hash }, 'commit failed');
      this.#nack(hash, coded, w.staged.durable);
    }
  }

  async #teardown(): Promise<void> {
    this.#socketGone = true;
    this.#state = 'closed';
    for (const t of this.#timers) clearTimeout(t);
    await this.#queue.catch(() => undefined);
    for (const w of this.#wanted.values()) {
      await this.#dropLive(w, 'the link closed');
      await this.#settleSync(w);
      await w.staged.close().catch(() => undefined);
    }
    this.#wanted.clear();
    await this.#commitChain.catch(() => undefined);
    this.#log.info(
      { agentId: this.#agentId, bytesReceived: this.#bytesReceived, filesCommitted: this.#filesCommitted },
      'session closed',
    );
    this.#closedResolve();
  }
}
