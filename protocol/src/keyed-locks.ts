/**
 * Locks by key, in one process: holders of one key run one after another, holders of other keys
 * at the same time. Several keys are taken in sorted order, so two takers never wait on each
 * other. A key nobody holds or waits for is forgotten (the map holds only keys in use).
 *
 * Used where work on one thing must not interleave but work on others may: the agent's name
 * claims (per clash key) and studiod's target-marker writes (per target root).
 */
export class KeyedLocks {
  readonly #tails = new Map<string, Promise<void>>();

  /** Resolves, once every key is held, with the function that gives them all back (once). */
  async take(keys: Iterable<string>): Promise<() => void> {
    const gives: Array<() => void> = [];
    for (const key of [...new Set(keys)].sort()) gives.push(await this.#one(key));
    let given = false;
    return () => {
      if (given) return;
      given = true;
      for (const give of gives.reverse()) give();
    };
  }

  /** `fn` run while holding `key` (given back however it ends). */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const give = await this.#one(key);
    try {
      return await fn();
    } finally {
      give();
    }
  }

  async #one(key: string): Promise<() => void> {
    const before = this.#tails.get(key);
    let give = (): void => undefined;
    const mine = new Promise<void>((resolve) => {
      give = resolve;
    });
    const tail = before === undefined ? mine : before.then(() => mine);
    this.#tails.set(key, tail);
    if (before !== undefined) await before;
    return () => {
      give();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
  }
}
