/**
 * `field-agent forget <card>`: leave a card seen long ago out of the status list.
 *
 *  1. find the card (id, or a unique label) in the state DB;
 *  2. judge it now (status.ts): a card must be safe to format AND have every file at the
 *     studio; a hot folder or a folder has no format verdict, so every file at the studio
 *     and none failed. Otherwise AGENT_FORGET_NOT_SAFE with the reason, unless `force`;
 *  3. flag its record (AgentState.forgetCard). No file is touched anywhere: the store
 *     copies, the studio queue and the store names stay as they are.
 */
import { AGENT_CODES, AgentError } from '../errors.js';
import { findCard, type AgentState } from '../state/agent-state.js';
import { summariseCard, type CardSummary } from '../state/status.js';

export interface ForgetOptions {
  state: AgentState;
  copiesNeeded: number;
  /** Forget it even when its files are not all safely copied. */
  force?: boolean;
}

export interface ForgetResult {
  card: string;
  label: string;
  kind: CardSummary['kind'];
  files: number;
  /** Whether it was forgotten although not every file was safely copied. */
  forced: boolean;
}

/** Why the card's files are not all safely copied; undefined when they are. */
function notSafeReason(s: CardSummary): string | undefined {
  if (s.kind === 'card' && !s.safeToFormat.safe) return `it is not safe to format: ${s.safeToFormat.reason}`;
  if (s.failedFiles > 0) return `${s.failedFiles} of its files could not be copied`;
  const missing = s.files - s.atStudioFiles;
  if (missing > 0) return `${missing} of its ${s.files} files are not at the studio yet`;
  return undefined;
}

export async function forgetCard(ref: string, o: ForgetOptions): Promise<ForgetResult> {
  const card = await findCard(o.state, ref);
  const summary = await summariseCard(o.state, card, o.copiesNeeded);
  const why = notSafeReason(summary);
  if (why !== undefined && o.force !== true) {
    throw new AgentError(
      AGENT_CODES.forgetNotSafe,
      `${card.label} (${card.id}) is kept in the list: ${why.replace(/\.?$/, '.')} Keep it until the studio has every file, or forget it anyway with --force (no file is deleted).`,
      { detail: { card: card.id } },
    );
  }
  await o.state.forgetCard(card.id);
  return { card: card.id, label: card.label, kind: card.kind, files: summary.files, forced: why !== undefined };
}
