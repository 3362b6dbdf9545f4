/**
 * Error codes are API. Every stable code the programs can raise is documented in
 * docs/errors.md (STYLE: "every code listed in the docs"), and each prefix has
 * ONE table in ONE file: the code strings appear nowhere else in the sources
 * (everything else names them through the table, so a renamed code fails to
 * compile), and a table holds only its own prefix's codes.
 */
import t from 'tap';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PREFIXES = ['PROTO', 'DURABLE', 'AGENT', 'STUDIO', 'LINK', 'CLOUD', 'CONFIG', 'LEDGER', 'RECOVERY'] as const;
const CODE = /'((?:PROTO|DURABLE|AGENT|STUDIO|LINK|CLOUD|CONFIG|LEDGER|RECOVERY)_[A-Z0-9_]+)'/g;
/** A code inside a string: not part of a longer word (FIELD_AGENT_HOME is no AGENT_ code). */
const IN_STRING =
  /(?<![A-Za-z0-9_])((?:PROTO|DURABLE|AGENT|STUDIO|LINK|CLOUD|CONFIG|LEDGER|RECOVERY)_[A-Z0-9_]*[A-Z0-9])(?![A-Za-z0-9_])/g;
const CODE_SHAPE = /^(?:PROTO|DURABLE|AGENT|STUDIO|LINK|CLOUD|CONFIG|LEDGER|RECOVERY)_[A-Z0-9_]+$/;
const SOURCE_DIRS = ['protocol/src', 'agent/src', 'agent/bin', 'studiod/src', 'studiod/bin'];

/** The one file holding each prefix's table, `X_CODES = { camelCase: 'X_…' } as const`. */
const TABLE_FILE: Record<(typeof PREFIXES)[number], string> = {
  PROTO: 'protocol/src/errors.ts',
  CONFIG: 'protocol/src/errors.ts',
  DURABLE: 'protocol/src/durable/errors.ts',
  AGENT: 'agent/src/errors.ts',
  LINK: 'agent/src/link/errors.ts',
  STUDIO: 'studiod/src/errors.ts',
  LEDGER: 'studiod/src/ledger/errors.ts',
  CLOUD: 'studiod/src/cloud/errors.ts',
  RECOVERY: 'studiod/src/recovery/errors.ts',
};

async function* sources(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'dist' && e.name !== 'node_modules') yield* sources(p);
    else if (e.isFile() && p.endsWith('.ts') && !p.endsWith('.d.ts')) yield p;
  }
}

/** Every source file, repository-relative, with its text. */
async function readSources(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const dir of SOURCE_DIRS) {
    for await (const file of sources(join(ROOT, dir))) files.set(file.slice(ROOT.length), await readFile(file, 'utf8'));
  }
  return files;
}

/** `text` without its comments (they may name codes in prose); `//` after a `:` is a URL, not a comment. */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:\\])\/\/.*$/gm, '$1');
}

/** The `{ key: 'CODE' }` pairs of `export const <name> = { … } as const` in `text`. */
function tableOf(text: string, name: string): Array<[string, string]> | undefined {
  const start = text.indexOf(`export const ${name} = {`);
  if (start < 0) return undefined;
  const end = text.indexOf('} as const;', start);
  const body = withoutComments(text.slice(start, end));
  return [...body.matchAll(/^\s*(\w+): '([^']*)',$/gm)].map((m) => [m[1]!, m[2]!]);
}

t.test('every error code in the sources is in docs/errors.md', async (t) => {
  const docs = await readFile(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const codes = new Map<string, string>();
  for (const [file, text] of await readSources()) {
    for (const m of text.matchAll(CODE)) codes.set(m[1]!, file);
  }
  t.ok(codes.size > 50, `found ${codes.size} codes in the sources`);
  const missing = [...codes].filter(([code]) => !docs.includes(`\`${code}\``));
  t.same(missing, [], 'no undocumented code');
});

t.test('each prefix has one table of one shape, in its file, with only its own codes', async (t) => {
  const files = await readSources();
  for (const prefix of PREFIXES) {
    const file = TABLE_FILE[prefix];
    const text = files.get(file) ?? '';
    const entries = tableOf(text, `${prefix}_CODES`);
    if (entries === undefined) {
      t.fail(`${file} has no ${prefix}_CODES table`);
      continue;
    }
    t.ok(entries.length > 0, `${prefix}_CODES (${file}) lists ${entries.length} codes`);
    t.same(
      entries.filter(([, code]) => !code.startsWith(`${prefix}_`)),
      [],
      `every code of ${prefix}_CODES starts with ${prefix}_`,
    );
    t.same(
      entries.filter(([key]) => !/^[a-z][A-Za-z0-9]*$/.test(key)),
      [],
      `${prefix}_CODES keys are camelCase`,
    );
    const codes = entries.map(([, code]) => code);
    t.equal(new Set(codes).size, codes.length, `${prefix}_CODES lists each code once`);
    const typeName = `${prefix[0]}${prefix.slice(1).toLowerCase()}Code`;
    t.ok(
      text.includes(`export type ${typeName} = (typeof ${prefix}_CODES)[keyof typeof ${prefix}_CODES];`),
      `${file} exports the type ${typeName}`,
    );
  }
  // Any other table of codes (`… = { key: 'X_…' }`) in a table file is a second table.
  for (const file of new Set(Object.values(TABLE_FILE))) {
    const text = withoutComments(files.get(file) ?? '');
    const tables = [...text.matchAll(/export const (\w+) = \{/g)]
      .map((m) => m[1]!)
      .filter((name) => (tableOf(text, name) ?? []).some(([, code]) => CODE_SHAPE.test(code)));
    t.same(
      tables.filter((name) => !PREFIXES.some((p) => name === `${p}_CODES` && TABLE_FILE[p] === file)),
      [],
      `${file}: no code table but its prefixes' X_CODES`,
    );
  }
});

/** The text of every string literal and template piece in a TypeScript source (comments are not nodes). */
function stringsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isStringLiteral(node) ||
      ts.isNoSubstitutionTemplateLiteral(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node)
    )
      out.push(node.text);
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS));
  return out;
}

t.test("a code string appears in the sources only in its prefix's table file", async (t) => {
  const strays: string[] = [];
  for (const [file, text] of await readSources()) {
    const found = new Set<string>();
    // A code as a whole string, or inside a longer one (`field-agent: AGENT_USAGE: …`).
    for (const s of stringsOf(file, text)) for (const m of s.matchAll(IN_STRING)) found.add(m[1]!);
    for (const c of found) {
      const prefix = PREFIXES.find((p) => c.startsWith(`${p}_`))!;
      if (TABLE_FILE[prefix] !== file) strays.push(`${file}: ${c}`);
    }
  }
  t.same(strays.sort(), [], 'no code string outside its table file');
});

t.test('docs/errors.md names the table file in each prefix section', async (t) => {
  const docs = await readFile(join(ROOT, 'docs', 'errors.md'), 'utf8');
  for (const prefix of PREFIXES) {
    const start = docs.indexOf(`\n## ${prefix}_`);
    t.ok(start >= 0, `docs/errors.md has a ${prefix}_ section`);
    const next = docs.indexOf('\n## ', start + 1);
    const section = docs.slice(start, next < 0 ? undefined : next);
    t.ok(section.includes(`\`${TABLE_FILE[prefix]}\``), `the ${prefix}_ section names ${TABLE_FILE[prefix]}`);
  }
});
