/**
 * Records of the agent state database (docs/design.md, "Field agent").
 * Values are JSON; keys are strings (see agent-state.ts for the key schema).
 */
import type { CopyFact, FileCapture } from '@studio321/protocol';

export type CardKind = 'card' | 'folder' | 'hot-folder';

export interface OffloadRun {
  state: 'running' | 'done' | 'interrupted';
  startedAt: string;
  endedAt?: string;
  /** The error that stopped the run (interrupted), or the first file error (done). */
  code?: string;
  message?: string;
}

/** `card:<cardId>` */
export interface CardRecord {
  id: string;
  label: string;
  uuid?: string;
  kind: CardKind;
  /** Mount point or folder it was last read from. */
  source: string;
  /** st_dev of the card root when last seen (copies on this device are not "off the card"). */
  dev?: number;
  /** The physical disk(s) of the card root (disk-identity.ts device string): copies on them are not off the card either. */
  disk?: string;
  shoot: string;
  /** The laptop store it was offloaded into (its shoot holds there; another store takes a new one). */
  store?: string;
  firstSeen: string;
  lastSeen: string;
  /** Increases with each full listing; files with an older `scan` are no longer on the card. */
  scan: number;
  /** Entries (files + skipped entries) in the last full listing. */
  scanEntries: number;
  /** False until a full listing of the card was recorded. Hot folders never have one. */
  scanComplete: boolean;
  lastRun?: OffloadRun;
  /**
   * Set by `field-agent forget`: the card is left out of the status list. Nothing else
   * changes (its files, assets and store names stay); seen again, it is listed again.
   */
  forgottenAt?: string;
}

export type FileState = 'seen' | 'verified' | 'failed' | 'skipped';

export interface FileWarning {
  code: string;
  message: string;
  /** Set by `field-agent resolve`: a person reviewed it. */
  resolvedAt?: string;
}

/** `file:<cardId>/<path>` */
export interface FileRecord {
  card: string;
  /** Relative path on the card ('/'-separated, NFC). */
  path: string;
  size: number;
  mtimeMs: number;
  scan: number;
  state: FileState;
  blake3?: string;
  /** Store-relative path of the asset's laptop copy ('/'-separated). */
  storePath?: string;
  verifiedAt?: string;
  warning?: FileWarning;
  error?: { code: string; message: string; at: string; retryable: boolean };
}

export interface AssetName {
  shoot: string;
  card: string;
  path: string;
  mtime: number;
  /**
   * Its sidecar group's date folder (`dateSource`: 'exif' = the camera's capture date,
   * 'mtime' = none was found, the UTC day of the group's oldest mtime) and this file's
   * capture metadata. Absent on names recorded before it.
   */
  capture?: FileCapture;
  /**
   * Renamed at ingest by a rename template: the card-relative path it was stored under (its
   * folder on the card, the group's new stem, its own extension, the clash suffix). `path`
   * stays the name on the card; the studio is offered this one with `capture.originalName`.
   */
  renamed?: string;
}

/** `group:<cardId>/<group key>` — the store suffix of an image group and the date folder it was given. */
export interface GroupRecord {
  k: number;
  day?: string;
  dateSource?: 'exif' | 'mtime';
  /** The new stem a rename template gave the group (kept for its later files, whatever the template then). */
  name?: string;
}

export interface StudioCopy {
  target: string;
  device?: string;
  path: string;
  media: string;
  location: string;
  verifiedAt: string;
  method: string;
}

/** One archive copy the studio counts toward its verdict, as its last Verdict said (SPEC §3.10). */
export interface StudioVerdictCopy {
  target: string;
  media: string;
  location: string;
  offsite: boolean;
  storageClass?: string;
  verifiedAt: string;
}

/**
 * The studio's own verdict of the asset, as last asked (link/verdicts.ts): its claims about its own
 * archive, shown apart from the agent's copies and never counted toward safe to format.
 */
export interface StudioVerdict {
  /** false: the studio holds no such asset from this agent (not committed yet). */
  known: boolean;
  compliant: boolean;
  checkedAt: string;
  /** When the verdict was first seen compliant (kept while it stays so): `freeLaptop.afterDays` counts from it. */
  compliantSince?: string;
  copies: StudioVerdictCopy[];
  reasons: string[];
}

/** `asset:<blake3>` */
export interface AssetRecord {
  blake3: string;
  size: number;
  /** XXH3-64 (the ASC MHL hash), computed in the same pass as the BLAKE3; absent on assets of older agents. */
  xxh3?: string;
  /** Store-relative path of the laptop copy. */
  storePath: string;
  /** Absolute paths of the agent's copies by target (`laptop`, `field-drive`). */
  paths: Record<string, string>;
  copies: CopyFact[];
  names: AssetName[];
  verifiedAt: string;
  /** Position in the studio queue while not yet receipted. */
  queueSeq?: number;
  studio?: { committedAt: string; copies: StudioCopy[] };
  verdict?: StudioVerdict;
  /**
   * Freeing the laptop copy (state/free-laptop.ts) is under way: the copy no longer counts (its fact
   * moved here) and its file may or may not be deleted yet; recovery settles it by looking.
   */
  freeing?: { path: string; storePath: string; copy: CopyFact; at: string };
  /** The laptop copy was deleted by the `freeLaptop` policy, the studio holding the asset compliant. */
  freed?: { at: string; path: string };
}

/** `claim:<store-relative path>` — a store name reserved for one card file before it is written. */
export interface ClaimRecord {
  card: string;
  path: string;
  /** Set once the name holds verified content (then it belongs to that content). */
  blake3?: string;
}
