// The state's writes are LevelDB chained batches (agent-state.ts #write): an op that cannot be
// encoded fails the whole write with AGENT_STATE_FAILED, writes none of its ops, and the state
// goes on (the batch is closed, later writes and the close work). Real LevelDB.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentState } from '@studio321/agent/state';

t.test('an op that cannot be encoded: AGENT_STATE_FAILED, none of the batch written', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'state-batch-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const state = await AgentState.open(dataDir);
  const claims = [
    { storePath: 's/C1/DCIM/IMG_0001.JPG', path: 'DCIM/IMG_0001.JPG' },
    { storePath: 's/C1/DCIM/IMG_0001.XMP', path: 'DCIM/IMG_0001.XMP' },
  ];
  // A BigInt has no JSON: the group record (the batch's first op) cannot be encoded.
  const bad = { day: 1n as unknown as string, dateSource: 'exif' as const };
  await t.rejects(state.claimNames('C1', 'DCIM/IMG_0001', 1, claims, bad), { code: 'AGENT_STATE_FAILED' });
  t.equal(await state.getGroup('C1', 'DCIM/IMG_0001'), undefined, 'no group record');
  t.same([...(await state.getClaims(claims.map((c) => c.storePath))).values()], [undefined, undefined], 'no claim');
  t.equal(await state.hasNamesOf('C1', 's/C1'), false, 'nothing under the card');

  await state.claimNames('C1', 'DCIM/IMG_0001', 1, claims, { day: '2026-12-06', dateSource: 'exif' });
  t.same(await state.getGroup('C1', 'DCIM/IMG_0001'), { k: 1, day: '2026-12-06', dateSource: 'exif' });
  t.equal(await state.hasNamesOf('C1', 's/C1'), true, 'the next write is whole');
  await state.close();
  const again = await AgentState.open(dataDir);
  t.equal((await again.getClaim('s/C1/DCIM/IMG_0001.XMP'))?.path, 'DCIM/IMG_0001.XMP', 'durable across a reopen');
  await again.close();
});
