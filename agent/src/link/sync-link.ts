/**
 * What a sync pass (sync-pass.ts) needs of the link, and nothing more: the studio's
 * window, sending a frame with backpressure, the studio's messages and the link's
 * end as events, and closing. LinkClient is the real one; a test drives a pass
 * against a fake studio through this interface, without a socket.
 */
import type { CodedError, Message } from '@studio321/protocol';

/**
 * Bytes a sender keeps free in its buffer before each frame it gives to `sendFrame`: the
 * link may write its own header there (a WebSocket frame header, at most 14 bytes), so that
 * header and frame leave as one buffer.
 */
export const FRAME_HEADROOM = 14;

export interface SyncLink {
  /** Bytes of Chunk data that may be sent and not yet acknowledged (the studio's Hello, SPEC §3.5). */
  readonly window: number;
  /** Why the link closed; undefined while it is open. */
  readonly closedError: CodedError | undefined;
  /** Sends one frame; resolves when the link can take more (backpressure); rejects once it is closed. */
  send(msg: Message): Promise<void>;
  /**
   * Sends a frame already encoded (a Chunk built in place, encodeChunkFrame) without copying it;
   * `written` runs once its bytes left for the socket, after which the caller may reuse it.
   * The FRAME_HEADROOM bytes before `frame` in its buffer are the link's to overwrite.
   * Backpressure as `send`. Optional: a pass falls back to `send` without it.
   * `then`: a message sent right behind the frame, in the same write to the socket when the link
   * can (a file's FileEnd behind its last Chunk: one TLS record and one system call less).
   */
  sendFrame?(frame: Uint8Array, written: () => void, then?: Message): Promise<void>;
  /** Closes the link; 'close' follows. */
  close(): void;
  /** 'message': each message of the studio after authentication; 'close': once, with why it closed. */
  on(event: 'message', listener: (m: Message) => void): unknown;
  on(event: 'close', listener: (err: CodedError) => void): unknown;
  off(event: 'message', listener: (m: Message) => void): unknown;
  off(event: 'close', listener: (err: CodedError) => void): unknown;
}

/**
 * Sends `msg` and resolves with the first studio message `pick` accepts (a request's answer);
 * rejects with why the link closed before it came.
 */
export async function request<T>(link: SyncLink, msg: Message, pick: (m: Message) => T | undefined): Promise<T> {
  const answer = new Promise<T>((resolve, reject) => {
    const onMessage = (m: Message): void => {
      const v = pick(m);
      if (v === undefined) return;
      done();
      resolve(v);
    };
    const onClose = (err: CodedError): void => {
      done();
      reject(err);
    };
    const done = (): void => {
      link.off('message', onMessage);
      link.off('close', onClose);
    };
    link.on('message', onMessage);
    link.on('close', onClose);
  });
  answer.catch(() => undefined); // awaited below; a send failure must not leave it unhandled
  if (link.closedError !== undefined) throw link.closedError;
  await link.send(msg);
  return answer;
}
