/**
 * One valid sample of every protocol v1 message, for codec and link tests.
 */
import {
  MAGIC,
  MAX_BATCH_FILES,
  MAX_COPIES_PER_FILE,
  MAX_LABEL_BYTES,
  MAX_NAME_BYTES,
  MAX_NAMES_PER_FILE,
  MAX_PATH_BYTES,
  MAX_STORED_PATH_BYTES,
  type Message,
  type MessageTypeName,
  type OfferFile,
  type ReceiptMessage,
  PROTOCOL_VERSION,
} from '@studio321/protocol';

export const H1 = 'a'.repeat(64);
export const H2 = '0123456789abcdef'.repeat(4);

export function sampleMessages(): { [K in MessageTypeName]: Extract<Message, { t: K }> } {
  return {
    hello: {
      t: 'hello',
      magic: MAGIC,
      version: PROTOCOL_VERSION,
      role: 'studio',
      software: 'studiod/0.1.0',
      window: 16 * 1024 * 1024,
    },
    'pair-request': {
      t: 'pair-request',
      code: 'K7QMRT4X9P',
      agentName: "Ana's laptop",
      publicKey: Buffer.alloc(44, 7),
    },
    'pair-accepted': { t: 'pair-accepted', agentId: 'agt_3f9a', studioFingerprint: `sha256:${H1}` },
    'auth-challenge': { t: 'auth-challenge', nonce: Buffer.alloc(32, 1), sessionId: '5c0e9d' },
    'auth-proof': { t: 'auth-proof', agentId: 'agt_3f9a', signature: Buffer.alloc(64, 2) },
    'auth-accepted': { t: 'auth-accepted', agentId: 'agt_3f9a' },
    offer: {
      t: 'offer',
      batchId: 'b1',
      files: [
        {
          hash: H1,
          size: 2_500_000,
          names: [
            {
              shoot: '2026-11-26-wedding',
              card: 'CARD-7F3A',
              path: 'DCIM/100CANON/IMG_0001.CR3',
              mtime: 1_795_000_000_000,
            },
          ],
          copies: [
            {
              target: 'laptop',
              device: 'uuid-1',
              media: 'ssd',
              location: 'field',
              verifiedAt: 1_795_000_100_000,
              method: 'readback-blake3',
            },
          ],
        },
        { hash: H2, size: 0, names: [{ shoot: 's', card: 'c', path: 'DCIM/EMPTY.JPG', mtime: -5 }], copies: [] },
      ],
    },
    want: { t: 'want', batchId: 'b1', wants: [{ hash: H1, offset: 1_048_576 }], have: [H2] },
    chunk: { t: 'chunk', hash: H1, offset: 2 ** 40, data: Buffer.from('hello bytes') },
    ack: { t: 'ack', hash: H1, offset: 2_097_152 },
    'file-end': { t: 'file-end', hash: H1, size: 2_500_000 },
    receipt: {
      t: 'receipt',
      hash: H1,
      size: 2_500_000,
      committedAt: 1_795_000_200_000,
      copies: [
        {
          target: 'mirror',
          path: '2026-11-26-wedding/CARD-7F3A/DCIM/100CANON/IMG_0001.CR3',
          device: 'md0',
          media: 'hdd',
          location: 'studio',
          verifiedAt: 1_795_000_200_000,
          method: 'readback-blake3',
        },
        {
          target: 'raid',
          path: '2026-11-26-wedding/CARD-7F3A/DCIM/100CANON/IMG_0001.CR3',
          device: 'raid-1',
          media: 'hdd',
          location: 'studio',
          verifiedAt: 1_795_000_200_000,
          method: 'readback-blake3',
        },
      ],
    },
    nack: {
      t: 'nack',
      hash: H1,
      code: 'PROTO_HASH_MISMATCH',
      message: 'staged bytes hash differently',
      retryable: true,
      resumeOffset: 0,
    },
    ping: { t: 'ping', ts: 1_795_000_000_000 },
    pong: { t: 'pong', ts: 1_795_000_000_000 },
    error: { t: 'error', code: 'PROTO_AUTH_REFUSED', message: 'pair this agent again', retryable: false },
    'verdict-request': { t: 'verdict-request', requestId: 'v1', hashes: [H1, H2] },
    verdict: {
      t: 'verdict',
      requestId: 'v1',
      verdicts: [
        {
          hash: H1,
          known: true,
          compliant: true,
          copies: [
            { target: 'mirror', media: 'hdd', location: 'studio', offsite: false, verifiedAt: 1_795_000_200_000 },
            {
              target: 'cloud-east',
              media: 'cloud',
              location: 'cloud-east',
              offsite: true,
              storageClass: 'STANDARD',
              verifiedAt: 1_795_000_300_000,
            },
          ],
          reasons: [],
        },
        { hash: H2, known: false, compliant: false, copies: [], reasons: [] },
      ],
    },
    'mhl-generation': {
      t: 'mhl-generation',
      requestId: 'm1',
      shoot: 'wedding',
      card: 'CARD1-c375e040',
      name: '0001_CARD1-c375e040_2026-11-26_100000Z.mhl',
      data: Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<hashlist version="2.0"/>\n'),
    },
    'mhl-stored': { t: 'mhl-stored', requestId: 'm1' },
  };
}

/** The largest Offer the limits allow: every count and length at its maximum (ASCII). */
export function worstCaseOffer(): Message {
  const seg = 's'.repeat(MAX_NAME_BYTES);
  const lbl = 'l'.repeat(MAX_LABEL_BYTES);
  const files: OfferFile[] = [];
  for (let i = 0; i < MAX_BATCH_FILES; i++) {
    files.push({
      hash: i.toString(16).padStart(64, '0'),
      size: Number.MAX_SAFE_INTEGER,
      names: Array.from({ length: MAX_NAMES_PER_FILE }, () => ({
        shoot: seg,
        card: seg,
        path: 'p'.repeat(MAX_PATH_BYTES),
        mtime: -Number.MAX_SAFE_INTEGER,
        capture: {
          day: '2026-11-26',
          dateSource: 'exif' as const,
          takenAt: '2026-11-26T23:59:30.123456789+14:00',
          camera: lbl,
          serial: lbl,
          imageNumber: Number.MAX_SAFE_INTEGER,
          lens: lbl,
          originalName: seg,
        },
      })),
      copies: Array.from({ length: MAX_COPIES_PER_FILE }, () => ({
        target: lbl,
        device: lbl,
        media: lbl,
        location: lbl,
        verifiedAt: Number.MAX_SAFE_INTEGER,
        method: lbl,
      })),
    });
  }
  return { t: 'offer', batchId: 'b'.repeat(64), files };
}

/** The largest Receipt the limits allow. */
export function worstCaseReceipt(): ReceiptMessage {
  const lbl = 'l'.repeat(MAX_LABEL_BYTES);
  return {
    t: 'receipt',
    hash: H1,
    size: Number.MAX_SAFE_INTEGER,
    committedAt: Number.MAX_SAFE_INTEGER,
    copies: Array.from({ length: MAX_COPIES_PER_FILE }, () => ({
      target: lbl,
      path: 'p'.repeat(MAX_STORED_PATH_BYTES),
      device: lbl,
      media: lbl,
      location: lbl,
      verifiedAt: Number.MAX_SAFE_INTEGER,
      method: lbl,
    })),
  };
}
