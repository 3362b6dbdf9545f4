/**
 * `field-agent report <card> [--csv|--html] [--out FILE]`: the offload report of one card
 * (state/card-report.ts) — text summary by default, CSV or a printable HTML page, on stdout or
 * into FILE (written durably, never replacing a file that is there). Built from the state DB,
 * by the running agent while `field-agent run` holds it (running-agent.ts); formatted here.
 */
import { resolve } from 'node:path';
import { errorCode, EXIT, formatBytes } from '@studio321/protocol';
import { writeFileAtomic } from '@studio321/protocol/durable';
import { findCard } from '../state/agent-state.js';
import { buildOffloadReport, offloadReportCsv, offloadReportHtml, type OffloadReport } from '../state/card-report.js';
import { AGENT_CODES, AgentError } from '../errors.js';
import { callRunningAgent, directOrRunning } from './running-agent.js';
import { loadContext, oneCardRef, parse, type CommandIo } from './common.js';

const USAGE =
  'usage: field-agent report <card-id|label> [--csv | --html] [--out FILE] [--json] [--data-dir DIR] [--config FILE]';

export async function reportCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { csv: { type: 'boolean', default: false }, html: { type: 'boolean', default: false }, out: { type: 'string' } },
    USAGE,
  );
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const ref = oneCardRef(positionals, USAGE);
  if (values.csv === true && values.html === true)
    throw new AgentError(AGENT_CODES.usage, `--csv or --html, not both\n${USAGE}`);
  if (values.out === '') throw new AgentError(AGENT_CODES.usage, `--out needs a file name\n${USAGE}`);
  const { paths } = await loadContext(values, io.env);
  const report = await directOrRunning(
    paths.dataDir,
    async (state) => buildOffloadReport(state, await findCard(state, ref)),
    async () =>
      (await callRunningAgent(paths.dataDir, '/api/report', { card: ref }, AGENT_CODES.stateLocked)) as OffloadReport,
  );
  const text =
    values.csv === true
      ? offloadReportCsv(report)
      : values.html === true
        ? offloadReportHtml(report)
        : values.json === true
          ? `${JSON.stringify(report)}\n`
          : `${report.card.label} (${report.card.id}), shoot ${report.card.shoot}: ${report.files.length} files, ${formatBytes(report.totalBytes)}\n${report.files
              .map(
                (f) =>
                  `  ${f.path}  ${f.size} B  ${f.state}  copies: ${f.copies.map((c) => c.target).join(', ') || 'none'}`,
              )
              .join('\n')}\n`;
  if (values.out === undefined) io.stdout.write(text);
  else {
    const out = resolve(values.out);
    try {
      await writeFileAtomic(out, text, { mode: 0o644, replace: false });
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      throw new AgentError(AGENT_CODES.reportExists, `${out} exists and is never replaced: name another file.`, {
        cause: err,
        detail: { path: out },
      });
    }
    io.stderr.write(`report written to ${out}\n`);
  }
  return EXIT.ok;
}
