#!/usr/bin/env bash
# Join benchmark: 3 founding raftd nodes on loopback (mutual TLS, fsync,
# GROUPS data groups) loaded with KEYS keys (100-byte values), a 4th node
# joined with [cluster] join and promoted, then a 5th node started with
# [cluster] join: seconds from its start until it logged "joined the
# cluster" (added to group 0 as a learner), until it answers ready, and
# until `raftctl members` shows it as a voter of group 0. This version
# places no data-group replica on a joined node, so "holding its share of
# replicas" is not measured. Prints its setup and a RESULT line, written to
# build/bench/join.csv.
set -euo pipefail
B=${1:?build dir}
GROUPS_N=${2:-16}
KEYS=${3:-10000}
. "$(dirname "$0")/cluster.sh"
BENCH_KEEP=${BENCH_KEEP:-${JOIN_KEEP:-}}
bench_init join
bench_certs 5
now() { date +%s.%N; }
# join_conf NAME ID: DIR/NAME.conf for node ID joining through node1..3.
join_conf() {
	local p
	p=$(bench_port)
	bench_conf "$1" "$2" "$p" "x" "$GROUPS_N" 3 notice
	sed -i "s#^peers = x\$#join = 127.0.0.1:${P[1]}, 127.0.0.1:${P[2]}, 127.0.0.1:${P[3]}#" \
		"$DIR/$1.conf"
}
# voter N: node N is a voter of group 0 as node 1's `raftctl members` says.
voter() {
	"$B/raftctl" -s "$DIR/node1.sock" members 2>/dev/null |
		awk -v id="$1" '$1 == id && /voter/ {f = 1} END {exit !f}'
}
P=()
for i in 1 2 3; do P[$i]=$(bench_port); done
PEERS="1@127.0.0.1:${P[1]}, 2@127.0.0.1:${P[2]}, 3@127.0.0.1:${P[3]}"
for i in 1 2 3; do bench_conf "node$i" "$i" "${P[$i]}" "$PEERS" "$GROUPS_N" 3 notice; done
for i in 1 2 3; do bench_start "node$i"; done
for i in 1 2 3; do bench_ready "node$i" 60; done
echo "bench-join: $(nproc) cores, data on $(bench_data_fs), 3 founders, $GROUPS_N data groups, replication 3, $KEYS keys of 100 bytes, nodes 4 and 5 join with [cluster] join"
"$B/bench/join_load" "$DIR/node1.sock" "$KEYS"
join_conf node4 4
bench_start node4
bench_ready node4 120
for _ in $(seq 600); do voter 4 && break; sleep 0.1; done
voter 4 || { echo "node 4 not promoted" >&2; exit 1; }
join_conf node5 5
T0=$(now)
bench_start node5
for _ in $(seq 1200); do grep -q "joined the cluster" "$DIR/node5.log" 2>/dev/null && break; sleep 0.05; done
T1=$(now)
bench_ready node5 120
T2=$(now)
for _ in $(seq 1200); do voter 5 && break; sleep 0.05; done
voter 5 || { echo "node 5 not promoted" >&2; exit 1; }
T3=$(now)
"$B/raftctl" -s "$DIR/node5.sock" get jk00000042 >/dev/null
mkdir -p "$B/bench"
python3 - "$T0" "$T1" "$T2" "$T3" "$GROUPS_N" "$KEYS" <<'PY' | tee "$B/bench/join.csv"
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
print(f"RESULT join groups={sys.argv[5]} keys={sys.argv[6]} node=5 "
      f"to_joined_s={t1 - t0:.2f} to_ready_s={t2 - t0:.2f} to_voter_s={t3 - t0:.2f}")
PY
