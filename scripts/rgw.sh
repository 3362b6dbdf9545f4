#!/bin/sh
# A real S3 server for the tests: Debian's Ceph RADOS Gateway on a single-node
# cluster (one mon, one OSD with BlueStore on a sparse file, radosgw; no mgr).
#
#   sh scripts/rgw.sh start DIR   installs ceph-mon ceph-osd radosgw ceph-common when missing (root),
#                                 starts the cluster under DIR, prints one JSON line:
#                                 {"endpoint":"http://127.0.0.1:PORT","accessKeyId":…,"secretAccessKey":…,"dir":…}
#   sh scripts/rgw.sh stop DIR    stops the daemons started under DIR (by their pid files) and removes DIR
#
# Why each setting (found by trying on a 2-core machine):
#   auth_*_required = none  cephx off; radosgw reads its own section first, so it is repeated there
#                           (without it radosgw hangs on auth);
#   paxos_propose_interval  small, or every pool creation waits ~1 s per map epoch (~18 s in all);
#   pools of size 1         one OSD; mon_allow_pool_size_one lets them be created;
#   storage classes         GLACIER and DEEP_ARCHIVE must be placement targets of the zone before
#                           radosgw starts, or a PUT with that class is refused (InvalidStorageClass);
#   rgw_frontends           beast on loopback only.
# Environment: RGW_PORT (default: a free port), RGW_KEY / RGW_SECRET (default: fixed test keys).
set -eu

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: sh scripts/rgw.sh start|stop DIR" >&2
  exit 2
fi

stop() {
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
  done
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # Wait for the daemon to exit (its pid file names it); SIGKILL after ~5 s.
    i=0
    while kill -0 "$pid" 2>/dev/null; do
      i=$((i + 1))
      if [ "$i" -gt 50 ]; then kill -9 "$pid" 2>/dev/null || true; fi
      sleep 0.1
    done
  done
  rm -rf "$dir"
}

if [ "$cmd" = "stop" ]; then
  stop
  exit 0
fi
[ "$cmd" = "start" ] || {
  echo "usage: sh scripts/rgw.sh start|stop DIR" >&2
  exit 2
}

# 1. Install what is missing (CI starts from a fresh machine; the tests run as root).
missing=""
command -v ceph-mon >/dev/null 2>&1 || missing="$missing ceph-mon"
command -v ceph-osd >/dev/null 2>&1 || missing="$missing ceph-osd"
command -v radosgw >/dev/null 2>&1 || missing="$missing radosgw"
command -v ceph >/dev/null 2>&1 || missing="$missing ceph-common"
if [ -n "$missing" ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "rgw.sh: missing Debian packages:$missing (run as root to install them)" >&2
    exit 1
  fi
  echo "rgw.sh: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
fi

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd" "$dir/rgw"
dir=$(cd "$dir" && pwd)
mon_port=$(free_port)
rgw_port=${RGW_PORT:-$(free_port)}
key=${RGW_KEY:-STUDIO321TESTKEY0001}
secret=${RGW_SECRET:-studio321-test-secret-key-00000000000000}
fsid=$(cat /proc/sys/kernel/random/uuid)
conf="$dir/ceph.conf"

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon_host = v1:127.0.0.1:$mon_port
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $dir/run
pid_file = $dir/run/\$name.pid
admin_socket = $dir/run/\$name.asok
log_file = $dir/log/\$name.log
crash_dir = $dir/log
mon_data = $dir/mon/\$id
osd_data = $dir/osd/\$id
keyring = $dir/keyring
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
paxos_propose_interval = 0.01
mon_pg_warn_min_per_osd = 0
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 1
mon_data_avail_crit = 0
ms_bind_ipv6 = false
[mon]
mon_initial_members = a
[osd]
osd_objectstore = bluestore
osd_crush_update_on_start = false
osd_class_update_on_start = false
bluestore_block_path = $dir/osd/block
bluestore_block_size = 4294967296
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false
osd_max_object_size = 134217728
bluestore_block_create = true
bluestore_cache_autotune = false
bluestore_cache_size = 67108864
osd_memory_target = 536870912
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
[client]
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port
rgw_data = $dir/rgw
rgw_thread_pool_size = 64
rgw_enable_usage_log = false
rgw_dns_name = 127.0.0.1
EOF
: >"$dir/keyring"

# 2. The monitor.
monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null 2>&1
ceph-mon -c "$conf" -i a

# 3. The OSD, added to the CRUSH map here (by the OSD itself at start, the same race could stop it).
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
# A command sent before the client has the monitor's map carries fsid 0 and is refused
# ("wrong fsid"); this can happen on a loaded machine with cephx off, so commands are retried.
retry() {
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 25 ] || {
      echo "rgw.sh: failed: $* (logs in $dir/log)" >&2
      exit 1
    }
    sleep 0.2
  done
}
retry ceph -c "$conf" --connect-timeout 5 osd new "$osd_uuid" 0
mkdir -p "$dir/osd/0"
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
ceph-osd -c "$conf" -i 0
retry ceph -c "$conf" --connect-timeout 5 osd crush add osd.0 1.0 root=default

# 4. The zone's storage classes (before radosgw starts), and the test user.
# No admin socket: two radosgw-admin at once would fight over it, and radosgw's own bind would fail.
admin() { retry radosgw-admin -c "$conf" -n client.rgw --admin-socket= "$@"; }
# The first user creates the default zonegroup and zone; their placement then gets the classes.
admin user create --uid studio321 --display-name studio321 --access-key "$key" --secret-key "$secret"
# The zonegroup and the zone are separate objects: one chain of edits each, the two in parallel.
(for sc in GLACIER DEEP_ARCHIVE; do
  admin zonegroup placement add --rgw-zonegroup default --placement-id default-placement --storage-class "$sc"
done) &
zonegroup=$!
for sc in GLACIER DEEP_ARCHIVE; do
  admin zone placement add --rgw-zone default --placement-id default-placement --storage-class "$sc" \
    --data-pool default.rgw.buckets.data
done
wait "$zonegroup"

# 5. The gateway.
radosgw -c "$conf" -n client.rgw

# 6. Ready when the gateway answers HTTP (an anonymous ListBuckets); 60 s at most.
node -e '
const http = require("http");
const deadline = Date.now() + 60000;
const poll = () => http.get(process.argv[1], (r) => { r.resume(); process.exit(0); }).on("error", () => {
  if (Date.now() > deadline) { console.error("rgw.sh: radosgw did not answer within 60 s"); process.exit(1); }
  setTimeout(poll, 50);
});
poll();' "http://127.0.0.1:$rgw_port/"
printf '{"endpoint":"http://127.0.0.1:%s","accessKeyId":"%s","secretAccessKey":"%s","dir":"%s"}\n' \
  "$rgw_port" "$key" "$secret" "$dir"
