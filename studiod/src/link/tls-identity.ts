/**
 * The studio's TLS identity: a self-signed certificate generated on first
 * start when the configured key/cert files are absent (EC P-256 key made here,
 * `openssl req -x509` signs it, 10 years), key mode 0600. Its fingerprint
 * (`sha256:<hex>` of the certificate DER) is what agents pin at pairing.
 *
 * Durable from the first start: the key, then the certificate, each go through
 * the small-file durable write (temp → fsync → rename → fsync dir), and studiod
 * listens only after both are durable, so no agent can pin an identity that a
 * power cut could take back. At start a key and certificate that are absent,
 * empty, truncated, not PEM or not a pair are never used:
 *   - with no agent paired, nothing pinned them: the damaged files are moved aside
 *     (`<file>.damaged-<ms>`), a new identity is made and logged (STUDIO_TLS_REGENERATED);
 *   - with agents paired, studiod refuses (STUDIO_IDENTITY_LOST): restore the
 *     files, or start once with `--new-identity` and pair every agent again.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import { promisify } from 'node:util';
import { certFingerprint, errorCode } from '@studio321/protocol';
import { writeFileAtomic } from '@studio321/protocol/durable';
import { STUDIO_CODES, StudioError } from '../errors.js';

const run = promisify(execFile);

export interface TlsIdentity {
  key: Buffer;
  cert: Buffer;
  fingerprint: string;
}

export interface TlsIdentityOptions {
  /** Agents paired now (not revoked): they pinned the identity on disk. */
  pairedAgents: number;
  /** `studiod --new-identity`: make a new identity when none survived, even with agents paired. */
  newIdentity?: boolean;
  commonName?: string;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  now?: () => number;
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw new StudioError(
      STUDIO_CODES.tlsSetup,
      `Cannot read ${path} (${errorCode(err) ?? 'error'}). Check its permissions.`,
      { cause: err, detail: { path } },
    );
  }
}

/** Why a key/cert pair cannot be used, or undefined when it is a valid pair. */
function damage(keyPath: string, key: Buffer, certPath: string, cert: Buffer): string | undefined {
  let k: KeyObject;
  let x: X509Certificate;
  try {
    k = createPrivateKey(key);
  } catch {
    return `${keyPath} is not a PEM private key (${key.length} bytes)`;
  }
  try {
    x = new X509Certificate(cert);
  } catch {
    return `${certPath} is not a PEM certificate (${cert.length} bytes)`;
  }
  return x.checkPrivateKey(k) ? undefined : `${certPath} was not made for the key ${keyPath}`;
}

/** Load the key and cert; make them when none exist or none survived and no agent pinned them (see above). */
export async function loadOrCreateTlsIdentity(
  keyPath: string,
  certPath: string,
  opts: TlsIdentityOptions,
): Promise<TlsIdentity> {
  const key = await readIfPresent(keyPath);
  const cert = await readIfPresent(certPath);
  let why: string | undefined;
  if (key !== undefined && cert !== undefined) {
    why = damage(keyPath, key, certPath, cert);
    if (why === undefined) return { key, cert, fingerprint: certFingerprint(cert.toString('utf8')) };
  } else if (key !== undefined || cert !== undefined) {
    why = `only ${key !== undefined ? keyPath : certPath} exists`;
  }
  if (opts.pairedAgents > 0 && opts.newIdentity !== true) {
    throw new StudioError(
      STUDIO_CODES.identityLost,
      `The studio's TLS identity is ${why ?? `missing (${keyPath}, ${certPath})`}, and ${opts.pairedAgents} paired agent(s) pinned it. ` +
        'Restore both files from a backup; or start once with `studiod --new-identity` to make a new one, then pair every agent again.',
      { detail: { keyPath, certPath, pairedAgents: opts.pairedAgents } },
    );
  }
  const stamp = (opts.now ?? Date.now)();
  for (const p of why === undefined ? [] : [keyPath, certPath])
    await rename(p, `${p}.damaged-${stamp}`).catch((err: unknown) => {
      if (errorCode(err) !== 'ENOENT') throw err;
    });
  const made = await generate(keyPath, certPath, opts.commonName ?? 'studiod');
  if (why !== undefined)
    opts.log?.warn(
      { code: STUDIO_CODES.tlsRegenerated, keyPath, certPath, why, pairedAgents: opts.pairedAgents },
      `no TLS identity survived (${why}); a new one was made (the damaged files are kept as *.damaged-${stamp})` +
        (opts.pairedAgents > 0 ? '; every agent must pair again' : '; no agent had paired with the old one'),
    );
  else opts.log?.info({ keyPath, certPath, fingerprint: made.fingerprint }, 'TLS identity generated');
  return made;
}

async function generate(keyPath: string, certPath: string, cn: string): Promise<TlsIdentity> {
  try {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const key = Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }));
    // The key first: a power cut between the two leaves a key alone, which no agent can have pinned.
    await writeFileAtomic(keyPath, key, { mode: 0o600 });
    const { stdout } = await run('openssl', [
      'req',
      '-new',
      '-x509',
      '-key',
      keyPath,
      '-days',
      '3650',
      '-subj',
      `/CN=${cn}`,
    ]);
    const cert = Buffer.from(stdout);
    if (damage(keyPath, key, certPath, cert) !== undefined) throw new Error('openssl made no certificate for the key');
    await writeFileAtomic(certPath, cert, { mode: 0o644 });
    return { key, cert, fingerprint: certFingerprint(stdout) };
  } catch (err) {
    throw new StudioError(
      STUDIO_CODES.tlsSetup,
      `Could not generate the studio TLS certificate (${err instanceof Error ? err.message : String(err)}). Install openssl or provide tls.key and tls.cert in the config.`,
      { cause: err },
    );
  }
}
