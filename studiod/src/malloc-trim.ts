/**
 * glibc's `malloc_trim(0)` through studiod's one native addon (docs/design.md "Link server",
 * memory). `free()` only ever shortens the top of a malloc arena; the holes a burst of many
 * agents leaves below it (TurboFan's freed compiler zones, TLS buffers, small files' Buffers)
 * stay in studiod's RSS for good, and Node has no call that gives them back. `malloc_trim`
 * walks the free chunks and `madvise`s their whole pages away. The idle reclaim calls it after
 * its GCs (link/memory-budget.ts).
 *
 * The addon (studiod/native/malloc-trim.c, Node-API) is built by `npm ci` through node-gyp
 * (studiod's `install` script, which never fails the install). Where it did not build (no
 * compiler), does not load, or the C library is not glibc, studiod works the same without it:
 * `unavailable` says why (logged once at start with STUDIO_MALLOC_TRIM_UNAVAILABLE, shown by
 * `studioctl status`), and only the memory stays. STUDIOD_MALLOC_TRIM_ADDON names another file
 * to load, or `off` for none.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { STUDIO_CODES, StudioError } from './errors.js';

/** Where `npm ci` builds the addon, from this module in dist/src/ (node-gyp's build/Release in studiod/). */
const ADDON = fileURLToPath(new URL('../../build/Release/malloc_trim.node', import.meta.url));
/** The environment variable that names another addon file, or `off`. */
export const MALLOC_TRIM_ENV = 'STUDIOD_MALLOC_TRIM_ADDON';

interface Addon {
  trim(): boolean;
  arenas(): [number, number, number];
}

/** What `studioctl status --json` shows of the trim (link.mallocTrim). */
export interface MallocTrimStatus {
  available: boolean;
  /** Why not, when not available: the code and the sentence logged at start. */
  unavailable?: { code: string; message: string };
  /** Calls so far, the RSS they gave back in all (bytes), their time in all (ms) and the process' CPU meanwhile (ms). */
  trims: number;
  releasedBytes: number;
  ms: number;
  cpuMs: number;
}

/** One call's effect. */
export interface TrimResult {
  /** RSS before less RSS after (bytes; may be < 0 if another thread allocated meanwhile). */
  releasedBytes: number;
  ms: number;
  /** The process' CPU time (user + system, all threads) over the call, ms: most of it the kernel unmapping pages. */
  cpuMs: number;
}

/** The addon, loaded once for the process; `unavailable` when it cannot be had. */
export class MallocTrim {
  readonly #addon: Addon | undefined;
  /** Why there is no trim: a StudioError to log (undefined when available). */
  readonly unavailable: StudioError | undefined;
  #trims = 0;
  #released = 0;
  #ms = 0;
  #cpuMs = 0;

  constructor(addon: Addon | undefined, unavailable: StudioError | undefined) {
    this.#addon = addon;
    this.unavailable = unavailable;
  }

  /** Loads the addon at `file` (default: the one `npm ci` built, or STUDIOD_MALLOC_TRIM_ADDON's). Never throws. */
  static load(file: string = process.env[MALLOC_TRIM_ENV] ?? ADDON): MallocTrim {
    const why = (reason: string, cause?: unknown) =>
      new MallocTrim(
        undefined,
        new StudioError(
          STUDIO_CODES.mallocTrimUnavailable,
          `the idle memory trim is unavailable (${reason}): studiod works without it, but keeps up to about 100 MiB more ` +
            'after a burst of many agents; to have it, run `npm ci` in the repository with python3, make and a C compiler installed',
          cause === undefined ? {} : { cause },
        ),
      );
    if (file === 'off') return why(`${MALLOC_TRIM_ENV}=off`);
    let mod: Partial<Addon>;
    try {
      mod = createRequire(import.meta.url)(file) as Partial<Addon>;
    } catch (err) {
      return why(`${file} did not load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, err);
    }
    if (typeof mod.trim !== 'function' || typeof mod.arenas !== 'function')
      return why(`${file} has no malloc_trim: the C library is not glibc`);
    return new MallocTrim(mod as Addon, undefined);
  }

  get available(): boolean {
    return this.#addon !== undefined;
  }

  /** Gives the arenas' free pages back; undefined when unavailable. Takes a few ms with ~200 MiB of arenas. */
  trim(): TrimResult | undefined {
    if (this.#addon === undefined) return undefined;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const before = process.memoryUsage.rss();
    this.#addon.trim();
    const releasedBytes = before - process.memoryUsage.rss();
    const cpu = process.cpuUsage(cpu0);
    const ms = performance.now() - t0;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    this.#trims++;
    this.#released += Math.max(0, releasedBytes);
    this.#ms += ms;
    this.#cpuMs += cpuMs;
    return { releasedBytes, ms, cpuMs };
  }

  /** malloc's arenas now (mallinfo2): bytes in them, bytes free in them, bytes mmap'd apart; undefined when unavailable. */
  arenas(): { arenaBytes: number; freeBytes: number; mmapBytes: number } | undefined {
    if (this.#addon === undefined) return undefined;
    const [arenaBytes, freeBytes, mmapBytes] = this.#addon.arenas();
    return { arenaBytes, freeBytes, mmapBytes };
  }

  status(): MallocTrimStatus {
    const u = this.unavailable;
    return {
      available: this.available,
      ...(u === undefined ? {} : { unavailable: { code: u.code, message: u.message } }),
      trims: this.#trims,
      releasedBytes: this.#released,
      ms: Math.round(this.#ms * 10) / 10,
      cpuMs: Math.round(this.#cpuMs * 10) / 10,
    };
  }
}

let loaded: MallocTrim | undefined;

/** The process' one MallocTrim (the addon is loaded at the first call). */
export function mallocTrim(): MallocTrim {
  loaded ??= MallocTrim.load();
  return loaded;
}
