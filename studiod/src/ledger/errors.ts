/** Errors of the ledger commands (`studioctl status/assets/asset/verify`); listed in docs/errors.md §LEDGER_. */
import { CodedError, type CodedErrorOptions } from '@studio321/protocol';

export const LEDGER_CODES = {
  /** A verify is already running; wait for it (its report is in `studioctl status`). Retryable. */
  verifyRunning: 'LEDGER_VERIFY_RUNNING',
  /** `--target` names no configured target. Not retryable. */
  unknownTarget: 'LEDGER_UNKNOWN_TARGET',
  /** `asset <name|hash>` matched nothing in the catalogue. Not retryable. */
  notFound: 'LEDGER_NOT_FOUND',
  /** The 3-2-1 verdicts are being recounted after a target's availability changed; ask again when it ends. Retryable. */
  recounting: 'LEDGER_RECOUNTING',
  /** A bad argument (e.g. `--sample` outside 0–100). Not retryable. */
  badArgument: 'LEDGER_BAD_ARGUMENT',
  /** A copy that no longer verifies was found and stopped counting (logged; seen in `status` last errors). A report, not thrown. */
  copyLost: 'LEDGER_COPY_LOST',
  /** A target could not be checked at all (unmounted disk, cloud unreachable); its copies were left as they were. A report, not thrown. */
  targetUnchecked: 'LEDGER_TARGET_UNCHECKED',
} as const;

export type LedgerCode = (typeof LEDGER_CODES)[keyof typeof LEDGER_CODES];

export class LedgerError extends CodedError {
  declare readonly code: LedgerCode;

  constructor(code: LedgerCode, message: string, options: CodedErrorOptions = {}) {
    super(code, message, options);
  }
}
