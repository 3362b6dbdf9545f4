// Test fixture: one sync pass of the paired agent state in argv[2] against its studio (real TLS
// link, real AgentState), printing `counted <hash>` as each studio Receipt counts (the pass's
// onReceipt: after it was recorded), then `done <receipts>`.
// test/system/link/receipt-kill.test.ts SIGKILLs it between lines, inside batched receipt recording.
import { connectStudio, syncPass } from '@studio321/agent/link';
import { AgentState, syncQueueOf } from '@studio321/agent/state';

const [dataDir, batchSize] = process.argv.slice(2);
const state = await AgentState.open(dataDir);
const link = await connectStudio({ dataDir });
// Pipes are written synchronously on Linux: a line read by the parent was counted before the kill.
const res = await syncPass(link, syncQueueOf(state), {
  batchSize: Number(batchSize),
  onReceipt: (h) => process.stdout.write(`counted ${h}\n`),
});
link.close();
await state.close();
process.stdout.write(`done ${res.receipts}\n`);
