#!/usr/bin/env bash
# Idle benchmark: starts 3 raftd nodes on loopback (mutual TLS, fsync,
# GROUPS data groups, replication factor 3, default timing, the canary off:
# its periodic writes would keep every group busy), waits until
# every node is ready and SETTLE seconds more, then leaves them idle for
# SECS seconds and prints, over that window:
#   - CPU per replica-second: utime + stime of each node (/proc/PID/stat,
#     in clock ticks) over the window, divided by the replicas it hosts
#     (GROUPS data groups + group 0) and the window's length, averaged
#     over the nodes;
#   - RSS per replica: VmRSS (/proc/PID/status) at the end over the same
#     replica count, averaged over the nodes;
#   - the RSS slope per replica: before the measured cluster, a cluster of
#     1 data group is started the same way and its nodes' VmRSS read once
#     it is ready + SETTLE seconds; the slope is the difference over the
#     difference in replicas (GROUPS - 1), what each idle replica adds once
#     a node's fixed costs (code of raftd and its libraries, RocksDB's
#     fixed state) are out;
#   - RocksDB's share, from each node's /metrics: its memtables, block
#     cache and table readers (raft_storage_*_bytes), and RssFile (the
#     mapped code of raftd and its libraries) beside RssAnon;
#   - the groups woken during the window, by cause
#     (raft_group_wakeups_total; an idle cluster has none);
#   - per peer per second, from each node's /metrics: frames sent
#     (raft_peer_frames_sent_total) and Raft messages sent
#     (raft_peer_messages_sent_total: heartbeats and their answers when idle);
# then the latency of the first write to 100 idle groups and of a second
# write right after each, to the woken group, for reference
# (tests/bench/idle_first_write.c). RESULT lines go to build/bench/idle.csv.
#
# BENCH_TMPDIR (default /tmp) is where the nodes' directories (data,
# sockets, certificates) are made: BENCH_TMPDIR=/dev/shm puts them on a
# tmpfs, whose fsync returns at once, so the first-write latency is given
# apart from the disk's fsync. The setup line names the device and its
# file system type.
#
# usage: [BENCH_TMPDIR=DIR] idle.sh BUILD_DIR GROUPS SECS
set -euo pipefail
B=${1:?build dir}
GROUPS_N=${2:-1024}
SECS=${3:-30}
SETTLE=5
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/rd-bench-idle-XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${IDLE_KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT

# A free port (UDP for QUIC, TCP for admin HTTP), asked from the kernel.
port() {
	python3 -c 'import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])' "$1"
}
"$SRC/conf/raftd-certs" all "$DIR/certs" 3 >/dev/null
# start_cluster TAG GROUPS: 3 nodes in $DIR/TAG*, their pids in PIDS and
# admin ports in A; returns once every node is ready and SETTLE s passed.
start_cluster() {
	local tag=$1 groups=$2 i
	P=(); A=(); PIDS=()
	for i in 1 2 3; do P[$i]=$(port udp); A[$i]=$(port tcp); done
	PEERS="1@127.0.0.1:${P[1]}, 2@127.0.0.1:${P[2]}, 3@127.0.0.1:${P[3]}"
	for i in 1 2 3; do
		cat >"$DIR/$tag$i.conf" <<CONF
[node]
id = $i
data_dir = $DIR/${tag}data$i
[cluster]
listen = 127.0.0.1:${P[$i]}
peers = $PEERS
data_groups = $groups
replication_factor = 3
[tls]
mode = mutual
ca = $DIR/certs/ca.pem
cert = $DIR/certs/node$i.pem
key = $DIR/certs/node$i.key
[control]
socket = $DIR/$tag$i.sock
[admin]
listen = 127.0.0.1:${A[$i]}
[health]
canary_interval_ms = 0
[log]
level = warning
CONF
		"$B/raftd" --config "$DIR/$tag$i.conf" 2>>"$DIR/$tag$i.log" &
		PIDS+=($!)
	done
	for i in 1 2 3; do "$B/raftctl" -s "$DIR/$tag$i.sock" ready --wait 600 >/dev/null; done
	sleep "$SETTLE"
}
stop_cluster() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
rss_of() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# The baseline: one data group, for the slope.
start_cluster base 1
RSS1=0
for i in 1 2 3; do RSS1=$((RSS1 + $(rss_of "${PIDS[$((i - 1))]}"))); done
RSS1=$((RSS1 / 3))
stop_cluster
start_cluster node "$GROUPS_N"
mkdir -p "$B/bench"
REPLICAS=$((GROUPS_N + 1))
HZ=$(getconf CLK_TCK)
echo "bench-idle: $(nproc) cores, data on $(df -h "$DIR" | awk 'NR==2{print $1}') ($(stat -f -c %T "$DIR") under ${BENCH_TMPDIR:-/tmp}), 3 nodes, $GROUPS_N data groups x 3 replicas (+ group 0), canary off, ready + ${SETTLE}s, then ${SECS}s idle; CPU from /proc/PID/stat at ${HZ} ticks/s; load average $(cut -d' ' -f1-3 /proc/loadavg) (other processes share the cores)"

ticks() { # utime + stime of pid $1 (fields 14, 15; counted after the ")")
	local rest
	rest=$(sed 's/^.*) //' "/proc/$1/stat")
	set -- $rest
	echo $((${12} + ${13}))
}
# Sum over peers of counter $2 in node $1's /metrics.
counter() {
	curl -sf "http://127.0.0.1:${A[$1]}/metrics" |
		awk -v m="$2" '$1 ~ "^"m"\\{" {s += $2} END {printf "%.0f\n", s}'
}
# Gauge $2 of node $1's /metrics (no labels; 0 when the build has none).
gauge() {
	curl -sf "http://127.0.0.1:${A[$1]}/metrics" |
		awk -v m="$2" '$1 == m {v = $2} END {printf "%.0f\n", v + 0}'
}
# Node $1's wake-ups by cause (raft_group_wakeups_total), one
# "cause count" line each.
wakeups() {
	curl -sf "http://127.0.0.1:${A[$1]}/metrics" |
		sed -n 's/^raft_group_wakeups_total{cause="\([a-z_]*\)"} \([0-9]*\)$/\1 \2/p'
}
declare -A T0 F0 M0 W0
for i in 1 2 3; do
	W0[$i]=$(wakeups "$i")
	T0[$i]=$(ticks "${PIDS[$((i - 1))]}")
	F0[$i]=$(counter "$i" raft_peer_frames_sent_total)
	M0[$i]=$(counter "$i" raft_peer_messages_sent_total)
done
S0=$(date +%s.%N)
sleep "$SECS"
S1=$(date +%s.%N)
echo "bench-idle: load average at the end of the window $(cut -d' ' -f1-3 /proc/loadavg)"
cpu=0 rss=0 frames=0 msgs=0 slope=0
for i in 1 2 3; do
	pid=${PIDS[$((i - 1))]}
	t=$(($(ticks "$pid") - T0[$i]))
	f=$(($(counter "$i" raft_peer_frames_sent_total) - F0[$i]))
	m=$(($(counter "$i" raft_peer_messages_sent_total) - M0[$i]))
	r=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
	read -r c k fr ms < <(awk -v t="$t" -v hz="$HZ" -v s0="$S0" -v s1="$S1" \
		-v n="$REPLICAS" -v r="$r" -v f="$f" -v m="$m" 'BEGIN {
		w = s1 - s0
		printf "%.1f %.1f %.1f %.1f\n", t / hz * 1e6 / (n * w), r / n, f / 2 / w, m / 2 / w }')
	anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")
	file=$(awk '/^RssFile:/ {print $2}' "/proc/$pid/status")
	mt=$(($(gauge "$i" raft_storage_memtable_bytes) / 1024))
	bc=$(($(gauge "$i" raft_storage_block_cache_bytes) / 1024))
	tr=$(($(gauge "$i" raft_storage_table_readers_bytes) / 1024))
	sl=$(awk -v r="$r" -v b="$RSS1" -v g="$GROUPS_N" 'BEGIN {printf "%.1f", (g > 1 ? (r - b) / (g - 1) : 0)}')
	# Groups woken in the window, by cause (an idle cluster has none).
	wk=$( (echo "${W0[$i]}" | sed 's/ / -/'; wakeups "$i") |
		awk 'NF == 2 {s[$1] += $2} END {for (c in s) if (s[c]) printf "%s%s=%d", n++ ? "," : "", c, s[c]; if (!n) printf "none"}')
	echo "node$i: cpu_us_per_replica_s=$c rss_kib_per_replica=$k rss_slope_kib_per_replica=$sl frames_per_peer_s=$fr msgs_per_peer_s=$ms (rss ${r} KiB: anon ${anon}, file ${file}; rocksdb memtables ${mt} KiB, block cache ${bc} KiB, table readers ${tr} KiB; ${t} ticks; wake-ups in the window: $wk)"
	slope=$(awk -v a="$slope" -v b="$sl" 'BEGIN {print a + b / 3}')
	cpu=$(awk -v a="$cpu" -v b="$c" 'BEGIN {print a + b / 3}')
	rss=$(awk -v a="$rss" -v b="$k" 'BEGIN {print a + b / 3}')
	frames=$(awk -v a="$frames" -v b="$fr" 'BEGIN {print a + b / 3}')
	msgs=$(awk -v a="$msgs" -v b="$ms" 'BEGIN {print a + b / 3}')
done
echo "bench-idle: baseline of 1 data group: rss ${RSS1} KiB per node (mean of 3)"
# The first writes' tail is the host's as much as ours when other
# processes share the cores: their load is printed beside it.
echo "bench-idle: load average before the first writes $(cut -d' ' -f1-3 /proc/loadavg)"
"$B/bench/idle_first_write" "$DIR/node1.sock" 100 $((1024 / 100)) | tee "$DIR/fw"
# p50 and p99 of the RESULT line of $1 (first-write or second-write).
pcts() { sed -n "s/^RESULT $1 .*p50_ms=\\([^ ]*\\) p99_ms=\\([^ ]*\\).*/\\1 \\2/p" "$DIR/fw"; }
read -r p50 p99 < <(pcts first-write)
read -r s50 s99 < <(pcts second-write)
printf 'RESULT idle groups=%s seconds=%s cpu_us_per_replica_s=%.1f rss_kib_per_replica=%.1f rss_slope_kib_per_replica=%.1f frames_per_peer_s=%.1f msgs_per_peer_s=%.1f first_write_p50_ms=%s first_write_p99_ms=%s second_write_p50_ms=%s second_write_p99_ms=%s\n' \
	"$GROUPS_N" "$SECS" "$cpu" "$rss" "$slope" "$frames" "$msgs" "$p50" "$p99" "$s50" "$s99" | tee "$DIR/out"
sed 's/^RESULT idle //; s/ /,/g' "$DIR/out" >>"$B/bench/idle.csv"
