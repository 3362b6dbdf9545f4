/**
 * The ASC MHL generation of an offload (protocol/src/durable/mhl.ts): after a card's run, each target
 * (laptop store, field drive) gets a `transfer` generation in the card's folder
 * (`<store>/<shoot>/<card>/ascmhl/`) listing the files this run wrote there with their XXH3-64
 * (hashed in the copy's own pass), size and last modification. A run that wrote nothing there
 * adds no generation. A card that carries its own `ascmhl/` folder (a folder already under MHL)
 * gets none: its history is copied as it is, and ours would replace its chain file.
 *
 * The files a run copied are not kept in memory until its end (a card of 100,000 files): each
 * one is appended as it is recorded to a spool, one JSON line, in the laptop store's card folder
 * (`.mhl-<pid>.s321tmp`, a temp: swept after a kill like the copies' temps, ignored by MHL). At
 * the end each target's generation is streamed from the spool (appendMhlGenerationStream), each
 * copy's size and modification time read from the target then, as before; the spool is removed.
 *
 * The copies are verified and recorded before this runs: a generation that cannot be written
 * is logged (`mhl-failed`) and leaves the offload's verdicts as they are. The laptop store's
 * generation is queued for the studio (`mhl:` records, sent by link/mhl-send.ts).
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join, posix } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '@studio321/protocol';
import {
  appendMhlGenerationStream,
  MHL_FOLDER,
  mhlToolVersion,
  TEMP_SUFFIX,
  type MhlFile,
} from '@studio321/protocol/durable';
import type { AgentState } from '../state/agent-state.js';
import type { CardRecord } from '../state/records.js';
import type { AgentTarget } from '../targets.js';
import type { FileOutcome } from './offloader.js';

type MhlContext = { targets: readonly AgentTarget[]; log?: Logger; state?: Pick<AgentState, 'queueMhlGeneration'> };

/** Characters of spool lines gathered per write. */
const SPOOL_PIECE = 64 * 1024;

/** One spooled copy: its card-folder-relative store path, XXH3-64, hash date and the targets written. */
type SpoolLine = [path: string, xxh3: string, hashDate: string, targets: string[]];

/** The files an offload copied, spooled for its generations (see above). */
export class MhlSpool {
  readonly #ctx: MhlContext;
  readonly #card: CardRecord;
  readonly #prefix: string;
  readonly #path: string;
  /** Off when the card carries its own ascmhl/ (no generation). */
  readonly #on: boolean;
  /** Files spooled per target name. */
  readonly #count = new Map<string, number>();
  #out: WriteStream | undefined;
  /** Spool lines not written yet (at most about SPOOL_PIECE). */
  #pending = '';
  #failed: unknown;

  constructor(ctx: MhlContext, card: CardRecord, cardFiles: Iterable<{ path: string }>) {
    this.#ctx = ctx;
    this.#card = card;
    this.#prefix = `${posix.join(card.shoot, card.id)}/`;
    const laptop = ctx.targets[0]?.root ?? '';
    this.#path = join(laptop, card.shoot, card.id, `.mhl-${process.pid}${TEMP_SUFFIX}`);
    this.#on = true;
    for (const { path } of cardFiles) if (path === MHL_FOLDER || path.startsWith(`${MHL_FOLDER}/`)) this.#on = false;
  }

  /** A file's outcome (the offloader's onFile): spooled when it was copied into the card's folder. */
  add(o: FileOutcome): void {
    if (!this.#on || o.result !== 'copied' || o.xxh3 === undefined || o.storePath?.startsWith(this.#prefix) !== true)
      return;
    const targets = o.targets ?? [];
    for (const t of targets) this.#count.set(t, (this.#count.get(t) ?? 0) + 1);
    if (this.#out === undefined) {
      // Opened at the first copy: the card's folder exists in the laptop store by then.
      this.#out = createWriteStream(this.#path, { flags: 'w' });
      this.#out.on('error', (err) => {
        this.#failed ??= err;
      });
    }
    const line: SpoolLine = [
      o.storePath.slice(this.#prefix.length),
      o.xxh3,
      o.verifiedAt ?? new Date().toISOString(),
      targets,
    ];
    // Written in pieces of SPOOL_PIECE: one write a few hundred files, not a thread-pool job per file.
    this.#pending += `${JSON.stringify(line)}\n`;
    if (this.#pending.length >= SPOOL_PIECE) this.#flush();
  }

  #flush(): void {
    if (this.#pending === '') return;
    this.#out?.write(this.#pending);
    this.#pending = '';
  }

  /** Removes the spool without writing any generation (the offload failed unexpectedly). */
  async discard(): Promise<void> {
    this.#out?.destroy();
    await rm(this.#path, { force: true }).catch(() => undefined);
  }

  /** Writes each target's generation from the spool, then removes it. Answers the generations' paths. */
  async write(): Promise<string[]> {
    const written: string[] = [];
    try {
      if (this.#out === undefined) return written;
      this.#flush();
      const out = this.#out;
      await new Promise<void>((resolve) => {
        if (out.closed) resolve();
        else out.end(() => resolve()).once('error', () => resolve());
      });
      for (const t of this.#ctx.targets) {
        if ((this.#count.get(t.name) ?? 0) === 0) continue;
        try {
          if (this.#failed !== undefined) throw this.#failed;
          const g = await appendMhlGenerationStream({
            root: join(t.root, this.#card.shoot, this.#card.id),
            process: 'transfer',
            tool: { name: 'field-agent', version: mhlToolVersion() },
            hostname: hostname(),
            comment: `card ${this.#card.label} (${this.#card.id}) of shoot ${this.#card.shoot}, copied from ${this.#card.source}`,
            files: this.#filesOf(t),
          });
          written.push(g.path);
          // The laptop store's generation goes to the studio (link/mhl-send.ts); the field drive's is the same list.
          if (t === this.#ctx.targets[0])
            await this.#ctx.state?.queueMhlGeneration({
              shoot: this.#card.shoot,
              card: this.#card.id,
              name: basename(g.path),
              path: g.path,
            });
        } catch (err) {
          this.#ctx.log?.warn(
            { event: 'mhl-failed', card: this.#card.id, target: t.name, err },
            `The ASC MHL generation of card ${this.#card.id} could not be written on ${t.name}; its copies are verified and recorded all the same.`,
          );
        }
      }
      return written;
    } finally {
      await rm(this.#path, { force: true }).catch(() => undefined);
    }
  }

  /** The spooled files written to target `t`, in the order they were recorded, each with its copy's size and mtime. */
  async *#filesOf(t: AgentTarget): AsyncGenerator<MhlFile> {
    const lines = createInterface({ input: createReadStream(this.#path), crlfDelay: Number.POSITIVE_INFINITY });
    const cardDir = join(t.root, this.#card.shoot, this.#card.id);
    try {
      for await (const text of lines) {
        if (text === '') continue;
        const [path, xxh3, hashDate, targets] = JSON.parse(text) as SpoolLine;
        if (!targets.includes(t.name)) continue;
        const st = await stat(join(cardDir, ...path.split('/')));
        yield { path, size: st.size, mtimeMs: st.mtimeMs, xxh3, action: 'original', hashDate };
      }
    } finally {
      lines.close();
    }
  }
}
