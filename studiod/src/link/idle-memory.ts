/**
 * Gives memory back once no agent is connected (docs/design.md "Link server", memory after the
 * agents leave).
 *
 * Twenty agents syncing small files grow V8's heap to a few hundred MiB of mostly short-lived
 * objects (frames, promises, commit state). Once they are gone nothing allocates, so V8 has no
 * reason to collect: the dead objects and the pages they sit on stayed, and studiod kept its peak
 * RSS for as long as it was idle. When the link has had no session for `idleMs`, one full
 * collection runs (V8 then returns its emptied pages, and the Buffers it frees give their external
 * memory back); then nothing more until sessions come and go again.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How long the link stays without a session before the collection. */
export const IDLE_RECLAIM_MS = 5_000;

let collect: (() => void) | undefined;

/** V8's full collection: `--expose-gc` set now, its `gc` taken from a fresh context (the current one has none). */
function fullCollection(): () => void {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  return collect;
}

export class IdleReclaim {
  readonly idleMs: number;
  readonly #sessions: () => number;
  #timer: NodeJS.Timeout | undefined;
  /** Sessions were seen since the last collection (a studio idle from its start has nothing to give back). */
  #busy = false;
  #collections = 0;

  /** `sessions`: how many link sessions exist now. */
  constructor(sessions: () => number, idleMs: number = IDLE_RECLAIM_MS) {
    this.#sessions = sessions;
    this.idleMs = idleMs;
  }

  /** Full collections run so far. */
  get collections(): number {
    return this.#collections;
  }

  /** Look at the link every `idleMs / 2`; a full collection once it was idle for `idleMs` after sessions. */
  start(): void {
    let idleSince: number | undefined;
    const tick = Math.max(10, Math.floor(this.idleMs / 2));
    this.#timer = setInterval(() => {
      if (this.#sessions() > 0) {
        this.#busy = true;
        idleSince = undefined;
        return;
      }
      if (!this.#busy) return;
      idleSince ??= performance.now();
      if (performance.now() - idleSince < this.idleMs) return;
      this.#busy = false;
      idleSince = undefined;
      fullCollection()();
      this.#collections++;
    }, tick);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
