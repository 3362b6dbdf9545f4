#!/usr/bin/env node
// What npm links as `field-agent` (node_modules/.bin, npx): this file is in the clone, so `npm ci` links
// it even before `npm run build` has made dist/ (npm skips a bin whose file does not exist yet).
try {
  await import('../dist/bin/field-agent.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/bin/field-agent.js')) throw err;
  process.stderr.write('field-agent: not built yet; run `npm run build` in the repository first\n');
  process.exitCode = 1;
}
