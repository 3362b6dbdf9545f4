/**
 * `npm run demo`: the whole system on one machine, in real processes.
 *
 *   node scripts/dist/demo.js [--dir demo-run] [--raw-size BYTES] [--stay]
 *
 * Generates sample cards, starts a real S3-compatible server on loopback (two
 * buckets: a STANDARD hot copy and a DEEP_ARCHIVE tape-class copy), starts
 * studiod (mirror + RAID under <dir>/studio, TLS on loopback), pairs a field
 * agent, offloads the cards, syncs them to the studio, waits for both cloud
 * copies, and prints `studioctl status`. Exit 0 when every image is 3-2-1
 * compliant. Everything it started is stopped at the end, also on Ctrl-C.
 * With `--stay` (`npm run demo -- --stay`) studiod and the S3 server keep running
 * after a successful demo, and a line `ready: studioctl --config <absolute path>`
 * says how to try status, asset, verify and the rest against them; Ctrl-C stops
 * everything and exits 0.
 * `<dir>` is wiped at start, so it can run again and again.
 */
import { parseArgs } from 'node:util';
import { DemoRun, type DemoStatus } from './lib/demo-run.js';

const CLOUD_TIMEOUT_MS = 90_000;

/** Set by SIGINT/SIGTERM: the signal handler stops everything and exits 130 (0 while staying). */
let stopping = false;
/** Set while `--stay` keeps the studio up: a signal ends the stay instead. */
let endStay: (() => void) | undefined;

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string', default: 'demo-run' },
      'raw-size': { type: 'string' },
      stay: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const rawSize = values['raw-size'] === undefined ? undefined : Number(values['raw-size']);
  const demo = new DemoRun({ dir: values.dir, ...(rawSize === undefined ? {} : { rawSize }) });
  const started = Date.now();
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  let step = 0;
  const STEPS = 8;
  const say = (line: string): void => {
    process.stdout.write(`[${++step}/${STEPS}] ${line}\n`);
  };
  const detail = (line: string): void => {
    process.stdout.write(`      ${line}\n`);
  };

  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    if (endStay !== undefined) {
      endStay();
      return;
    }
    stopping = true;
    process.stdout.write(`\n${sig}: stopping everything the demo started…\n`);
    void demo.stop(3000).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => demo.killNow());

  try {
    say(`Preparing ${demo.dir} (wiped) and generating sample cards`);
    await demo.prepare();
    const { files, bytes } = await demo.makeCards();
    for (const c of demo.cards) detail(`${c.label.padEnd(11)} ${String(c.files.length).padStart(2)} files  ${c.what}`);
    detail(`${files} files, ${mb(bytes)} on ${demo.cards.length} cards`);

    say(
      'Starting a real S3-compatible server (s3rver) on loopback: buckets cloud-east (STANDARD, hot) and cloud-west (DEEP_ARCHIVE, tape)',
    );
    await demo.startS3();
    detail(`listening on ${demo.s3Endpoint}, data in ${demo.paths.s3}`);

    say('Starting studiod: mirror + RAID under the demo folder, TLS on loopback, two cloud targets');
    const { port, fingerprint } = await demo.startStudiod();
    detail(`wss://127.0.0.1:${port}/v1  ${fingerprint}`);
    detail(`config ${demo.paths.config}, log ${demo.paths.studiodLog}`);

    say('Pairing the laptop: studioctl pair → field-agent pair');
    const agentId = await demo.pair();
    detail(`paired as ${agentId}; studio fingerprint pinned`);

    say(`Offloading the cards on the laptop (field-agent ingest, BLAKE3-verified) into shoot ${demo.shoot}`);
    for (const c of demo.cards) detail(await demo.ingest(c));

    say('Syncing to the studio (field-agent sync): committed to mirror AND RAID before each receipt');
    detail(await demo.sync());

    say('Forwarding to both cloud targets (upload, then HEAD: size, SHA-256, BLAKE3 metadata)');
    const final: DemoStatus = await demo.waitForCloud(CLOUD_TIMEOUT_MS, (s) => {
      const q = s.targetReport
        .filter((t) => t.kind === 'cloud')
        .map((t) => `${t.target} ${t.copies} copies, ${t.queue?.pending ?? 0} queued`)
        .join('; ');
      detail(`${s.ledger.compliant}/${s.ledger.assets} 3-2-1 compliant — ${q}`);
    });

    say('studioctl status');
    const status = await demo.studioctl(['status']);
    process.stdout.write(
      status.stdout
        .split('\n')
        .map((l) => (l === '' ? l : `  ${l}`))
        .join('\n'),
    );
    const ok = final.ledger.assets > 0 && final.ledger.compliant === final.ledger.assets;
    process.stdout.write(
      ok
        ? `\nDemo done in ${elapsed()}: ${final.ledger.compliant} of ${final.ledger.assets} images are 3-2-1 compliant.\n` +
            `Look around: ${demo.paths.mirror}, ${demo.paths.raid}, ${demo.paths.s3}. Try: studioctl asset IMG_9999.CR3 (start studiod again with --config ${demo.paths.config}).\n`
        : `\nDemo FAILED after ${elapsed()}: ${final.ledger.compliant} of ${final.ledger.assets} images compliant. See ${demo.paths.studiodLog}.\n`,
    );
    if (ok && values.stay) {
      process.stdout.write(
        `\nstudiod and the S3 server keep running (--stay); Ctrl-C stops them. studioctl is node_modules/.bin/studioctl\n(npx studioctl from this repository). Try status, assets --unprotected, asset IMG_9999.CR3, verify --download.\n` +
          `ready: studioctl --config ${demo.paths.config}\n`,
      );
      await new Promise<void>((resolve) => {
        endStay = resolve;
      });
      process.stdout.write('\nStopping everything the demo started…\n');
    }
    return ok ? 0 : 1;
  } catch (err) {
    if (stopping) return 130; // a step failed because we are stopping its processes
    process.stderr.write(
      `\ndemo: ${err instanceof Error ? err.message : String(err)}\nstudiod log: ${demo.paths.studiodLog}\n`,
    );
    return 1;
  } finally {
    if (!stopping) await demo.stop();
  }
}

main().then(
  (code) => {
    if (!stopping) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
