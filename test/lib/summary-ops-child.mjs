// Test fixture: a seeded random mix of the agent state's writes that change what `field-agent
// status` counts (listings — one long enough to be written in parts —, verified and duplicate
// files, file errors, studio receipts, verdicts, field-drive back-fill, damaged laptop copies,
// freeing, forget, resolve, hot-folder files, offload ends) on the state in argv[2].
// argv[3]: seed, argv[4]: how many operations. Prints `op <n> <name>` after each one, then `done`.
// test/agent/status-summary.test.ts runs it to the end, or SIGKILLs it between lines.
import { AgentState, SCAN_BATCH } from '@studio321/agent/state';

const [dataDir, seedArg, countArg] = process.argv.slice(2);
let seed = Number(seedArg) >>> 0 || 1;
const rnd = (n) => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed % n;
};
const pick = (xs) => xs[rnd(xs.length)];
const hash = (i) => i.toString(16).padStart(64, '0');
const fact = (target, device, verified = true) => ({
  target,
  device,
  media: 'ssd',
  location: 'field',
  offsite: false,
  verified,
  verifiedAt: '2026-01-01T00:00:00.000Z',
});
const CARDS = [
  { id: 'card-a', kind: 'card' },
  { id: 'card-b', kind: 'card' },
  { id: 'hot-h', kind: 'hot-folder' },
];
const state = await AgentState.open(dataDir);
const input = (c) => ({
  id: c.id,
  label: c.id,
  kind: c.kind,
  source: `/src/${c.id}`,
  shoot: 'shoot',
  store: '/store',
  dev: 7,
  disk: 'disk:wwid:card',
});
const now = (i) => new Date(Date.UTC(2026, 0, 1, 0, 0, i));
let step = 0;

async function listing(c, n) {
  const files = [];
  for (let i = 0; i < n; i++)
    if (rnd(5) > 0) files.push({ path: `DCIM/f${String(i).padStart(5, '0')}.jpg`, size: 10 + rnd(3), mtimeMs: 1000 });
  const warnings = rnd(2) === 0 ? [{ path: 'DCIM/link.jpg', code: 'AGENT_SYMLINK_SKIPPED', message: 'a symlink' }] : [];
  await state.beginOffload(input(c), now(step));
  await state.recordScan(c.id, { root: '/src', dev: 7, disk: 'disk:wwid:card', files, warnings }, now(step), '/store');
}

async function notVerified(c) {
  const card = await state.getCard(c.id);
  return card === undefined
    ? []
    : (await state.cardFiles(card, { current: true })).filter((f) => f.state === 'seen' || f.state === 'failed');
}

const OPS = {
  async scan() {
    const c = pick(CARDS.filter((x) => x.kind === 'card'));
    await listing(c, 30 + rnd(20));
  },
  async bigScan() {
    await listing(CARDS[1], SCAN_BATCH + 300);
  },
  async ingest() {
    const c = pick(CARDS);
    const card = await state.getCard(c.id);
    const todo = (await notVerified(c)).slice(0, 1 + rnd(6));
    if (card === undefined || todo.length === 0) return;
    const entries = [];
    const fresh = new Set();
    for (const file of todo) {
      const blake3 = hash(1 + rnd(40));
      const exists = fresh.has(blake3) || (await state.getAsset(blake3)) !== undefined;
      const base = { card, file, blake3, verifiedAt: now(step).toISOString() };
      if (exists && rnd(2) === 0) entries.push({ kind: 'duplicate', ...base });
      else {
        const storePath = `shoot/${c.id}/${file.path}.${step}.${entries.length}`;
        entries.push({
          kind: 'verified',
          ...base,
          size: file.size,
          storePath,
          paths: { laptop: `/store/${storePath}` },
          copies: [fact('laptop', 'disk:wwid:L')],
          ...(rnd(4) === 0 ? { warning: { code: 'AGENT_SOURCE_CHANGED', message: 'changed' } } : {}),
        });
      }
      fresh.add(blake3);
    }
    await state.recordFiles(entries);
  },
  async fileError() {
    const c = pick(CARDS);
    const f = pick(await notVerified(c));
    if (f !== undefined)
      await state.recordFileError(
        c.id,
        f.path,
        { code: 'AGENT_READ_FAILED', message: 'no', retryable: true },
        now(step),
      );
  },
  async receipts() {
    const pending = await state.pendingForStudio(1 + rnd(8));
    if (pending.length === 0) return;
    await state.recordStudioReceipts(
      pending.map((p) => ({
        blake3: p.blake3,
        size: p.size,
        committedAt: now(step).toISOString(),
        copies: [
          {
            target: 'mirror',
            device: 'disk:wwid:M',
            path: `/m/${p.blake3}`,
            media: 'hdd',
            location: 'studio',
            verifiedAt: now(step).toISOString(),
            method: 'blake3',
          },
        ],
      })),
    );
  },
  async verdicts() {
    const due = await state.verdictsDue(0, now(step), 1 + rnd(6));
    const off = rnd(2) === 0;
    await state.recordVerdicts(
      due.map((blake3) => ({
        blake3,
        verdict: {
          known: true,
          compliant: rnd(2) === 0,
          copies: [
            {
              target: 'mirror',
              media: 'hdd',
              location: 'studio',
              offsite: false,
              verifiedAt: '2026-01-01T00:00:00.000Z',
            },
            ...(off
              ? [
                  {
                    target: 'cloud',
                    media: 'cloud',
                    location: 'east',
                    offsite: true,
                    storageClass: 'COLD',
                    verifiedAt: '2026-01-01T00:00:00.000Z',
                  },
                ]
              : []),
          ],
          reasons: [],
        },
      })),
      now(step),
    );
  },
  async backfill() {
    const a = pick(await state.assetsMissingCopy('field-drive'));
    if (a !== undefined)
      await state.recordCopies(a.blake3, { 'field-drive': `/fd/${a.blake3}` }, [fact('field-drive', 'disk:wwid:F')]);
  },
  async damage() {
    const a = pick((await state.listAssets()).filter((x) => x.copies.some((c) => c.target === 'laptop' && c.verified)));
    if (a !== undefined) await state.recordCopies(a.blake3, {}, [fact('laptop', 'disk:wwid:L', false)]);
  },
  async free() {
    const a = pick((await state.listAssets()).filter((x) => x.studio !== undefined));
    if (a === undefined) return;
    const path = await state.beginFree(a.blake3, now(step));
    if (path !== undefined && rnd(3) > 0) await state.endFree(a.blake3, rnd(3) > 0, now(step));
  },
  async forget() {
    const c = pick(CARDS);
    if ((await state.getCard(c.id)) !== undefined) await state.forgetCard(c.id, now(step));
  },
  async resolve() {
    const c = pick(CARDS);
    if ((await state.getCard(c.id)) !== undefined) await state.resolveWarnings(c.id, now(step));
  },
  async seen() {
    const c = CARDS[2];
    await state.beginOffload(input(c), now(step));
    await state.recordSeen(c.id, { path: `in/h${rnd(25)}.jpg`, size: 20 + rnd(2), mtimeMs: 2000 + rnd(2) });
  },
  async end() {
    const c = pick(CARDS);
    await state.endOffload(c.id, { state: rnd(2) === 0 ? 'done' : 'interrupted' }, now(step));
  },
};
const names = Object.keys(OPS).filter((n) => n !== 'bigScan');
const weights = { ingest: 5, receipts: 2, scan: 1 };
const deck = names.flatMap((n) => Array(weights[n] ?? 1).fill(n));
const count = Number(countArg);
for (step = 0; step < count; step++) {
  const name = step < 3 ? 'scan' : step === 6 ? 'bigScan' : pick(deck);
  await OPS[name]();
  process.stdout.write(`op ${step} ${name}\n`);
}
await state.close();
process.stdout.write('done\n');
