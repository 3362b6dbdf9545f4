/**
 * `field-agent sync [--json]`: push the queue to the paired studio until it is
 * empty, then exit. 0 when every queued file has a studio receipt; 1 with the
 * reason when the studio cannot be reached or some files were refused.
 */
import { AgentState } from '../state/agent-state.js';
import { resolvePaths } from '../paths.js';
import { AGENT_CODES, AgentError } from '../errors.js';
import { LINK_CODES } from '../link/errors.js';
import { syncUntilEmpty, verdictsAndFreeing } from '../link/sync-loop.js';
import { syncQueueOf } from '../state/store-copy.js';
import { parse, type CommandIo } from './common.js';

const USAGE = 'usage: field-agent sync [--json] [--data-dir DIR] [--max-attempts N] [--backoff-ms MS]';

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new AgentError(AGENT_CODES.usage, `--${name} must be a non-negative number\n${USAGE}`);
  return n;
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
    return 0;
  }
  const json = values.json === true;
  const paths = resolvePaths({ dataDir: values['data-dir'], config: values.config }, io.env);
  const state = await AgentState.open(paths.dataDir);
  try {
    const backoff = num(values['backoff-ms'], 'backoff-ms');
    const maxAttempts = num(values['max-attempts'], 'max-attempts');
    const ping = num(values['ping-ms'], 'ping-ms');
    const dead = num(values['dead-link-ms'], 'dead-link-ms');
    const report = await syncUntilEmpty({
      dataDir: paths.dataDir,
      queue: syncQueueOf(state),
      // The studio's verdicts of what it holds (offsite copies in status); freeing is `run`'s and `free`'s.
      afterPass: verdictsAndFreeing({ state, freeLaptop: 'never' }),
      ...(backoff === undefined ? {} : { backoffBaseMs: backoff, backoffMaxMs: Math.max(backoff * 8, backoff) }),
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
      ...(ping === undefined ? {} : { pingIntervalMs: ping }),
      ...(dead === undefined ? {} : { deadLinkMs: dead }),
    });
    const depth = await state.queueDepth();
    if (json) io.stdout.write(`${JSON.stringify({ event: 'sync', ...report, queue: depth })}\n`);
    else {
      io.stdout.write(
        `Synced: ${report.receipts} receipt(s), ${report.filesSent} file(s) sent (${report.bytesSent} bytes), ${report.have} already at the studio; ${depth.files} still queued.\n`,
      );
      for (const f of report.failed) io.stderr.write(`  ${f.hash}: ${f.code}: ${f.message}\n`);
    }
    if (report.failed.length > 0 || depth.files > 0) {
      const first = report.failed[0];
      io.stderr.write(
        `field-agent: ${LINK_CODES.incomplete}: ${depth.files} file(s) not yet at the studio${first === undefined ? '' : ` (${first.code}: ${first.message})`}. Run sync again later.\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    await state.close();
  }
}
