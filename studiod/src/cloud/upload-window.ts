/**
 * Upload windows of a cloud target: when the forwarder may upload, and at
 * what rate. Pure schedule math on an instant (epoch ms) — no timers, no I/O;
 * the forwarder asks `at(now)` before each part and arms one timer to
 * `nextChange(now)`.
 *
 * Times are wall-clock times in the target's `timeZone` (default: the studio
 * server's own zone). A window with `from` > `to` crosses midnight and belongs
 * to the day it starts on ("fri 19:00-07:00" runs into Saturday morning). A
 * window without `from`/`to` is the whole day. When several windows are open
 * at once, the first listed gives the bandwidth. On a daylight-saving day the
 * state follows the wall clock: a boundary inside the skipped hour takes
 * effect when the clocks jump, one inside the repeated hour applies to both passes.
 */
import { didYouMean } from '@studio321/protocol';
import { CloudError, CLOUD_CODES } from './errors.js';

/** One window as written in the config. */
export interface UploadWindowConfig {
  /** `mon-fri`, `sat,sun`, `mon,wed-fri`; absent: every day. */
  days?: string;
  /** `HH:MM` (24 h); with `to`, or neither (the whole day). */
  from?: string;
  /** `HH:MM`, or `24:00`; earlier than `from`: the window ends the next day. */
  to?: string;
  /** `20MiB/s`, `5MB/s`, `unlimited`; absent: the target's `bandwidthBytesPerSec`. */
  bandwidth?: string;
}

/** What the schedule allows at one instant. */
export interface WindowState {
  open: boolean;
  /** The open window's rate limit (0: unlimited); undefined: the target's own limit. */
  bytesPerSec: number | undefined;
}

interface Window {
  /** days[0] is Sunday, as Date.getUTCDay(). */
  days: boolean[];
  /** Minutes after local midnight; from === 0 && to === 1440 for a whole day. */
  from: number;
  to: number;
  bytesPerSec: number | undefined;
}

const WINDOW_KEYS = ['days', 'from', 'to', 'bandwidth'] as const;
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const LONG_DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
const TIME = /^([01]\d|2[0-3]):([0-5]\d)$/u;
const BANDWIDTH = /^(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB|KiB|MiB|GiB)\/s$/u;
const UNIT: Record<string, number> = {
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};
const DAY_MS = 86_400_000;
/** Far enough ahead to see every weekday, plus a day for windows that cross midnight. */
const HORIZON_DAYS = 9;

/** The config error for one key of a window; `path` is the key path, e.g. `cloud[0].windows[1].days`. */
function invalid(target: string, path: string, what: string): CloudError {
  return new CloudError(
    CLOUD_CODES.configInvalid,
    `Cloud target "${target}": field "${path}" ${what}. Fix it in the studiod config file.`,
    { detail: { target, field: path } },
  );
}

function dayIndex(word: string, target: string, path: string): number {
  const w = word.trim().toLowerCase();
  const short = (DAY_NAMES as readonly string[]).indexOf(w);
  if (short >= 0) return short;
  const long = (LONG_DAY_NAMES as readonly string[]).indexOf(w);
  if (long >= 0) return long;
  throw invalid(
    target,
    path,
    `names an unknown day "${word}"${didYouMean(w, [...DAY_NAMES, ...LONG_DAY_NAMES]) || ' (mon, tue, wed, thu, fri, sat, sun)'}`,
  );
}

/** `mon-fri`, `sat,sun`, `fri-mon` (a range may wrap past Sunday). */
function parseDays(v: unknown, target: string, path: string): boolean[] {
  if (v === undefined) return DAY_NAMES.map(() => true);
  if (typeof v !== 'string' || v.trim() === '') throw invalid(target, path, 'must be days like "mon-fri" or "sat,sun"');
  const days = DAY_NAMES.map(() => false);
  for (const item of v.split(',')) {
    const ends = item.split('-');
    if (ends.length > 2) throw invalid(target, path, `has a bad day range "${item.trim()}" (e.g. "mon-fri")`);
    const a = dayIndex(ends[0] ?? '', target, path);
    const b = ends.length === 2 ? dayIndex(ends[1] ?? '', target, path) : a;
    for (let d = a; ; d = (d + 1) % 7) {
      days[d] = true;
      if (d === b) break;
    }
  }
  return days;
}

function parseTime(v: unknown, target: string, path: string, allow24: boolean): number {
  if (typeof v === 'string') {
    if (allow24 && v === '24:00') return 1440;
    const m = TIME.exec(v);
    if (m !== null) return Number(m[1]) * 60 + Number(m[2]);
  }
  throw invalid(target, path, `must be a time "HH:MM" from 00:00 to ${allow24 ? '24:00' : '23:59'}`);
}

/** `20MiB/s` → 20971520; `unlimited` → 0. Decimal (kB, MB, GB) and binary (KiB, MiB, GiB) units. */
export function parseBandwidth(v: string): number | undefined {
  if (v === 'unlimited') return 0;
  const m = BANDWIDTH.exec(v.trim());
  if (m === null) return undefined;
  const n = Math.round(Number(m[1]) * (UNIT[m[2] as string] as number));
  return n > 0 ? n : undefined;
}

/** A zone name the runtime knows, or throws RangeError. */
function checkedZone(zone: string): string {
  return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
}

/** Wall-clock fields of an instant in one zone. */
interface Wall {
  y: number;
  mo: number;
  d: number;
  /** Minutes after midnight. */
  min: number;
  /** 0 = Sunday. */
  wd: number;
  /** Wall time minus UTC, in ms. */
  offset: number;
}

export class UploadSchedule {
  readonly timeZone: string;
  readonly #windows: Window[];
  readonly #fmt: Intl.DateTimeFormat;
  /** The wall minutes where some window starts or ends (and midnight). */
  readonly #edges: number[];

  private constructor(windows: Window[], timeZone: string) {
    this.#windows = windows;
    this.timeZone = timeZone;
    this.#fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    this.#edges = [...new Set([0, ...windows.flatMap((w) => [w.from, w.to % 1440])])];
  }

  /**
   * Validates a target's `windows` (and `timeZone`); throws CLOUD_CONFIG_INVALID naming the key
   * path (`cloud[0].windows[1].from`). Absent windows: null (always open).
   */
  static parse(windows: unknown, timeZone: unknown, target: string, path = 'windows'): UploadSchedule | null {
    const base = path.endsWith('windows') ? path.slice(0, -'windows'.length) : '';
    let zone: string;
    try {
      if (timeZone !== undefined && typeof timeZone !== 'string') throw new RangeError('not a string');
      zone = checkedZone(timeZone ?? new Intl.DateTimeFormat().resolvedOptions().timeZone);
    } catch {
      throw invalid(target, `${base}timeZone`, 'must be an IANA time zone name such as "Europe/Berlin"');
    }
    if (windows === undefined) return null;
    if (!Array.isArray(windows) || windows.length === 0)
      throw invalid(
        target,
        path,
        'must be a non-empty list of windows like { "days": "mon-fri", "from": "19:00", "to": "07:00" }',
      );
    const parsed = windows.map((w: unknown, i): Window => {
      const at = `${path}[${i}]`;
      if (w === null || typeof w !== 'object' || Array.isArray(w))
        throw invalid(target, at, 'must be an object { "days", "from", "to", "bandwidth" }');
      const o = w as Record<string, unknown>;
      for (const key of Object.keys(o))
        if (!(WINDOW_KEYS as readonly string[]).includes(key))
          throw invalid(
            target,
            `${at}.${key}`,
            `is not a known option${didYouMean(key, WINDOW_KEYS) || ' (days, from, to, bandwidth)'}`,
          );
      const days = parseDays(o.days, target, `${at}.days`);
      if ((o.from === undefined) !== (o.to === undefined))
        throw invalid(
          target,
          `${at}.${o.from === undefined ? 'from' : 'to'}`,
          'is required with the other (or leave both out: the whole day)',
        );
      const from = o.from === undefined ? 0 : parseTime(o.from, target, `${at}.from`, false);
      const to = o.to === undefined ? 1440 : parseTime(o.to, target, `${at}.to`, true);
      if (from === to) throw invalid(target, `${at}.to`, 'equals "from" (leave both out for the whole day)');
      let bytesPerSec: number | undefined;
      if (o.bandwidth !== undefined) {
        bytesPerSec = typeof o.bandwidth === 'string' ? parseBandwidth(o.bandwidth) : undefined;
        if (bytesPerSec === undefined)
          throw invalid(target, `${at}.bandwidth`, 'must be a rate like "20MiB/s", "500kB/s" or "unlimited"');
      }
      return { days, from, to: to === 1440 && from > 0 ? 0 : to, bytesPerSec };
    });
    return new UploadSchedule(parsed, zone);
  }

  #wall(t: number): Wall {
    const p: Record<string, number> = {};
    for (const part of this.#fmt.formatToParts(t)) if (part.type !== 'literal') p[part.type] = Number(part.value);
    const y = p.year as number;
    const mo = (p.month as number) - 1;
    const d = p.day as number;
    const min = (p.hour as number) * 60 + (p.minute as number);
    const asUtc = Date.UTC(y, mo, d, 0, min, p.second as number);
    return {
      y,
      mo,
      d,
      min,
      wd: new Date(Date.UTC(y, mo, d)).getUTCDay(),
      offset: asUtc - (t - (((t % 1000) + 1000) % 1000)),
    };
  }

  /** Whether uploads may run at instant `t`, and at what rate. */
  at(t: number): WindowState {
    const { wd, min } = this.#wall(t);
    const yesterday = (wd + 6) % 7;
    for (const w of this.#windows) {
      const open =
        w.from < w.to
          ? w.days[wd] === true && min >= w.from && min < w.to
          : (w.days[wd] === true && min >= w.from) || (w.days[yesterday] === true && min < w.to);
      if (open) return { open: true, bytesPerSec: w.bytesPerSec };
    }
    return { open: false, bytesPerSec: undefined };
  }

  /**
   * The first instant after `t` where `at()` changes (open/closed or rate), or null when it never does.
   * The state changes only where the wall clock crosses a window edge or jumps (a DST change), so
   * those instants are the candidates, each day in both of its offsets.
   */
  nextChange(t: number): number | null {
    const now = this.at(t);
    const start = this.#wall(t);
    const candidates: number[] = [];
    for (let k = 0; k <= HORIZON_DAYS; k++) {
      const midnightUtc = Date.UTC(start.y, start.mo, start.d + k);
      const lo = midnightUtc - DAY_MS;
      const hi = midnightUtc + 2 * DAY_MS;
      const offLo = this.#wall(lo).offset;
      const offHi = this.#wall(hi).offset;
      for (const m of this.#edges)
        for (const off of new Set([offLo, offHi])) candidates.push(midnightUtc + m * 60_000 - off);
      if (offLo !== offHi) candidates.push(this.#transition(lo, hi, offLo));
    }
    candidates.sort((a, b) => a - b);
    for (const c of candidates) {
      if (c <= t) continue;
      const s = this.at(c);
      if (s.open !== now.open || s.bytesPerSec !== now.bytesPerSec) return c;
    }
    return null;
  }

  /** `t` itself when open, else when the next window opens (null: never). */
  nextOpen(t: number): number | null {
    let at: number | null = t;
    for (let i = 0; at !== null && i < 64; i++) {
      if (this.at(at).open) return at;
      at = this.nextChange(at);
    }
    return null;
  }

  /** When the open window (and any window joined to it) closes, or null when it never does. */
  closesAt(t: number): number | null {
    let at: number | null = t;
    for (let i = 0; at !== null && i < 64; i++) {
      if (!this.at(at).open) return at;
      at = this.nextChange(at);
    }
    return null;
  }

  /** The wall time of `t` for people: `Mon 2026-12-07 19:00`. */
  local(t: number): string {
    const w = this.#wall(t);
    const pad = (n: number): string => String(n).padStart(2, '0');
    const name = (DAY_NAMES[w.wd] as string).replace(/^./u, (c) => c.toUpperCase());
    return `${name} ${w.y}-${pad(w.mo + 1)}-${pad(w.d)} ${pad(Math.floor(w.min / 60))}:${pad(w.min % 60)}`;
  }

  /** The instant in (lo, hi] where the offset stops being `offLo` (to the minute; DST changes fall on whole minutes). */
  #transition(lo: number, hi: number, offLo: number): number {
    let a = Math.floor(lo / 60_000);
    let b = Math.ceil(hi / 60_000);
    while (b - a > 1) {
      const mid = Math.floor((a + b) / 2);
      if (this.#wall(mid * 60_000).offset === offLo) a = mid;
      else b = mid;
    }
    return b * 60_000;
  }
}

/** A target's window as `studioctl status` shows it (null there: no windows, always open). */
export interface UploadWindowStatus {
  open: boolean;
  /** The rate in force now (0: unlimited). */
  bytesPerSec: number;
  timeZone: string;
  /** When closed: when the next window opens (ISO and the zone's wall time); null when open or never. */
  nextOpen: { at: string; local: string } | null;
  /** When open: when uploads stop next; null when closed or never. */
  closesAt: { at: string; local: string } | null;
}

export function windowStatus(schedule: UploadSchedule, t: number, baseBytesPerSec: number): UploadWindowStatus {
  const now = schedule.at(t);
  const when = (x: number | null): { at: string; local: string } | null =>
    x === null ? null : { at: new Date(x).toISOString(), local: schedule.local(x) };
  return {
    open: now.open,
    bytesPerSec: now.open ? (now.bytesPerSec ?? baseBytesPerSec) : 0,
    timeZone: schedule.timeZone,
    nextOpen: now.open ? null : when(schedule.nextOpen(t)),
    closesAt: now.open ? when(schedule.closesAt(t)) : null,
  };
}
