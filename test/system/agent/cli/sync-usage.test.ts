/**
 * A bad `field-agent sync` option is a usage error (AGENT_USAGE, exit code 2) like
 * any other bad command line, not a link error: the option is refused before the
 * studio is contacted, so nothing of a pairing or a session is left in the data dir.
 */
import t from 'tap';
import { readdir } from 'node:fs/promises';
import { makeAgent } from '../../../lib/studio-harness.js';

for (const [option, value] of [
  ['--max-attempts', 'many'],
  ['--max-attempts', '-1'],
  ['--backoff-ms', 'soon'],
] as const) {
  t.test(`sync ${option} ${value}: AGENT_USAGE, exit 2`, async (t) => {
    const agent = await makeAgent(t);
    const r = await agent.cli(['sync', '--json', `${option}=${value}`]);
    t.equal(r.code, 2, 'exit code 2 (usage)');
    t.match(
      r.stderr,
      new RegExp(`^field-agent: AGENT_USAGE: ${option} takes a whole number of at least 0, got "${value}"`),
      'names the option and the value',
    );
    const event = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
    t.match(event, { event: 'error', code: 'AGENT_USAGE', retryable: false }, 'the --json error names AGENT_USAGE');
    t.notOk((await readdir(agent.dataDir)).includes('studio'), 'no pairing or session files were written');
  });
}
