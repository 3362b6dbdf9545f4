/**
 * The JSON log line (protocol/src/log.ts): one object a line, whatever the event holds — a
 * BigInt written as its decimal string, a cycle reduced to the message with `logError` — and
 * the same line for plain events as JSON.stringify writes.
 */
import t from 'tap';
import { createLogger } from '@studio321/protocol';

function capture(): { lines: string[]; stream: { write(line: string): boolean } } {
  const lines: string[] = [];
  return { lines, stream: { write: (line: string) => lines.push(line) > 0 } };
}

const now = (): Date => new Date(Date.UTC(2026, 11, 6));

t.test('plain, BigInt and circular events: one JSON object a line', async (t) => {
  const { lines, stream } = capture();
  const log = createLogger({ name: 'x', stream, now });
  log.info({ hash: 'ab', size: 3, nested: { a: [1, 'b'] } }, 'committed');
  log.info({ ino: 2n ** 64n + 1n }, 'big');
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic['self'] = cyclic;
  log.warn({ cyclic }, 'loop');
  t.equal(lines.length, 3);
  t.ok(
    lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')),
    'one line each',
  );
  const [plain, big, loop] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(plain, {
    time: '2026-12-06T00:00:00.000Z',
    level: 'info',
    name: 'x',
    msg: 'committed',
    hash: 'ab',
    size: 3,
    nested: { a: [1, 'b'] },
  });
  t.equal(lines[0], `${JSON.stringify(plain)}\n`, 'the same text as JSON.stringify');
  t.equal(big?.['ino'], '18446744073709551617', 'a BigInt as its decimal string');
  t.same(loop, {
    time: '2026-12-06T00:00:00.000Z',
    level: 'warn',
    name: 'x',
    msg: 'loop',
    logError: 'event not serialisable',
  });
});
