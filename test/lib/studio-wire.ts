/**
 * A raw protocol client for hostile-input tests: real ws over TLS, frames
 * encoded/decoded with the real codec, plus raw bytes for malformed frames.
 */
import WebSocket from 'ws';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  authPayload,
  certFingerprint,
  decodeFrame,
  encodeFrame,
  signAuth,
  MAGIC,
  PROTOCOL_VERSION,
  type Message,
} from '@studio321/protocol';

export class WireClient {
  readonly ws: WebSocket;
  readonly received: Message[] = [];
  closeCode: number | undefined;
  fingerprint = '';
  #waiters: Array<() => void> = [];
  readonly closed: Promise<number>;

  constructor(url: string) {
    this.ws = new WebSocket(url, { rejectUnauthorized: false, maxPayload: 64 * 1024 * 1024, perMessageDeflate: false });
    this.ws.on('upgrade', (res) => {
      const sock = res.socket as unknown as { getPeerCertificate(): { raw: Buffer } };
      this.fingerprint = certFingerprint(sock.getPeerCertificate().raw);
    });
    this.ws.on('message', (d) => {
      try {
        this.received.push(decodeFrame(d as Buffer));
      } catch {
        /* ignore */
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    this.ws.on('error', () => undefined);
    this.closed = new Promise((r) =>
      this.ws.on('close', (code) => {
        this.closeCode = code;
        for (const w of this.#waiters.splice(0)) w();
        r(code);
      }),
    );
  }

  async open(hello = true): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    if (hello) this.send({ t: 'hello', magic: MAGIC, version: PROTOCOL_VERSION, role: 'agent', software: 'test/0' });
    await this.next('auth-challenge');
  }

  send(m: Message): void {
    this.ws.send(encodeFrame(m));
  }

  sendRaw(b: Buffer | string, binary = true): void {
    this.ws.send(b, { binary });
  }

  async next<T extends Message['t']>(type: T, timeoutMs = 10_000): Promise<Extract<Message, { t: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((m) => m.t === type);
      if (i >= 0) return this.received.splice(i, 1)[0] as Extract<Message, { t: T }>;
      if (this.closeCode !== undefined)
        throw new Error(`closed (${this.closeCode}) before ${type}; got ${this.received.map((m) => m.t).join(',')}`);
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${type}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  /** The Error frame the studio sent before closing (and the close code). */
  async errorAndClose(): Promise<{ code: string; closeCode: number }> {
    const e = await this.next('error');
    const closeCode = await this.closed;
    return { code: e.code, closeCode };
  }

  challenge(): Extract<Message, { t: 'auth-challenge' }> | undefined {
    return undefined;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Open a session and authenticate as the agent whose data dir is given. */
export async function authedClient(url: string, agentDataDir: string): Promise<WireClient> {
  const pairing = JSON.parse(await readFile(join(agentDataDir, 'studio', 'pairing.json'), 'utf8')) as {
    agentId: string;
  };
  const key = await readFile(join(agentDataDir, 'studio', 'agent-key.pem'), 'utf8');
  const c = new WireClient(url);
  await new Promise<void>((resolve, reject) => {
    c.ws.once('open', () => resolve());
    c.ws.once('error', reject);
  });
  c.send({ t: 'hello', magic: MAGIC, version: PROTOCOL_VERSION, role: 'agent', software: 'test/0' });
  const ch = await c.next('auth-challenge');
  const sig = signAuth(
    key,
    authPayload({
      nonce: ch.nonce,
      sessionId: ch.sessionId,
      studioFingerprint: c.fingerprint,
      agentId: pairing.agentId,
    }),
  );
  c.send({ t: 'auth-proof', agentId: pairing.agentId, signature: sig });
  await c.next('auth-accepted');
  return c;
}

export async function agentIdentity(agentDataDir: string): Promise<{ agentId: string; key: string }> {
  const pairing = JSON.parse(await readFile(join(agentDataDir, 'studio', 'pairing.json'), 'utf8')) as {
    agentId: string;
  };
  return { agentId: pairing.agentId, key: await readFile(join(agentDataDir, 'studio', 'agent-key.pem'), 'utf8') };
}
