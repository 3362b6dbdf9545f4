/** Errors of the ledger commands (`studioctl status/assets/asset/verify`); listed in docs/errors.md §LEDGER_. */
import { CodedError } from '@studio321/protocol';

export class LedgerError extends CodedError {}

export const LedgerCode = {
  /** A verify is already running; wait for it (its report is in `studioctl status`). Retryable. */
  VerifyRunning: 'LEDGER_VERIFY_RUNNING',
  /** `--target` names no configured target. */
  UnknownTarget: 'LEDGER_UNKNOWN_TARGET',
  /** `asset <name|hash>` matched nothing in the catalogue. */
  NotFound: 'LEDGER_NOT_FOUND',
  /** A bad argument (e.g. `--sample` outside 0–100). */
  BadArgument: 'LEDGER_BAD_ARGUMENT',
  /** A copy that no longer verifies was found and stopped counting (logged; seen in `status` last errors). */
  CopyLost: 'LEDGER_COPY_LOST',
  /** A target could not be checked at all (unmounted disk, cloud unreachable); its copies were left as they were. */
  TargetUnchecked: 'LEDGER_TARGET_UNCHECKED',
} as const;
