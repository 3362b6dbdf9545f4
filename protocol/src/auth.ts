/**
 * Pairing and per-session authentication helpers (SPEC.md §3.2, §3.3), node:crypto only.
 * No I/O: callers store keys (agent: mode 0600) and pairing records themselves.
 */

import crypto, { type KeyObject } from 'node:crypto';
import { PROTO_CODES, ProtocolError } from './errors.js';
import { NONCE_BYTES, PAIRING_CODE_ALPHABET, PAIRING_CODE_LENGTH } from './limits.js';

/** Domain separation tag of the v1 auth payload. */
export const AUTH_DOMAIN = 'S321-AUTH-v1';

export interface AgentKeyPair {
  /** Ed25519 public key, SPKI DER (44 bytes): sent in PairRequest. */
  publicKeyDer: Buffer;
  /** Ed25519 private key, PKCS#8 PEM: keep on the laptop, mode 0600. */
  privateKeyPem: string;
}

export function generateAgentKeyPair(): AgentKeyPair {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  return {
    publicKeyDer: publicKey.export({ format: 'der', type: 'spki' }),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** The SPKI DER public key of an agent's private key (PKCS#8 PEM): pairing again with the same key. */
export function agentPublicKeyDer(privateKeyPem: string): Buffer {
  return crypto.createPublicKey(privateKeyPem).export({ format: 'der', type: 'spki' });
}

/**
 * Parse an agent public key from PairRequest. Throws PROTO_INVALID_FIELD unless
 * it is an Ed25519 SPKI DER key. The studio MUST call this before recording a pairing.
 */
export function parseAgentPublicKey(der: Uint8Array): KeyObject {
  let key: KeyObject;
  try {
    key = crypto.createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch (err) {
    throw new ProtocolError(
      PROTO_CODES.invalidField,
      'Invalid field "publicKey": not an SPKI DER public key. Re-run pairing with an up-to-date field-agent.',
      {
        cause: err,
        detail: { field: 'publicKey' },
      },
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ProtocolError(
      PROTO_CODES.invalidField,
      `Invalid field "publicKey": a ${key.asymmetricKeyType ?? 'unknown'} key, Ed25519 required. Re-run pairing with an up-to-date field-agent.`,
      {
        detail: { field: 'publicKey' },
      },
    );
  }
  return key;
}

export interface AuthPayloadInput {
  nonce: Uint8Array;
  sessionId: string;
  /** `sha256:<hex>`: the agent uses the fingerprint it saw at TLS level, the studio its own. */
  studioFingerprint: string;
  agentId: string;
}

function u16Prefixed(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 0xffff) throw new TypeError('auth payload field longer than 65535 bytes');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

/** The bytes signed in AuthProof (SPEC.md §3.3): domain tag, then length-prefixed fields. */
export function authPayload(input: AuthPayloadInput): Buffer {
  if (input.nonce.length !== NONCE_BYTES) throw new TypeError(`auth nonce must be ${NONCE_BYTES} bytes`);
  return Buffer.concat([
    Buffer.from(`${AUTH_DOMAIN}\0`, 'ascii'),
    Buffer.from([input.nonce.length]),
    input.nonce,
    u16Prefixed(input.sessionId),
    u16Prefixed(input.studioFingerprint),
    u16Prefixed(input.agentId),
  ]);
}

/** Ed25519 signature (64 bytes) of `payload`. `privateKey`: PKCS#8 PEM or a KeyObject. */
export function signAuth(privateKey: string | KeyObject, payload: Uint8Array): Buffer {
  return crypto.sign(null, payload, privateKey);
}

/** True only if `signature` is a valid Ed25519 signature of `payload` by `publicKey` (SPKI DER or KeyObject). */
export function verifyAuth(publicKey: Uint8Array | KeyObject, payload: Uint8Array, signature: Uint8Array): boolean {
  let key: KeyObject;
  try {
    key = publicKey instanceof Uint8Array ? parseAgentPublicKey(publicKey) : publicKey;
  } catch {
    return false;
  }
  if (key.asymmetricKeyType !== 'ed25519') return false;
  try {
    return crypto.verify(null, payload, key, signature);
  } catch {
    return false;
  }
}

/** DER bytes of a certificate given as PEM text or DER bytes. */
function certDer(cert: string | Uint8Array): Buffer {
  if (typeof cert !== 'string') return Buffer.from(cert.buffer, cert.byteOffset, cert.byteLength);
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(cert);
  if (m === null || m[1] === undefined) throw new TypeError('certFingerprint: no PEM certificate found');
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

/** `sha256:` + lower-case hex SHA-256 of the certificate DER (PEM text or DER bytes, e.g. tls `getPeerCertificate().raw`). */
export function certFingerprint(cert: string | Uint8Array): string {
  return `sha256:${crypto.createHash('sha256').update(certDer(cert)).digest('hex')}`;
}

/** Constant-time comparison of two fingerprints (or any two strings). */
export function fingerprintsEqual(a: string, b: string): boolean {
  const da = crypto.createHash('sha256').update(a).digest();
  const db = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(da, db);
}

/** A fresh one-time pairing code: PAIRING_CODE_LENGTH characters of PAIRING_CODE_ALPHABET, uniform. */
export function generatePairingCode(): string {
  const n = PAIRING_CODE_ALPHABET.length;
  const limit = 256 - (256 % n); // rejection sampling keeps every symbol equally likely
  let out = '';
  while (out.length < PAIRING_CODE_LENGTH) {
    for (const byte of crypto.randomBytes(PAIRING_CODE_LENGTH * 2)) {
      if (byte < limit && out.length < PAIRING_CODE_LENGTH) out += PAIRING_CODE_ALPHABET[byte % n];
    }
  }
  return out;
}

/** Canonical form of a typed pairing code: upper case, spaces and dashes removed. */
export function normalizePairingCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]+/g, '');
}

/** Constant-time check of a typed code against the issued one (both normalised). */
export function pairingCodesEqual(issued: string, typed: string): boolean {
  return fingerprintsEqual(normalizePairingCode(issued), normalizePairingCode(typed));
}

/** NONCE_BYTES fresh random bytes for AuthChallenge. */
export function generateNonce(): Buffer {
  return crypto.randomBytes(NONCE_BYTES);
}

/** A fresh random session id (32 hex characters). */
export function generateSessionId(): string {
  return crypto.randomBytes(16).toString('hex');
}
