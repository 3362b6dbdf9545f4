// Loaded into every test process (package.json "tap"."node-arg"). tap's
// @tapjs/processinfo hooks child_process (through `process-on-spawn`) to put
// itself into the NODE_OPTIONS of every descendant process, so each agent,
// studiod and studioctl a system test starts would record its coverage. With
// coverage off (`--disable-coverage`, as `npm test` runs) that record is never
// read, and loading it costs each child node process about 0.3 CPU-s (0.12 →
// 0.43 CPU-s for `node -e 0` here), hundreds of times per suite. So with coverage
// off, a listener added after processinfo's takes it out again. A run with
// coverage keeps it.
import { createRequire } from 'node:module';

if (process.env.TAP_DISABLE_COVERAGE === '1') {
  const strip = (options) =>
    (options ?? '')
      .split(/\s+/)
      .filter((a) => a !== '' && !a.includes('@tapjs/processinfo'))
      .join(' ');
  const onSpawn = createRequire(import.meta.url)('process-on-spawn');
  onSpawn.addListener((child) => {
    const options = strip(child.env.NODE_OPTIONS);
    const env = { ...child.env };
    if (options === '') delete env.NODE_OPTIONS;
    else env.NODE_OPTIONS = options;
    child.env = env;
  });
  const own = strip(process.env.NODE_OPTIONS);
  if (own === '') delete process.env.NODE_OPTIONS;
  else process.env.NODE_OPTIONS = own;
}
