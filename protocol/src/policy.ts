/**
 * The 3-2-1 policy as a pure function: copies in, verdict and reasons out.
 *
 * Counting rules:
 *  - only verified copies count;
 *  - copies on the same device count once (two folders on one disk are one device);
 *  - media = distinct media classes among the counted copies;
 *  - offsite = counted copies (distinct devices) with offsite = true.
 */

export interface PolicyConfig {
  copies: number;
  media: number;
  offsite: number;
}

export const DEFAULT_POLICY: PolicyConfig = Object.freeze({ copies: 3, media: 2, offsite: 1 });

export interface CopyFact {
  target: string;
  device: string;
  /** e.g. 'ssd', 'hdd', 'raid-hdd', 'cloud-ssd', 'tape' */
  media: string;
  /** e.g. 'field', 'studio', 'cloud-east' */
  location: string;
  offsite: boolean;
  verified: boolean;
  verifiedAt?: string;
  method?: string;
}

export interface PolicyVerdict {
  compliant: boolean;
  /** Verified copies on distinct devices. */
  copies: number;
  media: number;
  offsite: number;
  missing: { copies: number; media: number; offsite: number };
  /** Human sentences, one per unmet rule. Empty when compliant. */
  reasons: string[];
}

const MAX_POLICY_VALUE = 100;

function plural(n: number, one: string, many: string): string {
  return `${n} more ${n === 1 ? one : many}`;
}

export function evaluatePolicy(copies: readonly CopyFact[], policy: PolicyConfig = DEFAULT_POLICY): PolicyVerdict {
  // One entry per device: a device is offsite if any counted copy on it says so,
  // and contributes every media class seen on it (one device normally has one).
  const devices = new Map<string, { offsite: boolean }>();
  const media = new Set<string>();
  for (const c of copies) {
    if (!c.verified) continue;
    const d = devices.get(c.device);
    if (d === undefined) devices.set(c.device, { offsite: c.offsite });
    else d.offsite ||= c.offsite;
    media.add(c.media);
  }
  const counted = devices.size;
  let offsite = 0;
  for (const d of devices.values()) if (d.offsite) offsite++;
  const mediaCount = media.size;

  const missing = {
    copies: Math.max(0, policy.copies - counted),
    media: Math.max(0, policy.media - mediaCount),
    offsite: Math.max(0, policy.offsite - offsite),
  };
  const unverified = copies.filter((c) => !c.verified).length;
  const reasons: string[] = [];
  if (missing.copies > 0) {
    reasons.push(
      `needs ${plural(missing.copies, 'verified copy', 'verified copies')} on another device ` +
        `(has ${counted} of ${policy.copies}` +
        (unverified > 0 ? `; ${unverified} not yet verified` : '') +
        ')',
    );
  }
  if (missing.media > 0) {
    reasons.push(
      `needs ${plural(missing.media, 'copy', 'copies')} on another kind of media ` +
        `(has ${mediaCount} of ${policy.media}${mediaCount > 0 ? `: ${[...media].sort().join(', ')}` : ''})`,
    );
  }
  if (missing.offsite > 0) {
    reasons.push(
      `needs ${plural(missing.offsite, 'copy', 'copies')} in another location ` +
        `(has ${offsite} offsite of ${policy.offsite})`,
    );
  }
  return {
    compliant: reasons.length === 0,
    copies: counted,
    media: mediaCount,
    offsite,
    missing,
    reasons,
  };
}

/** Checks a policy read from config; TypeError names the bad field. */
export function validatePolicy(p: unknown): PolicyConfig {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new TypeError('policy must be an object { copies, media, offsite }');
  }
  const o = p as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'copies' && key !== 'media' && key !== 'offsite') {
      throw new TypeError(`policy has an unknown field "${key}" (allowed: copies, media, offsite)`);
    }
  }
  const field = (name: 'copies' | 'media' | 'offsite', min: number): number => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > MAX_POLICY_VALUE) {
      throw new TypeError(
        `policy.${name} must be an integer from ${min} to ${MAX_POLICY_VALUE} (got ${JSON.stringify(v)})`,
      );
    }
    return v;
  };
  const copies = field('copies', 1);
  const media = field('media', 1);
  const offsite = field('offsite', 0);
  if (media > copies) throw new TypeError(`policy.media (${media}) cannot exceed policy.copies (${copies})`);
  if (offsite > copies) throw new TypeError(`policy.offsite (${offsite}) cannot exceed policy.copies (${copies})`);
  return { copies, media, offsite };
}
