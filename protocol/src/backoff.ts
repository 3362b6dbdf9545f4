/**
 * The one retry delay of the system (agent reconnects, cloud uploads):
 * exponential backoff with "equal jitter" — half the capped exponential delay
 * plus a random share of the other half, so it is never zero, never above the
 * cap, and many clients retrying at once spread out.
 *
 * `attempt` counts from 0 (first retry waits ~baseMs).
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(cap / 2 + (random() * cap) / 2);
}
