/**
 * The laptop learns the studio's verdict, and frees its copies by policy, through real processes:
 * studiod with two cloud targets on a real s3rver, the field-agent CLI (ingest, sync, status,
 * free, verify). One studio for every subtest, small files.
 *
 *  - after the cloud uploads settle, a sync asks the studio's verdicts: `status --json` shows the
 *    offsite copies per card (the studio's copies, apart from the laptop's), safe to format as before;
 *  - with `freeLaptop: onceCompliant`, a card is not freed before the studio holds it (the reason
 *    says so), and is freed once compliant: the laptop files go, status shows them freed, verify
 *    calls nothing lost;
 *  - kill -9 of `field-agent free` at random points: after each kill every file is either still on
 *    the laptop (and counted) or recorded freed, and the state never claims a copy that is gone.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { access, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '@studio321/protocol';
import { AgentState, recoverFreeing } from '@studio321/agent/state';
import { target } from '../../lib/cloud-fixture.js';
import { S3rverProcess } from '../../lib/s3rver.js';
import {
  AGENT_BIN,
  dcfFiles,
  ingest,
  makeAgent,
  makeCard,
  pairAgent,
  startStudiod,
  tempDir,
  waitFor,
} from '../../lib/studio-harness.js';

const s3 = new S3rverProcess({ buckets: ['cloud-east', 'cloud-west'] });
await s3.start();
t.teardown(() => s3.kill());
const studio = await startStudiod(t, {
  cloud: [
    target('cloud-east', s3.endpoint, 'cloud-east'),
    target('cloud-west', s3.endpoint, 'cloud-west', { location: 'cloud-west' }),
  ],
});
const agent = await makeAgent(t);
await pairAgent(studio, agent);
await writeFile(join(agent.dataDir, 'field-agent.json'), JSON.stringify({ freeLaptop: 'onceCompliant' }));
const base = await tempDir(t, 'verdict-free-');

interface CardJson {
  id: string;
  label: string;
  files: number;
  offsiteFiles: number;
  studioCompliantFiles: number;
  freedFiles: number;
  freedAt?: string;
  studioCopies: Array<{ target: string; offsite: boolean; files: number; storageClass?: string }>;
  safeToFormat: { safe: boolean };
}
interface FreeJson {
  cards: Array<{ card: string; files: number; freed: number; freedFiles: number; done: boolean; reason: string }>;
}

const json = <T>(stdout: string): T => JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as T;
const status = async (label: string): Promise<CardJson> => {
  const r = await agent.cli(['status', '--json']);
  const card = json<{ cards: CardJson[] }>(r.stdout).cards.find((c) => c.label === label);
  if (card === undefined) throw new Error(`no card ${label} in status: ${r.stdout}${r.stderr}`);
  return card;
};
const compliantAtStudio = (n: number): Promise<boolean> =>
  waitFor(
    async () => {
      const r = await studio.ctl(['--json', 'status']);
      const s = JSON.parse(r.stdout) as {
        ledger: { assets: number; compliant: number };
        targetReport: Array<{ kind: string; copies: number }>;
      };
      // One cloud copy already makes an asset compliant: wait for the other cloud's uploads too, or
      // a check of both clouds' copies races the second one (seen under load: cloud-west 2 of 3).
      return (
        s.ledger.assets === n &&
        s.ledger.compliant === n &&
        s.targetReport.every((x) => x.kind === 'agent' || x.copies >= n)
      );
    },
    `${n} assets 3-2-1 compliant at the studio, every target (both clouds) holding each`,
    60_000,
    50,
  );
const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

const cardA = join(base, 'A');
await makeCard(
  cardA,
  dcfFiles(3, (i) => 1000 + i),
);
await ingest(agent, cardA, 'shoot1', 'CARD-A');
const stateFiles = async (): Promise<Map<string, { laptop?: string; freed: boolean }>> => {
  const state = await AgentState.open(agent.dataDir);
  try {
    return new Map(
      (await state.listAssets()).map((a) => [
        a.blake3,
        {
          ...(a.copies.some((c) => c.target === 'laptop' && c.verified) && a.paths['laptop'] !== undefined
            ? { laptop: a.paths['laptop'] }
            : {}),
          freed: a.freed !== undefined,
        },
      ]),
    );
  } finally {
    await state.close();
  }
};
const laptopA = [...(await stateFiles()).values()].map((f) => f.laptop ?? '');

t.test('before the studio holds the card: not freed, with the reason', async (t) => {
  const r = await agent.cli(['free', 'CARD-A', '--json']);
  t.equal(r.code, 3, `exit 3: not freed (${r.stderr})`);
  const c = json<FreeJson>(r.stdout).cards[0];
  t.equal(c?.done, false);
  t.equal(c?.freed, 0);
  t.match(c?.reason, /3 files not at the studio yet/, 'the studio was asked and does not hold them');
  for (const p of laptopA) t.ok(await exists(p), `${p} still on the laptop`);
});

t.test('after the cloud uploads settle, status shows the offsite copies per card', async (t) => {
  const sync = await agent.cli(['sync']);
  t.equal(sync.code, 0, `sync (${sync.stderr})`);
  await compliantAtStudio(3);
  const again = await agent.cli(['sync']);
  t.equal(again.code, 0, 'a sync pass asks the verdicts');
  const c = await status('CARD-A');
  t.equal(c.offsiteFiles, 3, 'offsite 3: both clouds hold every file');
  t.equal(c.studioCompliantFiles, 3);
  t.same(
    c.studioCopies.map((x) => [x.target, x.offsite, x.files]).sort(),
    [
      ['cloud-east', true, 3],
      ['cloud-west', true, 3],
      ['mirror', false, 3],
      ['raid', false, 3],
    ],
    "the studio's copies, shown apart from the laptop's",
  );
  t.equal(c.studioCopies.find((x) => x.target === 'cloud-east')?.storageClass, 'STANDARD');
  t.equal(c.freedFiles, 0, 'nothing freed by a sync');
  t.equal(c.safeToFormat.safe, true, 'safe to format as before');
  const text = await agent.cli(['status']);
  t.match(text.stdout, /offsite 3/);
  t.match(
    text.stdout,
    /at the studio, by its verdict of .*: 3-2-1 compliant 3 of 3; its copies: .*cloud-east 3 offsite STANDARD/,
  );
});

t.test('once compliant: the laptop copies are freed, recorded, and not called lost', async (t) => {
  const r = await agent.cli(['free', 'CARD-A', '--json']);
  t.equal(r.code, 0, `free (${r.stderr})`);
  const c = json<FreeJson>(r.stdout).cards[0];
  t.match(c, { done: true, freed: 3, freedFiles: 3, files: 3, reason: '' });
  for (const p of laptopA) t.notOk(await exists(p), `${p} deleted`);
  const s = await status('CARD-A');
  t.equal(s.freedFiles, 3);
  t.equal(s.offsiteFiles, 3, 'the studio still holds them offsite');
  const text = await agent.cli(['status']);
  t.match(text.stdout, /laptop copies freed on .* \(3 of 3 files\), at the studio: compliant/);
  const verify = await agent.cli(['verify', '--json']);
  t.equal(verify.code, 0, `verify exit 0 (${verify.stdout}${verify.stderr})`);
  t.same(json<{ lost: unknown[] }>(verify.stdout).lost, [], 'verify calls nothing lost');
  const ingestAgain = await agent.cli(['ingest', cardA, '--shoot', 'shoot1', '--card-label', 'CARD-A', '--json']);
  t.equal(ingestAgain.code, 0);
  for (const p of laptopA) t.notOk(await exists(p), 'the card inserted again is not copied back to the laptop');
});

t.test('kill -9 during freeing: every file is on the laptop or recorded freed', async (t) => {
  const cardB = join(base, 'B');
  const n = 20;
  await makeCard(
    cardB,
    dcfFiles(n, (i) => 500 + i),
  );
  await ingest(agent, cardB, 'shoot1', 'CARD-B');
  t.equal((await agent.cli(['sync'])).code, 0);
  await compliantAtStudio(3 + n);
  t.equal((await agent.cli(['sync'])).code, 0, 'verdicts asked');
  const onLaptop = async (): Promise<number> => {
    let k = 0;
    for (const f of (await stateFiles()).values()) if (f.laptop !== undefined) k++;
    return k;
  };
  /** The invariant: a claimed copy is there and intact; a file not claimed (and not freeing) is recorded freed. */
  const check = async (round: number, recovered: boolean): Promise<number> => {
    const state = await AgentState.open(agent.dataDir);
    let freed = 0;
    try {
      if (recovered) await recoverFreeing(state);
      for (const a of await state.listAssets()) {
        const laptop = a.copies.some((c) => c.target === 'laptop' && c.verified) ? a.paths['laptop'] : undefined;
        if (laptop !== undefined) {
          t.equal((await hashFile(laptop)).blake3, a.blake3, `round ${round}: a claimed copy is there and intact`);
        } else if (recovered) {
          t.ok(a.freed !== undefined, `round ${round}: not on the laptop → recorded freed`);
          t.equal(a.freeing, undefined, `round ${round}: no intent left after recovery`);
        }
        if (a.freed !== undefined) {
          freed++;
          t.notOk(await exists(a.freed.path), `round ${round}: a freed copy is gone`);
        }
      }
    } finally {
      await state.close();
    }
    return freed;
  };
  let kills = 0;
  for (let round = 0; round < 4; round++) {
    const before = await onLaptop();
    if (before === 0) break;
    const stopAt = before - Math.floor(Math.random() * Math.min(before, 8));
    const child = spawn(process.execPath, [AGENT_BIN, 'free', 'CARD-B', '--json', '--data-dir', agent.dataDir], {
      env: { ...process.env, FIELD_AGENT_HOME: agent.dataDir },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let done = false;
    void exited.then(() => {
      done = true;
    });
    // Kill once the laptop has at most `stopAt` copies left: a random point in the freeing.
    await waitFor(
      async () => done || stopAt >= (await countFiles(join(agent.dataDir, 'store'))),
      'freeing under way',
      30_000,
      2,
    );
    if (!done) {
      child.kill('SIGKILL');
      kills++;
    }
    await exited;
    await check(round, false);
    await check(round, true);
  }
  const last = await agent.cli(['free', 'CARD-B', '--json']);
  t.equal(last.code, 0, `the last free completes (${last.stderr})`);
  t.match(json<FreeJson>(last.stdout).cards[0], { done: true, freedFiles: n });
  t.equal(await check(99, true), 3 + n, 'every asset recorded freed');
  t.ok(kills > 0, `${kills} kill(s) landed during freeing`);
  t.equal((await status('CARD-B')).freedFiles, n);
});

/** The photos in the laptop store (what freeing deletes). */
async function countFiles(root: string): Promise<number> {
  let k = 0;
  for (const e of await readdir(root, { recursive: true, withFileTypes: true }))
    if (e.isFile() && e.name.endsWith('.CR3')) k++;
  return k;
}
