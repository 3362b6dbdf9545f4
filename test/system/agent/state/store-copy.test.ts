/**
 * checkStoreCopy (store-copy.ts), the re-read the sync does when the studio
 * refuses a file: an intact laptop copy keeps counting (the studio's Nack stays
 * retryable: the damage was in flight), a rotted one stops counting. Real CLI
 * ingest, real LevelDB, real files.
 */
import t from 'tap';
import { join } from 'node:path';
import { AgentState, hasVerifiedCopy, hasDamagedCopy } from '@studio321/agent/state';
import { checkStoreCopy } from '@studio321/agent/state';
import { makeCard } from '../../../lib/studio-harness.js';
import { runAgentCli } from '../../../lib/agent-harness.js';
import { rotByte } from '../../../lib/bit-rot.js';

t.test(
  'checkStoreCopy: intact → nothing changes; rotted → AGENT_STORE_COPY_DAMAGED and no longer a copy; unknown → nothing',
  async (t) => {
    const dir = t.testdir();
    const card = join(dir, 'CARD');
    await makeCard(card, [
      { path: 'DCIM/100CANON/IMG_0001.CR3', size: 300_000 },
      { path: 'DCIM/100CANON/IMG_0002.CR3', size: 200_000 },
    ]);
    const data = join(dir, 'data');
    const ing = await runAgentCli(['ingest', card, '--data-dir', data, '--shoot', 's', '--json']);
    t.equal(ing.code, 0, ing.stderr);
    const state = await AgentState.open(data);
    t.teardown(() => state.close());
    const [a, b] = await state.listAssets();
    if (a === undefined || b === undefined) throw new Error('two assets expected');

    t.equal(await checkStoreCopy(state, a.blake3), undefined, 'an intact copy: no damage reported');
    t.ok(hasVerifiedCopy(await state.getAsset(a.blake3), 'laptop'), 'and it still counts');

    await rotByte(a.paths['laptop'] ?? '?', 777);
    const found = await checkStoreCopy(state, a.blake3);
    t.equal(found?.code, 'AGENT_STORE_COPY_DAMAGED', 'a rotted copy is reported damaged');
    t.ok(
      found?.message.startsWith(
        `The laptop copy ${a.paths['laptop'] ?? '?'} is missing or no longer matches its recorded BLAKE3`,
      ),
      'naming the file',
    );
    const after = await state.getAsset(a.blake3);
    t.ok(hasDamagedCopy(after, 'laptop') && !hasVerifiedCopy(after, 'laptop'), 'recorded as no longer a copy');
    t.equal(after?.paths['laptop'], a.paths['laptop'], 'its path is kept (the file is never touched)');
    t.equal(
      await checkStoreCopy(state, a.blake3),
      undefined,
      'checked again: it already does not count, nothing to report',
    );

    t.ok(hasVerifiedCopy(await state.getAsset(b.blake3), 'laptop'), 'the other asset is untouched');
    t.equal(await checkStoreCopy(state, '0'.repeat(64)), undefined, 'an unknown hash: nothing to check');
  },
);
