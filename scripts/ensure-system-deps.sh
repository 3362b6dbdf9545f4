#!/bin/sh
# Installs the Debian packages the tests and demo use, when missing:
#   b3sum     independent BLAKE3 check of archive copies (the ledger test)
#   chromium  headless browser for the tray status page test
#   systemd   systemd-analyze, to verify the service units
#   prometheus  promtool, to check the metrics exposition and the example alerting rules
#   libimage-exiftool-perl  exiftool, the independent check of the capture metadata the agent reads
#   libxml2-utils  xmllint, to validate ASC MHL files against the standard's schemas
#   xxhash    xxhsum, independent XXH3 check of the ASC MHL hashes
#   strace    records the fsync/rename order of studiod's first start (power-cut test)
#   rclone    an independent S3 client: `rclone check` between a cloud target and the mirror (rgw test)
#   fdisk, e2fsprogs  sfdisk and mkfs.ext4: partitioned loop devices for the physical-disk test (test/lib/loop-disk.ts)
# Needs root (CI runs as root); without root it only reports what is missing.
set -e
missing=""
command -v b3sum >/dev/null 2>&1 || missing="$missing b3sum"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v exiftool >/dev/null 2>&1 || missing="$missing libimage-exiftool-perl"
command -v xmllint >/dev/null 2>&1 || missing="$missing libxml2-utils"
command -v xxhsum >/dev/null 2>&1 || missing="$missing xxhash"
command -v rclone >/dev/null 2>&1 || missing="$missing rclone"
command -v strace >/dev/null 2>&1 || missing="$missing strace"
command -v sfdisk >/dev/null 2>&1 || missing="$missing fdisk"
command -v mkfs.ext4 >/dev/null 2>&1 || missing="$missing e2fsprogs"
command -v losetup >/dev/null 2>&1 || missing="$missing mount"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != "0" ]; then
  echo "ensure-system-deps: missing Debian packages:$missing (run as root to install them); tests that need them will be skipped" >&2
  exit 0
fi
echo "ensure-system-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
