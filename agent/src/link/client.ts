/**
 * The agent's end of one link session (protocol/SPEC.md §2–3): TLS with the
 * pinned studio fingerprint checked before any frame is sent, Hello, pairing or
 * authentication, then a stream of decoded messages and backpressured sends,
 * with heartbeats that detect a dead link.
 */
import { connect as tlsConnect, type TLSSocket, type ConnectionOptions } from 'node:tls';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type WsWebSocket from 'ws';
import {
  CodedError,
  ProtocolError,
  PROTO_CODES,
  MAGIC,
  PROTOCOL_VERSION,
  MAX_FRAME_BYTES,
  PING_INTERVAL_MS,
  DEAD_LINK_MS,
  authPayload,
  certFingerprint,
  decodeFrame,
  decodeStringsInJs,
  encodeFrame,
  fingerprintsEqual,
  signAuth,
  isRetryableSystemError,
  type AgentQueueReport,
  type Message,
  type MessageOf,
} from '@studio321/protocol';
import { LINK_CODES, LinkError } from './errors.js';
import { FRAME_HEADROOM, type SyncLink } from './sync-link.js';

/**
 * `ws` loaded as CommonJS: imported as ESM (its wrapper.mjs, each of its files through the CJS
 * translator) it cost about 0.1 s more CPU at every agent start, twice what `level` costs, and
 * twenty agents starting together on two cores wait for each other's start-up.
 */
const WebSocket = createRequire(import.meta.url)('ws') as typeof WsWebSocket;
type WebSocket = WsWebSocket;

// The agent decodes only small frames: msgpackr loads without its native string decoder (codec.ts).
decodeStringsInJs();

export const AGENT_SOFTWARE = 'field-agent/0.1.0';

/** Bytes handed to ws and not yet written to the socket before send() waits. */
const SEND_HIGH_WATER = 4 * 1024 * 1024;

/**
 * `frame` as one masked, final binary WebSocket frame, its header written into the bytes
 * before it (FRAME_HEADROOM); undefined when the frame's buffer has no room there.
 * The masking key is all zero, as `generateMask` below gives ws for every other frame.
 */
function inPlaceWsFrame(frame: Uint8Array): Buffer | undefined {
  const n = frame.byteLength;
  const header = n > 0xffff ? 14 : n > 125 ? 8 : 6;
  if (header > FRAME_HEADROOM || frame.byteOffset < header) return undefined;
  const b = Buffer.from(frame.buffer, frame.byteOffset - header, header + n);
  b[0] = 0x82; // FIN, opcode 2 (binary)
  if (header === 14) {
    b[1] = 0x80 | 127;
    b.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    b.writeUInt32BE(n >>> 0, 6);
  } else if (header === 8) {
    b[1] = 0x80 | 126;
    b.writeUInt16BE(n, 2);
  } else {
    b[1] = 0x80 | n;
  }
  b.writeUInt32BE(0, header - 4);
  return b;
}

export interface LinkClientOptions {
  url: string;
  /** The pinned fingerprint; undefined only while pairing. */
  pin?: string;
  pingIntervalMs?: number;
  deadLinkMs?: number;
  /** Connect + handshake deadline. */
  connectTimeoutMs?: number;
  now?: () => number;
  /** What waits in the studio queue, reported in the Hello (the studio warns when a laptop with unsynced files stays away). */
  queue?: AgentQueueReport;
}

/** Events: 'message' (Message after auth), 'close' (err: CodedError). */
export class LinkClient extends EventEmitter implements SyncLink {
  readonly url: string;
  #ws: WebSocket | undefined;
  /** The TLS socket under #ws: Chunk frames built in place are written to it directly. */
  #sock: TLSSocket | undefined;
  #opts: LinkClientOptions;
  #seenFingerprint: string | undefined;
  #window = 0;
  #features: readonly string[] = [];
  #challenge: MessageOf<'auth-challenge'> | undefined;
  #inbox: Message[] = [];
  #waiters: Array<{ types: Set<string>; resolve: (m: Message) => void; reject: (e: CodedError) => void }> = [];
  #closedErr: CodedError | undefined;
  #lastReceived = 0;
  #lastSent = 0;
  #timer: NodeJS.Timeout | undefined;
  #authed = false;
  #drainWaiters: Array<() => void> = [];
  /** Bytes passed to ws.send whose write callback has not run yet. */
  #unflushed = 0;

  constructor(opts: LinkClientOptions) {
    super();
    this.url = opts.url;
    this.#opts = opts;
  }

  get window(): number {
    return this.#window;
  }

  /** The optional requests the studio's Hello offers (StudioFeature); empty for an older studio. */
  get features(): readonly string[] {
    return this.#features;
  }

  get fingerprint(): string | undefined {
    return this.#seenFingerprint;
  }

  get closedError(): CodedError | undefined {
    return this.#closedErr;
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  /** Connect, check the pin, exchange Hello, receive the AuthChallenge. */
  async open(): Promise<void> {
    const pin = this.#opts.pin;
    const ws = new WebSocket(this.url, {
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handshakeTimeout: this.#opts.connectTimeoutMs ?? 15_000,
      rejectUnauthorized: false, // self-signed studio certificate: trust comes from the pin below
      // Client frames carry an all-zero masking key, so ws neither copies nor XORs each 1 MiB
      // chunk (and studiod's ws skips the unmask). Masking (RFC 6455 §10.3) protects plaintext
      // proxies from cache poisoning; this link is TLS end to end (plain ws:// only on loopback,
      // SPEC §2), so no intermediary sees frames and the key adds nothing (SPEC §2, design "Agent link").
      generateMask: (mask: Buffer) => {
        mask.fill(0);
      },
      createConnection: ((options: ConnectionOptions) => {
        const sock: TLSSocket = tlsConnect({ ...options, rejectUnauthorized: false });
        this.#sock = sock;
        sock.once('secureConnect', () => {
          const raw = sock.getPeerCertificate().raw;
          const seen = raw === undefined ? '' : certFingerprint(raw);
          this.#seenFingerprint = seen;
          if (pin !== undefined && !fingerprintsEqual(seen, pin)) {
            sock.destroy(
              new ProtocolError(
                PROTO_CODES.fingerprintMismatch,
                `The studio at ${this.url} presented certificate ${seen}, not the pinned ${pin}. Someone may be intercepting; if the studio was reinstalled, pair again.`,
                { detail: { seen, pinned: pin } },
              ),
            );
          }
        });
        return sock;
      }) as unknown as undefined,
    });
    this.#ws = ws;
    ws.binaryType = 'nodebuffer';
    const opened = new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', (err) => reject(this.#classify(err, true)));
      ws.once('close', () =>
        reject(
          this.#closedErr ??
            new LinkError(
              LINK_CODES.unreachable,
              `The studio at ${this.url} closed the connection during the handshake.`,
              { retryable: true },
            ),
        ),
      );
    });
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString()));
    ws.on('error', (err) => {
      if (this.#closedErr === undefined) this.#closedErr = this.#classify(err, false);
    });
    await opened;
    this.#lastReceived = this.#now();
    const q = this.#opts.queue;
    this.#send({
      t: 'hello',
      magic: MAGIC,
      version: PROTOCOL_VERSION,
      role: 'agent',
      software: AGENT_SOFTWARE,
      ...(q === undefined ? {} : { queue: { files: q.files, bytes: q.bytes } }),
    });
    const ping = this.#opts.pingIntervalMs ?? PING_INTERVAL_MS;
    const dead = this.#opts.deadLinkMs ?? DEAD_LINK_MS;
    this.#timer = setInterval(
      () => {
        const now = this.#now();
        if (now - this.#lastReceived >= dead) {
          this.#fail(
            new ProtocolError(PROTO_CODES.timeout, `Nothing heard from the studio for ${dead} ms; reconnecting.`, {
              retryable: true,
            }),
          );
          return;
        }
        if (now - this.#lastSent >= ping) this.#send({ t: 'ping', ts: Math.max(0, now) });
      },
      Math.max(10, Math.min(ping, Math.floor(dead / 3))),
    );
    this.#timer.unref();
    const hello = await this.next(['hello']);
    if (hello.t !== 'hello' || hello.role !== 'studio' || hello.window === undefined)
      throw this.#badPeer('Expected the studio Hello with a window.');
    this.#window = hello.window;
    this.#features = hello.features ?? [];
    const ch = await this.next(['auth-challenge']);
    if (ch.t !== 'auth-challenge') throw this.#badPeer('Expected AuthChallenge.');
    this.#challenge = ch;
  }

  /** Pair with a one-time code; returns the new agentId and the studio fingerprint (checked against TLS). */
  async pair(
    code: string,
    agentName: string,
    publicKeyDer: Uint8Array,
  ): Promise<{ agentId: string; studioFingerprint: string }> {
    this.#send({ t: 'pair-request', code, agentName, publicKey: publicKeyDer });
    const m = await this.next(['pair-accepted']);
    if (m.t !== 'pair-accepted') throw this.#badPeer('Expected PairAccepted.');
    if (this.#seenFingerprint === undefined || !fingerprintsEqual(m.studioFingerprint, this.#seenFingerprint)) {
      this.close();
      throw new ProtocolError(
        PROTO_CODES.fingerprintMismatch,
        `The studio says its fingerprint is ${m.studioFingerprint} but the TLS certificate seen is ${this.#seenFingerprint ?? 'none'}. Pairing abandoned: check for interception.`,
      );
    }
    return { agentId: m.agentId, studioFingerprint: m.studioFingerprint };
  }

  /** Authenticate with the challenge of this session. */
  async authenticate(agentId: string, privateKeyPem: string): Promise<void> {
    const ch = this.#challenge;
    if (ch === undefined || this.#seenFingerprint === undefined) throw new TypeError('authenticate() before open()');
    const payload = authPayload({
      nonce: ch.nonce,
      sessionId: ch.sessionId,
      studioFingerprint: this.#seenFingerprint,
      agentId,
    });
    this.#send({ t: 'auth-proof', agentId, signature: signAuth(privateKeyPem, payload) });
    const m = await this.next(['auth-accepted']);
    if (m.t !== 'auth-accepted') throw this.#badPeer('Expected AuthAccepted.');
    this.#authed = true;
    // Everything received from now on goes to 'message' listeners.
    for (const queued of this.#inbox.splice(0)) this.emit('message', queued);
  }

  /** Next message of one of `types` (before authentication only). Rejects when the link closes or on an Error frame. */
  next(types: string[]): Promise<Message> {
    const i = this.#inbox.findIndex((m) => types.includes(m.t));
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0] as Message);
    if (this.#closedErr !== undefined) return Promise.reject(this.#closedErr);
    return new Promise((resolve, reject) => this.#waiters.push({ types: new Set(types), resolve, reject }));
  }

  /** Send a frame; resolves when the socket buffer is below `highWater` (backpressure). */
  async send(msg: Message, highWater = SEND_HIGH_WATER): Promise<void> {
    if (this.#closedErr !== undefined) throw this.#closedErr;
    this.#send(msg);
    await this.#belowHighWater(highWater);
  }

  /**
   * Send an encoded frame as it is (SyncLink.sendFrame: a Chunk read straight into its frame),
   * framed in place when its buffer has the headroom; `written` runs when it was handed to the
   * socket, which encrypted it: the buffer is free then. Resolves once everything given to the
   * socket was written to it (its system buffer keeps the link busy): the next frame then goes
   * to TLS at once, as one write, while the sender still has its bytes in cache. (Node's TLS
   * socket copies buffers that waited together into one before it encrypts them.)
   */
  async sendFrame(frame: Uint8Array, written: () => void, then?: Message): Promise<void> {
    if (this.#closedErr !== undefined) throw this.#closedErr;
    const sock = this.#sock;
    // Corked, both frames reach TLS in one write: the small frame behind is copied, not the
    // socket written twice.
    if (then !== undefined) sock?.cork();
    try {
      this.#sendEncoded(frame, written, inPlaceWsFrame(frame));
      if (then !== undefined) this.#send(then);
    } finally {
      if (then !== undefined) sock?.uncork();
    }
    await this.#belowHighWater(0);
  }

  async #belowHighWater(highWater: number): Promise<void> {
    while (this.#unflushed > highWater && this.#closedErr === undefined) {
      await new Promise<void>((r) => this.#drainWaiters.push(r));
    }
    if (this.#closedErr !== undefined) throw this.#closedErr;
  }

  close(code = 1000): void {
    if (this.#closedErr === undefined)
      this.#closedErr = new LinkError(LINK_CODES.connectionLost, 'Link closed by this agent.', { retryable: true });
    this.#ws?.close(code);
    const t = setTimeout(() => this.#ws?.terminate(), 1000);
    t.unref();
  }

  /** Cut the TCP connection at once (tests, dead link). */
  terminate(): void {
    this.#ws?.terminate();
  }

  #send(msg: Message): void {
    this.#sendEncoded(encodeFrame(msg));
  }

  /**
   * `wsFrame`: `frame` already framed for WebSocket (inPlaceWsFrame), written to the socket as
   * one buffer. ws writes a frame as two buffers, header and payload, and Node's TLS socket
   * copies buffers written together into one fresh buffer before it encrypts them: one more
   * pass over every byte sent, and page faults on the fresh buffer. ws writes each frame to
   * the socket at once (no compression, no Blobs here), so frames written either way leave in
   * the order they were sent.
   */
  #sendEncoded(frame: Uint8Array, written?: () => void, wsFrame?: Buffer): void {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return;
    this.#lastSent = this.#now();
    this.#unflushed += frame.length;
    // The callback runs when the frame was handed to the socket: the backpressure signal.
    const done = (): void => {
      written?.();
      this.#unflushed -= frame.length;
      if (this.#unflushed <= 0 || this.#drainWaiters.length > 0) for (const r of this.#drainWaiters.splice(0)) r();
    };
    if (wsFrame !== undefined && this.#sock !== undefined) this.#sock.write(wsFrame, done);
    else ws.send(frame, done);
  }

  #badPeer(what: string): LinkError {
    const err = new LinkError(
      LINK_CODES.badPeer,
      `The studio broke the protocol: ${what} Update studiod or field-agent.`,
    );
    this.#fail(err);
    return err;
  }

  #fail(err: CodedError): void {
    if (this.#closedErr === undefined) this.#closedErr = err;
    this.#ws?.terminate();
  }

  #classify(err: Error, connecting: boolean): CodedError {
    if (err instanceof CodedError) return err;
    const cause = err;
    if (connecting) {
      return new LinkError(
        LINK_CODES.unreachable,
        `Cannot reach the studio at ${this.url} (${(err as NodeJS.ErrnoException).code ?? err.message}). Check the network; sync resumes by itself.`,
        { cause, retryable: true },
      );
    }
    if (/max payload|too big|Max payload/i.test(err.message)) {
      return new ProtocolError(PROTO_CODES.frameTooLarge, 'The studio sent a frame over the size limit.', { cause });
    }
    return new LinkError(
      LINK_CODES.connectionLost,
      `The link to the studio dropped (${(err as NodeJS.ErrnoException).code ?? err.message}). Sync resumes by itself.`,
      { cause, retryable: isRetryableSystemError(err) || true },
    );
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    this.#lastReceived = this.#now();
    if (!isBinary) {
      this.#fail(new ProtocolError(PROTO_CODES.malformed, 'The studio sent a text message.'));
      return;
    }
    let msg: Message;
    try {
      msg = decodeFrame(data);
    } catch (err) {
      const coded =
        err instanceof CodedError
          ? err
          : new ProtocolError(PROTO_CODES.malformed, 'Malformed frame from the studio.', { cause: err });
      this.#send({ t: 'error', code: coded.code, message: coded.message.slice(0, 1000), retryable: false });
      this.#fail(coded);
      return;
    }
    if (msg.t === 'ping') {
      this.#send({ t: 'pong', ts: msg.ts });
      return;
    }
    if (msg.t === 'pong') return;
    if (msg.t === 'error') {
      const err = msg.code.startsWith('PROTO_')
        ? ProtocolError.fromPeer(msg.code, `Studio: ${msg.message}`, { retryable: msg.retryable })
        : LinkError.fromPeer(msg.code, `Studio: ${msg.message}`, { retryable: msg.retryable });
      this.#closedErr = err;
      this.#ws?.close();
      this.#rejectAll(err);
      return;
    }
    if (this.#authed) {
      this.emit('message', msg);
      return;
    }
    const w = this.#waiters.findIndex((x) => x.types.has(msg.t));
    if (w >= 0) {
      const [waiter] = this.#waiters.splice(w, 1);
      waiter?.resolve(msg);
    } else {
      this.#inbox.push(msg);
    }
  }

  #rejectAll(err: CodedError): void {
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  #onClose(code: number, reason: string): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#closedErr === undefined) {
      this.#closedErr = new LinkError(
        LINK_CODES.connectionLost,
        `The link to the studio closed (${code}${reason ? ` ${reason}` : ''}). Sync resumes by itself.`,
        { retryable: true, detail: { code, reason } },
      );
    }
    for (const r of this.#drainWaiters.splice(0)) r();
    this.#rejectAll(this.#closedErr);
    this.emit('close', this.#closedErr);
  }
}
