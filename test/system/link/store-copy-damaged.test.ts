/**
 * A laptop copy that rots, shrinks or disappears after it was verified: the sync
 * finds it (the studio refuses the rotted or short bytes, the missing file cannot be opened), the
 * agent re-reads its copy, records it as no longer a copy, stops offering it and
 * says so on every pass; the card stops being safe to format; ingesting the card
 * again repairs it and the next sync commits the card's bytes. Real studiod, real
 * TLS WebSocket, real LevelDB on both sides.
 */
import t from 'tap';
import { readFile, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '@studio321/protocol';
import { rotByte } from '../../lib/bit-rot.js';
import {
  dcfFiles,
  ingest,
  listFiles,
  makeAgent,
  makeCard,
  pairAgent,
  startStudiod,
  tempDir,
} from '../../lib/studio-harness.js';

interface SyncJson {
  receipts: number;
  bytesSent: number;
  filesSent: number;
  queue: { files: number };
  failed: Array<{ hash: string; code: string; message: string; retryable: boolean }>;
}

interface StatusJson {
  cards: Array<{ safeToFormat: { safe: boolean; short: number; damaged: number; reason: string; examples: string[] } }>;
}

const b3 = async (path: string): Promise<string> => (await hashFile(path)).blake3;
const lastJson = <T>(stdout: string): T => JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as T;

t.test(
  'a rotted, a truncated and a missing laptop copy: found at sync, no longer offered, repaired by ingesting the card again',
  async (t) => {
    const studio = await startStudiod(t);
    const agent = await makeAgent(t);
    await pairAgent(studio, agent);
    const card = join(await tempDir(t, 'card-'), 'CARD');
    // Sizes above and below the 2 MiB window; IMG_0002 rots, IMG_0004 disappears, IMG_0005 loses its tail.
    const files = dcfFiles(6, (i) => (i % 2 === 0 ? 3 * 1024 * 1024 + i : 70_000 + i));
    await makeCard(card, files);
    await ingest(agent, card, 'shoot', 'CARD1');

    const store = join(agent.dataDir, 'store');
    const stored = await listFiles(store);
    const rottedRel = stored.find((p) => p.endsWith('/IMG_0002.CR3'));
    const missingRel = stored.find((p) => p.endsWith('/IMG_0004.CR3'));
    const shortRel = stored.find((p) => p.endsWith('/IMG_0005.CR3'));
    if (rottedRel === undefined || missingRel === undefined || shortRel === undefined)
      throw new Error(`store layout unexpected: ${stored.join(', ')}`);
    const rotted = join(store, rottedRel);
    const cardHash = {
      rotted: await b3(join(card, 'DCIM/100CANON/IMG_0002.CR3')),
      missing: await b3(join(card, 'DCIM/100CANON/IMG_0004.CR3')),
      short: await b3(join(card, 'DCIM/100CANON/IMG_0005.CR3')),
    };
    await rotByte(rotted, 1000, 0x40);
    const rottedBytes = await readFile(rotted);
    await rm(join(store, missingRel));
    await truncate(join(store, shortRel), 1024 * 1024);

    const r1 = await agent.cli(['sync', '--json', '--backoff-ms', '20']);
    t.equal(r1.code, 1, 'sync exits 1: three files cannot be sent');
    const s1 = lastJson<SyncJson>(r1.stdout);
    t.equal(s1.receipts, 3, 'the 3 intact files were committed');
    t.equal(s1.queue.files, 3, 'the 3 damaged ones stay queued (not at the studio)');
    t.same(
      s1.failed.map((f) => [f.hash, f.code, f.retryable]).sort(),
      [cardHash.missing, cardHash.rotted, cardHash.short].map((h) => [h, 'AGENT_STORE_COPY_DAMAGED', false]).sort(),
      'all three reported as damaged laptop copies, not retryable',
    );
    t.match(
      r1.stderr,
      /AGENT_STORE_COPY_DAMAGED: The laptop copy .*IMG_000[245]\.CR3 is missing or no longer matches/,
      'the photographer is told which file and what to do',
    );
    const nameOf = new Map([
      [cardHash.rotted, 'IMG_0002.CR3'],
      [cardHash.missing, 'IMG_0004.CR3'],
      [cardHash.short, 'IMG_0005.CR3'],
    ]);
    for (const f of s1.failed)
      t.match(
        f.message,
        new RegExp(`${(nameOf.get(f.hash) ?? '?').replace('.', '\\.')}.*ingest the card again`),
        'each report names its file',
      );

    const mirror = await listFiles(studio.dirs.mirror);
    t.equal(mirror.length, 3, 'only the intact files are on the mirror');
    t.notOk(
      mirror.some((p) => /\/IMG_000[245]\.CR3$/.test(p)),
      'no damaged file is at the studio under any name',
    );
    t.same(await listFiles(studio.dirs.raid), mirror, 'RAID holds the same');
    t.same(await readFile(rotted), rottedBytes, 'the rotted laptop file was left as it was');

    const st1 = lastJson<StatusJson>((await agent.cli(['status', '--json'])).stdout);
    t.equal(st1.cards[0]?.safeToFormat.safe, false, 'the card is not safe to format');
    t.equal(st1.cards[0]?.safeToFormat.short, 3, '3 files short of their copies');
    t.equal(st1.cards[0]?.safeToFormat.damaged, 3, 'all because their laptop copy is damaged');
    t.match(
      st1.cards[0]?.safeToFormat.reason ?? '',
      /^3 files lost their laptop copies to damage \(AGENT_STORE_COPY_DAMAGED\): keep the card and ingest it again$/,
      'the reason says what to do, not "wait for the studio"',
    );
    t.match(
      st1.cards[0]?.safeToFormat.examples.join('\n') ?? '',
      /IMG_0002\.CR3: 0 of 2 copies on distinct devices \(none\), its laptop copy is damaged \(AGENT_STORE_COPY_DAMAGED\)/,
      'the example names the file',
    );

    const r2 = await agent.cli(['sync', '--json', '--backoff-ms', '20']);
    t.equal(r2.code, 1, 'a second sync still exits 1');
    const s2 = lastJson<SyncJson>(r2.stdout);
    t.equal(s2.bytesSent, 0, 'nothing is sent again: damaged copies are no longer offered');
    t.equal(s2.failed.length, 3, 'and all three are reported again');

    // The card is still there: ingesting it again copies the three files anew (under ~2), then they sync.
    await ingest(agent, card, 'shoot', 'CARD1');
    const r3 = await agent.cli(['sync', '--json', '--backoff-ms', '20']);
    t.equal(r3.code, 0, `sync after the repair exits 0 (${r3.stderr})`);
    const s3 = lastJson<SyncJson>(r3.stdout);
    t.equal(s3.queue.files, 0, 'queue empty');
    t.same(s3.failed, [], 'nothing failed');
    const mirror3 = await listFiles(studio.dirs.mirror);
    t.equal(mirror3.length, 6, 'all 6 files on the mirror');
    for (const [hash, name] of nameOf) {
      const rel = mirror3.find((p) => p.endsWith(`/${name}`));
      t.ok(rel, `${name} committed`);
      if (rel !== undefined)
        t.equal(await b3(join(studio.dirs.mirror, rel)), hash, `${name} on the mirror has the card's BLAKE3`);
    }
    t.same(await readFile(rotted), rottedBytes, 'the damaged laptop file is still untouched');
    const st3 = lastJson<StatusJson>((await agent.cli(['status', '--json'])).stdout);
    t.equal(st3.cards[0]?.safeToFormat.safe, true, 'the card is safe to format again');
  },
);
