// The adapter from the agent's status (status.ts AgentStatus, computed from the
// state DB) and live offload progress (a real ProgressTracker on an injected
// clock) to the status page's snapshot; change events for every moving part.
import t from 'tap';
import { ErrorRing } from '@studio321/protocol';
import { AgentStatusProvider } from '@studio321/agent/ui';
import { ProgressTracker } from '@studio321/protocol';
import type { AgentStatus, CardSummary } from '@studio321/agent/state';

function summary(over: Partial<CardSummary>): CardSummary {
  return {
    id: 'c1',
    label: 'EOS_DIGITAL',
    kind: 'card',
    shoot: 's',
    source: '/media/x',
    firstSeen: '',
    lastSeen: '',
    files: 10,
    bytes: 10_000,
    verifiedFiles: 4,
    verifiedBytes: 4000,
    failedFiles: 0,
    skippedEntries: 0,
    queuedFiles: 4,
    atStudioFiles: 0,
    offsiteFiles: 0,
    safeToFormat: {
      safe: false,
      reason: '6 files not yet copied',
      files: 10,
      notCopied: 6,
      short: 4,
      damaged: 0,
      unresolvedWarnings: 0,
      examples: [],
    },
    warnings: [],
    errors: [],
    ...over,
  } as CardSummary;
}

t.test('snapshot merges DB status, live progress, link and errors; emits change', async (t) => {
  let status: AgentStatus = { cards: [summary({})], queue: { files: 4, bytes: 4000 }, copiesBeforeFormat: 2 };
  let calls = 0;
  const errors = new ErrorRing(5);
  const p = new AgentStatusProvider({
    status: async () => {
      calls++;
      return status;
    },
    errors,
    now: () => new Date('2026-11-26T12:00:00Z'),
  });
  let changes = 0;
  p.on('change', () => changes++);

  let s = await p.snapshot();
  t.match(s.cards[0], {
    id: 'c1',
    copiedFiles: 4,
    copiedBytes: 4000,
    speedBytesPerSec: 0,
    etaSeconds: null,
    safeToFormat: false,
    reason: '6 files not yet copied',
  });
  t.same(s.link, { state: 'offline' });

  // An offload of the 6 remaining files (6000 bytes) is running: 3000 bytes in 2 s.
  let clock = 0;
  const tracker = new ProgressTracker({ totalBytes: 6000, totalFiles: 6, now: () => clock });
  clock = 2000;
  tracker.addBytes(3000);
  tracker.fileDone();
  p.trackOffload('c1', tracker);
  s = await p.snapshot();
  t.match(
    s.cards[0],
    { copiedBytes: 7000, copiedFiles: 5, speedBytesPerSec: 1500, etaSeconds: 2 },
    'before-run bytes + this run',
  );

  p.setLink('connected', 'studio:7321');
  p.setLink('connected', 'studio:7321'); // no change, no event
  p.setPresent('c1', false);
  errors.push({ code: 'AGENT_X', message: 'm', at: '2026-11-26T11:59:00Z' });
  s = await p.snapshot();
  t.same(s.link, { state: 'connected', studio: 'studio:7321' });
  t.equal(s.cards[0]?.present, false);
  t.same(
    s.errors.map((e) => e.code),
    ['AGENT_X'],
  );

  p.offloadDone('c1');
  status = {
    cards: [
      summary({
        verifiedFiles: 10,
        verifiedBytes: 10_000,
        atStudioFiles: 10,
        queuedFiles: 0,
        safeToFormat: {
          safe: true,
          reason: 'all good',
          files: 10,
          notCopied: 0,
          short: 0,
          damaged: 0,
          unresolvedWarnings: 0,
          examples: [],
        },
      }),
    ],
    queue: { files: 0, bytes: 0 },
    copiesBeforeFormat: 2,
  };
  s = await p.snapshot();
  t.match(s.cards[0], { copiedFiles: 10, copiedBytes: 10_000, safeToFormat: true, speedBytesPerSec: 0 });
  t.equal(changes, 5, 'trackOffload, setLink, setPresent, error, offloadDone');

  // Concurrent snapshots share one DB walk.
  const before = calls;
  await Promise.all([p.snapshot(), p.snapshot(), p.snapshot()]);
  t.equal(calls - before, 1);

  // A hot folder is never "safe to format".
  status = {
    cards: [
      summary({
        kind: 'hot-folder',
        safeToFormat: {
          safe: true,
          reason: 'x',
          files: 1,
          notCopied: 0,
          short: 0,
          damaged: 0,
          unresolvedWarnings: 0,
          examples: [],
        },
      }),
    ],
    queue: { files: 0, bytes: 0 },
    copiesBeforeFormat: 2,
  };
  t.equal((await p.snapshot()).cards[0]?.safeToFormat, false);
  p.close();
  errors.push({ code: 'AGENT_Y', message: 'm', at: '' });
  t.equal(changes, 5, 'closed: no longer follows errors');
});
