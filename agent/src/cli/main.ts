/**
 * Command dispatch for `field-agent`. Each command lives in its own file and
 * returns an exit code; coded errors are printed with their code.
 */
import { reportError, type CommandIo } from './common.js';
import { ingestCommand } from './ingest.js';
import { statusCommand } from './status.js';
import { resolveCommand } from './resolve.js';
import { runCommand } from './run.js';
import { pairCommand } from './pair.js';
import { syncCommand } from './sync.js';

export type Command = (argv: string[], io: CommandIo) => Promise<number>;

export const COMMANDS: Record<string, { run: Command; help: string }> = {
  ingest: { run: ingestCommand, help: 'ingest <path>   offload a card or folder now, verified, then exit' },
  status: { run: statusCommand, help: 'status          cards, copies, safe to format, queue to the studio' },
  resolve: { run: resolveCommand, help: 'resolve <card>  mark the card\'s warnings as reviewed' },
  pair: { run: pairCommand, help: 'pair <url> <code> pair this laptop with a studio (code from `studioctl pair`)' },
  sync: { run: syncCommand, help: 'sync            push the queue to the studio until empty, then exit' },
  run: { run: runCommand, help: 'run             watch for cards and hot folders (the background service)' },
};

function usage(): string {
  return ['usage: field-agent <command> [options]', '', ...Object.values(COMMANDS).map((c) => `  ${c.help}`), '', 'options: --data-dir DIR  --config FILE  --json'].join('\n');
}

export async function main(argv: string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined) {
    io.stderr.write(`field-agent: AGENT_USAGE: unknown command "${name}"\n${usage()}\n`);
    return 2;
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    return reportError(err, io, rest.includes('--json'));
  }
}
