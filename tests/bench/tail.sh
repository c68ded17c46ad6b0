#!/usr/bin/env bash
# Commit-stream benchmark: starts 3 raftd nodes on loopback with mutual TLS
# and fsync on (one data group), runs tests/bench/tail_bench: one subscriber
# on node 2 (a follower or the leader) tails the group while a writer
# proposes through node 1; prints entries/s delivered and propose-to-delivery
# latency, writes them to build/bench/tail.csv.
set -euo pipefail
B=${1:?build dir}
SECS=${2:-5}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d /tmp/rd-bench-tail-XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT

# A free UDP port: asked from the kernel where python3 exists, else a
# random high port that `ss` does not list as bound.
port() {
	if command -v python3 >/dev/null; then
		python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
		return
	fi
	local p
	while p=$((20000 + RANDOM % 40000)); ss -Hlun "sport = :$p" | grep -q .; do :; done
	echo "$p"
}
"$SRC/conf/raftd-certs" all "$DIR/certs" 3 >/dev/null
P=(); for i in 1 2 3; do P[$i]=$(port); done
PEERS="1@127.0.0.1:${P[1]}, 2@127.0.0.1:${P[2]}, 3@127.0.0.1:${P[3]}"
for i in 1 2 3; do
	cat >"$DIR/node$i.conf" <<CONF
[node]
id = $i
data_dir = $DIR/data$i
[cluster]
listen = 127.0.0.1:${P[$i]}
peers = $PEERS
data_groups = 1
replication_factor = 3
[tls]
mode = mutual
ca = $DIR/certs/ca.pem
cert = $DIR/certs/node$i.pem
key = $DIR/certs/node$i.key
[control]
socket = $DIR/node$i.sock
[admin]
listen = off
[log]
level = warning
CONF
	"$B/raftd" --config "$DIR/node$i.conf" 2>>"$DIR/node$i.log" &
	PIDS+=($!)
done
for i in 1 2 3; do "$B/raftctl" -s "$DIR/node$i.sock" ready --wait 30 >/dev/null; done
mkdir -p "$B/bench"
echo "bench-tail: $(nproc) cores, data on $(df -h "$DIR" | awk 'NR==2{print $1}'), 3 nodes, 1 data group, ${SECS}s, writer on node1 (64 in flight, 100-byte raw proposals), subscriber on node2"
"$B/bench/tail_bench" "$SECS" "$DIR/node1.sock" "$DIR/node2.sock" | tee "$DIR/out"
grep '^RESULT' "$DIR/out" | sed 's/^RESULT tail //; s/ /,/g' >"$B/bench/tail.csv"
