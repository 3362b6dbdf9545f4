#!/bin/sh
# Installs the field agent as a per-user background service that starts at login:
# a systemd user unit on Linux, a LaunchAgent on macOS. Run it as the photographer
# (not root). Idempotent: unchanged files are left alone.
#
#   scripts/install-agent.sh [--app-dir DIR] [--node PATH] [--no-start]
#   scripts/install-agent.sh --home /tmp/fakehome --platform darwin --dry-run
#
# Both:   ~/.local/bin/field-agent, a wrapper that runs this node on this app's field-agent
#         (--bin-dir DIR to put it elsewhere; the script says when that folder is not on PATH)
# Linux:  ~/.config/systemd/user/field-agent.service (XDG_CONFIG_HOME honoured),
#         then systemctl --user daemon-reload && systemctl --user enable --now field-agent
# macOS:  ~/Library/LaunchAgents/com.studio321.field-agent.plist, then
#         launchctl bootout/bootstrap gui/UID
#
# --home DIR         install for a home directory other than $HOME (tests); implies --no-start
# --platform P       linux or darwin (default: uname)
# --dry-run          print every action, change nothing
# --app-dir DIR      directory holding agent/dist (default: this repository)
# --node PATH        node binary (default: `command -v node`)
# --bin-dir DIR      where the field-agent command goes (default: ~/.local/bin)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
home=${HOME:-}
home_given=0
dry_run=0
start=1
app_dir=$(cd "$here/.." && pwd)
node_bin=$(command -v node || true)
bin_dir=""
case "$(uname -s)" in Darwin) platform=darwin ;; *) platform=linux ;; esac

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --home) home=${2:?--home needs a directory}; home_given=1; start=0; shift 2 ;;
    --platform) platform=${2:?--platform needs linux or darwin}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --no-start) start=0; shift ;;
    --app-dir) app_dir=${2:?--app-dir needs a directory}; shift 2 ;;
    --node) node_bin=${2:?--node needs a path}; shift 2 ;;
    --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-agent: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "install-agent: $*" >&2; exit 1; }
say() { echo "install-agent: $*"; }
do_run() { if [ "$dry_run" = 1 ]; then say "would run: $*"; else "$@"; fi; }

[ -n "$home" ] || fail "HOME is not set; pass --home DIR"
[ -n "$node_bin" ] || fail "node not found; install Node.js 20 or pass --node PATH"
case "$node_bin" in /*) ;; *) fail "--node must be an absolute path, got $node_bin" ;; esac
case "$app_dir" in /*) ;; *) fail "--app-dir must be an absolute path, got $app_dir" ;; esac
case "$platform" in linux|darwin) ;; *) fail "--platform must be linux or darwin, got $platform" ;; esac
if [ "$home_given" = 0 ] && [ "$(id -u)" = 0 ]; then
  fail "run this as the photographer's own user, not root (the agent is a per-user service)"
fi
case "$app_dir$node_bin" in *'#'*|*'&'*|*'<'*|*'>'*) fail "paths must not contain #, &, < or >" ;; esac
agent_js="$app_dir/agent/dist/bin/field-agent.js"
[ -f "$agent_js" ] || say "warning: $agent_js does not exist yet; build with 'npm run build' first"

changed=0
install_content() {
  dest=$1; mode=$2
  tmp=$(mktemp)
  cat > "$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then say "unchanged $dest"; rm -f "$tmp"; return 0; fi
  if [ "$dry_run" = 1 ]; then
    say "would write $dest (mode $mode):"; sed 's/^/    /' "$tmp"; rm -f "$tmp"; return 0
  fi
  mkdir -p "$(dirname "$dest")"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest.install-tmp"
  mv -f "$dest.install-tmp" "$dest"
  say "wrote $dest"
  changed=1
}

[ -n "$bin_dir" ] || bin_dir="$home/.local/bin"
printf '#!/bin/sh\n# Written by scripts/install-agent.sh: field-agent of %s\nexec "%s" "%s" "$@"\n' \
  "$app_dir" "$node_bin" "$agent_js" | install_content "$bin_dir/field-agent" 0755
case ":${PATH:-}:" in
  *":$bin_dir:"*) ;;
  *) say "note: $bin_dir is not on your PATH; add it (e.g. in ~/.profile: PATH=\"$bin_dir:\$PATH\") to type field-agent" ;;
esac

src_tmp=$(mktemp)
if [ "$platform" = linux ]; then
  if [ "$home_given" = 1 ]; then config_home="$home/.config"; else config_home=${XDG_CONFIG_HOME:-$home/.config}; fi
  dest="$config_home/systemd/user/field-agent.service"
  sed "s#^ExecStart=.*#ExecStart=$node_bin $agent_js run#" "$here/systemd/field-agent.service" > "$src_tmp"
  install_content "$dest" 0644 < "$src_tmp"
  rm -f "$src_tmp"
  if command -v systemd-analyze >/dev/null 2>&1 && [ "$dry_run" = 0 ]; then
    rt=${XDG_RUNTIME_DIR:-}
    if [ -z "$rt" ] || [ ! -d "$rt" ]; then rt=$(mktemp -d); fi
    XDG_RUNTIME_DIR="$rt" systemd-analyze --user verify "$dest" || fail "systemd-analyze verify rejected $dest"
  fi
  if [ "$start" = 0 ]; then
    say "not starting. Start with: systemctl --user daemon-reload && systemctl --user enable --now field-agent"
  elif ! systemctl --user show-environment >/dev/null 2>&1; then
    say "no systemd user manager reachable; at your next login run: systemctl --user enable --now field-agent"
  else
    do_run systemctl --user daemon-reload
    do_run systemctl --user enable field-agent
    if [ "$changed" = 1 ]; then do_run systemctl --user restart field-agent; else do_run systemctl --user start field-agent; fi
    say "status: systemctl --user status field-agent; logs: journalctl --user -u field-agent -o cat"
  fi
else
  dest="$home/Library/LaunchAgents/com.studio321.field-agent.plist"
  sed -e "s#__NODE__#$node_bin#g" -e "s#__APP_DIR__#$app_dir#g" -e "s#__HOME__#$home#g" \
    "$here/launchd/com.studio321.field-agent.plist" > "$src_tmp"
  install_content "$dest" 0644 < "$src_tmp"
  rm -f "$src_tmp"
  [ -d "$home/Library/Logs/studio321" ] || do_run mkdir -p "$home/Library/Logs/studio321"
  if [ "$start" = 0 ]; then
    say "not starting. Start with: launchctl bootstrap gui/\$(id -u) $dest"
  else
    uid=$(id -u)
    do_run launchctl bootout "gui/$uid/com.studio321.field-agent" 2>/dev/null || true
    do_run launchctl bootstrap "gui/$uid" "$dest"
    say "status: launchctl print gui/$uid/com.studio321.field-agent"
  fi
fi
say "done"
