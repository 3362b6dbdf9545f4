// Every bad field of both config schemas gives CONFIG_INVALID naming the file
// and the field: the agent's cases are generated from its exported schema (so
// a new field is covered the day it is added), studiod's are listed (its
// schema is private). Then the real bins: `field-agent status --config` and
// `studiod --config` exit non-zero with the code, the file and the field, and
// leave nothing behind.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile, validateConfig, type FieldSpec } from '@studio321/protocol';
import { AGENT_CONFIG_SCHEMA } from '@studio321/agent';
import { parseStudiodConfig, loadStudiodConfig } from '@studio321/studiod';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const FILE = '/etc/test/config.json';

interface Case {
  field: string;
  value: unknown;
  why: string;
}

/** Bad values for one field spec. */
function badValues(spec: FieldSpec): { value: unknown; why: string }[] {
  const out: { value: unknown; why: string }[] = [];
  switch (spec.kind) {
    case 'string':
      out.push({ value: 42, why: 'a number for a string' });
      if (spec.enum) out.push({ value: 'not-a-choice', why: 'not one of the choices' });
      if (spec.absolutePath) out.push({ value: 'relative/path', why: 'a relative path' });
      if (spec.pattern) out.push({ value: 'bad/\u0001', why: 'does not match the format' });
      if (spec.nonEmpty) out.push({ value: '', why: 'empty' });
      break;
    case 'number':
      out.push({ value: 'ten', why: 'a string for a number' });
      if (spec.integer) out.push({ value: (spec.min ?? 0) + 0.5, why: 'not an integer' });
      if (spec.min !== undefined) out.push({ value: spec.min - 1, why: 'below the minimum' });
      if (spec.max !== undefined) out.push({ value: spec.max + 1, why: 'above the maximum' });
      break;
    case 'boolean':
      out.push({ value: 'yes', why: 'a string for a boolean' });
      break;
    case 'array':
      out.push({ value: 'one', why: 'a string for a list' });
      break;
    case 'object':
    case 'record':
      out.push({ value: 7, why: 'a number for an object' });
      break;
    case 'oneOf':
      out.push({ value: true, why: 'a type none of its shapes has' });
      break;
  }
  return out;
}

function casesFor(schema: Record<string, FieldSpec>, prefix = ''): Case[] {
  const cases: Case[] = [{ field: `${prefix}notAnOption`, value: 1, why: 'an unknown option' }];
  for (const [name, spec] of Object.entries(schema)) {
    const field = prefix + name;
    for (const b of badValues(spec)) cases.push({ field, ...b });
    if (spec.kind === 'object') cases.push(...casesFor(spec.fields, `${field}.`));
    if (spec.kind === 'oneOf')
      for (const o of spec.options) {
        if (o.kind === 'string')
          for (const b of badValues(o)) if (typeof b.value === 'string') cases.push({ field, ...b });
        if (o.kind === 'object') cases.push(...casesFor(o.fields, `${field}.`));
      }
    if (spec.kind === 'array')
      for (const b of badValues(spec.of)) cases.push({ field: `${field}[0]`, value: [b.value], why: `item: ${b.why}` });
  }
  return cases;
}

/** Put `value` at a dotted path (`a.b`, `a[0]` means the list `a` itself is set by the case). */
function withField(base: Record<string, unknown>, field: string, value: unknown): Record<string, unknown> {
  const out = structuredClone(base);
  const path = field.replace(/\[0\]$/, '').split('.');
  let obj = out;
  for (const key of path.slice(0, -1)) {
    if (typeof obj[key] !== 'object' || obj[key] === null) obj[key] = {};
    obj = obj[key] as Record<string, unknown>;
  }
  obj[path[path.length - 1]!] = value;
  return out;
}

function expectNamed(t: Test, fn: () => unknown, c: Case): void {
  try {
    fn();
    t.fail(`${c.field} (${c.why}) was accepted`);
  } catch (err) {
    const e = err as { code?: string; message?: string; detail?: { file?: string; field?: string } };
    t.equal(e.code, 'CONFIG_INVALID', `${c.field}: ${c.why} → CONFIG_INVALID`);
    t.equal(e.detail?.field, c.field, `names the field ${c.field}`);
    t.equal(e.detail?.file, FILE);
    t.match(e.message, `${FILE}: field "${c.field}"`, 'message names file and field');
  }
}

t.test('agent: every field of AGENT_CONFIG_SCHEMA refuses bad values by name', async (t) => {
  t.same(
    validateConfig(AGENT_CONFIG_SCHEMA, {}, FILE),
    {
      hotFolders: [],
      policy: { copiesBeforeFormat: 2 },
      pollIntervalMs: 2000,
      hotFolderStableMs: 2000,
      statusPort: 7322,
      tray: true,
      watchVolumes: true,
      freeLaptop: 'never',
    },
    'an empty config is all defaults',
  );
  const cases = casesFor(AGENT_CONFIG_SCHEMA);
  t.ok(cases.length >= 20, `${cases.length} bad-field cases`);
  for (const c of cases)
    expectNamed(t, () => validateConfig(AGENT_CONFIG_SCHEMA, withField({}, c.field, c.value), FILE), c);
});

const STUDIO_MIN = {
  stateDir: '/var/lib/studiod',
  targets: {
    mirror: { root: '/srv/mirror', media: 'hdd-mirror', location: 'studio', device: 'mirror-1' },
    raid: { root: '/srv/raid', media: 'hdd-raid', location: 'studio', device: 'raid-1' },
  },
};

const STUDIO_CASES: Case[] = [
  { field: 'notAnOption', value: 1, why: 'an unknown option' },
  { field: 'stateDir', value: 'var/lib', why: 'a relative path' },
  { field: 'stateDir', value: 5, why: 'a number' },
  { field: 'listen', value: 'x', why: 'not an object' },
  { field: 'listen.host', value: 1, why: 'a number for a host' },
  { field: 'listen.port', value: 70000, why: 'above 65535' },
  { field: 'listen.port', value: -1, why: 'negative' },
  { field: 'listen.port', value: 80.5, why: 'not an integer' },
  { field: 'listen.nope', value: 1, why: 'an unknown option' },
  { field: 'tls.key', value: 'key.pem', why: 'a relative path' },
  { field: 'tls.cert', value: 'cert.pem', why: 'a relative path' },
  { field: 'catalogue', value: 'cat', why: 'a relative path' },
  { field: 'controlSocket', value: 'sock', why: 'a relative path' },
  { field: 'windowBytes', value: 1, why: 'below the minimum' },
  { field: 'windowBytes', value: 'big', why: 'a string' },
  { field: 'targets', value: [], why: 'a list' },
  { field: 'targets.mirror', value: 'x', why: 'not an object' },
  { field: 'targets.mirror.root', value: 'srv/mirror', why: 'a relative path' },
  { field: 'targets.raid.root', value: 3, why: 'a number' },
  { field: 'targets.mirror.media', value: '', why: 'empty' },
  { field: 'targets.raid.location', value: 'a/b', why: 'a slash in a label' },
  { field: 'targets.raid.device', value: 'x'.repeat(200), why: 'too long' },
  { field: 'targets.mirror.requireExistingRoot', value: 'yes', why: 'a string for a boolean' },
  { field: 'targets.tape', value: {}, why: 'an unknown target' },
  { field: 'log.level', value: 'loud', why: 'not a level' },
];

t.test('studiod: every field refuses bad values by name', async (t) => {
  t.ok(parseStudiodConfig(STUDIO_MIN, FILE), 'the minimal config is valid');
  for (const c of STUDIO_CASES) {
    const value =
      c.field === 'tls.key' || c.field === 'tls.cert'
        ? withField(withField(STUDIO_MIN, 'tls', { key: '/k.pem', cert: '/c.pem' }), c.field, c.value)
        : withField(STUDIO_MIN, c.field, c.value);
    expectNamed(t, () => parseStudiodConfig(value, FILE), c);
  }
  for (const missing of ['stateDir', 'targets.mirror', 'targets.raid.root']) {
    const value = structuredClone(STUDIO_MIN) as Record<string, unknown>;
    const path = missing.split('.');
    let obj = value;
    for (const k of path.slice(0, -1)) obj = obj[k] as Record<string, unknown>;
    delete obj[path[path.length - 1]!];
    expectNamed(t, () => parseStudiodConfig(value, FILE), { field: missing, value: undefined, why: 'missing' });
  }
});

function runBin(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

t.test(
  'files and the real bins: missing, bad JSON, bad field → coded error naming file and field, exit non-zero',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'cfg-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const bad = join(dir, 'bad.json');
    const syntax = join(dir, 'syntax.json');
    await writeFile(syntax, '{ "stateDir": "/x", }');

    await t.rejects(loadConfigFile(join(dir, 'none.json'), AGENT_CONFIG_SCHEMA), { code: 'CONFIG_MISSING' });
    await t.rejects(loadConfigFile(syntax, AGENT_CONFIG_SCHEMA), { code: 'CONFIG_SYNTAX' });
    await t.rejects(loadStudiodConfig(syntax), { code: 'CONFIG_SYNTAX' });

    // field-agent
    const dataDir = join(dir, 'agent-data');
    await writeFile(bad, JSON.stringify({ policy: { copiesBeforeFormat: 0 } }));
    const agentBin = join(repo, 'agent/dist/bin/field-agent.js');
    const a = await runBin([agentBin, 'status', '--config', bad, '--data-dir', dataDir]);
    t.not(a.code, 0, 'field-agent exits non-zero');
    t.match(a.stderr, /CONFIG_INVALID/);
    t.match(a.stderr, `${bad}: field "policy.copiesBeforeFormat" must be >= 1`);
    const missing = await runBin([agentBin, 'status', '--config', join(dir, 'nope.json'), '--data-dir', dataDir]);
    t.not(missing.code, 0);
    t.match(missing.stderr, /CONFIG_MISSING/);

    // studiod
    await writeFile(bad, JSON.stringify({ ...STUDIO_MIN, stateDir: join(dir, 'state'), listen: { port: 99999 } }));
    const s = await runBin([join(repo, 'studiod/dist/bin/studiod.js'), '--config', bad]);
    t.not(s.code, 0, 'studiod exits non-zero');
    t.match(s.stderr, /CONFIG_INVALID/);
    t.match(s.stderr, `${bad}: field "listen.port" must be <= 65535`);
    const s2 = await runBin([join(repo, 'studiod/dist/bin/studiod.js'), '--config', syntax]);
    t.not(s2.code, 0);
    t.match(s2.stderr, /CONFIG_SYNTAX/);

    t.same(
      (await readdir(dir)).sort(),
      ['bad.json', 'syntax.json'],
      'a refused config created nothing (no data dir, no state dir)',
    );
  },
);
