import t from 'tap';
import crypto from 'node:crypto';
import {
  authPayload,
  certFingerprint,
  fingerprintsEqual,
  generateAgentKeyPair,
  generateNonce,
  generatePairingCode,
  generateSessionId,
  normalizePairingCode,
  PAIRING_CODE_ALPHABET,
  PAIRING_CODE_LENGTH,
  pairingCodesEqual,
  parseAgentPublicKey,
  signAuth,
  verifyAuth,
} from '@studio321/protocol';

const FP = `sha256:${'ab'.repeat(32)}`;

t.test('sign and verify; every bound field changes the payload', async (t) => {
  const agent = generateAgentKeyPair();
  t.equal(agent.publicKeyDer.length, 44, 'Ed25519 SPKI DER is 44 bytes');
  t.match(agent.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
  const input = { nonce: generateNonce(), sessionId: generateSessionId(), studioFingerprint: FP, agentId: 'agt_1' };
  const payload = authPayload(input);
  t.ok(payload.subarray(0, 13).equals(Buffer.from('S321-AUTH-v1\0')), 'domain separated');
  const sig = signAuth(agent.privateKeyPem, payload);
  t.equal(sig.length, 64);
  t.equal(verifyAuth(agent.publicKeyDer, payload, sig), true, 'valid signature verifies');

  const other = generateAgentKeyPair();
  t.equal(verifyAuth(other.publicKeyDer, payload, sig), false, 'another agent key fails');
  t.equal(
    verifyAuth(agent.publicKeyDer, payload, signAuth(other.privateKeyPem, payload)),
    false,
    'signed by another key fails',
  );

  const variants = {
    nonce: { ...input, nonce: generateNonce() },
    sessionId: { ...input, sessionId: generateSessionId() },
    studioFingerprint: { ...input, studioFingerprint: `sha256:${'cd'.repeat(32)}` },
    agentId: { ...input, agentId: 'agt_2' },
  };
  for (const [field, v] of Object.entries(variants)) {
    t.equal(verifyAuth(agent.publicKeyDer, authPayload(v), sig), false, `proof is bound to ${field}`);
  }
  // Length prefixes: moving a byte between adjacent fields changes the payload.
  t.not(
    authPayload({ ...input, sessionId: 'ab', agentId: 'c' }).toString('hex'),
    authPayload({ ...input, sessionId: 'a', agentId: 'bc' }).toString('hex'),
  );
  const flipped = Buffer.from(sig);
  flipped[10] = (flipped[10] as number) ^ 1;
  t.equal(verifyAuth(agent.publicKeyDer, payload, flipped), false, 'flipped signature bit fails');
  t.equal(verifyAuth(agent.publicKeyDer, payload, sig.subarray(0, 63)), false, 'short signature fails, no throw');
  t.equal(verifyAuth(Buffer.from('not a key'), payload, sig), false, 'garbage key fails, no throw');
  t.throws(() => authPayload({ ...input, nonce: Buffer.alloc(31) }), TypeError, 'nonce length is checked');
});

t.test('parseAgentPublicKey refuses non-Ed25519 keys', async (t) => {
  t.equal(parseAgentPublicKey(generateAgentKeyPair().publicKeyDer).asymmetricKeyType, 'ed25519');
  t.throws(() => parseAgentPublicKey(Buffer.from([1, 2, 3])), {
    code: 'PROTO_INVALID_FIELD',
    detail: { field: 'publicKey' },
  });
  const ec = crypto
    .generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    .publicKey.export({ format: 'der', type: 'spki' });
  t.throws(() => parseAgentPublicKey(ec), { code: 'PROTO_INVALID_FIELD' });
  t.equal(verifyAuth(ec, Buffer.from('x'), Buffer.alloc(64)), false);
});

t.test('certificate fingerprint from PEM and DER', async (t) => {
  // Any DER works for the hash; build a PEM wrapper around known bytes.
  const der = crypto.randomBytes(300);
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
  const expected = `sha256:${crypto.createHash('sha256').update(der).digest('hex')}`;
  t.equal(certFingerprint(der), expected);
  t.equal(certFingerprint(pem), expected);
  t.match(expected, /^sha256:[0-9a-f]{64}$/);
  t.throws(() => certFingerprint('no cert here'), TypeError);
  t.equal(fingerprintsEqual(expected, expected), true);
  t.equal(fingerprintsEqual(expected, FP), false);
});

t.test('pairing codes', async (t) => {
  const seen = new Set<string>();
  const counts = new Map<string, number>();
  for (let i = 0; i < 2000; i++) {
    const code = generatePairingCode();
    if (code.length !== PAIRING_CODE_LENGTH) t.fail(`bad length ${code}`);
    for (const ch of code) {
      if (!PAIRING_CODE_ALPHABET.includes(ch)) t.fail(`bad char ${ch}`);
      counts.set(ch, (counts.get(ch) ?? 0) + 1);
    }
    seen.add(code);
  }
  t.equal(seen.size, 2000, 'no repeats');
  t.equal(counts.size, PAIRING_CODE_ALPHABET.length, 'every symbol used');
  for (const ambiguous of ['0', 'O', '1', 'I', 'L'])
    t.notOk(PAIRING_CODE_ALPHABET.includes(ambiguous), `no ${ambiguous}`);
  t.equal(normalizePairingCode('k7qm-rt4x 9p'), 'K7QMRT4X9P');
  t.equal(pairingCodesEqual('K7QMRT4X9P', 'k7qm-rt4x9p'), true);
  t.equal(pairingCodesEqual('K7QMRT4X9P', 'K7QMRT4X9Q'), false);
});
