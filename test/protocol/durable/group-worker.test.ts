/**
 * GroupWorker, the queue both small-file writers run their worker through (the agent's
 * SmallWriter, studiod's SmallGroupWriter), with a real worker thread: a tiny module given as a
 * data: URL that answers each item with the group it came in, and exits when an item says so.
 *  - items asked for while a group is in flight form the next group; a lone item waits for nothing;
 *  - items marked `first` go as a group of their own ahead of those queued before them, and the
 *    others follow right after (nothing starves);
 *  - a worker that dies fails the items of its group with the caller's fault error, and the
 *    next group runs on a new worker;
 *  - an item aborted while it waited is never sent; close() fails what is left;
 *  - warm() starts the worker once, before any group, and the first groups run on it; a warmed
 *    worker that never got a group lets its process end (a real child process).
 */
import t from 'tap';
import { GroupWorker } from '@studio321/protocol/durable';

const WORKER = `import { parentPort } from 'node:worker_threads';
parentPort.on('message', (m) => {
  if (m.files.includes('die')) process.exit(7);
  parentPort.postMessage({ id: m.id, outcomes: m.files.map((f) => m.id + ':' + f) });
});`;
const url = new URL(`data:text/javascript,${encodeURIComponent(WORKER)}`);

class Fault extends Error {}
class Aborted extends Error {}

function queue(groupsInFlight = 1): GroupWorker<string, string> {
  return new GroupWorker<string, string>({
    url,
    groupsInFlight,
    fault: (message) => new Fault(message),
    aborted: () => new Aborted('aborted'),
  });
}

t.test('a lone item goes at once; the items asked meanwhile form the next group', async (t) => {
  const q = queue();
  t.teardown(() => q.close(new Error('end')));
  const out = await Promise.all(['a', 'b', 'c', 'd'].map((x) => q.run(x)));
  t.same(out, ['1:a', '2:b', '2:c', '2:d']);
  t.equal(q.groups, 2);
  t.equal(q.files, 4);
});

t.test('first items go ahead of those queued before them, and the rest right after', async (t) => {
  const q = queue();
  t.teardown(() => q.close(new Error('end')));
  const a = q.run('a'); // sent alone at once
  const rest = [q.run('b'), q.run('c')];
  const x = q.run('x', { first: true });
  const y = q.run('y', { first: true });
  t.same(await Promise.all([a, x, y, ...rest]), ['1:a', '2:x', '2:y', '3:b', '3:c']);
});

/** What a promise settled with (caught at once: no rejection is left unhandled meanwhile). */
function settled<T>(p: Promise<T>): Promise<T | Error> {
  return p.catch((err: unknown) => err as Error);
}

t.test('a worker that dies fails its group with the fault error; the next group gets a new worker', async (t) => {
  const q = queue();
  t.teardown(() => q.close(new Error('end')));
  const first = q.run('ok');
  const doomed = [settled(q.run('die')), settled(q.run('also in that group'))];
  t.equal(await first, '1:ok');
  // Queued behind the group that dies (sent when 'ok' was answered), then sent to a fresh worker.
  const after = q.run('later');
  for (const e of await Promise.all(doomed)) {
    t.ok(e instanceof Fault, "the caller's fault error");
    t.match((e as Error).message, /exited \(code 7\)/);
  }
  t.equal(await after, '3:later');
  t.equal(await q.run('again'), '4:again');
  t.equal(q.groups, 3, 'the dead group is not counted');
});

t.test('an item aborted while it waited is never sent; close() fails what is left', async (t) => {
  const q = queue();
  const a = q.run('a');
  const ac = new AbortController();
  const gone = settled(q.run('gone', { signal: ac.signal }));
  const kept = q.run('kept');
  ac.abort();
  t.equal(await a, '1:a');
  t.ok((await gone) instanceof Aborted, "rejected with the caller's aborted error");
  t.equal(await kept, '2:kept', 'the aborted item was not in the group');
  const waiting = [settled(q.run('w1')), settled(q.run('w2'))];
  const end = new Error('closed');
  await q.close(end);
  t.same(await Promise.all(waiting), [end, end]);
  t.equal(q.files, 2, 'gone, w1 and w2 were never answered');
});

/** A worker for lanes: answers each group with its lane and the worker's thread id; `hold` keeps the reply until `go` comes. */
const LANES = `import { parentPort, threadId } from 'node:worker_threads';
let held;
parentPort.on('message', (m) => {
  if (m.files.includes('die')) process.exit(7);
  const reply = { id: m.id, lane: m.lane, outcomes: m.files.map((f) => m.lane + ':' + f + ':' + threadId) };
  if (m.files.includes('hold')) held = reply;
  else {
    parentPort.postMessage(reply);
    if (m.files.includes('go') && held !== undefined) parentPort.postMessage(held);
  }
});`;
const lanesUrl = new URL(`data:text/javascript,${encodeURIComponent(LANES)}`);

function lane(name: string): GroupWorker<string, string> {
  return new GroupWorker<string, string>({ url: lanesUrl, lane: name, groupsInFlight: 1, fault: (m) => new Fault(m) });
}

t.test('lanes share one worker, and one lane never waits for the other', async (t) => {
  const a = lane('a');
  const b = lane('b');
  t.teardown(async () => {
    await a.close(new Error('end'));
    await b.close(new Error('end'));
  });
  const held = a.run('hold'); // lane a's group is in flight and not answered
  const [b1] = await Promise.all([b.run('x')]);
  const [, tid] = /^b:x:(\d+)$/.exec(b1)!;
  t.ok(tid, `lane b answered while lane a's group waits (${b1})`);
  const go = await b.run('go');
  t.equal(go, `b:go:${tid}`, 'the same worker');
  t.equal(await held, `a:hold:${tid}`, "lane a's reply reaches lane a only");
  // A worker that dies fails the groups of every lane in flight; each lane then starts a new one.
  const dead = settled(a.run('die'));
  t.type(await dead, Fault);
  const again = await b.run('y');
  t.not(again, `b:y:${tid}`, 'a new worker');
  t.equal(await a.run('z'), again.replace('b:y', 'a:z'), 'shared again by both lanes');
  // Closing one lane leaves the worker to the other.
  await a.close(new Error('closed'));
  t.equal(await b.run('w'), again.replace('b:y', 'b:w'), 'lane b still on the same worker');
});

t.test('warm() starts the worker before the first group, once; the first group runs on it', async (t) => {
  const started: number[] = [];
  const onWorker = (w: { threadId: number }): void => {
    started.push(w.threadId);
  };
  process.on('worker', onWorker);
  t.teardown(() => process.off('worker', onWorker));
  const a = lane('warm-a');
  const b = lane('warm-b');
  t.teardown(async () => {
    await a.close(new Error('end'));
    await b.close(new Error('end'));
  });
  a.warm();
  a.warm();
  b.warm(); // another lane of the same module: the same worker
  await new Promise((r) => setImmediate(r)); // process emits 'worker' after the constructor returns
  t.equal(started.length, 1, 'one worker started by warm(), before any group');
  t.equal(a.groups + b.groups, 0);
  const out = await a.run('x');
  t.equal(out, `warm-a:x:${started[0]}`, 'the first group ran on the warmed worker');
  t.equal(await b.run('y'), `warm-b:y:${started[0]}`, 'and the other lane on it too');
  t.equal(started.length, 1, 'no second worker');
  const here = new GroupWorker<string, string>({
    url: lanesUrl,
    groupsInFlight: 1,
    fault: (m) => new Fault(m),
    inThread: async (files) => files.map((f) => `here:${f}`),
  });
  here.warm();
  await new Promise((r) => setImmediate(r));
  t.equal(started.length, 1, 'a queue that runs in this thread starts no worker');
  t.same(await here.run('z'), 'here:z');
});

t.test('a warmed worker that never got a group does not keep the process alive', async (t) => {
  // A real process: it warms a queue and does nothing else; it must end by itself.
  const { spawn } = await import('node:child_process');
  const script = `import { GroupWorker } from '@studio321/protocol/durable';
const q = new GroupWorker({ url: new URL(${JSON.stringify(url.href)}), groupsInFlight: 1, fault: (m) => new Error(m) });
q.warm();
process.stdout.write('warmed\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  t.equal(code, 0, 'exited on its own with status 0');
  t.equal(out, 'warmed\n');
});
