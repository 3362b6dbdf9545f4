/**
 * What the tray says: one state (idle / offloading / syncing / attention) and
 * a one-line summary, computed from a status snapshot. Pure, so it is tested
 * without a desktop.
 *
 *  - attention: an error in the last 10 minutes, or a card removed before it
 *    was safe to format;
 *  - offloading: a present card with bytes still to copy;
 *  - syncing: files queued for the studio and the link connected;
 *  - idle: otherwise (including "waiting for the studio" while offline).
 */
import type { LiveSnapshot } from './snapshot.js';
import type { TrayState } from './tray-icons.js';

export const ATTENTION_WINDOW_MS = 10 * 60 * 1000;

export interface TraySummary {
  state: TrayState;
  /** Short title (macOS shows it next to the icon). */
  title: string;
  /** One line for the menu and the tooltip. */
  summary: string;
}

function eta(sec: number | null): string {
  if (sec === null || !Number.isFinite(sec)) return '';
  const s = Math.max(0, Math.round(sec));
  const m = Math.floor(s / 60);
  return m >= 60
    ? ` · ETA ${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}`
    : ` · ETA ${m}:${String(s % 60).padStart(2, '0')}`;
}

export function summariseForTray(s: LiveSnapshot, now: Date = new Date()): TraySummary {
  const recentError = s.errors.find((e) => now.getTime() - Date.parse(e.at) < ATTENTION_WINDOW_MS);
  const pulledEarly = s.cards.find((c) => c.present === false && !c.safeToFormat && c.copiedFiles < c.files);
  const offloading = s.cards.filter((c) => c.present !== false && c.copiedBytes < c.bytes);
  // Only removable cards have a format verdict: a hot folder or a folder is never "unsafe".
  const cards = s.cards.filter((c) => c.kind === undefined || c.kind === 'card');
  const unsafe = cards.filter((c) => !c.safeToFormat).length;
  const safeNote =
    cards.length === 0
      ? 'No cards yet'
      : unsafe === 0
        ? 'All cards safe to format'
        : `${unsafe} card${unsafe === 1 ? '' : 's'} not yet safe to format`;

  if (pulledEarly) {
    return {
      state: 'attention',
      title: 'Card removed',
      summary: `${pulledEarly.label} was removed before its offload finished: insert it again`,
    };
  }
  if (recentError) {
    return { state: 'attention', title: 'Needs attention', summary: `${recentError.code}: ${recentError.message}` };
  }
  if (offloading.length > 0) {
    const bytes = offloading.reduce((a, c) => a + c.bytes, 0);
    const copied = offloading.reduce((a, c) => a + c.copiedBytes, 0);
    const pct = bytes > 0 ? Math.floor((100 * copied) / bytes) : 0;
    const first = offloading[0]!;
    const what = offloading.length === 1 ? first.label : `${offloading.length} cards`;
    const slowest = Math.max(...offloading.map((c) => c.etaSeconds ?? -1));
    return {
      state: 'offloading',
      title: `${pct}%`,
      summary: `Offloading ${what} ${pct}%${slowest >= 0 ? eta(slowest) : ''}`,
    };
  }
  if (s.queue.files > 0 && s.link.state === 'connected') {
    return {
      state: 'syncing',
      title: 'Syncing',
      summary: `Syncing ${s.queue.files} files to the studio · ${safeNote}`,
    };
  }
  const waiting = s.queue.files > 0 ? ` · ${s.queue.files} files wait for the studio (${s.link.state})` : '';
  return { state: 'idle', title: '', summary: `${safeNote}${waiting}` };
}
