#!/usr/bin/env bash
# Failover benchmark: writes the configs of 3 raftd nodes on loopback
# (mutual TLS, fsync, 16 data groups, default timing) and runs
# tests/bench/failover_bench, which starts the nodes, writes with client
# sessions through all three and kills leaders (see the top of that file).
# Prints its setup and figures; RESULT lines go to build/bench/failover.csv.
set -euo pipefail
B=${1:?build dir}
ROUNDS=${2:-5}
CLIENTS=${3:-50}
. "$(dirname "$0")/cluster.sh"
BENCH_KEEP=${BENCH_KEEP:-${FAILOVER_KEEP:-}}
bench_init failover
bench_cluster_conf 16 "${FAILOVER_LOG_LEVEL:-notice}"
mkdir -p "$B/bench"
echo "bench-failover: $(nproc) cores, data on $(bench_data_fs), $ROUNDS rounds, $CLIENTS writers"
"$B/bench/failover_bench" "$B/raftd" "$DIR" "$ROUNDS" "$CLIENTS" | tee "$DIR/out"
grep '^RESULT' "$DIR/out" | sed 's/^RESULT failover //; s/ /,/g' >"$B/bench/failover.csv"
