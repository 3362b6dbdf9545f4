/**
 * A studiod that is still starting answers studioctl with STUDIO_STARTING and what it is doing,
 * never as if it were not running (an admin who reads "not running" restarts it, and a long start
 * such as a ledger rebuild of millions of assets begins again). Real studiod child process, real
 * control socket, real studioctl. The start is held at a known step with a real named pipe: the
 * pairing store (`<stateDir>/pairings.json`), which studiod reads right after the catalogue opens,
 * is a FIFO that blocks the read until the test writes it.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StudiodProcess, studioDirs, waitFor } from '../../../lib/studio-harness.js';

t.test('studioctl during the start: STUDIO_STARTING with the step, then the real answer', async (t) => {
  const dirs = await studioDirs(t);
  const s = new StudiodProcess(dirs);
  await s.writeConfig();
  await mkdir(dirs.state, { recursive: true, mode: 0o700 });
  const store = join(dirs.state, 'pairings.json');
  execFileSync('mkfifo', ['-m', '600', store]);
  const started = s.start();
  t.teardown(() => s.kill());
  // The control socket is there before the start has ended (the pipe holds it).
  await waitFor(
    () =>
      access(s.controlSocket).then(
        () => true,
        () => false,
      ),
    'the control socket',
  );

  const text = await s.ctl(['status']);
  t.equal(text.code, 1, 'exit 1: the command could not do its work yet');
  t.match(text.stderr, /STUDIO_STARTING/);
  t.match(text.stderr, /studiod is starting: reading the catalogue\. Run the command again when it has started\./);
  t.notMatch(text.stderr, /not running|did not answer/, 'never "not running"');
  t.equal(text.stdout, '', 'no report, so nothing that reads as a verdict');
  const json = await s.ctl(['--json', 'assets', '--unprotected']);
  t.equal(json.code, 1);
  t.match(json.stderr + json.stdout, /STUDIO_STARTING/, 'every command, not only status');

  // The start goes on once the store is read (an empty one: no agent paired yet).
  await writeFile(store, JSON.stringify({ format: 'studio321-pairings', version: 1, writtenAt: 0, agents: [] }));
  await started;
  const after = await s.ctl(['--json', 'status']);
  t.equal(after.code, 0, after.stderr);
  const r = JSON.parse(after.stdout) as { recount: unknown; ledger: { assets: number; compliant: number } };
  t.equal(r.recount, null);
  t.match(r.ledger, { assets: 0, compliant: 0 });
});
