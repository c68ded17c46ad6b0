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
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d /tmp/rd-bench-failover-XXXXXX)
trap '[ -n "${FAILOVER_KEEP:-}" ] || rm -rf "$DIR"' EXIT

port() {
	python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
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
[admin]
listen = off
[log]
level = ${FAILOVER_LOG_LEVEL:-notice}
CONF
done
mkdir -p "$B/bench"
echo "bench-failover: $(nproc) cores, data on $(df -h "$DIR" | awk 'NR==2{print $1}'), $ROUNDS rounds, $CLIENTS writers"
"$B/bench/failover_bench" "$B/raftd" "$DIR" "$ROUNDS" "$CLIENTS" | tee "$DIR/out"
grep '^RESULT' "$DIR/out" | sed 's/^RESULT failover //; s/ /,/g' >"$B/bench/failover.csv"
