/**
 * Protocol v1 constants and limits (protocol/SPEC.md §Limits).
 *
 * Every limit here is enforced by the codec on decode AND encode; a peer that
 * exceeds one gets a coded ProtocolError, never a crash or a large allocation.
 */

/** Magic string carried by every Hello. */
export const MAGIC = 'S321';
/** Wire protocol version spoken by this code. */
export const PROTOCOL_VERSION = 1;
/** On-disk format version of every store (agent state DB, studio catalogue). */
export const FORMAT_VERSION = 1;
/** WebSocket path of the v1 endpoint: `wss://host:port/v1`. */
export const PROTOCOL_PATH = '/v1';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Largest `data` of one Chunk. */
export const MAX_CHUNK_BYTES = 1 * MiB;
/**
 * Largest frame (one binary WebSocket message). `ws` `maxPayload` MUST equal this.
 * Sized so that any Offer/Receipt within the count and length limits below fits.
 */
export const MAX_FRAME_BYTES = 8 * MiB;
/** Most files in one Offer (and entries in one Want's `wants` / `have`). */
export const MAX_BATCH_FILES = 256;
/** Most names carried for one file in one Offer (more go in later Offers). */
export const MAX_NAMES_PER_FILE = 8;
/** Most copies listed for one file in an Offer or a Receipt. */
export const MAX_COPIES_PER_FILE = 8;
/** Most entries in a studio Hello's `features`. */
export const MAX_FEATURES = 16;
/** Most reasons carried for one asset in a Verdict. */
export const MAX_VERDICT_REASONS = 8;
/** Largest ASC MHL generation sent in one MhlGeneration (about 16,000 files; a larger one is not sent). */
export const MAX_MHL_GENERATION_BYTES = 4 * MiB;
/** Longest path segment (shoot name, card name, one component of a path), UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;
/** Longest card-relative path, UTF-8 bytes. */
export const MAX_PATH_BYTES = 1024;
/** Longest target-relative path in a Receipt copy (shoot/card/path plus a disambiguating suffix). */
export const MAX_STORED_PATH_BYTES = 2048;
/** Longest label: target, media, location, method, device, agentName, software. */
export const MAX_LABEL_BYTES = 128;
/** Longest identifier: batchId, sessionId, agentId. */
export const MAX_ID_BYTES = 64;
/** Longest error code string. */
export const MAX_CODE_BYTES = 64;
/** Longest human-readable message in Error/Nack frames. */
export const MAX_MESSAGE_BYTES = 1024;
/** Largest public key accepted in a PairRequest (Ed25519 SPKI DER is 44 bytes). */
export const MAX_PUBLIC_KEY_BYTES = 128;
/** Nonce length in AuthChallenge. */
export const NONCE_BYTES = 32;
/** Ed25519 signature length. */
export const SIGNATURE_BYTES = 64;
/** Pairing code length (characters of PAIRING_CODE_ALPHABET). */
export const PAIRING_CODE_LENGTH = 10;
/** Unambiguous alphabet for pairing codes (no 0/O, 1/I/L, U): 30 symbols, ~49 bits for 10 characters. */
export const PAIRING_CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTVWXYZ23456789';
/** A pairing code expires this long after `studioctl pair` created it. */
export const PAIRING_CODE_TTL_MS = 10 * 60 * 1000;

/** Window the studio announces when not configured otherwise. */
export const DEFAULT_WINDOW_BYTES = 16 * MiB;
/** Largest window a studio may announce. */
export const MAX_WINDOW_BYTES = 256 * MiB;
/** Smallest window a studio may announce (one full chunk must fit). */
export const MIN_WINDOW_BYTES = MAX_CHUNK_BYTES;

/** A side that has sent nothing for this long sends a Ping. */
export const PING_INTERVAL_MS = 15_000;
/** A side that has received nothing for this long closes the link (PROTO_TIMEOUT). */
export const DEAD_LINK_MS = 45_000;
/** The studio closes a session not authenticated within this time (PROTO_TIMEOUT). */
export const AUTH_TIMEOUT_MS = 15_000;
/**
 * Most bytes a client may send before AuthAccepted, all WebSocket frames together (Hello,
 * PairRequest, AuthProof, Pings are each under 1 KiB). Beyond it the studio cuts the connection:
 * an unauthenticated peer never makes it buffer a large frame.
 */
export const MAX_PREAUTH_BYTES = 64 * KiB;

/**
 * Suffix of the durable write's temp files (`.<name>.<random>.s321tmp`), which a start sweeps
 * away: no name segment may end with it (names.ts), so no archive file can be taken for a temp.
 */
export const TEMP_SUFFIX = '.s321tmp';

/** Deepest msgpack nesting any v1 frame needs (frame → files → file → names → name is 4). */
export const MAX_NESTING_DEPTH = 8;
/**
 * Most entries in any msgpack array or map (structural pre-scan). Looser than the
 * per-field limits (MAX_BATCH_FILES…), which the schema checks with a precise error.
 */
export const MAX_CONTAINER_ITEMS = 4 * MAX_BATCH_FILES;
