// `field-agent eject`, real: a tmpfs card and a tmpfs field drive mounted in a
// PRIVATE mount namespace (unshare -m, so no other test's agent sees them),
// `field-agent ingest` with laptop store + field drive, then `field-agent
// eject`. A card that is safe to format is unmounted; with a policy it does
// not meet (3 copies) the eject is refused with AGENT_EJECT_NOT_SAFE and the
// card stays mounted; an unknown card gives AGENT_UNKNOWN_CARD.
import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const agentBin = fileURLToPath(new URL('../../../../agent/dist/bin/field-agent.js', import.meta.url));

function sh(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(args[0]!, args.slice(1), { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const canUnshare =
  process.platform === 'linux' &&
  process.getuid?.() === 0 &&
  (await sh(['unshare', '-m', '--propagation', 'private', 'true'])).code === 0;

t.test(
  'eject unmounts a safe card and refuses one that is not safe',
  { skip: !canUnshare && 'needs root and unshare -m (private mount namespace)' },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'eject-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const src = join(dir, 'src');
    await mkdir(join(src, 'DCIM', '100CANON'), { recursive: true });
    for (let i = 1; i <= 3; i++)
      await writeFile(join(src, 'DCIM', '100CANON', `IMG_000${i}.CR3`), randomBytes(200_000));
    for (const d of ['card', 'unsafe-card', 'field']) await mkdir(join(dir, d));
    const data = join(dir, 'data');
    const ok = join(dir, 'ok.json');
    const strict = join(dir, 'strict.json');
    await writeFile(ok, JSON.stringify({ store: join(data, 'store'), fieldDrive: join(dir, 'field', 'studio321') }));
    await writeFile(
      strict,
      JSON.stringify({
        store: join(data, 'store'),
        fieldDrive: join(dir, 'field', 'studio321'),
        policy: { copiesBeforeFormat: 3 },
      }),
    );

    // Everything below runs in one private mount namespace; each step prints one marker line.
    const script = `
    D="$1"; A="$2"; N="$3"
    mount -t tmpfs -o size=16m tmpfs "$D/card" && cp -a "$D/src/." "$D/card/"
    mount -t tmpfs -o size=16m tmpfs "$D/unsafe-card" && cp -a "$D/src/." "$D/unsafe-card/" && echo extra > "$D/unsafe-card/DCIM/100CANON/IMG_0009.CR3"
    # The field drive on a loop device: a physical disk of its own (a tmpfs adds no device).
    truncate -s 32M "$D/field.img" && L=$(losetup -f --show "$D/field.img") || exit 1
    trap 'umount "$D/field" 2>/dev/null; losetup -d "$L"' EXIT
    mkfs.ext4 -q -F -O ^has_journal "$L" && mount "$L" "$D/field" && mkdir "$D/field/studio321"
    "$N" "$A" ingest "$D/card" --card-label EOS_R5 --shoot s --json --data-dir "$D/data" --config "$D/ok.json" >/dev/null 2>"$D/ingest1.err"; echo "ingest1=$?"
    "$N" "$A" ingest "$D/unsafe-card" --card-label SONY --shoot s --json --data-dir "$D/data" --config "$D/strict.json" >/dev/null 2>"$D/ingest2.err"; echo "ingest2=$?"
    "$N" "$A" eject SONY --json --data-dir "$D/data" --config "$D/strict.json" 2>&1; echo "eject-unsafe=$?"
    grep -q " $D/unsafe-card " /proc/self/mounts && echo "unsafe-card=mounted" || echo "unsafe-card=unmounted"
    "$N" "$A" eject NO_SUCH_CARD --data-dir "$D/data" --config "$D/ok.json" 2>&1; echo "eject-unknown=$?"
    "$N" "$A" eject EOS_R5 --json --data-dir "$D/data" --config "$D/ok.json" 2>&1; echo "eject-safe=$?"
    grep -q " $D/card " /proc/self/mounts && echo "card=mounted" || echo "card=unmounted"
    "$N" "$A" eject EOS_R5 --data-dir "$D/data" --config "$D/ok.json" 2>&1; echo "eject-again=$?"
  `;
    const r = await sh([
      'unshare',
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      script,
      'sh',
      dir,
      agentBin,
      process.execPath,
    ]);
    const out = r.stdout;
    t.match(out, /^ingest1=0$/m, 'safe card ingested');
    t.match(out, /^ingest2=0$/m, 'second card ingested');

    t.match(
      out,
      /AGENT_EJECT_NOT_SAFE: SONY \(SONY-\w+\) is not safe to format yet: 4 files have fewer than 3 verified copies/,
      'refused with the reason',
    );
    t.match(out, /^eject-unsafe=1$/m);
    t.match(out, /^unsafe-card=mounted$/m, 'a card that is not safe stays mounted');

    t.match(out, /AGENT_UNKNOWN_CARD/);
    t.match(out, /^eject-unknown=1$/m);

    t.match(out, /"event":"ejected".*"label":"EOS_R5".*"method":"umount"/, 'the safe card is ejected');
    t.match(out, /^eject-safe=0$/m);
    t.match(out, /^card=unmounted$/m, 'and is no longer mounted');
    t.match(out, /AGENT_CARD_NOT_MOUNTED/, 'a second eject says it is no longer mounted');
    t.match(out, /^eject-again=1$/m);
    if (!/eject-again=/.test(out)) t.comment(r.stderr);
  },
);
