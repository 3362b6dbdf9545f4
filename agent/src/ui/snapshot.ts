/**
 * What the status page and the tray show: a live snapshot of the agent (cards with
 * progress, speed and ETA, the studio queue, the link, recent errors), and the
 * interfaces they read it through. The state's own summary (state/status.ts:
 * AgentStatus, CardSummary) is what it is built from.
 */
import type { RecentError } from '@studio321/protocol';

export interface LiveCard {
  /** Stable id of the card (volume id or hot-folder id). */
  id: string;
  /** What the photographer recognises: volume label / folder name. */
  label: string;
  files: number;
  bytes: number;
  /** Copied to every field destination (laptop, field drive). */
  copiedFiles: number;
  copiedBytes: number;
  /** Copies read back and BLAKE3-verified. */
  verifiedFiles: number;
  /** Waiting to go to the studio. */
  queuedFiles: number;
  /** Acknowledged by the studio (committed to mirror and RAID). */
  atStudioFiles: number;
  /** Current offload speed; 0 when idle. */
  speedBytesPerSec: number;
  /** Seconds until the offload finishes; null when unknown or done. */
  etaSeconds: number | null;
  safeToFormat: boolean;
  /** Why (not) safe, in one sentence: "2 verified copies of every file", "14 files have 1 copy". */
  reason: string;
  /** Whether the card is still inserted / the folder still present. */
  present?: boolean;
  /** A removable card, a folder ingested by hand, or a tethered hot folder (never "format"). */
  kind?: 'card' | 'folder' | 'hot-folder';
  /** Unresolved warnings, each naming its file. */
  warnings?: Array<{ path: string; code: string; message: string }>;
  /** Files whose asset has a verified offsite (cloud) copy, as the state knows it. */
  offsiteFiles?: number;
}

export type LinkState = 'connected' | 'connecting' | 'offline' | 'paused';

export interface LiveSnapshot {
  /** ISO time the snapshot was computed. */
  at: string;
  cards: LiveCard[];
  queue: { files: number; bytes: number };
  /**
   * `offlineSince`: the studio cannot be reached since then (ISO). Offline is normal at a venue:
   * one fact here, not an error (tray-summary.ts keeps it idle).
   */
  link: { state: LinkState; studio?: string; offlineSince?: string };
  errors: RecentError[];
}

/** What the status page (and the tray) read. The agent's adapter is ui/status-provider.ts (AgentStatusProvider). */
export interface StatusProvider {
  snapshot(): Promise<LiveSnapshot>;
  on(event: 'change', listener: () => void): unknown;
  off(event: 'change', listener: () => void): unknown;
}

/** Optional controls the page offers (the tray has the same). */
export interface StatusActions {
  pauseSync(): Promise<void> | void;
  resumeSync(): Promise<void> | void;
}
