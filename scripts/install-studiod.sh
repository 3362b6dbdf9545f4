#!/bin/sh
# Installs studiod as a hardened systemd service. Idempotent: run it again after
# editing /etc/studiod/studiod.json (it rewrites the targets drop-in) or after
# moving the app; files whose content is unchanged are left alone, and an
# existing config is never overwritten.
#
#   sudo scripts/install-studiod.sh [--app-dir DIR] [--node PATH] [--no-start]
#   scripts/install-studiod.sh --root /tmp/sysroot --dry-run      # show, change nothing
#
# What it does:
#   1. creates the system user and group `studiod` (no login, home /var/lib/studiod)
#   2. writes /etc/studiod/studiod.json (0640 root:studiod) if there is none
#   3. writes /etc/systemd/system/studiod.service from scripts/systemd/studiod.service,
#      with ExecStart pointing at this node and this app directory
#   4. writes /etc/systemd/system/studiod.service.d/targets.conf: ReadWritePaths= for
#      every targets.*.root in the config (ProtectSystem=strict keeps the rest read-only)
#   5. creates /var/lib/studiod (0750 studiod:studiod)
#   6. puts studiod and studioctl on PATH: /usr/local/bin/studiod and /usr/local/bin/studioctl,
#      two-line wrappers that run this node on this app directory's programs
#   7. systemctl daemon-reload, enable --now studiod (not with --root / --no-start)
#
# --root DIR   install under DIR instead of / (tests, image building). No user is
#              created, nothing is chowned, systemctl is not run.
# --dry-run    print every action, change nothing.
# --app-dir    the directory holding studiod/dist (default: this repository). Keep it
#              outside /home: the unit has ProtectHome=yes. /opt/studio321 is usual.
# --node       node binary for ExecStart (default: `command -v node`).
# --bin-dir    where the studiod and studioctl commands go (default /usr/local/bin).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=""
dry_run=0
start=1
app_dir=$(cd "$here/.." && pwd)
node_bin=$(command -v node || true)
bin_dir=/usr/local/bin

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --no-start) start=0; shift ;;
    --app-dir) app_dir=${2:?--app-dir needs a directory}; shift 2 ;;
    --node) node_bin=${2:?--node needs a path}; shift 2 ;;
    --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-studiod: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "install-studiod: $*" >&2; exit 1; }
say() { echo "install-studiod: $*"; }
do_run() {
  if [ "$dry_run" = 1 ]; then say "would run: $*"; else "$@"; fi
}

[ -n "$node_bin" ] || fail "node not found; install Node.js 20 or pass --node PATH"
case "$node_bin" in /*) ;; *) fail "--node must be an absolute path, got $node_bin" ;; esac
case "$app_dir" in /*) ;; *) fail "--app-dir must be an absolute path, got $app_dir" ;; esac
if [ -z "$root" ] && [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
  fail "run as root (sudo), or use --root DIR / --dry-run to try it out"
fi
bin="$app_dir/studiod/dist/bin/studiod.js"
[ -f "$bin" ] || say "warning: $bin does not exist yet; build with 'npm run build' before starting the service"
case "$app_dir" in /home/*|/root/*) say "warning: $app_dir is under /home or /root, which the unit hides (ProtectHome=yes); install the app under /opt/studio321 or pass --app-dir" ;; esac

etc="$root/etc/studiod"
config="$etc/studiod.json"
unit_dir="$root/etc/systemd/system"
unit="$unit_dir/studiod.service"
dropin_dir="$unit_dir/studiod.service.d"
dropin="$dropin_dir/targets.conf"
state="$root/var/lib/studiod"

# install_content DEST MODE: write stdin to DEST atomically unless DEST already has it.
install_content() {
  dest=$1; mode=$2
  tmp=$(mktemp)
  cat > "$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then
    say "unchanged $dest"
    rm -f "$tmp"
    return 0
  fi
  if [ "$dry_run" = 1 ]; then
    say "would write $dest (mode $mode):"
    sed 's/^/    /' "$tmp"
    rm -f "$tmp"
    return 0
  fi
  mkdir -p "$(dirname "$dest")"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest.install-tmp"
  mv -f "$dest.install-tmp" "$dest"
  say "wrote $dest"
  changed=1
}
changed=0

# 1. user
if [ -z "$root" ]; then
  if id studiod >/dev/null 2>&1; then
    say "user studiod exists"
  else
    do_run useradd --system --user-group --home-dir /var/lib/studiod --no-create-home \
      --shell /usr/sbin/nologin --comment "studio321 studio daemon" studiod
  fi
else
  say "--root given: not creating the studiod user"
fi

# 2. default config (never overwritten)
if [ -f "$config" ]; then
  say "keeping existing $config"
else
  install_content "$config" 0640 <<'JSON'
{
  "stateDir": "/var/lib/studiod",
  "listen": { "host": "0.0.0.0", "port": 7321 },
  "targets": {
    "mirror": { "root": "/srv/mirror", "media": "hdd-mirror", "location": "studio", "device": "mirror-1" },
    "raid": { "root": "/srv/raid", "media": "hdd-raid", "location": "studio", "device": "raid-1" }
  },
  "log": { "level": "info" }
}
JSON
  [ -z "$root" ] && [ "$dry_run" = 0 ] && chown root:studiod "$config"
  say "edit $config: set targets.mirror.root and targets.raid.root to your mounted disks, then run this script again"
fi

# 3. the unit, with ExecStart for this node and app directory
exec_start="ExecStart=$node_bin $bin --config /etc/studiod/studiod.json"
unit_tmp=$(mktemp)
sed "s#^ExecStart=.*#$exec_start#" "$here/systemd/studiod.service" > "$unit_tmp"
install_content "$unit" 0644 < "$unit_tmp"
rm -f "$unit_tmp"

# 4. the targets drop-in, derived from the config's target roots
config_src="$config"
[ -f "$config_src" ] || config_src=/dev/null # dry run of a first install: no config yet
roots=$("$node_bin" -e '
  const fs = require("node:fs");
  let text = fs.readFileSync(process.argv[1], "utf8");
  if (text.trim() === "") text = "{\"targets\":{\"mirror\":{\"root\":\"/srv/mirror\"},\"raid\":{\"root\":\"/srv/raid\"}}}";
  let cfg;
  try { cfg = JSON.parse(text); } catch (e) { console.error(process.argv[1] + ": not valid JSON (" + e.message + ")"); process.exit(1); }
  const roots = [];
  for (const t of Object.values((cfg && cfg.targets) || {})) {
    if (t && typeof t.root === "string") {
      if (!t.root.startsWith("/") || /[\s"\\]/.test(t.root)) { console.error(process.argv[1] + ": targets root " + JSON.stringify(t.root) + " must be an absolute path without spaces, quotes or backslashes"); process.exit(1); }
      roots.push(t.root);
    }
  }
  process.stdout.write([...new Set(roots)].map((r) => "-" + r).join(" "));
' "$config_src") || fail "cannot read the target roots from $config"
dropin_tmp=$(mktemp)
{
  echo "# Written by scripts/install-studiod.sh from $config (targets.*.root)."
  echo "# Run the script again after changing the targets; do not edit by hand."
  echo "[Service]"
  [ -n "$roots" ] && echo "ReadWritePaths=$roots"
  true
} > "$dropin_tmp"
install_content "$dropin" 0644 < "$dropin_tmp"
rm -f "$dropin_tmp"

# 5. state directory (systemd creates it too; creating it here lets the admin put TLS files in first)
if [ -d "$state" ]; then
  say "state directory $state exists"
else
  do_run mkdir -p "$state"
  do_run chmod 0750 "$state"
  [ -z "$root" ] && do_run chown studiod:studiod "$state"
fi
for r in $roots; do
  r=${r#-}
  if [ ! -d "$root$r" ]; then
    say "note: target root $r does not exist yet: mount the disk there, then: chown studiod:studiod $r"
  elif [ -z "$root" ] && [ "$(stat -c %U "$r")" != studiod ]; then
    say "note: target root $r is not owned by studiod: chown studiod:studiod $r"
  fi
done

# 6. the commands on PATH (a wrapper, not a symlink: it pins this node, as the unit does)
for prog in studiod studioctl; do
  printf '#!/bin/sh\n# Written by scripts/install-studiod.sh: %s of %s\nexec "%s" "%s" "$@"\n' \
    "$prog" "$app_dir" "$node_bin" "$app_dir/studiod/dist/bin/$prog.js" | install_content "$root$bin_dir/$prog" 0755
done

# 7. systemd
if command -v systemd-analyze >/dev/null 2>&1 && [ "$dry_run" = 0 ]; then
  SYSTEMD_UNIT_PATH="$unit_dir:" systemd-analyze verify "$unit" || fail "systemd-analyze verify rejected $unit"
fi
if [ -n "$root" ] || [ "$start" = 0 ]; then
  say "not starting the service (--root/--no-start). Start it with: systemctl daemon-reload && systemctl enable --now studiod"
elif [ ! -d /run/systemd/system ]; then
  say "systemd is not running here; start studiod with: systemctl daemon-reload && systemctl enable --now studiod"
else
  do_run systemctl daemon-reload
  do_run systemctl enable studiod
  if [ "$changed" = 1 ]; then do_run systemctl restart studiod; else do_run systemctl start studiod; fi
  say "status: systemctl status studiod; logs: journalctl -u studiod -o cat"
fi
say "done"
