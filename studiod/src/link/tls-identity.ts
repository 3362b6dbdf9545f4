/**
 * The studio's TLS identity: a self-signed certificate generated on first
 * start when the configured key/cert files are absent (`openssl req -x509`,
 * EC P-256, 10 years), key mode 0600. Its fingerprint (`sha256:<hex>` of the
 * certificate DER) is what agents pin at pairing.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { certFingerprint, errorCode } from '@studio321/protocol';
import { STUDIO_CODES, StudioError } from '../errors.js';

const run = promisify(execFile);

export interface TlsIdentity {
  key: Buffer;
  cert: Buffer;
  fingerprint: string;
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

/** Load the key and cert, generating both when neither exists. */
export async function loadOrCreateTlsIdentity(
  keyPath: string,
  certPath: string,
  commonName = 'studiod',
): Promise<TlsIdentity> {
  let key = await readIfPresent(keyPath);
  let cert = await readIfPresent(certPath);
  if (key === undefined && cert === undefined) {
    await generate(keyPath, certPath, commonName);
    key = await readFile(keyPath);
    cert = await readFile(certPath);
  }
  if (key === undefined || cert === undefined) {
    throw new StudioError(
      STUDIO_CODES.tlsSetup,
      `Only one of the TLS files exists (key ${keyPath}, cert ${certPath}). Restore the missing one, or remove both to generate a new identity (agents must then pair again).`,
      { detail: { keyPath, certPath } },
    );
  }
  let fingerprint: string;
  try {
    fingerprint = certFingerprint(cert.toString('utf8'));
  } catch (err) {
    throw new StudioError(
      STUDIO_CODES.tlsSetup,
      `${certPath} is not a PEM certificate. Restore it, or remove key and cert to generate a new identity.`,
      { cause: err, detail: { certPath } },
    );
  }
  return { key, cert, fingerprint };
}

async function generate(keyPath: string, certPath: string, cn: string): Promise<void> {
  const tmpKey = `${keyPath}.${process.pid}.tmp`;
  const tmpCert = `${certPath}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
    await mkdir(dirname(certPath), { recursive: true, mode: 0o700 });
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      tmpKey,
      '-out',
      tmpCert,
      '-days',
      '3650',
      '-subj',
      `/CN=${cn}`,
    ]);
    await chmod(tmpKey, 0o600);
    await rename(tmpCert, certPath);
    await rename(tmpKey, keyPath);
  } catch (err) {
    await rm(tmpKey, { force: true });
    await rm(tmpCert, { force: true });
    throw new StudioError(
      STUDIO_CODES.tlsSetup,
      `Could not generate the studio TLS certificate (${err instanceof Error ? err.message : String(err)}). Install openssl or provide tls.key and tls.cert in the config.`,
      { cause: err },
    );
  }
}
