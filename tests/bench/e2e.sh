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
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d /tmp/rd-bench-e2e-XXXXXX)
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
data_groups = 16
replication_factor = 3
[tls]
mode = mutual
ca = $DIR/certs/ca.pem
cert = $DIR/certs/node$i.pem
key = $DIR/certs/node$i.key
[control]
socket = $DIR/node$i.sock
# every client its own connection: up to 500 over 3 nodes
max_connections = 1024
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
echo "bench-e2e: $(nproc) cores, data on $(df -h "$DIR" | awk 'NR==2{print $1}'), ${SECS}s per run"

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
