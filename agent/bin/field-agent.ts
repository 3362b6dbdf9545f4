#!/usr/bin/env node
// Commands that copy files start the hash workers first, so they boot on another core while
// this thread loads the CLI (protocol/src/durable/hash-pool.ts, warm()).
const command = process.argv[2];
if (command === 'ingest' || command === 'run') (await import('@studio321/protocol/durable')).sharedHashPool().warm();
const { main } = await import('../src/cli/main.js');

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
