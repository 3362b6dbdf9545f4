/**
 * Protocol v1 messages (protocol/SPEC.md §Messages): one discriminated union on `t`.
 *
 * Conventions: times are integer milliseconds since the Unix epoch; sizes and
 * offsets are non-negative safe integers (bytes); `hash` is the BLAKE3-256 of
 * the whole file as 64 lower-case hex characters; byte fields are Uint8Array
 * (Buffer on decode, a view into the frame — copy it if you keep it).
 */

export const MessageType = {
  Hello: 'hello',
  PairRequest: 'pair-request',
  PairAccepted: 'pair-accepted',
  AuthChallenge: 'auth-challenge',
  AuthProof: 'auth-proof',
  AuthAccepted: 'auth-accepted',
  Offer: 'offer',
  Want: 'want',
  Chunk: 'chunk',
  Ack: 'ack',
  FileEnd: 'file-end',
  Receipt: 'receipt',
  Nack: 'nack',
  Ping: 'ping',
  Pong: 'pong',
  Error: 'error',
  VerdictRequest: 'verdict-request',
  Verdict: 'verdict',
  MhlGeneration: 'mhl-generation',
  MhlStored: 'mhl-stored',
} as const;

/**
 * What a studio may list in its Hello's `features`: the optional requests it answers.
 * An agent MUST NOT send a request its studio did not list (an older studio closes
 * the session on an unknown type, SPEC §2.1).
 */
export const StudioFeature = { Verdict: 'verdict', Mhl: 'mhl' } as const;

export type MessageTypeName = (typeof MessageType)[keyof typeof MessageType];

export const MESSAGE_TYPES: readonly MessageTypeName[] = Object.values(MessageType);

export const Role = { Agent: 'agent', Studio: 'studio' } as const;
export type RoleName = (typeof Role)[keyof typeof Role];

/** First frame in each direction. The studio's Hello carries the flow-control window. */
export interface HelloMessage {
  t: 'hello';
  /** Always MAGIC ("S321"). */
  magic: string;
  /** PROTOCOL_VERSION of the sender (1). */
  version: number;
  role: RoleName;
  /** Free text, e.g. "studiod/0.1.0"; for logs only. */
  software: string;
  /** Studio only (REQUIRED there, absent from the agent's Hello): max unacknowledged Chunk bytes. */
  window?: number;
  /**
   * Agent only, OPTIONAL: the files (and bytes) waiting in its studio queue when it connects, so the
   * studio can tell a laptop gone quiet with unsynced files from one that has nothing to send.
   */
  queue?: AgentQueueReport;
  /** Studio only, optional: the optional requests it answers (StudioFeature); absent = none. */
  features?: string[];
}

/** What an agent's Hello reports of its studio queue. */
export interface AgentQueueReport {
  files: number;
  bytes: number;
}

/** Agent → studio, instead of AuthProof, when the agent is not yet paired. */
export interface PairRequestMessage {
  t: 'pair-request';
  /** One-time code shown by `studioctl pair`. */
  code: string;
  /** Human name of the agent (laptop), shown by `studioctl agents`. */
  agentName: string;
  /** Ed25519 public key, SPKI DER (44 bytes). */
  publicKey: Uint8Array;
}

/** Studio → agent: the pairing is durably recorded. */
export interface PairAcceptedMessage {
  t: 'pair-accepted';
  agentId: string;
  /** `sha256:` + hex SHA-256 of the studio's TLS certificate DER; the agent pins it. */
  studioFingerprint: string;
}

/** Studio → agent, right after the studio's Hello. */
export interface AuthChallengeMessage {
  t: 'auth-challenge';
  /** NONCE_BYTES fresh random bytes, never reused. */
  nonce: Uint8Array;
  /** Random session identifier (hex), unique per connection. */
  sessionId: string;
}

/** Agent → studio: Ed25519 signature over authPayload(nonce, sessionId, studioFingerprint, agentId). */
export interface AuthProofMessage {
  t: 'auth-proof';
  agentId: string;
  /** SIGNATURE_BYTES (64) bytes. */
  signature: Uint8Array;
}

/** Studio → agent: the session is authenticated; data frames may flow. */
export interface AuthAcceptedMessage {
  t: 'auth-accepted';
  agentId: string;
}

/** A name under which a file was found: shoot / card / card-relative path. */
export interface FileName {
  shoot: string;
  card: string;
  /** Card-relative path with `/` separators (validateRelativePath). */
  path: string;
  /** Source file mtime, ms since epoch (may be negative for broken camera clocks). */
  mtime: number;
  /** Optional (agents before it send none): the group's date folder and the file's capture metadata. */
  capture?: FileCapture;
}

/**
 * When and with what a file was taken (SPEC.md §4, FileName). `day` is its sidecar group's date
 * folder at the studio, the same for the RAW, its JPEG and its XMP.
 */
export interface FileCapture {
  /** `YYYY-MM-DD`: the camera's date at capture, or the UTC day of the group's oldest mtime. */
  day: string;
  dateSource: 'exif' | 'mtime';
  /** This file's own capture time, `YYYY-MM-DDTHH:mm:ss[.f]` as the camera showed it, `±HH:MM` when it recorded one. */
  takenAt?: string;
  camera?: string;
  serial?: string;
  imageNumber?: number;
  lens?: string;
  /**
   * The file's name on the card when the agent renamed it at ingest (a rename template): `path`
   * is then the renamed path, in the same folder. One path segment.
   */
  originalName?: string;
}

/** One verified copy the agent holds (laptop store, field drive). */
export interface AgentCopy {
  /** Target label, e.g. "laptop", "field-drive". */
  target: string;
  /** Physical device id (filesystem UUID or similar); two folders on one disk share it. */
  device: string;
  /** Media class, e.g. "ssd", "hdd". */
  media: string;
  /** Location class, e.g. "field", "studio". */
  location: string;
  verifiedAt: number;
  /** How the copy was verified, e.g. "readback-blake3". */
  method: string;
}

export interface OfferFile {
  hash: string;
  size: number;
  /** 1..MAX_NAMES_PER_FILE names. */
  names: FileName[];
  /** 0..MAX_COPIES_PER_FILE verified copies held by the agent. */
  copies: AgentCopy[];
  /** Optional: the file's XXH3-64 (16 lower-case hex digits; the ASC MHL hash). Absent from older agents. */
  xxh3?: string;
}

/** Agent → studio: files the agent wants the studio to hold. */
export interface OfferMessage {
  t: 'offer';
  batchId: string;
  /** 1..MAX_BATCH_FILES files, distinct hashes. */
  files: OfferFile[];
}

export interface WantEntry {
  hash: string;
  /** Bytes of this file the studio durably holds in staging; the agent sends from here. */
  offset: number;
}

/** Studio → agent: answer to an Offer. */
export interface WantMessage {
  t: 'want';
  batchId: string;
  /** Files to send, each from its offset. */
  wants: WantEntry[];
  /** Files already committed; a Receipt follows for each. */
  have: string[];
}

/** Agent → studio: bytes [offset, offset + data.length) of the file `hash`. */
export interface ChunkMessage {
  t: 'chunk';
  hash: string;
  offset: number;
  /** 1..MAX_CHUNK_BYTES bytes. */
  data: Uint8Array;
}

/** Studio → agent: bytes [0, offset) of `hash` are fsynced in staging. */
export interface AckMessage {
  t: 'ack';
  hash: string;
  offset: number;
}

/** Agent → studio: all bytes of `hash` were sent; `size` is the whole file size. */
export interface FileEndMessage {
  t: 'file-end';
  hash: string;
  size: number;
}

/** One verified copy the studio holds (mirror, raid). */
export interface StudioCopy {
  target: string;
  /** Target-relative path of the committed file. */
  path: string;
  device: string;
  media: string;
  location: string;
  verifiedAt: number;
  method: string;
}

/** Studio → agent: the file is committed to BOTH local targets and the catalogue. */
export interface ReceiptMessage {
  t: 'receipt';
  hash: string;
  size: number;
  committedAt: number;
  /** 1..MAX_COPIES_PER_FILE copies. */
  copies: StudioCopy[];
}

/** Studio → agent: this file was not committed. */
export interface NackMessage {
  t: 'nack';
  hash: string;
  /** Error code, e.g. PROTO_HASH_MISMATCH, PROTO_BAD_NAME, STUDIO_TARGET_FULL. */
  code: string;
  message: string;
  /** true: offer it again later; false: a human must look (the agent reports it). */
  retryable: boolean;
  /** Bytes still durably staged; a re-offer will get a Want with this offset. */
  resumeOffset: number;
}

export interface PingMessage {
  t: 'ping';
  ts: number;
}

export interface PongMessage {
  t: 'pong';
  /** The `ts` of the Ping being answered. */
  ts: number;
}

/** Either direction: a fatal session error; the sender closes the connection after it. */
export interface ErrorMessage {
  t: 'error';
  code: string;
  message: string;
  retryable: boolean;
}

/** Agent → studio (only when the studio's Hello lists `verdict`): the 3-2-1 verdict of these assets. */
export interface VerdictRequestMessage {
  t: 'verdict-request';
  requestId: string;
  /** 1..MAX_BATCH_FILES distinct hashes. */
  hashes: string[];
}

/** One archive copy the studio counts toward its verdict (mirror, RAID, a cloud target). */
export interface VerdictCopy {
  target: string;
  media: string;
  location: string;
  offsite: boolean;
  /** Cloud copies: the object's storage class (e.g. "STANDARD", "GLACIER_IR"). */
  storageClass?: string;
  verifiedAt: number;
}

export interface AssetVerdict {
  hash: string;
  /**
   * false: the studio holds no asset of this hash that this agent sent or holds (not committed,
   * or another agent's): the rest says nothing then (compliant false, no copies).
   */
  known: boolean;
  /** The studio's ledger verdict (its 3-2-1 policy over its counted archive copies). */
  compliant: boolean;
  /** 0..MAX_COPIES_PER_FILE counted archive copies. */
  copies: VerdictCopy[];
  /** 0..MAX_VERDICT_REASONS sentences, one per unmet rule. */
  reasons: string[];
}

/** Studio → agent: the answer to a VerdictRequest, one entry per requested hash, in its order. */
export interface VerdictMessage {
  t: 'verdict';
  requestId: string;
  verdicts: AssetVerdict[];
}

/**
 * Agent → studio (only when the studio's Hello lists `mhl`): one ASC MHL generation the agent wrote
 * in a card's folder (`<shoot>/<card>/ascmhl/<name>`), its bytes as they are (SPEC §3.11).
 */
export interface MhlGenerationMessage {
  t: 'mhl-generation';
  requestId: string;
  shoot: string;
  card: string;
  /** The generation's file name, `NNNN_<card>_<YYYY-MM-DD_HHMMSS>Z.mhl`. */
  name: string;
  /** 1..MAX_MHL_GENERATION_BYTES bytes of XML. */
  data: Uint8Array;
}

/** Studio → agent: the generation of that request is durably kept (or was already). */
export interface MhlStoredMessage {
  t: 'mhl-stored';
  requestId: string;
}

export type Message =
  | HelloMessage
  | PairRequestMessage
  | PairAcceptedMessage
  | AuthChallengeMessage
  | AuthProofMessage
  | AuthAcceptedMessage
  | OfferMessage
  | WantMessage
  | ChunkMessage
  | AckMessage
  | FileEndMessage
  | ReceiptMessage
  | NackMessage
  | PingMessage
  | PongMessage
  | ErrorMessage
  | VerdictRequestMessage
  | VerdictMessage
  | MhlGenerationMessage
  | MhlStoredMessage;

/** The message type for a given `t`. */
export type MessageOf<T extends MessageTypeName> = Extract<Message, { t: T }>;
