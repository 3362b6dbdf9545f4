/**
 * writeLevelBatch (protocol/src/level-batch.ts) with a real LevelDB: plain ops and ops
 * with options land in ONE batch, in order, with their sublevels' prefixes and encodings; a
 * sublevel's batch is written on the root (one 'write' event there, the options' marks kept for
 * its listeners); an op that cannot be added fails the whole batch and nothing is written.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { writeLevelBatch } from '@studio321/protocol/durable';

async function openDb(t: Test): Promise<Level<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 's321-level-batch-'));
  const db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
  await db.open();
  t.teardown(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  return db;
}

async function all(db: Level<string, unknown>): Promise<Array<[string, unknown]>> {
  const out: Array<[string, unknown]> = [];
  for await (const [k, v] of db.iterator()) out.push([k, v]);
  return out;
}

type Written = Array<{ type: string; key: string; mark?: unknown }>;

function writes(db: Level<string, unknown>): Written[] {
  const seen: Written[] = [];
  db.on('write', (ops: Array<Record<string, unknown>>) =>
    seen.push(
      ops.map((o) => ({
        type: o.type as string,
        key: o.key as string,
        ...(o.mark === undefined ? {} : { mark: o.mark }),
      })),
    ),
  );
  return seen;
}

t.test('plain ops and ops with options: one batch, in order, sublevel prefixes and marks kept', async (t) => {
  const db = await openDb(t);
  const sub = db.sublevel<string, unknown>('led', { valueEncoding: 'json' });
  await db.put('gone', 1);
  await sub.put('old', 2);
  const seen = writes(db);
  await writeLevelBatch(
    db,
    { sync: true },
    [
      { type: 'put', key: 'asset!a', value: { size: 3 } },
      { type: 'del', key: 'gone' },
    ],
    [
      { type: 'put', key: 'grp!g', value: { members: 1 }, sublevel: sub, mark: { target: 'east', size: 3 } },
      { type: 'del', key: 'old', sublevel: sub },
    ],
  );
  t.same(seen, [
    [
      { type: 'put', key: 'asset!a' },
      { type: 'del', key: 'gone' },
      { type: 'put', key: '!led!grp!g', mark: { target: 'east', size: 3 } },
      { type: 'del', key: '!led!old' },
    ],
  ]);
  t.same(await all(db), [
    ['!led!grp!g', { members: 1 }],
    ['asset!a', { size: 3 }],
  ]);
  t.same(await sub.get('grp!g'), { members: 1 }, 'read back through the sublevel (its JSON encoding)');
});

t.test("a sublevel's batch is written on the root with the sublevel's keys", async (t) => {
  const db = await openDb(t);
  const sub = db.sublevel<string, unknown>('mhl', { valueEncoding: 'json' });
  await sub.put('pending!f!1', { x: 1 });
  const seen = writes(db);
  await writeLevelBatch(sub, { sync: true }, [
    { type: 'del', key: 'pending!f!1' },
    { type: 'put', key: 'due!f', value: 'f' },
  ]);
  t.same(seen, [
    [
      { type: 'del', key: '!mhl!pending!f!1' },
      { type: 'put', key: '!mhl!due!f' },
    ],
  ]);
  t.same(await all(db), [['!mhl!due!f', 'f']]);
});

t.test('an op that cannot be added fails the batch: nothing of it is written', async (t) => {
  const db = await openDb(t);
  await db.put('kept', 1);
  const seen = writes(db);
  await t.rejects(
    writeLevelBatch(db, { sync: true }, [
      { type: 'put', key: 'first', value: 1 },
      { type: 'del', key: 'kept' },
      { type: 'put', key: null as unknown as string, value: 2 },
    ]),
    { code: 'LEVEL_INVALID_KEY' },
  );
  await t.rejects(
    writeLevelBatch(
      db,
      { sync: true },
      [{ type: 'put', key: 'second', value: 1 }],
      [{ type: 'put', key: 'third', value: undefined }],
    ),
    { code: 'LEVEL_INVALID_VALUE' },
  );
  t.same(seen, [], 'no write');
  t.same(await all(db), [['kept', 1]], 'the database as it was');
});
