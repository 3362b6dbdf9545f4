/**
 * Hot folder (tethered shooting) through the real AgentRunner with chokidar:
 * a file is ingested once complete and stable, with the hash of its final
 * content; a rewrite under the same name gets a distinct name (~2).
 * Test double: the VolumeSource lists no volumes (this test is about hot folders only).
 */
import t from 'tap';
import { join } from 'node:path';
import { mkdir, writeFile, appendFile, readFile, rm } from 'node:fs/promises';
import { createLogger, hashBytes } from '@studio321/protocol';
import { AgentRunner } from '@studio321/agent';
import { resolvePaths } from '@studio321/agent';
import { loadAgentConfig } from '@studio321/agent';
import { hashTree, waitFor } from '../../../lib/agent-harness.js';
import { rotByte } from '../../../lib/bit-rot.js';
import { AgentState } from '@studio321/agent/state';
import { checkStoreCopy } from '@studio321/agent/state';

/** A running agent (AgentRunner) watching `<dir>/Tether`, store in `<dir>/store`; `extra(dir)` config on top. */
async function tetheredRunner(
  t: { testdir: () => string; teardown: (fn: () => unknown) => void },
  extra: (dir: string) => Record<string, unknown> = () => ({}),
) {
  const dir = t.testdir();
  const hot = join(dir, 'Tether');
  await mkdir(hot);
  const configFile = join(dir, 'field-agent.json');
  await writeFile(
    configFile,
    JSON.stringify({
      store: join(dir, 'store'),
      hotFolders: [hot],
      pollIntervalMs: 60_000,
      hotFolderStableMs: 300,
      shoot: 'studio',
      ...extra(dir),
    }),
  );
  const paths = resolvePaths({ dataDir: join(dir, 'data'), config: configFile });
  const config = await loadAgentConfig(paths);
  const events: Array<{ path: string; result: string }> = [];
  /** Opens a runner on this folder and config (again after a close: a restart of the agent). */
  const start = async (): Promise<AgentRunner> => {
    const r = new AgentRunner({
      paths,
      config,
      log: createLogger({ name: 'test', level: 'silent' }),
      volumeSource: { list: async () => [] },
    });
    r.on('hot-file', (e) => events.push(e));
    await r.open();
    t.teardown(() => r.close());
    return r;
  };
  const runner = await start();
  return { dir, hot, config, paths, runner, events, start };
}

t.test('tethered files are ingested once stable; a rewrite gets ~2', async (t) => {
  const { hot, config, events } = await tetheredRunner(t);

  const file = join(hot, 'IMG_0001.CR3');
  await writeFile(file, Buffer.alloc(512 * 1024, 1));
  await appendFile(file, Buffer.alloc(512 * 1024, 2));
  await appendFile(file, Buffer.alloc(512 * 1024, 3));
  await writeFile(join(hot, 'IMG_0001.XMP'), '<xmp/>');
  await waitFor(() => events.filter((e) => e.result === 'copied').length === 2, 20_000, 'two files ingested');
  const final = await readFile(file);
  const stored = await hashTree(config.store);
  const cr3 = [...stored.entries()].find(([p]) => p.endsWith('IMG_0001.CR3'));
  t.equal(cr3?.[1], hashBytes(final), 'stored with the hash of the complete file');
  t.equal(events.filter((e) => e.path === 'IMG_0001.CR3').length, 1, 'ingested once, not per write');

  // The tethering app rewrites the same name with new content: never overwritten.
  await writeFile(file, Buffer.alloc(1000, 9));
  await waitFor(() => events.filter((e) => e.result === 'copied').length === 3, 20_000, 'rewrite ingested');
  const after = await hashTree(config.store);
  const names = [...after.keys()].map((p) => p.split('/').slice(2).join('/')).sort();
  t.same(names, ['IMG_0001.CR3', 'IMG_0001.XMP', 'IMG_0001~2.CR3']);
  t.equal(
    [...after.entries()].find(([p]) => p.endsWith('IMG_0001.CR3'))?.[1],
    hashBytes(final),
    'first version intact',
  );
});

t.test(
  'each tethered file goes to the field drive when it is there: plugged in or pulled between two shots',
  async (t) => {
    const { dir, hot, config, runner, events } = await tetheredRunner(t, (d) => ({
      fieldDrive: join(d, 'drive', 'studio321'),
      watchVolumes: false,
    }));
    const drive = join(dir, 'drive', 'studio321');
    const shoot = async (name: string, n: number): Promise<void> => {
      await writeFile(join(hot, name), Buffer.alloc(64 * 1024, n));
      await waitFor(() => events.some((e) => e.path === name && e.result === 'copied'), 20_000, `${name} ingested`);
    };
    // No drive: the laptop only.
    await shoot('IMG_0001.CR3', 1);
    // The drive is plugged in (no volume event needed): the next shot goes to both.
    await mkdir(drive, { recursive: true });
    await shoot('IMG_0002.CR3', 2);
    // The drive is pulled: the next shot still goes to the laptop, never fails.
    await rm(join(dir, 'drive'), { recursive: true });
    await shoot('IMG_0003.CR3', 3);
    t.same(
      events.map((e) => e.result),
      ['copied', 'copied', 'copied'],
    );
    const laptop = [...(await hashTree(config.store)).keys()].map((p) => p.split('/').pop()).sort();
    t.same(laptop, ['IMG_0001.CR3', 'IMG_0002.CR3', 'IMG_0003.CR3']);
    const assets = await Promise.all(
      ['IMG_0001.CR3', 'IMG_0002.CR3', 'IMG_0003.CR3'].map(async (n) => {
        const bytes = await readFile(join(hot, n));
        return runner.state.getAsset(hashBytes(bytes));
      }),
    );
    t.same(
      assets.map((a) => a?.copies.map((c) => c.target).sort()),
      [['laptop'], ['field-drive', 'laptop'], ['laptop']],
      'the drive copy exactly while it was there',
    );
  },
);

t.test(
  'a tethered file whose laptop copy rotted is copied again from the hot folder at the next start, next to the damaged one',
  async (t) => {
    const { hot, config, paths, runner, events, start } = await tetheredRunner(t);
    const content = Buffer.alloc(400_000, 7);
    await writeFile(join(hot, 'IMG_0007.CR3'), content);
    await waitFor(() => events.some((e) => e.path === 'IMG_0007.CR3' && e.result === 'copied'), 20_000, 'ingested');
    await runner.close();
    const [rel] = [...(await hashTree(config.store)).keys()].filter((p) => p.endsWith('IMG_0007.CR3'));
    if (rel === undefined) throw new Error('not stored');
    const damaged = join(config.store, rel);
    await rotByte(damaged, 123);
    const rotten = await readFile(damaged);
    // Found damaged (as by the studio sync or the field-drive back-fill).
    const state = await AgentState.open(paths.dataDir);
    const found = await checkStoreCopy(state, hashBytes(content));
    await state.close();
    t.equal(found?.code, 'AGENT_STORE_COPY_DAMAGED', 'the laptop copy is found damaged');

    events.length = 0;
    await start();
    await waitFor(
      () => events.some((e) => e.path === 'IMG_0007.CR3' && e.result === 'copied'),
      20_000,
      'copied again at the next start',
    );
    const after = await hashTree(config.store);
    const again = [...after.entries()].find(([p]) => p.endsWith('IMG_0007~2.CR3'));
    t.equal(again?.[1], hashBytes(content), "the new copy (~2) has the hot-folder file's bytes");
    t.same(await readFile(damaged), rotten, 'the damaged copy was not overwritten');
  },
);
