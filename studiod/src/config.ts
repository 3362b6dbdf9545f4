/**
 * studiod's configuration: one JSON file (`studiod --config FILE`), validated
 * with the shared declarative validator (protocol/src/config.ts).
 *
 * Minimal config:
 *   {
 *     "stateDir": "/var/lib/studiod",
 *     "targets": {
 *       "mirror": { "root": "/srv/mirror", "media": "hdd-mirror", "location": "calgary", "device": "mirror-1" },
 *       "raid":   { "root": "/srv/raid",   "media": "hdd-raid",   "location": "calgary", "device": "raid-1" }
 *     }
 *   }
 * Everything else has a default derived from `stateDir`.
 */
import { isAbsolute, join, resolve } from 'node:path';
import {
  CodedError,
  CONFIG_CODES,
  ConfigError,
  readJsonConfig,
  validateConfig,
  type FieldSpec,
} from '@studio321/protocol';
import { AUTH_TIMEOUT_MS, MAX_WINDOW_BYTES, MIN_WINDOW_BYTES } from '@studio321/protocol';

/**
 * studiod's default flow-control window: 64 MiB (the protocol allows 1..256 MiB; its
 * DEFAULT_WINDOW_BYTES of 16 MiB is what a studio without config would announce). With an
 * fsync before every Ack, 16 MiB leaves the sender waiting on fsync latency; the larger window
 * costs about 40 MiB more peak RSS per busy session (README, Performance; bench:sync).
 */
export const STUDIOD_DEFAULT_WINDOW_BYTES = 64 * 1024 * 1024;
/**
 * Staged files held open at once (each keeps two descriptors), defaults that serve several laptops:
 * a session holds one Offer's wanted files (MAX_BATCH_FILES) and the next one's; four such sessions in all.
 */
export const DEFAULT_STAGING_LIMITS = { perSession: 512, total: 2048 } as const;
import { DEFAULT_POLICY, validatePolicy, type PolicyConfig } from '@studio321/protocol';
import { validateCloudTarget, type CloudTargetConfig } from './cloud/cloud-target.js';

/** The two local archive targets every receipt requires. */
export const LOCAL_TARGETS = ['mirror', 'raid'] as const;
export type LocalTargetName = (typeof LOCAL_TARGETS)[number];

export interface LocalTargetConfig {
  /** Absolute path of the target's root directory (the mount point or a folder on it). */
  root: string;
  /** Media class label, e.g. `hdd-mirror`, `hdd-raid`. */
  media: string;
  /** Location label, e.g. `calgary`. */
  location: string;
  /** Physical device label (two targets on one disk are one device). */
  device: string;
  /**
   * When true (default) the root must already exist: a missing root means the
   * disk is not mounted, and studiod refuses to commit instead of writing to
   * the empty mount point.
   */
  requireExistingRoot: boolean;
}

export interface StudiodConfig {
  listen: { host: string; port: number };
  tls: { key: string; cert: string };
  stateDir: string;
  catalogue: string;
  controlSocket: string;
  /** Flow-control window announced to agents (bytes in flight per session). */
  windowBytes: number;
  targets: Record<LocalTargetName, LocalTargetConfig>;
  /** Cloud targets: passed through unvalidated here; the cloud forwarder validates them. */
  cloud?: unknown;
  /** 3-2-1 policy options: passed through unvalidated here; the policy module validates them. */
  policy?: unknown;
  log: { level: string };
  /** Catalogue snapshots (recovery/snapshot.ts): minutes between them (0: on demand only) and how many stay on the RAID. */
  snapshots: { intervalMinutes: number; keepLocal: number };
  /** Refilling an adopted disk (recovery/adopt.ts): read-rate limit in bytes/s (0: unlimited). */
  refill: { bytesPerSecond: number };
  /**
   * The scheduled scrub (recovery/scrub.ts): every local copy re-read within `periodDays` (0: no scrub)
   * at most `bytesPerSecond`; each cloud copy HEADed once a pass, `cloudDownloadPercent` of the hot ones read in full;
   * the cursor saved every `assetsPerStep` assets.
   */
  scrub: { periodDays: number; bytesPerSecond: number; cloudDownloadPercent: number; assetsPerStep: number };
  /** Alerts (ops/alerts.ts): the conditions' thresholds and the channels that carry them (the log always does). */
  alerts: AlertsConfig;
  /** The Prometheus endpoint (ops/metrics.ts); absent: off. */
  metrics?: { host: string; port: number };
  /**
   * What unauthenticated peers may hold (link/pre-auth-guard.ts): connections not yet authenticated,
   * in all and from one source address, and the seconds from TCP accept to AuthAccepted.
   */
  link: { maxUnauthenticated: number; maxUnauthenticatedPerAddress: number; handshakeSeconds: number };
  /**
   * Staged files (commit/staging.ts): how many one session may hold (created or not), how many all
   * sessions may have open (created, or opened to resume), and the
   * hours after which a partial nobody wrote is removed (0: never).
   */
  staging: { maxFilesPerSession: number; maxFiles: number; expireHours: number };
  /** Pairing lockout (link/pairing-throttle.ts): refusals from one address, and from all, before a lockout of `lockoutMinutes`. */
  pairing: { maxRefusals: number; maxRefusalsTotal: number; lockoutMinutes: number };
}

export interface AlertsConfig {
  /** Seconds between evaluations of the conditions. */
  checkIntervalSeconds: number;
  /** An asset still below 3-2-1 this long after its commit raises an alert (one per shoot). */
  unprotectedGraceHours: number;
  /** A local target with less free space than this raises an alert (bytes). */
  freeBytesMin: number;
  /** …or that will run out within this many days at the rate it is filling (0: no prediction). */
  fullWithinDays: number;
  /** A paired agent unseen this long while it reported unsynced files raises an alert (0: never). */
  agentSilentDays: number;
  webhook?: { url: string; secret: string; timeoutMs: number; maxAttempts: number };
  email?: {
    host: string;
    port: number;
    secure: boolean;
    user?: string;
    password?: string;
    from: string;
    to: string[];
  };
}

const label = (describe: string): FieldSpec => ({
  kind: 'string',
  nonEmpty: true,
  pattern: /^[\w .:@-]{1,128}$/u,
  describe,
});

const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/u;

const targetSpec: FieldSpec = {
  kind: 'object',
  fields: {
    root: { kind: 'string', absolutePath: true, describe: 'absolute path of the target root' },
    media: label('media class, e.g. hdd-mirror'),
    location: label('location, e.g. calgary'),
    device: label('device label'),
    requireExistingRoot: { kind: 'boolean', default: true },
  },
};

const schema: Record<string, FieldSpec> = {
  listen: {
    kind: 'object',
    fields: {
      host: { kind: 'string', default: '0.0.0.0' },
      port: { kind: 'number', integer: true, min: 0, max: 65535, default: 7321 },
    },
  },
  tls: {
    kind: 'object',
    optional: true,
    fields: {
      key: { kind: 'string', absolutePath: true },
      cert: { kind: 'string', absolutePath: true },
    },
  },
  stateDir: { kind: 'string', absolutePath: true },
  catalogue: { kind: 'string', absolutePath: true, optional: true },
  controlSocket: { kind: 'string', absolutePath: true, optional: true },
  windowBytes: {
    kind: 'number',
    integer: true,
    min: MIN_WINDOW_BYTES,
    max: MAX_WINDOW_BYTES,
    default: STUDIOD_DEFAULT_WINDOW_BYTES,
  },
  targets: { kind: 'object', fields: { mirror: targetSpec, raid: targetSpec } },
  snapshots: {
    kind: 'object',
    fields: {
      intervalMinutes: { kind: 'number', integer: true, min: 0, default: 24 * 60 },
      keepLocal: { kind: 'number', integer: true, min: 1, default: 7 },
    },
  },
  refill: {
    kind: 'object',
    fields: { bytesPerSecond: { kind: 'number', integer: true, min: 0, default: 100_000_000 } },
  },
  scrub: {
    kind: 'object',
    fields: {
      periodDays: { kind: 'number', min: 0, default: 30 },
      bytesPerSecond: { kind: 'number', integer: true, min: 0, default: 20_000_000 },
      cloudDownloadPercent: { kind: 'number', min: 0, max: 100, default: 1 },
      // Assets checked between two saves of the cursor: what a kill redoes at most.
      assetsPerStep: { kind: 'number', integer: true, min: 1, max: 10_000, default: 64 },
    },
  },
  alerts: {
    kind: 'object',
    fields: {
      checkIntervalSeconds: { kind: 'number', min: 1, default: 60 },
      unprotectedGraceHours: { kind: 'number', min: 0, default: 48 },
      freeBytesMin: { kind: 'number', integer: true, min: 0, default: 50_000_000_000 },
      fullWithinDays: { kind: 'number', min: 0, default: 14 },
      agentSilentDays: { kind: 'number', min: 0, default: 3 },
      webhook: {
        kind: 'object',
        optional: true,
        fields: {
          url: { kind: 'string', pattern: /^https?:\/\/\S+$/u, describe: 'an http:// or https:// URL' },
          secret: {
            kind: 'string',
            pattern: /^\S{16,}$/u,
            describe: 'at least 16 characters without spaces (the HMAC-SHA256 key the receiver shares)',
          },
          timeoutMs: { kind: 'number', integer: true, min: 100, default: 10_000 },
          maxAttempts: { kind: 'number', integer: true, min: 1, default: 8 },
        },
      },
      email: {
        kind: 'object',
        optional: true,
        fields: {
          host: { kind: 'string', nonEmpty: true },
          port: { kind: 'number', integer: true, min: 1, max: 65535, default: 587 },
          secure: { kind: 'boolean', default: false },
          user: { kind: 'string', optional: true },
          password: { kind: 'string', optional: true },
          from: { kind: 'string', pattern: EMAIL, describe: 'an e-mail address' },
          to: { kind: 'array', minItems: 1, of: { kind: 'string', pattern: EMAIL, describe: 'an e-mail address' } },
        },
      },
    },
  },
  metrics: {
    kind: 'object',
    optional: true,
    fields: {
      host: { kind: 'string', nonEmpty: true, default: '127.0.0.1' },
      port: { kind: 'number', integer: true, min: 0, max: 65535, default: 9321 },
    },
  },
  link: {
    kind: 'object',
    fields: {
      maxUnauthenticated: { kind: 'number', integer: true, min: 1, default: 64 },
      maxUnauthenticatedPerAddress: { kind: 'number', integer: true, min: 1, default: 8 },
      handshakeSeconds: { kind: 'number', min: 0.1, max: 600, default: AUTH_TIMEOUT_MS / 1000 },
    },
  },
  staging: {
    kind: 'object',
    fields: {
      maxFilesPerSession: {
        kind: 'number',
        integer: true,
        min: 1,
        default: DEFAULT_STAGING_LIMITS.perSession,
      },
      maxFiles: { kind: 'number', integer: true, min: 1, default: DEFAULT_STAGING_LIMITS.total },
      expireHours: { kind: 'number', min: 0, default: 48 },
    },
  },
  pairing: {
    kind: 'object',
    fields: {
      maxRefusals: { kind: 'number', integer: true, min: 1, default: 5 },
      maxRefusalsTotal: { kind: 'number', integer: true, min: 1, default: 20 },
      lockoutMinutes: { kind: 'number', min: 0, default: 15 },
    },
  },
  log: {
    kind: 'object',
    fields: {
      level: { kind: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    },
  },
};

type RawConfig = Omit<StudiodConfig, 'tls' | 'catalogue' | 'controlSocket'> & {
  tls?: { key: string; cert: string };
  catalogue?: string;
  controlSocket?: string;
};

function withDefaults(raw: RawConfig): StudiodConfig {
  const s = raw.stateDir;
  return {
    ...raw,
    tls: raw.tls ?? { key: join(s, 'tls', 'key.pem'), cert: join(s, 'tls', 'cert.pem') },
    catalogue: raw.catalogue ?? join(s, 'catalogue'),
    controlSocket: raw.controlSocket ?? join(s, 'control.sock'),
  };
}

/** Validate an already-parsed config object (tests build configs in memory). */
export function parseStudiodConfig(value: unknown, file = '<config>'): StudiodConfig {
  // `cloud` and `policy` belong to other modules; they validate them.
  let passThrough: { cloud?: unknown; policy?: unknown } = {};
  let rest = value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const { cloud, policy, ...others } = value as Record<string, unknown>;
    passThrough = { ...(cloud === undefined ? {} : { cloud }), ...(policy === undefined ? {} : { policy }) };
    rest = others;
  }
  const config = { ...withDefaults(validateConfig<RawConfig>(schema, rest, file)), ...passThrough };
  // The cloud targets and the policy are checked here too, so a typo inside them (a cloud
  // target's `forcePathstyle`) is refused at start like one at top level, naming file and key.
  try {
    cloudTargetsOf(config);
    policyOf(config);
  } catch (err) {
    if (!(err instanceof CodedError)) throw err;
    throw new ConfigError(CONFIG_CODES.invalid, `${file}: ${err.message}`, {
      cause: err,
      detail: { file, ...err.detail },
    });
  }
  return config;
}

/** Read and validate `file`. Throws ConfigError (CONFIG_MISSING, CONFIG_UNREADABLE, CONFIG_SYNTAX, CONFIG_INVALID). */
export async function loadStudiodConfig(file: string): Promise<StudiodConfig> {
  const abs = isAbsolute(file) ? file : resolve(file);
  return parseStudiodConfig(await readJsonConfig(abs), abs);
}

/** Default location of the control socket when studioctl is given only a config. */
export function defaultConfigPath(): string {
  return process.env['STUDIOD_CONFIG'] ?? '/etc/studiod/studiod.json';
}

// ── cloud targets and the 3-2-1 policy (validated by their own modules) ──

/**
 * The `cloud` list of the config (each entry a CloudTargetConfig, checked by
 * validateCloudTarget when the forwarder is built). Absent → no cloud targets.
 */
export function cloudTargetsOf(config: StudiodConfig): CloudTargetConfig[] {
  const raw = config.cloud;
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    throw new ConfigError(
      CONFIG_CODES.invalid,
      'cloud must be a list of cloud targets ([{ "name", "endpoint", "region", "bucket", … }]). Fix the studiod config file.',
      { detail: { field: 'cloud' } },
    );
  }
  return raw.map((t, i) => {
    if (t === null || typeof t !== 'object' || Array.isArray(t)) {
      throw new ConfigError(CONFIG_CODES.invalid, `cloud[${i}] must be an object. Fix the studiod config file.`, {
        detail: { field: `cloud[${i}]` },
      });
    }
    return validateCloudTarget(t as CloudTargetConfig, `cloud[${i}]`);
  });
}

/** The 3-2-1 policy of the config (`policy: { copies, media, offsite }`), default 3/2/1. */
export function policyOf(config: StudiodConfig): PolicyConfig {
  if (config.policy === undefined) return { ...DEFAULT_POLICY };
  try {
    return validatePolicy(config.policy);
  } catch (err) {
    throw new ConfigError(
      CONFIG_CODES.invalid,
      `${err instanceof Error ? err.message : String(err)}. Fix the studiod config file.`,
      { cause: err, detail: { field: 'policy' } },
    );
  }
}
