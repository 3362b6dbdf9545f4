import t from 'tap';
import { DEFAULT_POLICY, evaluatePolicy, validatePolicy, type CopyFact } from '@studio321/protocol';

const copy = (
  target: string,
  device: string,
  media: string,
  location: string,
  offsite: boolean,
  verified = true,
): CopyFact => ({
  target,
  device,
  media,
  location,
  offsite,
  verified,
});
const laptop = copy('laptop', 'nvme-laptop', 'ssd', 'field', false);
const fieldDrive = copy('field-drive', 'usb-t7', 'ssd', 'field', false);
const mirror = copy('mirror', 'mirror-md0', 'hdd', 'studio', false);
const raid = copy('raid', 'raid-6', 'raid-hdd', 'studio', false);
const cloudSsd = copy('cloud-hot', 's3-east', 'cloud-ssd', 'cloud-east', true);
const tape = copy('cloud-cold', 's3-west-glacier', 'tape', 'cloud-west', true);

t.test('default policy is 3-2-1', async (t) => {
  t.same(DEFAULT_POLICY, { copies: 3, media: 2, offsite: 1 });
});

t.test('verdict table', async (t) => {
  const cases: {
    name: string;
    copies: CopyFact[];
    policy?: { copies: number; media: number; offsite: number };
    want: {
      compliant: boolean;
      copies: number;
      media: number;
      offsite: number;
      missing: { copies: number; media: number; offsite: number };
      reasons: RegExp[];
    };
  }[] = [
    {
      name: 'no copies',
      copies: [],
      want: {
        compliant: false,
        copies: 0,
        media: 0,
        offsite: 0,
        missing: { copies: 3, media: 2, offsite: 1 },
        reasons: [
          /needs 3 more verified copies/,
          /needs 2 more copies on another kind of media/,
          /needs 1 more copy in another location \(has 0 offsite/,
        ],
      },
    },
    {
      name: 'studio only',
      copies: [mirror, raid],
      want: {
        compliant: false,
        copies: 2,
        media: 2,
        offsite: 0,
        missing: { copies: 1, media: 0, offsite: 1 },
        reasons: [
          /needs 1 more verified copy on another device \(has 2 of 3\)/,
          /needs 1 more copy in another location/,
        ],
      },
    },
    {
      name: 'full 3-2-1',
      copies: [mirror, raid, cloudSsd],
      want: {
        compliant: true,
        copies: 3,
        media: 3,
        offsite: 1,
        missing: { copies: 0, media: 0, offsite: 0 },
        reasons: [],
      },
    },
    {
      name: 'everything',
      copies: [laptop, fieldDrive, mirror, raid, cloudSsd, tape],
      want: {
        compliant: true,
        copies: 6,
        media: 5,
        offsite: 2,
        missing: { copies: 0, media: 0, offsite: 0 },
        reasons: [],
      },
    },
    {
      name: 'two folders on one disk count once',
      copies: [laptop, { ...laptop, target: 'laptop-backup-folder' }, cloudSsd],
      want: {
        compliant: false,
        copies: 2,
        media: 2,
        offsite: 1,
        missing: { copies: 1, media: 0, offsite: 0 },
        reasons: [/has 2 of 3/],
      },
    },
    {
      name: 'unverified copies do not count',
      copies: [mirror, { ...raid, verified: false }, { ...cloudSsd, verified: false }],
      want: {
        compliant: false,
        copies: 1,
        media: 1,
        offsite: 0,
        missing: { copies: 2, media: 1, offsite: 1 },
        reasons: [/has 1 of 3; 2 not yet verified/, /has 1 of 2: hdd/, /has 0 offsite/],
      },
    },
    {
      name: 'one kind of media only',
      copies: [laptop, fieldDrive, { ...cloudSsd, media: 'ssd' }],
      want: {
        compliant: false,
        copies: 3,
        media: 1,
        offsite: 1,
        missing: { copies: 0, media: 1, offsite: 0 },
        reasons: [/needs 1 more copy on another kind of media \(has 1 of 2: ssd\)/],
      },
    },
    {
      name: 'custom policy 2-1-0 (safe to format)',
      copies: [laptop, fieldDrive],
      policy: { copies: 2, media: 1, offsite: 0 },
      want: {
        compliant: true,
        copies: 2,
        media: 1,
        offsite: 0,
        missing: { copies: 0, media: 0, offsite: 0 },
        reasons: [],
      },
    },
    {
      name: 'custom policy 4-2-2',
      copies: [mirror, raid, cloudSsd, tape],
      policy: { copies: 4, media: 2, offsite: 2 },
      want: {
        compliant: true,
        copies: 4,
        media: 4,
        offsite: 2,
        missing: { copies: 0, media: 0, offsite: 0 },
        reasons: [],
      },
    },
    {
      name: 'custom policy 4-2-2 short of offsite',
      copies: [mirror, raid, laptop, tape],
      policy: { copies: 4, media: 2, offsite: 2 },
      want: {
        compliant: false,
        copies: 4,
        media: 4,
        offsite: 1,
        missing: { copies: 0, media: 0, offsite: 1 },
        reasons: [/needs 1 more copy in another location \(has 1 offsite of 2\)/],
      },
    },
  ];
  for (const c of cases) {
    const v = evaluatePolicy(c.copies, c.policy);
    const { reasons, ...rest } = c.want;
    t.match(v, rest, c.name);
    t.equal(v.reasons.length, reasons.length, `${c.name}: reason count`);
    for (const [i, re] of reasons.entries()) t.match(v.reasons[i], re, `${c.name}: reason ${i}`);
  }
});

t.test('input is not modified (pure)', async (t) => {
  const input = [mirror, { ...raid, verified: false }];
  const snapshot = JSON.stringify(input);
  evaluatePolicy(input);
  t.equal(JSON.stringify(input), snapshot);
});

t.test('validatePolicy', async (t) => {
  t.same(validatePolicy({ copies: 3, media: 2, offsite: 1 }), DEFAULT_POLICY);
  t.same(validatePolicy({ copies: 2, media: 1, offsite: 0 }), { copies: 2, media: 1, offsite: 0 });
  const bad: unknown[] = [
    null,
    undefined,
    3,
    'x',
    [],
    {},
    { copies: 3, media: 2 },
    { copies: 0, media: 0, offsite: 0 },
    { copies: 3, media: 2, offsite: -1 },
    { copies: 3.5, media: 2, offsite: 1 },
    { copies: '3', media: 2, offsite: 1 },
    { copies: 3, media: 2, offsite: 1, extra: true },
    { copies: 2, media: 3, offsite: 1 },
    { copies: 1, media: 1, offsite: 2 },
    { copies: 1e9, media: 1, offsite: 0 },
    { copies: Number.NaN, media: 1, offsite: 0 },
  ];
  for (const p of bad) t.throws(() => validatePolicy(p), TypeError, JSON.stringify(p) ?? String(p));
});
