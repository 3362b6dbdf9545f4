/**
 * The forwarder process SIGKILLed at random points of a multipart upload to a
 * real s3rver: after each kill nothing is counted that is not complete and
 * verified; a restart resumes from the last durable part and completes.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { S3rverProcess } from '../../../lib/s3rver.js';
import { CloudFixture, target, independentClient, downloadSha256, fileSha256 } from '../../../lib/cloud-fixture.js';
import { objectKey, type CloudCopyRecord } from '@studio321/studiod/cloud';

const CHILD = fileURLToPath(new URL('../../../lib/cloud-forwarder-child.mjs', import.meta.url));
const ROUNDS = Number(process.env.CLOUD_KILL_ROUNDS ?? 4);
const PARTS = 8;

const s3 = new S3rverProcess({ buckets: ['hot'] });
await s3.start();
t.teardown(() => s3.close());

interface Run {
  events: Array<Record<string, unknown>>;
  exit: Promise<number | null>;
  kill: () => void;
}

function runChild(arg: object, onEvent: (e: Record<string, unknown>, run: Run) => void): Run {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'ignore'] });
  const run: Run = {
    events: [],
    exit: new Promise((r) => child.once('exit', (code) => r(code))),
    kill: () => {
      child.kill('SIGKILL');
    },
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    run.events.push(e);
    onEvent(e, run);
  });
  return run;
}

async function copies(file: string): Promise<CloudCopyRecord[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as CloudCopyRecord);
}

t.test(`SIGKILL at ${ROUNDS} random points of a ${PARTS}-part upload`, async (t) => {
  const fx = new CloudFixture();
  await fx.setup();
  t.teardown(() => fx.close());
  await fx.db.close(); // the children own their DBs
  const c = independentClient(s3.endpoint);
  t.teardown(() => c.destroy());
  for (let round = 0; round < ROUNDS; round++) {
    const killAfterPart = 1 + Math.floor(Math.random() * PARTS); // PARTS = during complete/HEAD/record
    const a = await fx.asset(PARTS * 5 * 1024 * 1024, `kill-${round}.MP4`);
    const cfg = target('killme', s3.endpoint, 'hot', { bandwidthBytesPerSec: 60 * 1024 * 1024 });
    const arg = {
      dbDir: join(fx.dir, `db-${round}`),
      target: cfg,
      asset: a,
      copiesFile: join(fx.dir, `copies-${round}`),
    };
    const key = objectKey(cfg, a.blake3);

    const first = runChild(arg, (e, run) => {
      if (e.event === 'cloud.part' && e.part === killAfterPart) run.kill();
    });
    const code = await first.exit;
    const counted = await copies(arg.copiesFile);
    t.comment(
      `round ${round}: killed after part ${killAfterPart} (exit ${code}), counted before restart: ${counted.length}`,
    );
    if (code !== 0) {
      // Whatever was counted before the kill must be complete and correct.
      for (const copy of counted)
        t.equal(await downloadSha256(c, 'hot', copy.key), copy.sha256, 'a counted copy is complete');
    }
    t.ok(first.events.every((e) => e.event !== 'idle') || code === 0, 'the killed run never reported idle');

    const second = runChild(arg, () => undefined);
    t.equal(await second.exit, 0, 'restart completes');
    const after = await copies(arg.copiesFile);
    t.ok(after.length >= 1, 'counted after restart');
    const copy = after[after.length - 1] as CloudCopyRecord;
    t.equal(copy.key, key);
    t.equal(await downloadSha256(c, 'hot', key), await fileSha256(a.path), 'server bytes equal the source');
    const resume = second.events.find((e) => e.event === 'cloud.resume');
    const resent = second.events.filter((e) => e.event === 'cloud.part').length;
    if (counted.length === 0 && killAfterPart < PARTS) {
      t.ok(
        resume !== undefined && Number(resume.partsDone) >= killAfterPart,
        `resumed from durable part ${String(resume?.partsDone)}`,
      );
      t.ok(resent <= PARTS - killAfterPart, `sent ${resent} parts after restart, not from zero`);
    }
    const idle = second.events.find((e) => e.event === 'idle') as { status: Array<{ pending: number }> } | undefined;
    t.equal(idle?.status[0]?.pending, 0, 'queue empty');
    // the queue DB holds no job and no part records any more
    const db = new Level<string, unknown>(arg.dbDir, { valueEncoding: 'json' });
    await db.open();
    const left: string[] = [];
    for await (const k of db.sublevel('cloud').keys()) if (!k.startsWith('obj!')) left.push(k);
    await db.close();
    t.same(left, [], 'no job, index or part record left behind');
    await rm(a.path);
  }
});
