/**
 * ASC MHL v2 (the chain-of-custody standard of film and photo; schema and reference
 * implementation: ascmitc/mhl, `xsd/ASCMHL.xsd`, `xsd/ASCMHLDirectory.xsd`).
 *
 * A folder carries its own proof in `<folder>/ascmhl/`:
 *  - one generation per process that hashed files in it, `NNNN_<folder>_<YYYY-MM-DD_HHMMSS>Z.mhl`
 *    (a `<hashlist version="2.0">`: creator info, process `transfer` or `in-place`, and per file
 *    its folder-relative path, size, last modification and hash with action `original` (first
 *    seen), `verified` (hashed again, same) or `failed`);
 *  - `ascmhl_chain.xml` (`<ascmhldirectory>`): each generation's file name and the C4 id of its
 *    bytes, so an altered or removed generation is seen.
 * The field agent writes a generation for a card's folder at each offload, studiod one for each
 * studio folder it commits files into. Our hash is XXH3-64 (hash.ts: the schema has no BLAKE3).
 * A generation is written by durableWrite (read back, never replacing a name, also on file systems
 * without hard links: exFAT field drives), the chain by writeFileAtomic (replaced by rename).
 *
 * `verifyMhlFolder` re-hashes a folder against its history: missing, altered and new files, and a
 * chain that does not match its generations. It reads what other ASC MHL tools write (default
 * namespace, the formats xxh3, xxh64, md5, sha1, c4; xxh128 only where another format is present).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { durableWrite } from './durable-write.js';
import { writeFileAtomic } from './small-file.js';
import { createXxh3, readFileChunks } from '../hash.js';

export const MHL_FOLDER = 'ascmhl';
export const MHL_CHAIN_FILE = 'ascmhl_chain.xml';
/** Left out of every generation and of verification: the MHL folder itself, temps, Finder litter. */
export const MHL_IGNORE = ['.DS_Store', MHL_FOLDER, `${MHL_FOLDER}/`, '*.s321tmp'];

export type MhlProcess = 'transfer' | 'in-place';
export type MhlAction = 'original' | 'verified' | 'failed';

export interface MhlFile {
  /** Folder-relative, '/'-separated. */
  path: string;
  size: number;
  mtimeMs: number;
  xxh3: string;
  action: MhlAction;
  /** When the hash was computed (ISO). */
  hashDate: string;
}

export interface MhlGenerationInput {
  /** The folder the generation describes (its `ascmhl/` is created when missing). */
  root: string;
  process: MhlProcess;
  tool: { name: string; version: string };
  hostname: string;
  comment?: string;
  files: readonly MhlFile[];
  /** Default now. */
  now?: Date;
}

const C4_CHARSET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** The version of studio321 written as the tool's version in each generation. */
export function mhlToolVersion(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

/** The C4 id of bytes (SMPTE ST 2114: SHA-512, base58, 90 characters), as the chain file records it. */
export function c4Id(data: Uint8Array): string {
  return c4FromSha512(createHash('sha512').update(data).digest('hex'));
}

function c4FromSha512(hex: string): string {
  let n = BigInt(`0x${hex}`);
  let s = '';
  while (n > 0n) {
    s = C4_CHARSET[Number(n % 58n)] + s;
    n /= 58n;
  }
  return `c4${s.padStart(88, '1')}`;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function xmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number.parseInt(e.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e] as string;
  });
}

/** xs:dateTime at second precision, UTC (as the reference implementation writes dates). */
function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `NNNN_<folder>_<YYYY-MM-DD_HHMMSS>Z.mhl`, the reference implementation's generation name. */
export function mhlGenerationName(generation: number, folder: string, now: Date): string {
  const d = now.toISOString();
  const stamp = `${d.slice(0, 10)}_${d.slice(11, 13)}${d.slice(14, 16)}${d.slice(17, 19)}Z`;
  return `${String(generation).padStart(4, '0')}_${folder}_${stamp}.mhl`;
}

/** The XML of one generation (a `<hashlist>` valid against ASCMHL.xsd). */
export function mhlHashlistXml(input: MhlGenerationInput): string {
  const now = input.now ?? new Date();
  const hashes = input.files.length === 0 ? '' : `${HASHES_START}${input.files.map(hashXml).join('')}${HASHES_END}`;
  return `${hashlistHead(input, now)}${hashes}${HASHLIST_END}`;
}

/** The generation's lines before its hashes (creator and process info), each ending in a newline. */
function hashlistHead(input: Omit<MhlGenerationInput, 'files'>, now: Date): string {
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<hashlist version="2.0" xmlns="urn:ASC:MHL:v2.0">',
    '  <creatorinfo>',
    `    <creationdate>${isoSeconds(now)}</creationdate>`,
    `    <hostname>${xmlEscape(input.hostname)}</hostname>`,
    `    <tool version="${xmlEscape(input.tool.version)}">${xmlEscape(input.tool.name)}</tool>`,
    ...(input.comment === undefined ? [] : [`    <comment>${xmlEscape(input.comment)}</comment>`]),
    '  </creatorinfo>',
    '  <processinfo>',
    `    <process>${input.process}</process>`,
    '    <ignore>',
    ...MHL_IGNORE.map((p) => `      <pattern>${xmlEscape(p)}</pattern>`),
    '    </ignore>',
    '  </processinfo>',
  ];
  return `${lines.join('\n')}\n`;
}

const HASHES_START = '  <hashes>\n';
const HASHES_END = '  </hashes>\n';
const HASHLIST_END = '</hashlist>\n';

function hashXml(f: MhlFile): string {
  return (
    '    <hash>\n' +
    `      <path size="${f.size}" lastmodificationdate="${isoSeconds(new Date(f.mtimeMs))}">${xmlEscape(f.path)}</path>\n` +
    `      <xxh3 action="${f.action}" hashdate="${new Date(f.hashDate).toISOString()}">${f.xxh3}</xxh3>\n` +
    '    </hash>\n'
  );
}

/** Bytes of XML gathered per chunk of a streamed generation. */
const STREAM_CHUNK = 64 * 1024;

/**
 * The bytes of mhlHashlistXml for files given one by one, in chunks of about STREAM_CHUNK: a
 * generation of 100,000 files is never one string. `sha512` sees every byte (the chain's C4).
 */
async function* hashlistChunks(
  input: Omit<MhlGenerationInput, 'files'>,
  files: AsyncIterable<MhlFile>,
  now: Date,
  sha512: { update(b: Uint8Array): unknown },
): AsyncGenerator<Uint8Array, void, undefined> {
  let text = hashlistHead(input, now);
  let any = false;
  const out = (): Buffer => {
    const b = Buffer.from(text, 'utf8');
    sha512.update(b);
    text = '';
    return b;
  };
  for await (const f of files) {
    if (!any) text += HASHES_START;
    any = true;
    text += hashXml(f);
    if (text.length >= STREAM_CHUNK) yield out();
  }
  text += `${any ? HASHES_END : ''}${HASHLIST_END}`;
  yield out();
}

interface ChainEntry {
  sequence: number;
  path: string;
  c4: string;
}

function chainXml(entries: readonly ChainEntry[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ascmhldirectory xmlns="urn:ASC:MHL:DIRECTORY:v2.0">',
    ...entries.flatMap((e) => [
      `  <hashlist sequencenr="${e.sequence}">`,
      `    <path>${xmlEscape(e.path)}</path>`,
      `    <c4>${e.c4}</c4>`,
      '  </hashlist>',
    ]),
    '</ascmhldirectory>',
    '',
  ].join('\n');
}

function parseChain(xml: string): ChainEntry[] {
  const out: ChainEntry[] = [];
  for (const m of xml.matchAll(/<hashlist\b([^>]*)>([\s\S]*?)<\/hashlist>/g)) {
    const seq = /sequencenr="(\d+)"/.exec(m[1] ?? '')?.[1];
    const path = /<path>([\s\S]*?)<\/path>/.exec(m[2] ?? '')?.[1];
    const c4 = /<c4[^>]*>([\s\S]*?)<\/c4>/.exec(m[2] ?? '')?.[1];
    if (seq !== undefined && path !== undefined && c4 !== undefined)
      out.push({ sequence: Number(seq), path: xmlUnescape(path).trim(), c4: c4.trim() });
  }
  return out;
}

async function readChain(mhlDir: string): Promise<ChainEntry[] | undefined> {
  try {
    return parseChain(await readFile(join(mhlDir, MHL_CHAIN_FILE), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function generationFiles(mhlDir: string): Promise<string[]> {
  try {
    return (await readdir(mhlDir)).filter((n) => /^\d{4,}_.*\.mhl$/.test(n)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function* oneChunk(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

/** Generations are appended one at a time per folder in this process (the chain is read, then rewritten). */
const appending = new Map<string, Promise<unknown>>();

/**
 * Appends a generation to `root`'s history: the `.mhl` (never replacing a name), then the chain
 * with its C4 (replaced atomically). Both fsynced, and their directory. Returns the generation's path.
 */
export function appendMhlGeneration(input: MhlGenerationInput): Promise<{ path: string; generation: number }> {
  return serialised(input.root, () => appendNow(input));
}

/**
 * appendMhlGeneration for files given one by one (the same bytes as for the same files in an
 * array), written as they come: the generation of a card of 100,000 files is never held whole.
 * `files` is read once, after the folder's turn came.
 */
export function appendMhlGenerationStream(
  input: Omit<MhlGenerationInput, 'files'> & { files: AsyncIterable<MhlFile> },
): Promise<{ path: string; generation: number }> {
  return serialised(input.root, () => {
    const now = input.now ?? new Date();
    return appendXml(
      input.root,
      async (target) => {
        const sha512 = createHash('sha512');
        await durableWrite(hashlistChunks(input, input.files, now, sha512), { targets: [target], hashPool: false });
        return c4FromSha512(sha512.digest('hex'));
      },
      now,
    );
  });
}

/**
 * Appends a generation another process wrote (its bytes as they are, so its C4 stays) to `root`'s
 * history, numbered after the last one there: a field agent's generation adopted by studiod, or
 * a folder's history copied from another target. Serialised with appendMhlGeneration per folder.
 */
export function appendMhlGenerationBytes(
  root: string,
  xml: Uint8Array,
  createdAt: Date,
): Promise<{ path: string; generation: number }> {
  return serialised(root, () => appendXml(root, writeBytes(Buffer.from(xml)), createdAt));
}

function serialised<T>(root: string, fn: () => Promise<T>): Promise<T> {
  const prev = appending.get(root) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(fn);
  appending.set(root, run);
  const done = (): void => {
    if (appending.get(root) === run) appending.delete(root);
  };
  run.then(done, done); // the caller gets the rejection; this branch must not be an unhandled one
  return run;
}

async function appendNow(input: MhlGenerationInput): Promise<{ path: string; generation: number }> {
  const now = input.now ?? new Date();
  return appendXml(input.root, writeBytes(Buffer.from(mhlHashlistXml({ ...input, now }), 'utf8')), now);
}

/** Writes a generation's bytes durably at `target` and answers their C4. */
type GenerationWriter = (target: { dir: string; name: string }) => Promise<string>;

function writeBytes(xml: Buffer): GenerationWriter {
  return async (target) => {
    await durableWrite(oneChunk(xml), { targets: [target], hashPool: false });
    return c4Id(xml);
  };
}

async function appendXml(
  root: string,
  write: GenerationWriter,
  now: Date,
): Promise<{ path: string; generation: number }> {
  const mhlDir = join(root, MHL_FOLDER);
  const chain = (await readChain(mhlDir)) ?? [];
  const existing = await generationFiles(mhlDir);
  // A kill between a generation's write and the chain's leaves a complete generation (durableWrite
  // links only what it read back) numbered after the chain's last: it joins the chain first.
  const listed = Math.max(0, ...chain.map((e) => e.sequence));
  for (const n of existing) {
    const seq = Number.parseInt(n, 10);
    if (seq > listed && !chain.some((e) => e.path === n))
      chain.push({ sequence: seq, path: n, c4: c4Id(await readFile(join(mhlDir, n))) });
  }
  const last = Math.max(0, ...chain.map((e) => e.sequence), ...existing.map((n) => Number.parseInt(n, 10)));
  const generation = last + 1;
  const name = mhlGenerationName(generation, basename(root), now);
  const c4 = await write({ dir: mhlDir, name });
  await writeFileAtomic(join(mhlDir, MHL_CHAIN_FILE), chainXml([...chain, { sequence: generation, path: name, c4 }]), {
    mode: 0o644,
    dirMode: 0o755,
  });
  return { path: join(mhlDir, name), generation };
}

/** One generation of a folder's history, as listed in its chain. */
export interface MhlGenerationRecord {
  sequence: number;
  /** The file name in `ascmhl/`. */
  name: string;
  c4: string;
  /** Its bytes; undefined when the file is missing. */
  xml?: Buffer;
}

/** The generations `root`'s chain lists, in its order (empty when the folder has no history). */
export async function readMhlHistory(root: string): Promise<MhlGenerationRecord[]> {
  const mhlDir = join(root, MHL_FOLDER);
  const out: MhlGenerationRecord[] = [];
  for (const e of (await readChain(mhlDir)) ?? []) {
    const xml = await readFile(join(mhlDir, e.path)).catch(() => undefined);
    out.push({ sequence: e.sequence, name: e.path, c4: e.c4, ...(xml === undefined ? {} : { xml }) });
  }
  return out;
}

/** The `<tool>` of a generation's creator info (e.g. `studiod`, `field-agent`, `ascmhl.py`). */
export function mhlCreatorTool(xml: string): string | undefined {
  return /<tool\b[^>]*>([\s\S]*?)<\/tool>/.exec(xml)?.[1]?.trim();
}

/** The `<creationdate>` of a generation's creator info. */
export function mhlCreationDate(xml: string): Date | undefined {
  const d = /<creationdate>([\s\S]*?)<\/creationdate>/.exec(xml)?.[1]?.trim();
  const ms = d === undefined ? Number.NaN : Date.parse(d);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** One `<hash>` of a generation as read back. */
export interface MhlRecordedHash {
  path: string;
  size?: number;
  /** Format → value, as recorded (lower-case hex, or a c4 id). */
  hashes: Record<string, string>;
  action?: string;
  generation: number;
}

/** The `<hash>` entries of a generation's XML (other tools' files too: any prefix-less namespace). */
export function parseMhlHashes(xml: string, generation: number): MhlRecordedHash[] {
  const out: MhlRecordedHash[] = [];
  for (const m of xml.matchAll(/<hash>([\s\S]*?)<\/hash>/g)) {
    const body = m[1] ?? '';
    const p = /<path\b([^>]*)>([\s\S]*?)<\/path>/.exec(body);
    if (p === null) continue;
    const size = /\bsize="(\d+)"/.exec(p[1] ?? '')?.[1];
    const hashes: Record<string, string> = {};
    let action: string | undefined;
    for (const h of body.matchAll(/<(c4|md5|sha1|xxh128|xxh3|xxh64)\b([^>]*)>([\s\S]*?)<\/\1>/g)) {
      hashes[h[1] as string] = (h[3] ?? '').trim().toLowerCase();
      action ??= /\baction="([a-z]+)"/.exec(h[2] ?? '')?.[1];
    }
    if (hashes.c4 !== undefined) hashes.c4 = (/<c4\b[^>]*>([\s\S]*?)<\/c4>/.exec(body)?.[1] ?? '').trim();
    out.push({
      path: xmlUnescape(p[2] ?? '').trim(),
      ...(size === undefined ? {} : { size: Number(size) }),
      hashes,
      ...(action === undefined ? {} : { action }),
      generation,
    });
  }
  return out;
}

/** Formats a folder can be verified with here, in the order tried. */
const VERIFY_FORMATS = ['xxh3', 'xxh64', 'md5', 'sha1', 'c4'] as const;
type VerifyFormat = (typeof VERIFY_FORMATS)[number];

interface XxhModule {
  Xxh64: new () => { update(d: Uint8Array): unknown; digest(): bigint };
}

function streamingHasher(format: VerifyFormat): { update(d: Uint8Array): void; digest(): string } {
  if (format === 'xxh3') return createXxh3();
  if (format === 'xxh64') {
    const { Xxh64 } = createRequire(import.meta.url)('@node-rs/xxhash') as XxhModule;
    const h = new Xxh64();
    return { update: (d) => void h.update(d), digest: () => h.digest().toString(16).padStart(16, '0') };
  }
  const h = createHash(format === 'c4' ? 'sha512' : format);
  return {
    update: (d) => void h.update(d),
    digest: () => (format === 'c4' ? c4FromSha512(h.digest('hex')) : h.digest('hex')),
  };
}

async function hashFileAs(path: string, format: VerifyFormat): Promise<string> {
  const h = streamingHasher(format);
  for await (const chunk of readFileChunks(path)) h.update(chunk);
  return h.digest();
}

export interface MhlVerifyReport {
  root: string;
  generations: number;
  /** Files checked against a recorded hash. */
  checked: number;
  missing: string[];
  altered: Array<{ path: string; format: string; expected: string; actual: string }>;
  /** On disk, in no generation. */
  added: string[];
  /** The chain and its generations disagree (a generation altered, removed or unlisted), or no history. */
  chain: string[];
  ok: boolean;
}

/** The report of `studioctl mhl verify`, a line per problem. */
export function formatMhlVerify(r: MhlVerifyReport): string {
  const lines = [
    `${r.root}: ${r.generations} generation(s), ${r.checked} file(s) checked — ${r.ok ? 'intact' : 'NOT intact'}`,
    ...r.chain.map((c) => `  history: ${c}`),
    ...r.altered.map((a) => `  altered: ${a.path} (${a.format} ${a.expected} recorded, ${a.actual} now)`),
    ...r.missing.map((p) => `  missing: ${p}`),
    ...r.added.map((p) => `  new: ${p} (in no generation)`),
  ];
  return `${lines.join('\n')}\n`;
}

function ignored(rel: string): boolean {
  const name = rel.slice(rel.lastIndexOf('/') + 1);
  return rel === MHL_FOLDER || name === '.DS_Store' || name.endsWith('.s321tmp');
}

async function listFolder(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (ignored(r)) continue;
    if (e.isDirectory()) out.push(...(await listFolder(root, r)));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/** Re-hashes `root`'s files against its ASC MHL history (the latest recorded hash of each path). */
export async function verifyMhlFolder(root: string): Promise<MhlVerifyReport> {
  const mhlDir = join(root, MHL_FOLDER);
  const report: MhlVerifyReport = {
    root,
    generations: 0,
    checked: 0,
    missing: [],
    altered: [],
    added: [],
    chain: [],
    ok: false,
  };
  const chain = await readChain(mhlDir);
  const files = await generationFiles(mhlDir);
  if (chain === undefined) report.chain.push(`no ${MHL_FOLDER}/${MHL_CHAIN_FILE}: the folder has no ASC MHL history`);
  const recorded = new Map<string, MhlRecordedHash>();
  const listed = new Set<string>();
  for (const e of chain ?? []) {
    listed.add(e.path);
    let xml: Buffer;
    try {
      xml = await readFile(join(mhlDir, e.path));
    } catch {
      report.chain.push(`generation ${e.sequence} (${e.path}) is missing`);
      continue;
    }
    if (c4Id(xml) !== e.c4) report.chain.push(`generation ${e.sequence} (${e.path}) was altered after it was written`);
    report.generations++;
    for (const h of parseMhlHashes(xml.toString('utf8'), e.sequence)) recorded.set(h.path, h);
  }
  for (const n of files) if (!listed.has(n)) report.chain.push(`generation ${n} is not in ${MHL_CHAIN_FILE}`);
  const onDisk = new Set(await listFolder(root));
  for (const [path, h] of recorded) {
    if (!onDisk.has(path)) {
      report.missing.push(path);
      continue;
    }
    const format = VERIFY_FORMATS.find((f) => h.hashes[f] !== undefined);
    if (format === undefined) {
      report.chain.push(`${path}: no hash format this tool can check (${Object.keys(h.hashes).join(', ')})`);
      continue;
    }
    const expected = h.hashes[format] as string;
    const size = h.size === undefined ? undefined : (await stat(join(root, path))).size;
    const actual = size !== undefined && size !== h.size ? `size ${size}` : await hashFileAs(join(root, path), format);
    report.checked++;
    if (actual !== expected) report.altered.push({ path, format, expected, actual });
  }
  for (const path of onDisk) if (!recorded.has(path)) report.added.push(path);
  report.missing.sort();
  report.added.sort();
  report.ok =
    report.chain.length === 0 &&
    report.missing.length === 0 &&
    report.altered.length === 0 &&
    report.added.length === 0;
  return report;
}
