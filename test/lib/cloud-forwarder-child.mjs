// A forwarder in its own process, so a test can SIGKILL it mid-upload.
// Usage: node cloud-forwarder-child.mjs '<json>' with
//   { dbDir, target, asset: { blake3, size, name, path }, copiesFile }
// Writes one JSON line per forwarder event to stdout, then {"event":"idle"}.
// Each verified copy is appended to copiesFile and fsynced (what studiod's
// catalogue would record with sync: true).
import { open } from 'node:fs/promises';
import { Level } from 'level';
import { CloudForwarder } from '@studio321/studiod/cloud';

const cfg = JSON.parse(process.argv[2]);
const db = new Level(cfg.dbDir, { valueEncoding: 'json' });
await db.open();
const fw = new CloudForwarder({
  db: db.sublevel('cloud', { valueEncoding: 'json' }),
  targets: [cfg.target],
  resolveSource: async () => cfg.asset.path,
  onCopyVerified: async (copy) => {
    const fh = await open(cfg.copiesFile, 'a');
    await fh.write(`${JSON.stringify(copy)}\n`);
    await fh.sync();
    await fh.close();
  },
  log: (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
  retry: { baseMs: 20, maxMs: 200 },
});
await fw.open();
await fw.enqueue({ blake3: cfg.asset.blake3, size: cfg.asset.size, name: cfg.asset.name });
await fw.idle();
process.stdout.write(`${JSON.stringify({ event: 'idle', status: await fw.status() })}\n`);
await fw.close();
await db.close();
