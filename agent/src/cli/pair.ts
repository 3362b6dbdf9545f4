/**
 * `field-agent pair <url> <code> [--name NAME] [--fingerprint sha256:…]`
 *
 * Pairs this laptop with a studio: generates the agent's Ed25519 key pair,
 * sends the one-time code printed by `studioctl pair`, checks the studio's
 * fingerprint (against the TLS certificate, and against --fingerprint when
 * given), and stores key + pin in the data dir (mode 0600). Exit 0 when paired.
 */
import { hostname } from 'node:os';
import {
  agentPublicKeyDer,
  generateAgentKeyPair,
  fingerprintsEqual,
  ProtocolError,
  PROTO_CODES,
  PROTOCOL_PATH,
} from '@studio321/protocol';
import { LinkClient } from '../link/client.js';
import { LINK_CODES, LinkError } from '../link/errors.js';
import { loadIdentity, saveIdentity } from '../link/identity.js';
import { resolvePaths } from '../paths.js';
import { parse, type CommandIo } from './common.js';

const USAGE =
  'usage: field-agent pair <wss://host:port/v1> <CODE> [--name NAME] [--fingerprint sha256:HEX] [--data-dir DIR] [--json]';

export function normaliseStudioUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch (err) {
    throw new LinkError(LINK_CODES.badUrl, `"${raw}" is not a URL. Use wss://<studio-host>:<port>${PROTOCOL_PATH}.`, {
      cause: err,
    });
  }
  if (u.protocol !== 'wss:')
    throw new LinkError(LINK_CODES.badUrl, `"${raw}" must start with wss:// (the link is always TLS).`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = PROTOCOL_PATH;
  return u.toString();
}

/** The studio cannot be reached while pairing: advice for pairing (nothing resumes by itself here). */
function pairingUnreachable(err: unknown, url: string): unknown {
  if (!(err instanceof LinkError) || (err.code !== LINK_CODES.unreachable && err.code !== LINK_CODES.connectionLost))
    return err;
  const why = (err.cause as NodeJS.ErrnoException | undefined)?.code ?? (err.cause as Error | undefined)?.message ?? '';
  return new LinkError(
    err.code,
    `Cannot reach the studio at ${url}${why === '' ? '' : ` (${why})`}, so this laptop is not paired. Check that studiod runs there (systemctl status studiod), that the host and port are right and this laptop is on the studio's network, then run the same \`field-agent pair\` again (the code stays valid until it expires; \`studioctl pair\` gives a new one).`,
    { cause: err },
  );
}

export async function pairCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { name: { type: 'string' }, fingerprint: { type: 'string' } } as const,
    USAGE,
  );
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [rawUrl, code] = positionals;
  if (rawUrl === undefined || code === undefined || positionals.length !== 2)
    throw new LinkError(LINK_CODES.badUrl, `give the studio URL and the pairing code\n${USAGE}`);
  const url = normaliseStudioUrl(rawUrl);
  const paths = resolvePaths({ dataDir: values['data-dir'], config: values.config }, io.env);
  const agentName = values.name ?? hostname();
  // Pairing again keeps this laptop's key: the studio knows the laptop by it and renews its
  // pairing under the same agent id instead of adding a second agent.
  const previous = await loadIdentity(paths.dataDir).catch(() => undefined);
  const keys =
    previous === undefined
      ? generateAgentKeyPair()
      : { privateKeyPem: previous.privateKeyPem, publicKeyDer: agentPublicKeyDer(previous.privateKeyPem) };
  const link = new LinkClient({ url });
  try {
    await link.open().catch((err: unknown) => {
      throw pairingUnreachable(err, url);
    });
    const seen = link.fingerprint ?? '';
    if (values.fingerprint !== undefined && !fingerprintsEqual(values.fingerprint.toLowerCase(), seen)) {
      throw new ProtocolError(
        PROTO_CODES.fingerprintMismatch,
        `The studio at ${url} presented ${seen}, not ${values.fingerprint} as printed by studioctl pair. Check you are on the studio's network.`,
      );
    }
    const { agentId, studioFingerprint } = await link.pair(code, agentName, keys.publicKeyDer);
    await saveIdentity(paths.dataDir, {
      pairing: { url, fingerprint: studioFingerprint, agentId, agentName, pairedAt: new Date().toISOString() },
      privateKeyPem: keys.privateKeyPem,
    });
    await link.authenticate(agentId, keys.privateKeyPem);
    const renewed = previous?.pairing.agentId === agentId;
    const result = { event: 'paired', agentId, fingerprint: studioFingerprint, url, renewed };
    io.stdout.write(
      values.json === true
        ? `${JSON.stringify(result)}\n`
        : `${renewed ? `Paired again: the studio knows this laptop and renewed its pairing as ${agentId} (no second agent)` : `Paired as ${agentId}`} with the studio at ${url}\nStudio fingerprint (pinned): ${studioFingerprint}\n`,
    );
    return 0;
  } finally {
    link.close();
  }
}
