import t from 'tap';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { decodeFrame, encodeFrame, type Message } from '@studio321/protocol';
import { sampleMessages, worstCaseOffer, worstCaseReceipt } from '../lib/sample-messages.js';

// field-agent loads msgpackr without its native string decoder (decodeStringsInJs, called when
// the agent's link module loads); studiod keeps it. Each side runs in a real child process, as
// msgpackr reads the switch once, when it loads.

const ENV = 'MSGPACKR_NATIVE_ACCELERATION_DISABLED';

/** Buffers as hex, so that decoded messages compare as JSON. */
function plain(v: unknown): unknown {
  return JSON.parse(
    JSON.stringify(v, function (this: Record<string, unknown>, k: string, x: unknown) {
      const raw = this[k];
      return raw instanceof Uint8Array ? { hex: Buffer.from(raw).toString('hex') } : x;
    }),
  );
}

const CHILD = `
const agent = process.argv[1] === 'agent';
if (agent) await import('@studio321/agent/link');
const { decodeFrame, encodeFrame } = await import('@studio321/protocol');
let input = '';
for await (const c of process.stdin) input += c;
const frames = JSON.parse(input).map((h) => Buffer.from(h, 'hex'));
const hex = (v) => JSON.parse(JSON.stringify(v, function (k, x) { const raw = this[k]; return raw instanceof Uint8Array ? { hex: Buffer.from(raw).toString('hex') } : x; }));
const decoded = frames.map((f) => hex(decodeFrame(f)));
const reencoded = decoded.length === 0 ? [] : frames.map((f) => encodeFrame(decodeFrame(f)).toString('hex'));
const { createRequire } = await import('node:module');
const req = createRequire(import.meta.url);
const extract = Object.keys(req.cache).some((k) => k.includes('msgpackr-extract'));
process.stdout.write(JSON.stringify({ decoded, reencoded, extract, env: process.env.${ENV} ?? null }));
`;

interface ChildOut {
  decoded: unknown[];
  reencoded: string[];
  extract: boolean;
  env: string | null;
}

function runChild(side: 'agent' | 'studio', frames: Buffer[], env: NodeJS.ProcessEnv): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, side], {
      cwd: process.cwd(),
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as ChildOut) : reject(new Error(`child ${side} exited ${code}`)),
    );
    child.stdin.end(JSON.stringify(frames.map((f) => f.toString('hex'))));
  });
}

const messages: Message[] = [...Object.values(sampleMessages()), worstCaseOffer(), worstCaseReceipt()];
const frames = messages.map((m) => encodeFrame(m));
const expected = frames.map((f) => plain(decodeFrame(f)));
const baseEnv = { ...process.env };
delete baseEnv[ENV];
const extractInstalled = (() => {
  try {
    createRequire(import.meta.url).resolve('msgpackr-extract');
    return true;
  } catch {
    return false;
  }
})();

t.test('the agent decodes and encodes every frame as studiod does, without the native string decoder', async (t) => {
  const [agent, studio] = await Promise.all([runChild('agent', frames, baseEnv), runChild('studio', frames, baseEnv)]);
  t.equal(agent.extract, false, 'the agent did not load msgpackr-extract');
  t.equal(studio.extract, extractInstalled, 'studiod loads it where it is installed');
  t.same(agent.decoded, expected, 'agent: every frame decodes to the message it was encoded from');
  t.same(studio.decoded, expected, 'studio: the same');
  t.same(agent.reencoded, studio.reencoded, 'the same bytes re-encoded on both sides');
  t.same(
    agent.reencoded,
    frames.map((f) => f.toString('hex')),
    'and they are the frames sent',
  );
  t.equal(agent.env, null, 'the switch is not left in the environment (children of the agent inherit it)');
});

t.test('the switch leaves a value the user set as it was', async (t) => {
  const agent = await runChild('agent', frames.slice(0, 2), { ...baseEnv, [ENV]: 'false' });
  t.equal(agent.env, 'false', 'restored');
  t.equal(agent.extract, false, 'the agent still decodes strings in JavaScript');
  t.same(agent.decoded, expected.slice(0, 2), 'and decodes the frames');
});
