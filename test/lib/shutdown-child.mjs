// Test fixture for protocol/src/shutdown.ts: registers three closers (argv[2]
// chooses "ok", "hang" or "fail" for the middle one), prints "ready", and
// lets SIGTERM/SIGINT do the rest. Each closer prints its name when it runs.
import { configureShutdown, createLogger, onShutdown } from '@studio321/protocol';

const mode = process.argv[2] ?? 'ok';
configureShutdown({ timeoutMs: 300, log: createLogger({ name: 'fixture', stream: process.stderr }) });
onShutdown('first', async () => {
  process.stdout.write('close first\n');
});
onShutdown('middle', async () => {
  process.stdout.write('close middle\n');
  if (mode === 'hang') await new Promise(() => setInterval(() => {}, 1000));
  if (mode === 'fail') throw new Error('middle failed');
});
const off = onShutdown('unregistered', () => {
  process.stdout.write('close unregistered\n');
});
off();
onShutdown(
  'last',
  () =>
    new Promise((resolve) =>
      setImmediate(() => {
        process.stdout.write('close last\n');
        resolve();
      }),
    ),
);
setInterval(() => {}, 1 << 30);
process.stdout.write('ready\n');
