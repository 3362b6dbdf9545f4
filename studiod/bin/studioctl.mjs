#!/usr/bin/env node
// What npm links as `studioctl` (node_modules/.bin, npx): this file is in the clone, so `npm ci` links
// it even before `npm run build` has made dist/ (npm skips a bin whose file does not exist yet).
try {
  await import('../dist/bin/studioctl.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/bin/studioctl.js')) throw err;
  process.stderr.write('studioctl: not built yet; run `npm run build` in the repository first\n');
  process.exitCode = 1;
}
