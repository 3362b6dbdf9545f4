/**
 * Progress of a long copy (an offload, a restore): bytes, files, speed and ETA.
 *
 * Speed is measured over a sliding window (the last ~5 s), so a slow start or a
 * pause does not distort the ETA for long. The clock is injectable for tests.
 */
import { formatBytes } from './format.js';

export interface ProgressSnapshot {
  bytes: number;
  totalBytes: number;
  files: number;
  totalFiles: number;
  /** Bytes per second over the window (0 until measurable). */
  bytesPerSec: number;
  /** Seconds left at the current speed, undefined while unknown. */
  etaSec: number | undefined;
  elapsedSec: number;
}

const WINDOW_MS = 5000;

export class ProgressTracker {
  totalBytes: number;
  totalFiles: number;
  #bytes = 0;
  #files = 0;
  #now: () => number;
  #start: number;
  #samples: Array<{ t: number; bytes: number }> = [];

  constructor(opts: { totalBytes: number; totalFiles: number; now?: () => number }) {
    this.totalBytes = opts.totalBytes;
    this.totalFiles = opts.totalFiles;
    this.#now = opts.now ?? (() => performance.now());
    this.#start = this.#now();
    this.#samples.push({ t: this.#start, bytes: 0 });
  }

  addBytes(n: number): void {
    this.#bytes += n;
    const t = this.#now();
    this.#samples.push({ t, bytes: this.#bytes });
    while (this.#samples.length > 2 && (this.#samples[1]?.t ?? t) < t - WINDOW_MS) this.#samples.shift();
  }

  /** A file finished (copied, found already stored, or failed); `skippedBytes` counts bytes not read. */
  fileDone(skippedBytes = 0): void {
    this.#files += 1;
    if (skippedBytes > 0) this.totalBytes = Math.max(0, this.totalBytes - skippedBytes);
  }

  snapshot(): ProgressSnapshot {
    const t = this.#now();
    const first = this.#samples[0] ?? { t: this.#start, bytes: 0 };
    const span = (t - first.t) / 1000;
    const bytesPerSec = span > 0.2 ? (this.#bytes - first.bytes) / span : 0;
    const left = Math.max(0, this.totalBytes - this.#bytes);
    return {
      bytes: this.#bytes,
      totalBytes: this.totalBytes,
      files: this.#files,
      totalFiles: this.totalFiles,
      bytesPerSec,
      etaSec: bytesPerSec > 0 ? left / bytesPerSec : left === 0 ? 0 : undefined,
      elapsedSec: (t - this.#start) / 1000,
    };
  }
}

export function formatDuration(sec: number | undefined): string {
  if (sec === undefined || !Number.isFinite(sec)) return '--:--';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(r).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** e.g. `1.2 GB / 4.0 GB  37/120 files  182.3 MB/s  ETA 00:16` */
export function formatProgressLine(p: ProgressSnapshot): string {
  const mbs = (p.bytesPerSec / 1e6).toFixed(1);
  return `${formatBytes(p.bytes)} / ${formatBytes(p.totalBytes)}  ${p.files}/${p.totalFiles} files  ${mbs} MB/s  ETA ${formatDuration(p.etaSec)}`;
}
