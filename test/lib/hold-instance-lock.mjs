// Test fixture: takes the field agent's instance lock for the data dir given as
// argv[2], prints one JSON line ({"locked":pid} or {"code":..,"message":..}),
// then holds the lock until SIGTERM (clean release) or SIGKILL (kernel release).
// Used by test/service/instance-lock.test.ts until `field-agent run` takes the
// lock itself; exits 3 when the lock is refused.
import { InstanceLock } from '@studio321/agent';

const lock = new InstanceLock(process.argv[2]);
try {
  await lock.open();
} catch (err) {
  process.stdout.write(`${JSON.stringify({ code: err.code, message: err.message, detail: err.detail })}\n`);
  process.exit(3);
}
process.stdout.write(`${JSON.stringify({ locked: process.pid })}\n`);
const keepAlive = setInterval(() => {}, 1 << 30);
process.on('SIGTERM', async () => {
  await lock.close();
  clearInterval(keepAlive);
  process.exit(0);
});
