#!/usr/bin/env bash
# Join benchmark: 3 founding raftd nodes on loopback (mutual TLS, fsync,
# GROUPS data groups, replication 3) loaded with KEYS keys (100-byte
# values), a 4th node joined with [cluster] join, promoted and given its
# share of data replicas (placement moves them, lib/cluster/placement.h),
# then a 5th node started with [cluster] join: seconds from its start
# until it logged "joined the cluster" (added to group 0 as a learner),
# until it answers ready, until `raftctl members` shows it as a voter of
# group 0, and until it holds its share of data replicas. "Its share": the
# group-0 leader's targets (raft_node_replicas per node, which counts the
# target placement in group 0) are balanced (every group at 3, the counts
# of the 5 nodes differ by at most one) with no move in flight, and every
# group whose target names node 5 has node 5 as a voter in node 5's own
# `raftctl groups`, applied up to its commit. Prints its setup and a
# RESULT line, written to build/bench/join.csv.
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
	A[$2]=$(bench_port tcp)
	bench_conf "$1" "$2" "$p" "x" "$GROUPS_N" 3 notice "127.0.0.1:${A[$2]}"
	sed -i "s#^peers = x\$#join = 127.0.0.1:${P[1]}, 127.0.0.1:${P[2]}, 127.0.0.1:${P[3]}#" \
		"$DIR/$1.conf"
}
# voter N: node N is a voter of group 0 as node 1's `raftctl members` says.
voter() {
	"$B/raftctl" -s "$DIR/node1.sock" members 2>/dev/null |
		awk -v id="$1" '$1 == id && /voter/ {f = 1} END {exit !f}'
}
# meta_leader: group 0's leader as node 1's `raftctl status` names it.
meta_leader() {
	"$B/raftctl" -s "$DIR/node1.sock" status 2>/dev/null |
		awk '/^metadata leader/ {print $3}'
}
# share N: node N holds its share of data replicas (see the header) in a
# cluster of nodes 1..N; SHARE := how many that is.
share() {
	local l m v t=""
	l=$(meta_leader)
	[ -n "$l" ] && [ "$l" != 0 ] || return 1
	m=$(curl -sf "http://127.0.0.1:${A[$l]}/metrics") || return 1
	v=$(awk '$1 == "raft_placement_moves_in_flight" {print $2}' <<<"$m")
	[ "$v" = 0 ] || return 1
	t=$(awk -v n="$1" -v g="$GROUPS_N" '
		index($1, "raft_node_replicas{node=") == 1 {
			id = $1; gsub(/[^0-9]/, "", id)
			if (id + 0 <= n) { k[id] = $2; sum += $2 }
		}
		END {
			lo = -1; hi = -1
			for (i = 1; i <= n; i++) {
				if (!(i in k)) exit 1
				if (lo < 0 || k[i] < lo) lo = k[i]
				if (k[i] > hi) hi = k[i]
			}
			if (sum != 3 * g || hi > lo + 1 || k[n] == 0) exit 1
			print k[n]
		}' <<<"$m") || return 1
	"$B/raftctl" -s "$DIR/node$1.sock" groups 2>/dev/null | awk -v id="$1" -v want="$t" '
		function has(list, x,   a, i, c) {
			c = split(list, a, ",")
			for (i = 1; i <= c; i++) if (a[i] == x) return 1
			return 0
		}
		$1 ~ /^[0-9]+$/ && $1 > 0 {
			if (has($8, id)) bad = 1
			if (has($10, id)) {
				if (!has($7, id) || $6 < $5 || $3 == 0) bad = 1
				else k++
			}
		}
		END {exit bad || k != want}' || return 1
	SHARE=$t
}
P=()
A=()
for i in 1 2 3; do P[$i]=$(bench_port); A[$i]=$(bench_port tcp); done
PEERS="1@127.0.0.1:${P[1]}, 2@127.0.0.1:${P[2]}, 3@127.0.0.1:${P[3]}"
for i in 1 2 3; do
	bench_conf "node$i" "$i" "${P[$i]}" "$PEERS" "$GROUPS_N" 3 notice "127.0.0.1:${A[$i]}"
done
for i in 1 2 3; do bench_start "node$i"; done
for i in 1 2 3; do bench_ready "node$i" 60; done
echo "bench-join: $(nproc) cores, data on $(bench_data_fs), 3 founders, $GROUPS_N data groups, replication 3, $KEYS keys of 100 bytes, nodes 4 and 5 join with [cluster] join"
# The loader stops at a refused put (one refused while the cluster
# balances its leaders right after start); loading again is harmless: the
# same keys get the same values.
for try in 1 2 3; do
	"$B/bench/join_load" "$DIR/node1.sock" "$KEYS" && break
	[ "$try" = 3 ] && { echo "keys not loaded" >&2; exit 1; }
	sleep 1
done
join_conf node4 4
bench_start node4
bench_ready node4 120
for _ in $(seq 600); do voter 4 && break; sleep 0.1; done
voter 4 || { echo "node 4 not promoted" >&2; exit 1; }
for _ in $(seq 1200); do share 4 && break; sleep 0.1; done
share 4 || { echo "node 4 does not hold its share of replicas" >&2; exit 1; }
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
for _ in $(seq 6000); do share 5 && break; sleep 0.05; done
share 5 || { echo "node 5 does not hold its share of replicas" >&2; exit 1; }
T4=$(now)
"$B/raftctl" -s "$DIR/node5.sock" get jk00000042 >/dev/null
mkdir -p "$B/bench"
python3 - "$T0" "$T1" "$T2" "$T3" "$T4" "$GROUPS_N" "$KEYS" "$SHARE" <<'PY' | tee "$B/bench/join.csv"
import sys
t0, t1, t2, t3, t4 = map(float, sys.argv[1:6])
print(f"RESULT join groups={sys.argv[6]} keys={sys.argv[7]} node=5 "
      f"replicas={sys.argv[8]} to_joined_s={t1 - t0:.2f} to_ready_s={t2 - t0:.2f} "
      f"to_voter_s={t3 - t0:.2f} to_share_s={t4 - t0:.2f}")
PY
