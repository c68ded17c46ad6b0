#!/usr/bin/env bash
# Backup benchmark: one raftd node on loopback (mutual TLS, fsync on, 4
# data groups) loaded with BACKUP_MB MB of KV state (256 KiB values), then
# `raftctl backup save` (MB/s, the daemon's peak RSS sampled every 50 ms
# during the save) and `raftd --restore` into a fresh data directory (MB/s
# from start until the node is ready: verify pass, install pass, start;
# the restoring daemon's peak RSS).
# Prints RESULT lines and writes them to build/bench/backup.csv.
set -euo pipefail
B=${1:?build dir}
MB=${2:-1024}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d /tmp/rd-bench-backup-XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null || true
	wait 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
port() {
	python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
"$SRC/conf/raftd-certs" all "$DIR/certs" 1 >/dev/null
conf() { # conf NAME DATA_DIR
	local p; p=$(port)
	cat >"$DIR/$1.conf" <<CONF
[node]
id = 1
data_dir = $2
[cluster]
listen = 127.0.0.1:$p
peers = 1@127.0.0.1:$p
data_groups = 4
replication_factor = 1
[tls]
mode = mutual
ca = $DIR/certs/ca.pem
cert = $DIR/certs/node1.pem
key = $DIR/certs/node1.key
[control]
socket = $DIR/$1.sock
[admin]
listen = off
[log]
level = notice
CONF
}
now() { date +%s.%N; }
conf old "$DIR/old"
"$B/raftd" --config "$DIR/old.conf" 2>>"$DIR/old.log" &
PID=$!
"$B/raftctl" -s "$DIR/old.sock" ready --wait 30 >/dev/null
echo "bench-backup: $(nproc) cores, data on $(df -h "$DIR" | awk 'NR==2{print $1}'), 1 node, 4 data groups, ${MB} MB of state in 256 KiB values"
"$B/bench/backup_load" "$DIR/old.sock" "$MB"
# Let the node settle (RocksDB flushes and compactions after the load).
for _ in $(seq 60); do "$B/raftctl" -s "$DIR/old.sock" --timeout 60000 get bk00000000 >/dev/null 2>&1 && break; sleep 1; done
RSS0=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
( peak=0; while kill -0 "$PID" 2>/dev/null && [ ! -e "$DIR/saved" ]; do
	r=$(awk '/VmRSS/{print $2}' /proc/$PID/status 2>/dev/null || echo 0)
	[ "$r" -gt "$peak" ] && peak=$r; echo "$peak" >"$DIR/peak"; sleep 0.05; done ) &
SAMPLER=$!
T0=$(now)
"$B/raftctl" -s "$DIR/old.sock" --timeout 60000 backup save "$DIR/cluster.rdbk" >/dev/null
T1=$(now)
touch "$DIR/saved"; wait "$SAMPLER" || true
BYTES=$(stat -c %s "$DIR/cluster.rdbk")
kill -TERM "$PID"; wait "$PID" || true; PID=
conf new "$DIR/new"
T2=$(now)
"$B/raftd" --config "$DIR/new.conf" --restore "$DIR/cluster.rdbk" 2>>"$DIR/new.log" &
PID=$!
( peak=0; while kill -0 "$PID" 2>/dev/null && [ ! -e "$DIR/restored" ]; do
	r=$(awk '/VmRSS/{print $2}' /proc/$PID/status 2>/dev/null || echo 0)
	[ "$r" -gt "$peak" ] && peak=$r; echo "$peak" >"$DIR/rpeak"; sleep 0.05; done ) &
SAMPLER=$!
"$B/raftctl" -s "$DIR/new.sock" ready --wait 600 >/dev/null
T3=$(now)
touch "$DIR/restored"; wait "$SAMPLER" || true
"$B/raftctl" -s "$DIR/new.sock" get bk00000000 >/dev/null
mkdir -p "$B/bench"
python3 - "$BYTES" "$T0" "$T1" "$T2" "$T3" "$RSS0" "$(cat "$DIR/peak")" "$(cat "$DIR/rpeak")" <<'PY' | tee "$B/bench/backup.csv"
import sys
b, t0, t1, t2, t3, rss0, peak, rpeak = sys.argv[1:]
b = int(b); mb = b / 1e6
save, rest = float(t1) - float(t0), float(t3) - float(t2)
print(f"RESULT backup file_mb={mb:.0f} save_s={save:.1f} save_mb_s={mb/save:.1f} "
      f"rss_before_save_mb={int(rss0)/1024:.0f} rss_peak_during_save_mb={int(peak)/1024:.0f} "
      f"restore_s={rest:.1f} restore_mb_s={mb/rest:.1f} rss_peak_during_restore_mb={int(rpeak)/1024:.0f}")
PY
