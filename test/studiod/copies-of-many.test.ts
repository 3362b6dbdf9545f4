/**
 * Catalogue.copiesOfMany (one iterator sought to each hash, what a verdict request reads) on a real
 * LevelDB: for every hash the same records as copiesOf, in the asked order — assets with no copy,
 * one, and more than one read at a time (studio copies, a cloud copy, field claims of several
 * agents), hashes asked twice, hashes not in the catalogue, neighbours in key order.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Catalogue, type CopyRecord } from '@studio321/studiod';

const hashOf = (i: number): string => createHash('sha256').update(`c${i}`).digest('hex');

function copy(hash: string, target: string, kind: CopyRecord['kind'], agentId?: string): CopyRecord {
  return {
    hash,
    target,
    kind,
    path: kind === 'agent' ? '' : `d/${hash.slice(0, 8)}.JPG`,
    size: 10,
    device: 'dev',
    media: 'hdd',
    location: 'studio',
    offsite: kind === 'cloud',
    method: 'readback-blake3',
    verifiedAt: 1,
    ...(agentId === undefined ? {} : { agentId }),
  };
}

t.test('copiesOfMany reads what copiesOf reads, per hash, in the asked order', async (t) => {
  const cat = new Catalogue(join(t.testdir(), 'catalogue'));
  await cat.open();
  t.teardown(() => cat.close());
  const n = 40;
  for (let i = 0; i < n; i++) {
    const hash = hashOf(i);
    const copies: CopyRecord[] = [];
    if (i % 5 !== 0) copies.push(copy(hash, 'mirror', 'studio'), copy(hash, 'raid', 'studio'));
    if (i % 3 === 0) copies.push(copy(hash, 'b2', 'cloud'));
    // Some assets with more copies than one read takes (8): field claims of many agents.
    const agents = i % 7 === 0 ? 12 : i % 2;
    for (let a = 0; a < agents; a++) copies.push(copy(hash, 'laptop', 'agent', `agt_${a}`));
    await cat.commitAsset({
      asset: { hash, size: 10, committedAt: i },
      names: [],
      copies,
      storedPaths: [],
    });
  }
  const asked = [
    hashOf(7),
    hashOf(3),
    'f'.repeat(64),
    hashOf(7),
    '0'.repeat(64),
    ...Array.from({ length: n }, (_, i) => hashOf(i)),
  ];
  const many = await cat.copiesOfMany(asked);
  t.equal(many.length, asked.length, 'one list per asked hash');
  for (const [i, hash] of asked.entries()) t.same(many[i], await cat.copiesOf(hash), `hash ${i}: the same records`);
  t.ok(
    many.some((c) => c.length > 8),
    'an asset with more copies than one read',
  );
  t.same(await cat.copiesOfMany([]), [], 'nothing asked: nothing read');
});
