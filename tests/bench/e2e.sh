#!/usr/bin/env bash
# End-to-end write benchmark: starts 3 raftd nodes on loopback with mutual
# TLS and fsync on, runs tests/bench/e2e_load with each client count (default
# 1 and 500), prints the RESULT lines and writes them to build/bench/e2e.csv.
# Each RESULT line also carries the CPU time the three nodes spent per
# acknowledged write (user + system from /proc/PID/stat, before and after the
# run, summed over the nodes), each node's resident set size after it, and
# node 1's storage bytes per acknowledged write (every node holds every
# group): wal_bytes_per_write, what its synced writes put in the WAL (log
# entries, Raft state), and applied_bytes_per_write, what it wrote without
# the WAL (what applying changed; README of lib/storage), and how often node
# 1's Raft cores read entries below their in-memory tail back from storage
# (log_source_reads, raft_log_source_reads_total; lib/raft/raft.h), and
# node 1's synced writes and WAL writes without a sync (commit advances
# alone, lib/storage/README.md) per 1,000 acknowledged writes
# (syncs_per_kwrite, commit_only_per_kwrite), and the minor page faults
# of the three nodes per acknowledged write (minflt_per_write: first
# touches of fresh memory, mostly RocksDB's memtable arenas).
#
# BENCH_NODES=1 runs a single-node cluster instead (cluster.sh), and
# BENCH_EXTRA_CONF appends config lines to every node's file, e.g.
# BENCH_EXTRA_CONF='[storage]; async_write = no'.
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
# Minor page faults (field 10 of /proc/PID/stat) summed over the nodes:
# first touches of fresh memory (memtable arenas, buffers), each one a
# kernel entry and a zeroed page.
node_minflt() {
	local t=0 p rest
	for p in "${PIDS[@]}"; do
		rest=$(sed 's/^.*) //' "/proc/$p/stat")
		set -- $rest
		t=$((t + ${8}))
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
	f0=$(node_minflt)
	w0=$(bench_metric 1 raft_storage_synced_bytes_total)
	a0=$(bench_metric 1 raft_storage_applied_bytes_total)
	r0=$(bench_metric 1 raft_log_source_reads_total)
	s0=$(bench_metric 1 raft_storage_sync_duration_seconds_count)
	c0=$(bench_metric 1 raft_storage_commit_only_writes_total)
	"$B/bench/e2e_load" "$c" "$SECS" "${SOCKS[@]}" >"$DIR/run"
	t1=$(node_ticks)
	f1=$(node_minflt)
	w1=$(bench_metric 1 raft_storage_synced_bytes_total)
	a1=$(bench_metric 1 raft_storage_applied_bytes_total)
	r1=$(bench_metric 1 raft_log_source_reads_total)
	s1=$(bench_metric 1 raft_storage_sync_duration_seconds_count)
	c1=$(bench_metric 1 raft_storage_commit_only_writes_total)
	writes=$(sed -n 's/^RESULT .* writes=\([0-9]*\).*/\1/p' "$DIR/run")
	cpu=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v w="$writes" \
		'BEGIN{printf "%.1f", (w > 0 ? d / hz * 1e6 / w : 0)}')
	per() { awk -v d="$(($2 - $1))" -v w="$writes" 'BEGIN{printf "%.0f", (w > 0 ? d / w : 0)}'; }
	bytes=" wal_bytes_per_write=$(per "$w0" "$w1") applied_bytes_per_write=$(per "$a0" "$a1")"
	bytes+=" log_source_reads=$((${r1:-0} - ${r0:-0}))"
	kper() { awk -v d="$((${2:-0} - ${1:-0}))" -v w="$writes" 'BEGIN{printf "%.0f", (w > 0 ? d * 1000 / w : 0)}'; }
	bytes+=" syncs_per_kwrite=$(kper "$s0" "$s1") commit_only_per_kwrite=$(kper "$c0" "$c1")"
	bytes+=" minflt_per_write=$(awk -v d="$((f1 - f0))" -v w="$writes" 'BEGIN{printf "%.2f", (w > 0 ? d / w : 0)}')"
	sed "s/^\(RESULT .*\)$/\1 cpu_us_per_write=$cpu$bytes$(node_rss)/" "$DIR/run"
done | tee "$DIR/out"
grep '^RESULT' "$DIR/out" | sed 's/^RESULT e2e //; s/ /,/g' >"$B/bench/e2e.csv"
