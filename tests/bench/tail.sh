#!/usr/bin/env bash
# Commit-stream benchmark: starts 3 raftd nodes on loopback with mutual TLS
# and fsync on (one data group), runs tests/bench/tail_bench: one subscriber
# on node 2 (a follower or the leader) tails the group while a writer
# proposes through node 1; prints entries/s delivered and propose-to-delivery
# latency, writes them to build/bench/tail.csv.
set -euo pipefail
B=${1:?build dir}
SECS=${2:-5}
. "$(dirname "$0")/cluster.sh"
bench_init tail
bench_cluster_start 1 warning
mkdir -p "$B/bench"
echo "bench-tail: $(nproc) cores, data on $(bench_data_fs), 3 nodes, 1 data group, ${SECS}s, writer on node1 (64 in flight, 100-byte raw proposals), subscriber on node2"
"$B/bench/tail_bench" "$SECS" "$DIR/node1.sock" "$DIR/node2.sock" | tee "$DIR/out"
grep '^RESULT' "$DIR/out" | sed 's/^RESULT tail //; s/ /,/g' >"$B/bench/tail.csv"
