/**
 * Declarative config validation shared by field-agent and studiod.
 *
 * A schema is a tree of field specs. `validateConfig` walks it and either
 * returns the value with defaults filled in, or throws a ConfigError whose
 * message names the file, the field (dotted path, e.g. `targets.mirror.root`)
 * and what is wrong. Unknown fields are refused too: a typo in a config must
 * not silently fall back to a default.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { CONFIG_CODES, ConfigError, errorCode } from './errors.js';
import { didYouMean } from './suggest.js';

export type FieldSpec =
  | {
      kind: 'string';
      default?: string;
      optional?: boolean;
      enum?: readonly string[];
      pattern?: RegExp;
      describe?: string;
      absolutePath?: boolean;
      nonEmpty?: boolean;
    }
  | {
      kind: 'number';
      default?: number;
      optional?: boolean;
      min?: number;
      max?: number;
      integer?: boolean;
      describe?: string;
    }
  | { kind: 'boolean'; default?: boolean; optional?: boolean; describe?: string }
  | { kind: 'object'; fields: Record<string, FieldSpec>; optional?: boolean; describe?: string }
  | { kind: 'record'; of: FieldSpec; optional?: boolean; minEntries?: number; keyPattern?: RegExp; describe?: string }
  | { kind: 'array'; of: FieldSpec; optional?: boolean; default?: unknown[]; minItems?: number; describe?: string }
  /** One of several shapes, told apart by the value's JSON type (e.g. a keyword string or an object). */
  | { kind: 'oneOf'; options: FieldSpec[]; optional?: boolean; default?: unknown; describe: string };

/** CONFIG_INVALID for one field of `file` (also for checks across fields, after validateConfig). */
export function invalidConfigField(file: string, field: string, problem: string): ConfigError {
  return new ConfigError(
    CONFIG_CODES.invalid,
    `${file}: field "${field}" ${problem}. Fix the field in the config file and start again.`,
    { detail: { file, field } },
  );
}

function fail(file: string, field: string, problem: string): never {
  throw invalidConfigField(file, field, problem);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function validateField(spec: FieldSpec, value: unknown, path: string, file: string): unknown {
  if (value === undefined) {
    if ('default' in spec && spec.default !== undefined) return structuredClone(spec.default);
    if (spec.optional) return undefined;
    if (
      spec.kind === 'object' &&
      Object.values(spec.fields).every((f) => f.optional || ('default' in f && f.default !== undefined))
    ) {
      return validateField(spec, {}, path, file);
    }
    fail(file, path, 'is required');
  }
  switch (spec.kind) {
    case 'string': {
      if (typeof value !== 'string') fail(file, path, `must be a string, got ${typeOf(value)}`);
      if (spec.nonEmpty && value.length === 0) fail(file, path, 'must not be empty');
      if (spec.enum && !spec.enum.includes(value))
        fail(file, path, `must be one of ${spec.enum.join(', ')}, got "${value}"`);
      if (spec.pattern && !spec.pattern.test(value))
        fail(file, path, `has an invalid format ("${value}"${spec.describe ? `; expected ${spec.describe}` : ''})`);
      if (spec.absolutePath && !isAbsolute(value)) fail(file, path, `must be an absolute path, got "${value}"`);
      return value;
    }
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value))
        fail(file, path, `must be a number, got ${typeOf(value)}`);
      if (spec.integer && !Number.isInteger(value)) fail(file, path, `must be an integer, got ${value}`);
      if (spec.min !== undefined && value < spec.min) fail(file, path, `must be >= ${spec.min}, got ${value}`);
      if (spec.max !== undefined && value > spec.max) fail(file, path, `must be <= ${spec.max}, got ${value}`);
      return value;
    }
    case 'boolean': {
      if (typeof value !== 'boolean') fail(file, path, `must be true or false, got ${typeOf(value)}`);
      return value;
    }
    case 'object': {
      if (typeOf(value) !== 'object') fail(file, path, `must be an object, got ${typeOf(value)}`);
      const obj = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(obj)) {
        if (!(key in spec.fields))
          fail(
            file,
            path ? `${path}.${key}` : key,
            `is not a known option${didYouMean(key, Object.keys(spec.fields)) || ' (check the spelling)'}`,
          );
      }
      for (const [key, fieldSpec] of Object.entries(spec.fields)) {
        const v = validateField(fieldSpec, obj[key], path ? `${path}.${key}` : key, file);
        if (v !== undefined) out[key] = v;
      }
      return out;
    }
    case 'record': {
      if (typeOf(value) !== 'object') fail(file, path, `must be an object, got ${typeOf(value)}`);
      const obj = value as Record<string, unknown>;
      const entries = Object.entries(obj);
      if (spec.minEntries !== undefined && entries.length < spec.minEntries)
        fail(file, path, `must have at least ${spec.minEntries} entr${spec.minEntries === 1 ? 'y' : 'ies'}`);
      const out: Record<string, unknown> = {};
      for (const [key, v] of entries) {
        if (spec.keyPattern && !spec.keyPattern.test(key))
          fail(file, `${path}.${key}`, 'has an invalid name (use letters, digits, - and _)');
        out[key] = validateField(spec.of, v, `${path}.${key}`, file);
      }
      return out;
    }
    case 'oneOf': {
      const jsonKind = (k: FieldSpec['kind']): string => (k === 'record' ? 'object' : k === 'array' ? 'array' : k);
      const option = spec.options.find((o) => jsonKind(o.kind) === typeOf(value));
      if (option === undefined) fail(file, path, `must be ${spec.describe}, got ${typeOf(value)}`);
      return validateField(option, value, path, file);
    }
    case 'array': {
      if (!Array.isArray(value)) fail(file, path, `must be a list, got ${typeOf(value)}`);
      if (spec.minItems !== undefined && value.length < spec.minItems)
        fail(file, path, `must have at least ${spec.minItems} item(s)`);
      return value.map((v, i) => validateField(spec.of, v, `${path}[${i}]`, file));
    }
  }
}

/** Validate a parsed config object; `file` names the source in error messages. */
export function validateConfig<T>(schema: Record<string, FieldSpec>, value: unknown, file: string): T {
  return validateField({ kind: 'object', fields: schema }, value, '', file) as T;
}

/** Read a JSON config file and validate it. */
export async function loadConfigFile<T>(file: string, schema: Record<string, FieldSpec>): Promise<T> {
  return validateConfig<T>(schema, await readJsonConfig(file), file);
}

/** `line:column` (1-based) of a character offset in `text`. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `${line}:${offset - before.lastIndexOf('\n')}`;
}

/**
 * Read and parse a JSON config file (both programs' loaders). CONFIG_MISSING, CONFIG_UNREADABLE,
 * or CONFIG_SYNTAX naming file:line:column of the first error (V8 gives the offset, or none at
 * the end of the input).
 */
export async function readJsonConfig(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') {
      throw new ConfigError(
        CONFIG_CODES.missing,
        `${file}: config file not found. Create it (see the README's configuration section) or pass --config.`,
        { cause: err, detail: { file } },
      );
    }
    throw new ConfigError(CONFIG_CODES.unreadable, `${file}: config file cannot be read. Check its permissions.`, {
      cause: err,
      detail: { file },
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const at = /at position (\d+)/.exec((err as Error).message);
    const where = lineColumn(text, at === null ? text.length : Number(at[1]));
    const why = (err as Error).message.replace(/ in JSON at position \d+.*$/s, '');
    throw new ConfigError(
      CONFIG_CODES.syntax,
      `${file}:${where}: not valid JSON (${why}). Fix the syntax and start again.`,
      { cause: err, detail: { file, line: Number(where.split(':')[0]), column: Number(where.split(':')[1]) } },
    );
  }
}
