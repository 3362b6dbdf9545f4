/**
 * Catalogue snapshots over a real Catalogue (LevelDB), real target folders and
 * MemorySink (the in-process CloudSink with S3's semantics): every record kind
 * survives the round trip; the RAID keeps the newest N and the cloud keeps all;
 * a truncated or foreign or newer snapshot is refused with its code; the export
 * and the import stream (chunks stay small, the first record is read before the
 * source is consumed).
 */
import t from 'tap';
import { createReadStream } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { nameKey } from '@studio321/protocol';
import { Catalogue } from '@studio321/studiod';
import {
  SNAPSHOT_DIR,
  decodeSnapshot,
  encodeSnapshot,
  importSnapshotRecords,
  lastSnapshot,
  readPairings,
  pairingsPath,
  takeSnapshot,
  type SnapshotRecord,
} from '@studio321/studiod/recovery';
import { commitFile, dump, pairAgent, recoveryStudio, uploadToCloud } from '../../lib/recovery-fixture.js';

const SOFTWARE = 'studiod/test';

async function collect(source: AsyncIterable<Uint8Array>, what = 'test'): Promise<SnapshotRecord[]> {
  const out: SnapshotRecord[] = [];
  for await (const r of decodeSnapshot(source, what)) out.push(r);
  return out;
}

t.test('a snapshot round trip keeps every record kind', async (t) => {
  const s = await recoveryStudio(t);
  const a = await commitFile(s, 'CARD1', 'DCIM/100CANON/IMG_0001.CR3');
  await commitFile(s, 'CARD1', 'DCIM/100CANON/IMG_0002.CR3');
  await uploadToCloud(s, a, true);
  // A second name, and an agent copy (kind 'agent').
  await s.catalogue.addAgentNames(
    a.hash,
    'agt_1',
    [
      {
        key: nameKey('wedding/CARD2/DCIM/IMG_0001.CR3'),
        value: {
          hash: a.hash,
          shoot: 'wedding',
          card: 'CARD2',
          path: 'DCIM/IMG_0001.CR3',
          mtime: 1,
          agentId: 'agt_1',
          seenAt: 2,
        },
      },
    ],
    [{ target: 'laptop', device: 'uuid-1', media: 'ssd', location: 'field', method: 'readback-blake3', verifiedAt: 3 }],
  );
  await pairAgent(s.catalogue, 'agt_aaaaaa', "Ana's laptop");
  await pairAgent(s.catalogue, 'agt_bbbbbb', 'Ben');
  await s.catalogue.revokeAgent('agt_bbbbbb', Date.now());
  const before = await dump(s.catalogue);
  t.ok(
    ['asset', 'name', 'copy', 'stored', 'agent', 'cloud-object'].every((k) =>
      before.some((l) => l.includes(`"t":"${k}"`)),
    ),
    'every kind is present',
  );

  const r = await takeSnapshot({ catalogue: s.catalogue, config: s.config, sinks: [s.sink], software: SOFTWARE });
  t.equal(r.assets, 2);
  t.same(
    r.destinations.map((d) => [d.target, d.ok]),
    [
      ['raid', true],
      ['cloud-east', true],
    ],
  );
  const local = join(s.config.targets.raid.root, SNAPSHOT_DIR, r.name);
  t.equal(r.destinations[0]?.where, local);
  const obj = s.cloud.bucket('hot')?.objects.get(`studio/${SNAPSHOT_DIR}/${r.name}`);
  t.ok(obj, 'uploaded under the target prefix');
  t.same(obj?.bytes, await readFile(local), 'the cloud copy has the local bytes');
  t.equal(obj?.metadata['blake3'], r.blake3);
  t.same(await lastSnapshot(s.catalogue), r, 'status sees the last snapshot');

  // The header line, as a future reader sees it.
  const { gunzipSync } = await import('node:zlib');
  const lines = gunzipSync(await readFile(local))
    .toString('utf8')
    .trimEnd()
    .split('\n');
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.match(header, { format: 'studio321-catalogue', version: 1, catalogueFormat: 1, software: SOFTWARE });
  t.match(JSON.parse(lines.at(-1)!), { t: 'end', records: lines.length - 2, assets: 2 });

  // Import into a fresh catalogue: the same records.
  const fresh = new Catalogue(join(s.dir, 'fresh'));
  await fresh.open();
  t.teardown(() => fresh.close());
  await importSnapshotRecords(fresh, await collect(createReadStream(local)), true);
  t.same(await dump(fresh), before, 'every record back, byte for byte');
  const counters = await fresh.recountCounters();
  t.same(counters, s.catalogue.counters(), 'recomputed counters equal the kept ones');
  // The revocation travels too.
  t.ok((await fresh.getAgent('agt_bbbbbb'))?.revokedAt, 'revoked stays revoked');
});

t.test('the pairing store follows every pairing and revocation', async (t) => {
  const s = await recoveryStudio(t);
  await pairAgent(s.catalogue, 'agt_aaaaaa', 'Ana');
  t.same(
    (await readPairings(pairingsPath(s.config.stateDir))).map((a) => a.agentId),
    ['agt_aaaaaa'],
  );
  await s.catalogue.revokeAgent('agt_aaaaaa', 5);
  t.equal((await readPairings(pairingsPath(s.config.stateDir)))[0]?.revokedAt, 5);
  const text = await readFile(pairingsPath(s.config.stateDir), 'utf8');
  t.match(JSON.parse(text), { format: 'studio321-pairings', version: 1 });
  t.same(
    (await readdir(s.config.stateDir)).filter((n) => n.endsWith('.tmp')),
    [],
    'no temp left',
  );
});

t.test('the RAID keeps the newest N, the cloud keeps every snapshot', async (t) => {
  const s = await recoveryStudio(t, { keepLocal: 2 });
  let now = Date.parse('2026-11-26T10:00:00Z');
  for (let i = 0; i < 4; i++) {
    await commitFile(s, 'CARD1', `DCIM/IMG_${i}.JPG`);
    now += 3600_000;
    await takeSnapshot({
      catalogue: s.catalogue,
      config: s.config,
      sinks: [s.sink],
      software: SOFTWARE,
      now: () => now,
    });
  }
  const local = (await readdir(join(s.config.targets.raid.root, SNAPSHOT_DIR))).sort();
  t.same(local, ['2026-11-26T13-00-00-000Z.ndjson.gz', '2026-11-26T14-00-00-000Z.ndjson.gz'], 'the newest two');
  const cloudKeys = [...(s.cloud.bucket('hot')?.objects.keys() ?? [])].filter((k) => k.includes(SNAPSHOT_DIR));
  t.equal(cloudKeys.length, 4, 'none deleted in the cloud');
});

t.test('without the RAID, the snapshot still reaches the cloud', async (t) => {
  const s = await recoveryStudio(t);
  await commitFile(s, 'CARD1', 'DCIM/IMG_1.JPG');
  const { rm } = await import('node:fs/promises');
  await rm(join(s.config.targets.raid.root, '.studio321-target.json'));
  const r = await takeSnapshot({ catalogue: s.catalogue, config: s.config, sinks: [s.sink], software: SOFTWARE });
  t.match(r.destinations, [
    { target: 'outbox', ok: false },
    { target: 'cloud-east', ok: true },
  ]);
  t.same(await readdir(join(s.config.stateDir, 'snapshot-outbox')), [], 'the outbox file is gone once uploaded');
});

t.test('truncated, foreign and newer snapshots are refused', async (t) => {
  const s = await recoveryStudio(t);
  for (let i = 0; i < 50; i++) await commitFile(s, 'CARD1', `DCIM/IMG_${i}.JPG`);
  const r = await takeSnapshot({ catalogue: s.catalogue, config: s.config, sinks: [], software: SOFTWARE });
  const file = r.destinations[0]!.where;
  const full = await readFile(file);
  const cut = join(s.dir, 'cut.gz');
  await writeFile(cut, full.subarray(0, Math.floor(full.length / 2)));
  await t.rejects(collect(createReadStream(cut)), { code: 'RECOVERY_SNAPSHOT_UNREADABLE' }, 'half a file');
  // A complete gzip whose end line is missing.
  const { gunzipSync } = await import('node:zlib');
  const lines = gunzipSync(full).toString('utf8').trimEnd().split('\n');
  await writeFile(cut, gzipSync(`${lines.slice(0, -1).join('\n')}\n`));
  await t.rejects(collect(createReadStream(cut)), { code: 'RECOVERY_SNAPSHOT_UNREADABLE' }, 'no end line');
  await writeFile(cut, gzipSync(`{"format":"something-else","version":1}\n`));
  await t.rejects(collect(createReadStream(cut)), { code: 'RECOVERY_SNAPSHOT_UNREADABLE' }, 'not ours');
  await writeFile(cut, gzipSync(`{"format":"studio321-catalogue","version":2}\n{"t":"end","records":0,"assets":0}\n`));
  await t.rejects(collect(createReadStream(cut)), { code: 'RECOVERY_SNAPSHOT_TOO_NEW' }, 'newer');
  await writeFile(cut, 'plain text, not gzip');
  await t.rejects(collect(createReadStream(cut)), { code: 'RECOVERY_SNAPSHOT_UNREADABLE' }, 'not gzip');
  // Unknown kinds of the same version are skipped (a later writer may add kinds).
  const extra = [lines[0], '{"t":"future-kind","k":"x","v":{}}', '{"t":"end","records":1,"assets":0}'].join('\n');
  await writeFile(cut, gzipSync(`${extra}\n`));
  t.same(await collect(createReadStream(cut)), [], 'unknown kind ignored');
});

t.test('export and import stream: memory does not grow with the catalogue', async (t) => {
  const s = await recoveryStudio(t);
  const N = 4000;
  // Bulk records through the catalogue's own import (no files needed for this).
  const batch = [];
  for (let i = 0; i < N; i++) {
    const hash = i.toString(16).padStart(64, '0');
    batch.push({ t: 'asset' as const, k: hash, v: { hash, size: 1000 + i, committedAt: i } });
    batch.push({
      t: 'copy' as const,
      k: `${hash}!mirror`,
      v: {
        hash,
        target: 'mirror',
        kind: 'studio',
        path: `2026-11-26/s/c/IMG_${i}.CR3`,
        size: 1000 + i,
        device: 'm',
        media: 'hdd',
        location: 'x',
        offsite: false,
        method: 'readback-blake3',
        verifiedAt: 1,
      },
    });
    batch.push({
      t: 'name' as const,
      k: `${hash}!${nameKey(`s/c/IMG_${i}.CR3`)}`,
      v: { hash, shoot: 's', card: 'c', path: `IMG_${i}.CR3`, mtime: 1, agentId: 'a', seenAt: 1 },
    });
  }
  await s.catalogue.importRecords(batch, { sync: true });
  await s.catalogue.recountCounters();
  // Export: no chunk the encoder hands on is large, however big the catalogue (bounded buffers).
  const counts = { records: 0, assets: 0 };
  let largest = 0;
  let total = 0;
  const chunks: Buffer[] = [];
  for await (const c of encodeSnapshot(s.catalogue, { createdAt: 'x', software: SOFTWARE }, counts)) {
    largest = Math.max(largest, c.byteLength);
    total += c.byteLength;
    chunks.push(Buffer.from(c));
  }
  t.equal(counts.assets, N);
  t.ok(largest <= 128 * 1024, `largest chunk ${largest} B (gzip output of at most 256 KiB of lines at a time)`);
  const gz = Buffer.concat(chunks);
  // Import: the first record is yielded after a small part of the source was read.
  let pulled = 0;
  async function* source(): AsyncGenerator<Uint8Array> {
    for (let off = 0; off < gz.length; off += 4096) {
      pulled += 4096;
      yield gz.subarray(off, off + 4096);
    }
  }
  const gen = decodeSnapshot(source(), 'stream');
  const first = await gen.next();
  t.equal(first.done, false);
  t.ok(pulled < total / 4, `first record after ${pulled} of ${total} bytes`);
  let n = 1;
  let step = await gen.next();
  while (step.done !== true) {
    n++;
    step = await gen.next();
  }
  t.equal(n, 3 * N, 'every record');
  t.same(step.value, { records: 3 * N, assets: N });
});
