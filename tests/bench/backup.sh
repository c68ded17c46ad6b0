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
. "$(dirname "$0")/cluster.sh"
BENCH_KEEP=${BENCH_KEEP:-${KEEP:-}}
bench_init backup
bench_certs 1
conf() { # conf NAME: a one-node cluster, data in DIR/NAME
	local p
	p=$(bench_port)
	bench_conf "$1" 1 "$p" "1@127.0.0.1:$p" 4 1 notice
}
# peak_rss PID UNTIL OUT: the largest VmRSS (KiB) of PID, sampled every
# 50 ms into OUT until PID ends or the file UNTIL exists.
peak_rss() {
	local peak=0 r
	while kill -0 "$1" 2>/dev/null && [ ! -e "$2" ]; do
		r=$(awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
		[ "$r" -gt "$peak" ] && peak=$r
		echo "$peak" >"$3"
		sleep 0.05
	done
}
now() { date +%s.%N; }
conf old
bench_start old
PID=${PIDS[-1]}
bench_ready old
echo "bench-backup: $(nproc) cores, data on $(bench_data_fs), 1 node, 4 data groups, ${MB} MB of state in 256 KiB values"
"$B/bench/backup_load" "$DIR/old.sock" "$MB"
# Let the node settle (RocksDB flushes and compactions after the load).
for _ in $(seq 60); do "$B/raftctl" -s "$DIR/old.sock" --timeout 60000 get bk00000000 >/dev/null 2>&1 && break; sleep 1; done
RSS0=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
peak_rss "$PID" "$DIR/saved" "$DIR/peak" &
SAMPLER=$!
T0=$(now)
"$B/raftctl" -s "$DIR/old.sock" --timeout 60000 backup save "$DIR/cluster.rdbk" >/dev/null
T1=$(now)
touch "$DIR/saved"; wait "$SAMPLER" || true
BYTES=$(stat -c %s "$DIR/cluster.rdbk")
bench_stop
conf new
T2=$(now)
bench_start new --restore "$DIR/cluster.rdbk"
PID=${PIDS[-1]}
peak_rss "$PID" "$DIR/restored" "$DIR/rpeak" &
SAMPLER=$!
bench_ready new 600
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
