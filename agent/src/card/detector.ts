/**
 * Does this folder look like a camera card?
 *
 * Layouts recognised (names compared case-insensitively: FAT/exFAT cards may be
 * mounted with any case): DCIM/ (DCF stills, GoPro), PRIVATE/M4ROOT (Sony XAVC),
 * PRIVATE/AVCHD, XDROOT (Sony XDCAM), CLIP (Sony/Canon cinema).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export type CameraLayout = 'DCIM' | 'PRIVATE/M4ROOT' | 'PRIVATE/AVCHD' | 'XDROOT' | 'CLIP';

async function dirNames(dir: string): Promise<Map<string, string>> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return new Map(entries.filter((e) => e.isDirectory()).map((e) => [e.name.toUpperCase(), e.name]));
  } catch {
    return new Map();
  }
}

/** The camera layouts found at the root of `root` (empty: not a card). */
export async function detectCameraLayouts(root: string): Promise<CameraLayout[]> {
  const top = await dirNames(root);
  const found: CameraLayout[] = [];
  if (top.has('DCIM')) found.push('DCIM');
  const priv = top.get('PRIVATE');
  if (priv !== undefined) {
    const sub = await dirNames(join(root, priv));
    if (sub.has('M4ROOT')) found.push('PRIVATE/M4ROOT');
    if (sub.has('AVCHD')) found.push('PRIVATE/AVCHD');
  }
  if (top.has('XDROOT')) found.push('XDROOT');
  if (top.has('CLIP')) found.push('CLIP');
  return found;
}
