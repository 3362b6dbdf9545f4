/**
 * One exit-status scheme for field-agent, studiod and studioctl, so a script or a monitoring
 * check can read any of them the same way:
 *
 *   0  done, and everything asked about is fine
 *   1  an error: the command could not do its work (the message says why and what to do)
 *   2  usage: an unknown command or flag, or a bad value; nothing was done
 *   3  done, but something is not safe: unprotected assets found, copies lost, a restore incomplete,
 *      another instance already running
 */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  notSafe: 3,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];
