/**
 * The studio's verdict of the assets this agent sent (protocol/SPEC.md §3.10): VerdictRequest →
 * Verdict over the authenticated link, at most MAX_BATCH_FILES hashes a request, one request at a
 * time, recorded durably in the agent state (one synced batch per answer).
 *
 * Only a studio whose Hello lists the `verdict` feature is asked (an older one would close the
 * session on the unknown type). The answer is the studio's claim about its own archive: stored
 * apart from the agent's copies (`AssetRecord.verdict`), shown by status ("offsite N", the
 * studio's copies) and used by the `freeLaptop` policy (state/free-laptop.ts); it never counts
 * toward safe to format.
 *
 * Which assets are asked (`refreshVerdicts`): those the studio receipted whose verdict is missing,
 * not compliant yet, or older than VERDICT_REFRESH_MS; at the end of every sync pass and, while
 * the link idles, every VERDICT_INTERVAL_MS (sync-loop.ts).
 */
import { MAX_BATCH_FILES, StudioFeature, type AssetVerdict } from '@studio321/protocol';
import type { AgentState } from '../state/agent-state.js';
import type { StudioVerdict } from '../state/records.js';
import { LINK_CODES, LinkError } from './errors.js';
import { request, type SyncLink } from './sync-link.js';

/** A compliant verdict is asked again after this long (one not compliant yet: at every round). */
export const VERDICT_REFRESH_MS = 60 * 60_000;
/** While the link idles, verdicts due are asked this often. */
export const VERDICT_INTERVAL_MS = 5 * 60_000;

/** The link, with the features the studio's Hello offered. */
export interface VerdictLink extends SyncLink {
  readonly features: readonly string[];
}

let requestSeq = 0;

/** Whether the studio answers verdict requests. */
export function offersVerdicts(link: { readonly features: readonly string[] }): boolean {
  return link.features.includes(StudioFeature.Verdict);
}

/** Asks the verdicts of `hashes` (any number; batches of MAX_BATCH_FILES, one at a time). */
export async function askVerdicts(link: VerdictLink, hashes: readonly string[]): Promise<AssetVerdict[]> {
  if (!offersVerdicts(link))
    throw new LinkError(
      LINK_CODES.verdictUnsupported,
      'The studio does not answer verdict requests (an older studiod): update studiod to learn its offsite copies.',
    );
  const out: AssetVerdict[] = [];
  for (let i = 0; i < hashes.length; i += MAX_BATCH_FILES) {
    const batch = [...new Set(hashes.slice(i, i + MAX_BATCH_FILES))];
    const requestId = `v${process.pid}-${++requestSeq}`;
    const verdicts = await request(link, { t: 'verdict-request', requestId, hashes: batch }, (m) =>
      m.t === 'verdict' && m.requestId === requestId ? m.verdicts : undefined,
    );
    const asked = new Set(batch);
    if (verdicts.length !== batch.length || verdicts.some((v) => !asked.has(v.hash)))
      throw new LinkError(
        LINK_CODES.badPeer,
        'The studio answered a verdict request with other hashes. Update studiod.',
      );
    out.push(...verdicts);
  }
  return out;
}

/** The state's record of one verdict of the wire. */
export function verdictRecord(v: AssetVerdict): Omit<StudioVerdict, 'checkedAt' | 'compliantSince'> {
  return {
    known: v.known,
    compliant: v.known && v.compliant,
    copies: v.copies.map((c) => ({
      target: c.target,
      media: c.media,
      location: c.location,
      offsite: c.offsite,
      ...(c.storageClass === undefined ? {} : { storageClass: c.storageClass }),
      verifiedAt: new Date(c.verifiedAt).toISOString(),
    })),
    reasons: v.reasons,
  };
}

/** Asks and records the verdicts of `hashes` (or of every asset due); returns how many were recorded. */
export async function refreshVerdicts(
  link: VerdictLink,
  state: AgentState,
  opts: { hashes?: readonly string[]; now?: () => Date } = {},
): Promise<number> {
  const now = opts.now ?? (() => new Date());
  const hashes = opts.hashes ?? (await state.verdictsDue(VERDICT_REFRESH_MS, now()));
  let n = 0;
  for (let i = 0; i < hashes.length; i += MAX_BATCH_FILES) {
    const verdicts = await askVerdicts(link, hashes.slice(i, i + MAX_BATCH_FILES));
    await state.recordVerdicts(
      verdicts.map((v) => ({ blake3: v.hash, verdict: verdictRecord(v) })),
      now(),
    );
    n += verdicts.length;
  }
  return n;
}
