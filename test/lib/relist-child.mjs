// Test fixture: a card's listing recorded in parts (more than SCAN_BATCH entries) over a state where
// half its files are verified. argv[2]: data dir, argv[3]: `build` (list the card, verify every other
// file; prints `built`) or `relist` (prints `listing`, records the same listing again, prints `listed`).
// test/agent/offload/relist-crash.test.ts SIGKILLs `relist` while its parts are being written.
import { AgentState, SCAN_BATCH } from '@studio321/agent/state';

const [dataDir, mode] = process.argv.slice(2);
const N = SCAN_BATCH + 1000;
const files = Array.from({ length: N }, (_, i) => ({
  path: `DCIM/${100 + Math.floor(i / 9999)}CANON/IMG_${String(i % 9999).padStart(4, '0')}.JPG`,
  size: 100 + (i % 50),
  mtimeMs: 1_000_000 + i,
}));
const scan = { root: '/card', dev: 1, disk: 'nodisk:1', files, warnings: [] };
const state = await AgentState.open(dataDir);
if (mode === 'build') {
  const card = await state.beginOffload({
    id: 'c1',
    label: 'C',
    kind: 'card',
    source: '/card',
    shoot: 's',
    store: '/store',
  });
  const todo = await state.recordScan('c1', scan, new Date(), '/store');
  const verified = todo.filter((_, i) => i % 2 === 0);
  for (let i = 0; i < verified.length; i += 1000)
    await state.recordFiles(
      verified.slice(i, i + 1000).map((file) => ({
        kind: 'verified',
        card,
        file,
        blake3: Buffer.from(file.path).toString('hex').padEnd(64, '0').slice(0, 64),
        size: file.size,
        storePath: `s/c1/${file.path}`,
        paths: { laptop: `/store/s/c1/${file.path}` },
        copies: [{ target: 'laptop', device: 'd', media: 'ssd', location: 'field', offsite: false, verified: true }],
        verifiedAt: '2026-01-01T00:00:00.000Z',
      })),
    );
  process.stdout.write('built\n');
} else {
  process.stdout.write('listing\n');
  await state.recordScan('c1', scan, new Date(), '/store');
  process.stdout.write('listed\n');
}
await state.close();
