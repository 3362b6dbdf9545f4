/**
 * The hash pool's workers in a process of their own: warmed workers never keep
 * it alive. The in-process engine and pool tests are in
 * test/protocol/hash-engine.test.ts.
 */
import t from 'tap';
import { join } from 'node:path';

t.test(
  'warmed hash workers never keep a process alive: a process that only warmed the pool exits by itself',
  async (t) => {
    const { execFile } = await import('node:child_process');
    const script = `import { sharedHashPool } from '@studio321/protocol/durable'; sharedHashPool().warm(); setTimeout(() => {}, 200);`;
    const started = Date.now();
    const r = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { cwd: join(import.meta.dirname, '..', '..', '..', 'protocol'), timeout: 15_000 },
        () => undefined,
      );
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    t.same(
      r,
      { code: 0, signal: null },
      `exited on its own after ${Date.now() - started} ms (killed by the 15 s timeout otherwise)`,
    );
  },
);
