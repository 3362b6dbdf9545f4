/**
 * `field-agent eject <card>`: unmount a card, only once it is safe to format.
 *
 *  1. find the card (id, or a unique label) in the state DB;
 *  2. compute safe-to-format now (status.ts); not safe → AGENT_EJECT_NOT_SAFE with
 *     the reason, and the card stays mounted;
 *  3. find it among the mounted volumes, at the mount point it was read from and
 *     on the same device (st_dev) — a different disk mounted there since is not
 *     touched → AGENT_CARD_NOT_MOUNTED;
 *  4. unmount: `udisksctl unmount -b <device>` (desktop Linux, no root needed),
 *     else `umount <mount point>`; macOS `diskutil eject <mount point>`;
 *  5. check the mount point is gone from the volume list → AGENT_EJECT_FAILED if not.
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { AGENT_CODES, AgentError } from '../errors.js';
import { findCard, type AgentState } from '../state/agent-state.js';
import { summariseCard } from '../state/status.js';
import type { VolumeSource } from '../card/volume-source.js';

/** AGENT_EJECT_NOT_SAFE, AGENT_CARD_NOT_MOUNTED or AGENT_EJECT_FAILED (its own class for its name in logs). */
export class EjectError extends AgentError {}

/** Runs a command; resolves with its output, rejects when it fails. The seam tests replace. */
export type CommandRunner = (cmd: string, args: string[]) => Promise<{ stdout: string; stderr: string }>;

export const runCommand: CommandRunner = (cmd, args) =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr }));
      else resolve({ stdout, stderr });
    });
  });

export interface EjectOptions {
  state: AgentState;
  copiesNeeded: number;
  volumes: VolumeSource;
  run?: CommandRunner;
  platform?: NodeJS.Platform;
}

export interface EjectResult {
  card: string;
  label: string;
  mountPoint: string;
  /** The command that unmounted it. */
  method: string;
}

function stderrOf(err: unknown): string {
  const s = (err as { stderr?: unknown }).stderr;
  return typeof s === 'string' && s.trim() !== '' ? s.trim() : err instanceof Error ? err.message : String(err);
}

export async function ejectCard(ref: string, o: EjectOptions): Promise<EjectResult> {
  const run = o.run ?? runCommand;
  const platform = o.platform ?? process.platform;
  const card = await findCard(o.state, ref);
  if (card.kind === 'hot-folder') {
    throw new EjectError(
      AGENT_CODES.cardNotMounted,
      `${card.label} is a hot folder, not a card: there is nothing to eject.`,
    );
  }
  const summary = await summariseCard(o.state, card, o.copiesNeeded);
  if (!summary.safeToFormat.safe) {
    throw new EjectError(
      AGENT_CODES.ejectNotSafe,
      `${card.label} (${card.id}) is not safe to format yet: ${summary.safeToFormat.reason.replace(/\.?$/, '.')} It stays mounted; keep the card.`,
      { detail: { card: card.id } },
    );
  }
  const mounted = (await o.volumes.list()).find((v) => v.mountPoint === card.source);
  const dev = mounted
    ? await stat(card.source).then(
        (s) => s.dev,
        () => undefined,
      )
    : undefined;
  if (!mounted || (card.dev !== undefined && dev !== card.dev)) {
    throw new EjectError(
      AGENT_CODES.cardNotMounted,
      `${card.label} (${card.id}) is not mounted at ${card.source} any more: it may already be ejected.`,
      { detail: { card: card.id } },
    );
  }

  const attempts: [string, string[]][] =
    platform === 'darwin'
      ? [['diskutil', ['eject', mounted.mountPoint]]]
      : [
          ...(mounted.device.startsWith('/dev/')
            ? [['udisksctl', ['unmount', '--no-user-interaction', '-b', mounted.device]] as [string, string[]]]
            : []),
          ['umount', [mounted.mountPoint]],
        ];
  const failures: string[] = [];
  for (const [cmd, args] of attempts) {
    try {
      await run(cmd, args);
    } catch (err) {
      failures.push(`${cmd}: ${stderrOf(err)}`);
      continue;
    }
    const still = (await o.volumes.list()).some(
      (v) => v.mountPoint === mounted.mountPoint && v.device === mounted.device,
    );
    if (!still) return { card: card.id, label: card.label, mountPoint: mounted.mountPoint, method: cmd };
    failures.push(`${cmd}: still mounted`);
  }
  throw new EjectError(
    AGENT_CODES.ejectFailed,
    `${card.label} could not be unmounted (${failures.join('; ')}). Close any program using it, then try again.`,
    { retryable: true, detail: { card: card.id } },
  );
}
