/**
 * The Prometheus endpoint of a real studiod process, scraped while a real field-agent syncs a card
 * and studiod uploads it to s3rver: the exposition passes `promtool check metrics` (Debian's
 * prometheus package, installed when missing), the figures match what was synced, no series is
 * per file or per shoot, and the example alerting rules pass `promtool check rules`.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { S3rverProcess } from '../../lib/s3rver.js';
import { target } from '../../lib/cloud-fixture.js';
import { dcfFiles, ingest, makeAgent, makeCard, pairAgent, startStudiod, tempDir } from '../../lib/studio-harness.js';
import { REPO } from '../../lib/agent-harness.js';
import { missingTools } from '../../lib/system-deps.js';
import { waitFor } from '../../lib/wait-for.js';

function promtool(args: string[], input?: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(input ?? '');
  });
}

/** The value of one series (`name{labels}` exactly as exposed), or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const missing = missingTools(['promtool']);
if (missing !== undefined) {
  t.skip(missing, () => undefined);
} else {
  t.test('promtool checks the example alerting rules', async (t) => {
    const r = await promtool(['check', 'rules', join(REPO, 'docs', 'prometheus-rules.yml')]);
    t.equal(r.code, 0, r.out);
    t.match(r.out, /SUCCESS: \d+ rules found/);
  });

  t.test('metrics scraped during a real sync and upload', async (t) => {
    const s3 = new S3rverProcess({ buckets: ['hot'] });
    await s3.start();
    t.teardown(() => s3.close());
    const studio = await startStudiod(t, {
      metrics: { port: 0 },
      cloud: [target('cloud-east', s3.endpoint, 'hot')],
    });
    const line = studio.log.split('\n').find((l) => l.includes('metrics endpoint listening'));
    const url = (JSON.parse(line ?? '{}') as { url?: string }).url ?? '';
    t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'studiod logs the full URL (loopback by default)');
    const scrape = async (): Promise<string> => {
      const res = await fetch(url);
      if (res.status !== 200 || !/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? ''))
        throw new Error(`scrape answered ${res.status} ${res.headers.get('content-type')}`);
      return res.text();
    };

    const agent = await makeAgent(t);
    await pairAgent(studio, agent);
    const card = join(await tempDir(t, 'card-'), 'CARD');
    const files = dcfFiles(8, (i) => (i % 4 === 0 ? 1024 * 1024 + i : 50_000 + i));
    await makeCard(card, files);
    await ingest(agent, card, 'wedding', 'CARD1');
    const sync = agent.cli(['sync', '--json']);
    let ended = false;
    void sync.finally(() => {
      ended = true;
    });
    const during: string[] = [];
    await waitFor(
      async () => {
        during.push(await scrape());
        return ended;
      },
      'the sync to end, scraping meanwhile',
      120_000,
      250,
    );
    const synced = await sync;
    t.equal(synced.code, 0, `sync exits 0 (${synced.stderr})`);
    t.ok(during.length > 0, `${during.length} scrapes during the sync`);

    const check = await promtool(['check', 'metrics'], during[during.length - 1] ?? (await scrape()));
    t.equal(check.code, 0, `promtool check metrics: ${check.out || 'clean'}`);

    const n = files.length;
    const total = files.reduce((a, f) => a + f.size, 0);
    // The forwarder records the copy (the asset turns compliant), then closes the job, then counts the
    // upload: the final state is all three, and every scrape on the way must already be consistent.
    const after: string[] = [];
    const final = await waitFor(async () => {
      const text = await scrape();
      after.push(text);
      return value(text, 'studiod_assets_compliant') === n &&
        value(text, 'studiod_cloud_queue_jobs{target="cloud-east"}') === 0 &&
        value(text, 'studiod_cloud_uploaded_bytes_total{target="cloud-east"}') === total
        ? text
        : undefined;
    }, 'every asset uploaded, counted and 3-2-1 compliant');
    // Compliance needs the offsite (cloud) copy: no scrape may count more compliant assets than cloud copies.
    const torn = [...during, ...after].filter(
      (s) =>
        (value(s, 'studiod_assets_compliant') ?? 0) > (value(s, 'studiod_target_copies{target="cloud-east"}') ?? 0),
    );
    t.equal(torn.length, 0, `no scrape shows more compliant assets than cloud copies (${after.length} after the sync)`);
    const lint = await promtool(['check', 'metrics'], final);
    t.equal(lint.code, 0, `promtool check metrics after the upload: ${lint.out || 'clean'}`);
    t.equal(value(final, 'studiod_assets'), n);
    t.equal(value(final, 'studiod_assets_unprotected'), 0);
    for (const target of ['mirror', 'raid', 'cloud-east'])
      t.equal(value(final, `studiod_target_copies{target="${target}"}`), n, `${target} copies`);
    t.equal(value(final, 'studiod_target_available{target="raid"}'), 1);
    t.ok((value(final, 'studiod_target_free_bytes{target="mirror"}') ?? 0) > 0, 'free space');
    t.equal(value(final, 'studiod_cloud_queue_jobs{target="cloud-east"}'), 0);
    t.equal(value(final, 'studiod_cloud_parked_jobs{target="cloud-east"}'), 0);
    t.equal(value(final, 'studiod_cloud_uploaded_bytes_total{target="cloud-east"}'), total, 'bytes uploaded');
    t.equal(value(final, 'studiod_commit_duration_seconds_count'), n, 'one commit latency per file');
    t.equal(value(final, 'studiod_cloud_upload_duration_seconds_count{target="cloud-east"}'), n);
    t.equal(value(final, 'studiod_agents_paired'), 1);
    t.match(final, /studiod_agent_last_seen_timestamp_seconds\{agent="agt_[0-9a-f]+"\} \d/);
    t.match(
      final,
      /studiod_agent_unsynced_files\{agent="agt_[0-9a-f]+"\} 0\n/,
      'the agent reported its queue, all receipted',
    );
    t.match(final, /studiod_scrub_pass_ratio\{target="mirror"\}/);
    // Whether a scrape lands mid-sync depends on timing, so the check is one that holds however the
    // scrapes fall: the asset count seen during the sync never goes down and never passes n.
    const seen = during.map((s) => value(s, 'studiod_assets') ?? 0);
    t.ok(
      seen.every((v, i) => v <= n && (i === 0 || v >= (seen[i - 1] ?? 0))),
      `assets during the sync only grow, up to ${n}: ${seen.join(' ')}`,
    );
    const labels = new Set(
      [...final.matchAll(/\{([^}]*)\}/g)].flatMap((m) => (m[1] ?? '').split(',').map((kv) => kv.split('=')[0])),
    );
    t.notOk(
      labels.has('shoot') || labels.has('file') || labels.has('hash') || labels.has('path'),
      `bounded labels: ${[...labels].join(', ')}`,
    );
    t.notOk(final.includes('wedding') || final.includes('IMG_0001'), 'no shoot or file in any series');
  });
}
