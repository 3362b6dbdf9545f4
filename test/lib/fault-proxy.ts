/**
 * A tiny real HTTP proxy in front of an S3 server that can answer with S3
 * errors instead of forwarding: a 503 SlowDown storm for the first N requests,
 * or AccessDenied for everything (s3rver does not check V4 signatures, so a
 * wrong secret cannot produce a real refusal there; the XML is what AWS sends).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FaultRule = (req: IncomingMessage, n: number) => { status: number; code: string; message: string } | null;

export const slowDownFirst =
  (count: number): FaultRule =>
  (_req, n) =>
    n <= count ? { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' } : null;

export const accessDenied: FaultRule = () => ({ status: 403, code: 'AccessDenied', message: 'Access Denied' });

export class FaultProxy {
  readonly upstreamPort: () => number;
  rule: FaultRule | null = null;
  requests = 0;
  faults = 0;
  #server: Server | undefined;

  constructor(upstreamPort: () => number) {
    this.upstreamPort = upstreamPort;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server!.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((r) => (this.#server as Server).listen(0, '127.0.0.1', r));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    const fault = this.rule?.(req, this.requests) ?? null;
    if (fault !== null) {
      this.faults++;
      req.resume();
      const body =
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code}</Code><Message>${fault.message}</Message>` +
        `<RequestId>FAULT${this.requests}</RequestId><HostId>fault-proxy</HostId></Error>`;
      res.writeHead(fault.status, {
        'content-type': 'application/xml',
        'content-length': Buffer.byteLength(body),
        connection: 'close',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const up = request(
      { host: '127.0.0.1', port: this.upstreamPort(), method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  }

  async close(): Promise<void> {
    const s = this.#server;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
