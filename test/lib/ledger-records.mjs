// A verified copy record on one of the ledger tests' four targets (mirror, raid, cloud-east,
// cloud-west: two kinds of disk, a hot and an archive cloud class, the clouds offsite). Shared by
// test/studiod/ledger/*.test.ts and their child processes (test/lib/recount-child.mjs).

/** @returns {import('@studio321/studiod').CopyRecord} */
export function copy(hash, target, size, path = `p/${hash}`) {
  const cloud = target.startsWith('cloud');
  return {
    hash,
    target,
    kind: cloud ? 'cloud' : 'studio',
    path,
    size,
    device: `${target}-dev`,
    media:
      target === 'mirror' ? 'hdd' : target === 'raid' ? 'raid-hdd' : target === 'cloud-east' ? 'cloud-ssd' : 'tape',
    location: cloud ? target : 'studio',
    offsite: cloud,
    method: 'readback-blake3',
    verifiedAt: 1000,
  };
}
