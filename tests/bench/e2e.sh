#!/usr/bin/env bash
# End-to-end write benchmark: starts 3 raftd nodes on loopback with mutual
# TLS and fsync on, runs tests/bench/e2e_load with each client count (default
# 1 and 500), prints the RESULT lines and writes them to build/bench/e2e.csv.
# Each RESULT line also carries the CPU time the three nodes spent per
# acknowledged write (user + system from /proc/PID/stat, before and after the
# run, summed over the nodes) and each node's resident set size after it.
#
# usage: e2e.sh BUILD_DIR [SECONDS [CLIENTS...]]
set -euo pipefail
B=${1:?build dir}
SECS=${2:-10}
shift $(($# < 2 ? $# : 2))
CLIENTS=("$@")
[ ${#CLIENTS[@]} -gt 0 ] || CLIENTS=(1 500)
. "$(dirname "$0")/cluster.sh"
bench_init e2e
bench_cluster_start 16 warning
mkdir -p "$B/bench"
echo "bench-e2e: $(nproc) cores, data on $(bench_data_fs), ${SECS}s per run"

# CPU ticks (utime + stime, fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 may hold spaces, so count from after its ")") summed over
# the nodes.
node_ticks() {
	local t=0 p rest
	for p in "${PIDS[@]}"; do
		rest=$(sed 's/^.*) //' "/proc/$p/stat")
		set -- $rest
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}
node_rss() {
	local p i=1 out=""
	for p in "${PIDS[@]}"; do
		out+=" rss_node${i}_mib=$(awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$p/status")"
		i=$((i + 1))
	done
	echo "$out"
}
HZ=$(getconf CLK_TCK)
for c in "${CLIENTS[@]}"; do
	t0=$(node_ticks)
	"$B/bench/e2e_load" "$c" "$SECS" "$DIR/node1.sock" "$DIR/node2.sock" "$DIR/node3.sock" >"$DIR/run"
	t1=$(node_ticks)
	writes=$(sed -n 's/^RESULT .* writes=\([0-9]*\).*/\1/p' "$DIR/run")
	cpu=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v w="$writes" \
		'BEGIN{printf "%.1f", (w > 0 ? d / hz * 1e6 / w : 0)}')
	sed "s/^\(RESULT .*\)$/\1 cpu_us_per_write=$cpu$(node_rss)/" "$DIR/run"
done | tee "$DIR/out"
grep '^RESULT' "$DIR/out" | sed 's/^RESULT e2e //; s/ /,/g' >"$B/bench/e2e.csv"
