/**
 * One atomic LevelDB batch written in the chained form: each op goes to the native batch as it
 * is added (key, value and options as arguments). The array form (`db.batch(ops, options)`)
 * copies every op with the options into a new object, then stores the encoded key and value
 * and the encodings back into it: V8 kept generalizing those objects' hidden classes (≈ 330,000
 * map generalizations in a 3,000-file sync at the studio, README "Session 16"), and the binding
 * reads each op back property by property. The agent's state (agent/src/state/agent-state.ts)
 * and studiod's catalogue and MHL history (studiod/src/catalogue.ts, commit/mhl-history.ts)
 * write their batches here.
 */

/** A LevelDB chained batch (abstract-level's), structurally. */
export interface ChainedLevelBatch {
  put(key: string, value: unknown, options?: object): unknown;
  del(key: string, options?: object): unknown;
  write(options: { sync?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/** A LevelDB (abstract-level) database or sublevel, structurally: a sublevel's `db` is its root database. */
export interface LevelBatchTarget {
  batch(): ChainedLevelBatch;
  readonly db?: { batch(): ChainedLevelBatch };
}

/** A put or a del with nothing else: the key and the value are all the native batch gets. */
export type PlainLevelOp = { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string };

/**
 * An op with options of its own besides type, key and value (a `sublevel`, marks that a 'write'
 * listener reads, as the cloud forwarder's enqueue mark): passed to the chained put or del as its options.
 */
export type LevelOpWithOptions = { type: 'put' | 'del'; key: string; value?: unknown; [option: string]: unknown };

/**
 * Writes `plain`, then `withOptions`, in that order, as ONE batch of `db` (a database, or a
 * sublevel: then `plain`'s keys are the sublevel's) with `options` (`sync: true`: durable when it
 * resolves). Nothing is written if adding an op throws (an
 * invalid key or value): the batch is closed and the error thrown.
 */
export async function writeLevelBatch(
  db: LevelBatchTarget,
  options: { sync: boolean },
  plain: readonly PlainLevelOp[],
  withOptions: readonly LevelOpWithOptions[] = [],
): Promise<void> {
  // A sublevel's own chained batch is abstract-level's default one, which hands its ops to the
  // parent's array form: write on the root DB with the `sublevel` option instead.
  const root = db.db !== undefined && db.db !== db ? db.db : undefined;
  const batch = (root ?? db).batch();
  const plainOptions = root === undefined ? undefined : { sublevel: db };
  try {
    for (const op of plain) {
      if (op.type === 'put') batch.put(op.key, op.value, plainOptions);
      else batch.del(op.key, plainOptions);
    }
    for (const op of withOptions) {
      const { type, key, value, ...opOptions } = op;
      if (type === 'put') batch.put(key, value, opOptions);
      else batch.del(key, opOptions);
    }
  } catch (err) {
    await batch.close();
    throw err;
  }
  await batch.write(options);
}
