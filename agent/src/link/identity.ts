/**
 * The agent's studio identity in its data dir, written once by `field-agent pair`:
 *
 *   <dataDir>/studio/agent-key.pem   Ed25519 private key (PKCS#8 PEM), mode 0600
 *   <dataDir>/studio/pairing.json    { url, fingerprint (the pin), agentId, agentName, pairedAt }, mode 0600
 *
 * Both are written by the small-file durable write (temp → fsync → rename →
 * fsync dir), the key first, so a crash never leaves half a key.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '@studio321/protocol';
import { writeFileAtomic } from '@studio321/protocol/durable';
import { LINK_CODES, LinkError } from './errors.js';

export interface StudioPairing {
  url: string;
  fingerprint: string;
  agentId: string;
  agentName: string;
  pairedAt: string;
}

export interface SyncIdentity {
  pairing: StudioPairing;
  privateKeyPem: string;
}

export function identityDir(dataDir: string): string {
  return join(dataDir, 'studio');
}

export async function saveIdentity(dataDir: string, id: SyncIdentity): Promise<void> {
  const dir = identityDir(dataDir);
  try {
    // The key first: pairing.json names the identity, so it must never exist without its key.
    await writeFileAtomic(join(dir, 'agent-key.pem'), id.privateKeyPem, { mode: 0o600 });
    await writeFileAtomic(join(dir, 'pairing.json'), `${JSON.stringify(id.pairing, null, 2)}\n`, { mode: 0o600 });
  } catch (err) {
    throw new LinkError(
      LINK_CODES.pairingStore,
      `Cannot save the pairing in ${dir} (${errorCode(err) ?? String(err)}). Check the data dir's permissions and pair again.`,
      { cause: err },
    );
  }
}

/** The saved identity; LINK_NOT_PAIRED when there is none. */
export async function loadIdentity(dataDir: string): Promise<SyncIdentity> {
  const dir = identityDir(dataDir);
  try {
    const pairing = JSON.parse(await readFile(join(dir, 'pairing.json'), 'utf8')) as StudioPairing;
    const privateKeyPem = await readFile(join(dir, 'agent-key.pem'), 'utf8');
    if (
      typeof pairing.url !== 'string' ||
      typeof pairing.fingerprint !== 'string' ||
      typeof pairing.agentId !== 'string'
    ) {
      throw new SyntaxError('pairing.json lacks url, fingerprint or agentId');
    }
    return { pairing, privateKeyPem };
  } catch (err) {
    if (errorCode(err) === 'ENOENT') {
      throw new LinkError(
        LINK_CODES.notPaired,
        'This agent is not paired with a studio. Run `studioctl pair` at the studio, then `field-agent pair <url> <code>` here.',
        { cause: err },
      );
    }
    throw new LinkError(
      LINK_CODES.pairingStore,
      `The pairing in ${dir} cannot be read (${errorCode(err) ?? (err instanceof Error ? err.message : String(err))}). Pair again.`,
      { cause: err },
    );
  }
}
