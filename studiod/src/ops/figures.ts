/**
 * One reading of what the alerts and the metrics look at, taken from the studio's live state
 * (no scan of the assets: counters, the availability states, the cloud queue counters, the scrub
 * cursors, the agent records, one statfs per local target through `Studio.status()`).
 */
import type { AgentRecord, Catalogue } from '../catalogue.js';
import type { CloudTargetStatus } from '../cloud/cloud-forwarder.js';
import { LOCAL_TARGETS } from '../config.js';
import type { LedgerCounters, RecountProgress } from '../ledger/ledger.js';
import type { LedgerService } from '../ledger/service.js';
import type { StudioStatus } from '../ledger/status-report.js';
import type { ScrubTargetStatus } from '../recovery/scrub.js';

export interface LocalTargetFigures {
  target: string;
  available: boolean;
  /** null when the root cannot be read. */
  freeBytes: number | null;
  unavailable: { code: string; reason: string; since: number } | null;
}

export interface OpsFigures {
  at: number;
  local: LocalTargetFigures[];
  /** Verified copies per target (archive targets and the agents' field targets). */
  copies: Record<string, { count: number; bytes: number }>;
  cloud: CloudTargetStatus[];
  ledger: LedgerCounters;
  /** A recount of the verdicts under way (Ledger.recounting): `ledger`'s verdict counts are those of before it. */
  recounting: RecountProgress | null;
  scrub: ScrubTargetStatus[];
  agents: Array<AgentRecord & { connected: boolean }>;
}

export interface OpsSources {
  catalogue: Catalogue;
  ledger: LedgerService;
  status: () => Promise<StudioStatus>;
  now: () => number;
}

export async function readFigures(s: OpsSources): Promise<OpsFigures> {
  const base = await s.status();
  const agentRecords = await s.catalogue.listAgents();
  const cloud = (await s.ledger.cloud?.status()) ?? [];
  // After every await (base.counters is older by them): one turn for the verdicts and the copies.
  const { ledger, catalogue, recounting } = s.ledger.ledger.countersNow();
  const states = s.ledger.availability.states();
  const local = LOCAL_TARGETS.map((t): LocalTargetFigures => {
    const st = states.find((x) => x.target === t);
    const down = st !== undefined && !st.available;
    const b = base.targets[t];
    return {
      target: t,
      available: (b?.available ?? false) && !down,
      freeBytes: b?.freeBytes ?? null,
      unavailable: down ? { code: st.code ?? '', reason: st.reason ?? '', since: st.since } : null,
    };
  });
  const connected = new Set(base.sessions.map((x) => x.agentId).filter((x) => x !== undefined));
  const agents = agentRecords
    .filter((a) => a.revokedAt === undefined)
    .map((a) => ({ ...a, connected: connected.has(a.agentId) }));
  return {
    at: s.now(),
    local,
    copies: catalogue.copies,
    cloud,
    ledger,
    recounting,
    scrub: s.ledger.scrubber.statuses(),
    agents,
  };
}
