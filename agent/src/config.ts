/**
 * The agent's config file (JSON), validated with protocol's declarative validator.
 *
 *   {
 *     "store": "/home/anna/Pictures/studio321",        // laptop store (default <data dir>/store)
 *     "fieldDrives": ["/media/anna/T7/studio321"],      // optional further field destinations, each verified
 *     "hotFolders": ["/home/anna/Tether"],             // watched folders (tethered shooting)
 *     "shoot": "2026-11-26-wedding",                    // default shoot name (default: today, YYYY-MM-DD)
 *     "policy": { "copiesBeforeFormat": 2 },
 *     "pollIntervalMs": 2000,                           // volume polling
 *     "hotFolderStableMs": 2000,                        // size+mtime unchanged this long = complete
 *     "studioUrl": "wss://studio.example:7321/v1",      // for the link client
 *     "statusPort": 7322,                               // status page on 127.0.0.1 (0: any free port)
 *     "tray": true,                                     // tray icon when a desktop is there
 *     "watchVolumes": true,                             // false: no card detection, hot folders only
 *     "freeLaptop": "never",                            // or "onceCompliant", or { "afterDays": 30 }
 *     "renameTemplate": "{date:YYYYMMDD}_{body}_{seq:4}", // rename at ingest (offload/rename-template.ts;
 *     "renameTemplates": { "2026-11-26-wedding": "…" },   //   per shoot; default: original names)
 *     "bodies": { "032024001234": "A" }                  // body nicknames by serial ({body})
 *   }
 *
 * `fieldDrive` (one path) is still read as the one-element form of `fieldDrives`; giving both is
 * an error (CONFIG_INVALID), so no drive is silently left out. The list's order names the
 * destinations: `field-drive`, `field-drive-2`, `field-drive-3`… (fieldDriveName, targets.ts):
 * append a new drive at the end, since copies are recorded by that name.
 *
 * No config file at the default location is fine: every field has a default.
 * A config file named with --config must exist.
 */
import {
  loadConfigFile,
  validateConfig,
  CONFIG_CODES,
  CodedError,
  invalidConfigField,
  type FieldSpec,
} from '@studio321/protocol/base';
import type { AgentPaths } from './paths.js';

export interface AgentConfig {
  store: string;
  /** The field drives, in config order (none: laptop only). */
  fieldDrives: string[];
  hotFolders: string[];
  shoot?: string;
  policy: { copiesBeforeFormat: number };
  pollIntervalMs: number;
  hotFolderStableMs: number;
  studioUrl?: string;
  /** Port of the local status page on 127.0.0.1 (0: any free port). */
  statusPort: number;
  /** Show the tray icon when a desktop session is there. */
  tray: boolean;
  /** Watch mounted volumes for camera cards (false: hot folders only). */
  watchVolumes: boolean;
  /** When the laptop copies of a card compliant at the studio are deleted (state/free-laptop.ts). */
  freeLaptop: FreeLaptopPolicy;
  /** Rename template for every shoot without its own (absent: original names kept). */
  renameTemplate?: string;
  /** Rename templates per shoot name. */
  renameTemplates?: Record<string, string>;
  /** Body nicknames by serial number (the `{body}` token). */
  bodies?: Record<string, string>;
}

/** `never` (default), `onceCompliant`, or `{ afterDays: N }` after the studio's verdict said compliant. */
export type FreeLaptopPolicy = 'never' | 'onceCompliant' | { afterDays: number };

/** Shoot names become one folder of the store. */
export const SHOOT_NAME_RE = /^(?!\.{1,2}$)[^/\\\u0000-\u001f]{1,128}$/;

export const AGENT_CONFIG_SCHEMA: Record<string, FieldSpec> = {
  store: { kind: 'string', optional: true, absolutePath: true, describe: 'absolute path of the laptop store' },
  fieldDrive: {
    kind: 'string',
    optional: true,
    absolutePath: true,
    describe: 'absolute path on the external field drive',
  },
  fieldDrives: { kind: 'array', of: { kind: 'string', absolutePath: true }, optional: true },
  hotFolders: { kind: 'array', of: { kind: 'string', absolutePath: true }, default: [] },
  shoot: {
    kind: 'string',
    optional: true,
    pattern: SHOOT_NAME_RE,
    describe: 'a folder name without / or control characters',
  },
  policy: {
    kind: 'object',
    fields: { copiesBeforeFormat: { kind: 'number', integer: true, min: 1, max: 10, default: 2 } },
  },
  pollIntervalMs: { kind: 'number', integer: true, min: 100, max: 600_000, default: 2000 },
  hotFolderStableMs: { kind: 'number', integer: true, min: 50, max: 600_000, default: 2000 },
  studioUrl: { kind: 'string', optional: true, pattern: /^wss?:\/\//, describe: 'a ws:// or wss:// URL' },
  statusPort: { kind: 'number', integer: true, min: 0, max: 65535, default: 7322 },
  tray: { kind: 'boolean', default: true },
  watchVolumes: { kind: 'boolean', default: true },
  renameTemplate: { kind: 'string', optional: true, nonEmpty: true, describe: 'a rename template' },
  renameTemplates: {
    kind: 'record',
    optional: true,
    keyPattern: SHOOT_NAME_RE,
    of: { kind: 'string', nonEmpty: true, describe: 'a rename template' },
    describe: 'rename templates by shoot name',
  },
  bodies: {
    kind: 'record',
    optional: true,
    of: { kind: 'string', pattern: /^[^/\\\u0000-\u001f]{1,64}$/, describe: 'a nickname of 1–64 characters, no /' },
    describe: 'body nicknames by serial number',
  },
  freeLaptop: {
    kind: 'oneOf',
    default: 'never',
    describe: '"never", "onceCompliant" or { "afterDays": N }',
    options: [
      { kind: 'string', enum: ['never', 'onceCompliant'] },
      { kind: 'object', fields: { afterDays: { kind: 'number', integer: true, min: 0, max: 3650 } } },
    ],
  },
};

type RawConfig = Omit<AgentConfig, 'store' | 'fieldDrives'> & {
  store?: string;
  fieldDrive?: string;
  fieldDrives?: string[];
};

/** Load the config (or defaults when the default file does not exist). */
export async function loadAgentConfig(paths: AgentPaths): Promise<AgentConfig> {
  let raw: RawConfig;
  try {
    raw = await loadConfigFile<RawConfig>(paths.configFile, AGENT_CONFIG_SCHEMA);
  } catch (err) {
    if (err instanceof CodedError && err.code === CONFIG_CODES.missing && !paths.configExplicit) {
      raw = validateConfig<RawConfig>(AGENT_CONFIG_SCHEMA, {}, '(defaults)');
    } else {
      throw err;
    }
  }
  const { fieldDrive, fieldDrives, ...rest } = raw;
  return { ...rest, store: raw.store ?? paths.defaultStore, fieldDrives: fieldDriveList(raw, paths.configFile) };
}

/** `fieldDrives`, or `fieldDrive` as its one-element form; never both, never one path twice. */
function fieldDriveList(raw: RawConfig, file: string): string[] {
  const invalid = (field: string, problem: string) => invalidConfigField(file, field, problem);
  if (raw.fieldDrive !== undefined && raw.fieldDrives !== undefined)
    throw invalid('fieldDrive', 'is given together with "fieldDrives": list every field drive in "fieldDrives"');
  const list = raw.fieldDrives ?? (raw.fieldDrive === undefined ? [] : [raw.fieldDrive]);
  const norm = list.map((p) => p.replace(/\/+$/, '') || '/');
  const dup = norm.find((p, i) => norm.indexOf(p) !== i);
  if (dup !== undefined) throw invalid('fieldDrives', `names ${dup} twice: one copy per drive`);
  if (raw.store !== undefined && norm.includes(raw.store.replace(/\/+$/, '') || '/'))
    throw invalid('fieldDrives', 'names the laptop store: a field drive is another destination');
  return list;
}

/** Today's date as a shoot name (local time), e.g. 2026-11-26. */
export function defaultShootName(now: Date = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}`;
}
