#!/usr/bin/env node
/** The old space may grow by this much (%) over what survived a full collection (see below). */
const HEAP_GROWING_PERCENT = 25;
/** The young generation keeps the size it has at start-up (see below). */
const SEMI_SPACE_GROWTH = '--semi-space-growth-factor=1';
/** `sync`: a function is optimised after this many interrupt-budget ticks (V8's default: 3; see below). */
const SYNC_TICKS_BEFORE_OPTIMIZATION = '--ticks-before-optimization=12';

const command = process.argv[2];
if (command === 'ingest' || command === 'run') {
  // V8 lets the old space grow to up to 4× what survived the last full collection before the
  // next one: an ingest of 100,000 small files held ~40 MiB live but reached 147 MiB of heap
  // (RSS 299 MiB). A growing factor of 1.25 (read at every full collection, so it applies when
  // set here, and to the hash workers) bounds that garbage; it is no limit, so a larger live
  // heap (a bigger card) still grows as it needs. node:v8 is imported here only: `status` and
  // the other short commands need not load it.
  const { setFlagsFromString } = await import('node:v8');
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  // V8 also doubles the young generation (two semi-spaces) while the agent allocates fast, up to
  // 32 MiB: about 30 MiB of an ingest's peak RSS, for objects that live one file's time. A growth
  // factor of 1 keeps it at its start-up size (2-4 MiB), at the cost of more frequent scavenges. V8 puts the
  // factor back to 2 when it sets up an isolate (each hash worker), so it is set again once a
  // worker runs.
  setFlagsFromString(SEMI_SPACE_GROWTH);
  process.on('worker', (w) => w.once('online', () => setFlagsFromString(SEMI_SPACE_GROWTH)));
  // Commands that copy files start the hash workers first, so they boot on another core while
  // this thread loads the CLI (protocol/src/durable/hash-pool.ts, warm()).
  (await import('@studio321/protocol/durable')).sharedHashPool().warm();
  // `ingest` also starts the small-file worker (the small files' reads and writes) now: its boot was
  // the first file's wait (README Performance, "Session 22"). `run` starts it at its first card.
  if (command === 'ingest') (await import('../src/card/small-read.js')).sharedSmallCardReader().warm();
}
if (command === 'sync') {
  // A sync runs seconds to minutes and ends; V8 spent about a third of its CPU (3,000 small
  // files) compiling functions with TurboFan on its background threads, some of them two or three
  // times after a deoptimisation. Four times the ticks before a function is optimised leave that to
  // the functions that stay hot (each file's and each chunk's), which a longer sync still
  // optimises a few seconds later (README Performance, "Session 18: the agent's CPU a small file synced").
  (await import('node:v8')).setFlagsFromString(SYNC_TICKS_BEFORE_OPTIMIZATION);
}
const io = { stdout: process.stdout, stderr: process.stderr, env: process.env };
// `status` and `sync` from one CommonJS file of the same code while it is current (src/cli/bundle.ts).
const bundleFile = command === 'status' || command === 'sync' ? `./${command}.cjs` : undefined;
const bundled =
  bundleFile === undefined
    ? undefined
    : (await import('../src/cli/bundle.js')).loadBundle(new URL(bundleFile, import.meta.url));
if (bundled !== undefined) {
  process.exitCode = await bundled.run(process.argv.slice(3), io);
} else {
  const { main } = await import('../src/cli/main.js');
  process.exitCode = await main(process.argv.slice(2), io);
}
