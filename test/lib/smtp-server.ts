/** The SMTP server child (smtp-child.mjs): its port and the messages it received. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'smtp-child.mjs');

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  subject: string;
}

export class SmtpServerProcess {
  port = 0;
  readonly mails: ReceivedMail[] = [];
  #child: ChildProcess | undefined;

  async start(): Promise<void> {
    const child = spawn(process.execPath, [CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#child = child;
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    this.port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`smtp-server exited with ${code} before listening`)));
      lines.on('line', (line) => {
        const m = JSON.parse(line) as { port?: number } & Partial<ReceivedMail>;
        if (m.port !== undefined) resolve(m.port);
        else {
          const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/im.exec(m.raw ?? '')?.[1]?.replace(/\r?\n[ \t]/g, ' ') ?? '';
          this.mails.push({ from: m.from ?? '', to: m.to ?? [], raw: m.raw ?? '', subject });
        }
      });
    });
  }

  async close(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  }
}
