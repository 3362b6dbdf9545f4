/**
 * `field-agent sync [--json]`: push the queue to the paired studio until it is
 * empty, then exit. 0 when every queued file has a studio receipt; 1 with the
 * reason when the studio cannot be reached or some files were refused.
 * While `field-agent run` holds the state DB, its sync loop runs a pass now and
 * this reports that pass. Progress (sizes, files, speed, ETA) goes to stderr.
 */
import { EXIT, type ProgressSnapshot } from '@studio321/protocol';
import { resolvePaths } from '../paths.js';
import { AGENT_CODES } from '../errors.js';
import { LINK_CODES } from '../link/errors.js';
import { syncUntilEmpty, verdictsAndFreeing, type SyncOutcome } from '../link/sync-loop.js';
import { syncQueueOf } from '../state/store-copy.js';
import { formatBytes, nonNegativeValue } from '@studio321/protocol';
import { callRunningAgent, directOrRunning } from './running-agent.js';
import { parse, progressPrinter, usageContext, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent sync [--json] [--data-dir DIR] [--max-attempts N] [--backoff-ms MS]';

function num(v: string | undefined, name: string): number | undefined {
  return v === undefined ? undefined : nonNegativeValue(`--${name}`, v, usageContext(USAGE));
}

export async function syncCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parse(
    argv,
    {
      'max-attempts': { type: 'string' },
      'backoff-ms': { type: 'string' },
      'ping-ms': { type: 'string' },
      'dead-link-ms': { type: 'string' },
    } as const,
    USAGE,
  );
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const json = values.json === true;
  // Values are checked before the state is opened: a usage error leaves nothing behind.
  const backoff = num(values['backoff-ms'], 'backoff-ms');
  const maxAttempts = num(values['max-attempts'], 'max-attempts');
  const ping = num(values['ping-ms'], 'ping-ms');
  const dead = num(values['dead-link-ms'], 'dead-link-ms');
  const paths = resolvePaths({ dataDir: values['data-dir'], config: values.config }, io.env);
  const progress = progressPrinter(io);
  let outcome: SyncOutcome;
  try {
    outcome = await directOrRunning(
      paths.dataDir,
      async (state) => {
        const report = await syncUntilEmpty({
          dataDir: paths.dataDir,
          queue: syncQueueOf(state),
          onProgress: (p) => progress.show(p.snapshot()),
          // The studio's verdicts of what it holds (offsite copies in status); freeing is `run`'s and `free`'s.
          afterPass: verdictsAndFreeing({ state, freeLaptop: 'never' }),
          ...(backoff === undefined ? {} : { backoffBaseMs: backoff, backoffMaxMs: Math.max(backoff * 8, backoff) }),
          ...(maxAttempts === undefined ? {} : { maxAttempts }),
          ...(ping === undefined ? {} : { pingIntervalMs: ping }),
          ...(dead === undefined ? {} : { deadLinkMs: dead }),
        });
        return { ...report, queue: await state.queueDepth() };
      },
      async () =>
        (await callRunningAgent(paths.dataDir, '/api/sync', {}, AGENT_CODES.stateLocked, {
          onEvent: (e) => {
            if (e['event'] === 'progress') progress.show(e['progress'] as ProgressSnapshot);
          },
        })) as SyncOutcome,
    );
  } finally {
    progress.done();
  }
  const depth = outcome.queue;
  if (json) io.stdout.write(`${JSON.stringify({ event: 'sync', ...outcome })}\n`);
  else {
    io.stdout.write(
      `Synced: ${outcome.receipts} receipt(s), ${outcome.filesSent} file(s) sent (${formatBytes(outcome.bytesSent)}), ${outcome.have} already at the studio; ${depth.files} still queued (${formatBytes(depth.bytes)}).\n`,
    );
    for (const f of outcome.failed) io.stderr.write(`  ${f.hash}: ${f.code}: ${f.message}\n`);
  }
  if (outcome.failed.length > 0 || depth.files > 0) {
    const first = outcome.failed[0];
    io.stderr.write(
      `field-agent: ${LINK_CODES.incomplete}: ${depth.files} file(s) not yet at the studio${first === undefined ? '' : ` (${first.code}: ${first.message})`}. Run sync again later.\n`,
    );
    return EXIT.error;
  }
  return EXIT.ok;
}
