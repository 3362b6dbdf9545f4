#!/usr/bin/env node
// After `tsc -b`: make every workspace's `bin` entry executable, so `npx studioctl`,
// `npx studiod` and `npx field-agent` run from a fresh clone (tsc writes files 0644, and
// `npm ci` links the bins before they exist).
import { chmod, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { workspaces } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
for (const ws of workspaces) {
  const pkg = JSON.parse(await readFile(join(root, ws, 'package.json'), 'utf8'));
  for (const file of Object.values(pkg.bin ?? {})) await chmod(join(root, ws, file), 0o755);
}
