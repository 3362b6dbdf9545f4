/**
 * `npm run screenshot`: docs/status-page.png, taken of the real status page on real data.
 *
 *   node scripts/dist/status-page-screenshot.js [--out docs/status-page.png]
 *
 * In a temporary folder: sample cards, a real S3 server and studiod (as `npm run demo`),
 * a field agent paired with it, two cards ingested (one with a zero-byte file, so a
 * warning naming its file), then a real `field-agent run` with a hot folder that three
 * tethered shots land in. Once the running agent has synced everything to the studio,
 * Debian's Chromium opens the page with the agent's own token and the full page is
 * written as PNG. Every process it started is stopped by its pid at the end.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BINS, DemoRun, repoRoot } from './lib/demo-run.js';
import { launchChromium } from './lib/chromium.js';

interface PageStatus {
  cards: Array<{ id: string; kind?: string; files: number; verifiedFiles: number }>;
  queue: { files: number };
  link: { state: string };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { out: { type: 'string', default: join(repoRoot(), 'docs', 'status-page.png') } },
    strict: true,
  });
  const out = resolve(values.out);
  const dir = await mkdtemp(join(tmpdir(), 's321-screenshot-'));
  const say = (l: string): void => void process.stdout.write(`${l}\n`);
  const demo = new DemoRun({ dir, rawSize: 512 * 1024, say });
  let agent: ReturnType<typeof spawn> | undefined;
  try {
    await demo.prepare();
    await demo.makeCards();
    await demo.startS3();
    await demo.startStudiod();
    await demo.pair();
    const hot = join(dir, 'tether');
    await mkdir(hot);
    await writeFile(
      join(demo.paths.agent, 'field-agent.json'),
      JSON.stringify({ statusPort: 0, tray: false, watchVolumes: false, hotFolders: [hot], hotFolderStableMs: 300 }),
    );
    const [eos, slot1, bodyA] = [demo.cards[0], demo.cards[1], demo.cards[3]];
    if (eos === undefined || slot1 === undefined || bodyA === undefined) throw new Error('sample cards missing');
    // A zero-byte file (often a failed camera write): the page names it in a warning.
    await writeFile(join(eos.dir, 'DCIM', 'IMG_9999.CR3'), '');
    for (const [card, label] of [
      [eos, 'EOS_DIGITAL'],
      [slot1, 'A7IV-SLOT1'],
    ] as const) {
      const r = await demo.agent(['ingest', card.dir, '--shoot', demo.shoot, '--card-label', label]);
      say(`ingest ${label}: exit ${r.code}; ${r.stdout.trim().split('\n')[0] ?? ''}`);
    }

    const env: NodeJS.ProcessEnv = { ...process.env, FIELD_AGENT_HOME: demo.paths.agent };
    delete env['DISPLAY'];
    delete env['WAYLAND_DISPLAY'];
    const child = spawn(process.execPath, [BINS.agent, 'run', '--data-dir', demo.paths.agent], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
    agent = child;
    let log = '';
    await new Promise<void>((ok, fail) => {
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        log += d;
        if (log.includes('"event":"started"')) ok();
      });
      child.once('exit', (code) => fail(new Error(`field-agent run exited ${code}:\n${log}`)));
    });
    say('field-agent run is up');
    const shots = bodyA.files.filter((f) => f.path.endsWith('.CR3') || f.path.endsWith('.JPG')).slice(0, 3);
    for (const f of shots) await copyFile(join(bodyA.dir, f.path), join(hot, f.path.split('/').pop() ?? f.path));

    const url = new URL((await readFile(join(demo.paths.agent, 'status-url'), 'utf8')).trim());
    const auth = { Authorization: `Bearer ${url.searchParams.get('token') ?? ''}` };
    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = (await (await fetch(`${url.origin}/api/status`, { headers: auth })).json()) as PageStatus;
      const tether = s.cards.find((c) => c.kind === 'hot-folder');
      if (s.link.state === 'connected' && s.queue.files === 0 && tether?.verifiedFiles === shots.length) break;
      if (Date.now() > deadline) throw new Error(`the agent did not settle: ${JSON.stringify(s)}\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    say('synced to the studio; opening the page');

    const browser = await launchChromium({ width: 900, height: 640 });
    try {
      const tab = await browser.context.newPage();
      await tab.goto(url.href);
      await tab.locator('#live[data-live="true"]').waitFor();
      await tab.locator('#link[data-state="connected"]').waitFor();
      await tab.locator('.card').nth(2).waitFor();
      await writeFile(out, await tab.screenshot({ fullPage: true }));
      say(`wrote ${out}`);
    } finally {
      await browser.close();
    }
  } finally {
    if (agent !== undefined && agent.exitCode === null) {
      const exited = new Promise((r) => agent?.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    await demo.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
