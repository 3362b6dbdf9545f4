/**
 * Command dispatch for `field-agent`. Each command lives in its own file and
 * returns an exit code; coded errors are printed with their code.
 */
import { didYouMean, EXIT, EXIT_STATUS_HELP, packageVersion } from '@studio321/protocol/base';
import { AGENT_CODES } from '../errors.js';
import { reporting, type CommandIo } from './common.js';

export type Command = (argv: string[], io: CommandIo) => Promise<number>;

/** Commands load lazily: `status` does not pay for the link client, `ingest` not for the tray. */
export const COMMANDS: Record<string, { load: () => Promise<Command>; help: string }> = {
  ingest: {
    load: async () => (await import('./ingest.js')).ingestCommand,
    help: 'ingest <path>   offload a card or folder now, verified, then exit',
  },
  status: {
    load: async () => (await import('./status.js')).statusCommand,
    help: 'status          cards, copies, safe to format, queue to the studio',
  },
  resolve: {
    load: async () => (await import('./resolve.js')).resolveCommand,
    help: "resolve <card>  mark the card's warnings as reviewed",
  },
  pair: {
    load: async () => (await import('./pair.js')).pairCommand,
    help: 'pair <url> <code> pair this laptop with a studio (code from `studioctl pair`)',
  },
  sync: {
    load: async () => (await import('./sync.js')).syncCommand,
    help: 'sync            push the queue to the studio until empty, then exit',
  },
  verify: {
    load: async () => (await import('./verify.js')).verifyCommand,
    help: 'verify [card]   read the laptop and field-drive copies again; lost ones stop counting',
  },
  eject: {
    load: async () => (await import('./eject.js')).ejectCommand,
    help: 'eject <card>    unmount a card, only once it is safe to format',
  },
  forget: {
    load: async () => (await import('./forget.js')).forgetCommand,
    help: 'forget <card>   drop a card seen long ago from the list (no file is deleted)',
  },
  free: {
    load: async () => (await import('./free.js')).freeCommand,
    help: 'free [card]     delete laptop copies the studio holds 3-2-1 compliant (config freeLaptop)',
  },
  report: {
    load: async () => (await import('./report.js')).reportCommand,
    help: 'report <card>   the offload report of a card: files, hashes, copies (--csv, --html, --out FILE)',
  },
  run: {
    load: async () => {
      const [{ runCommand }, { startSyncForRun }] = await Promise.all([
        import('./run.js'),
        import('../link/sync-loop.js'),
      ]);
      return (argv, io) => runCommand(argv, io, { startSync: startSyncForRun });
    },
    help: 'run             watch for cards and hot folders (the background service)',
  },
};

function usage(): string {
  return [
    'usage: field-agent <command> [options]',
    '',
    ...Object.values(COMMANDS).map((c) => `  ${c.help}`),
    '',
    'options (every command): --data-dir DIR  --config FILE  --json  --help',
    '`field-agent <command> --help` shows the options of one command; `field-agent --version` the version.',
    '',
    EXIT_STATUS_HELP,
  ].join('\n');
}

export async function main(argv: string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    io.stdout.write(`field-agent ${packageVersion(new URL('../../../package.json', import.meta.url))}\n`);
    return EXIT.ok;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(`${usage()}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined) {
    io.stderr.write(
      `field-agent: ${AGENT_CODES.usage}: unknown command "${name}"${didYouMean(name, Object.keys(COMMANDS))}\n${usage()}\n`,
    );
    return EXIT.usage;
  }
  return reporting(async (argv, io2) => (await cmd.load())(argv, io2))(rest, io);
}
