# raftd nodes on loopback for the benchmark scripts (e2e.sh, tail.sh,
# failover.sh, backup.sh, vs_etcd.sh), which source this file after
# `set -euo pipefail` and B (the build directory) are set:
#
#   bench_init NAME          DIR := a fresh /tmp/rd-bench-NAME-XXXXXX, SRC :=
#                            the source tree; on exit every process in PIDS
#                            is stopped and DIR removed (kept, and said so,
#                            when BENCH_KEEP is set)
#   bench_port [tcp]         a free loopback UDP (or TCP) port
#   bench_certs N            a CA and N node certificates in DIR/certs
#   bench_conf NAME ID PORT PEERS GROUPS RF LEVEL [ADMIN]
#                            DIR/NAME.conf: node ID listening on PORT, mutual
#                            TLS with DIR/certs/nodeID.*, data in DIR/NAME,
#                            socket DIR/NAME.sock, admin HTTP on ADMIN
#                            (host:port; default off)
#   bench_cluster_conf GROUPS LEVEL
#                            certificates and DIR/node1..3.conf of a 3-node
#                            cluster (P[1..3] its ports, PEERS its peer list,
#                            A[1..3] its admin HTTP ports on 127.0.0.1)
#   bench_metric N NAME      the value of sample NAME in node N's /metrics
#   bench_start NAME [ARG]   raftd --config DIR/NAME.conf ARG... in the
#                            background, stderr to DIR/NAME.log; its pid is
#                            appended to PIDS
#   bench_ready NAME [SECS]  wait until DIR/NAME.sock answers ready
#   bench_cluster_start GROUPS LEVEL
#                            bench_cluster_conf, then start node1..3 and wait
#                            until each is ready
#   bench_stop               stop every process in PIDS and wait for it
#   bench_data_fs            the file system DIR lives on (for setup lines)

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PIDS=()

bench_stop() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}

bench_cleanup() {
	bench_stop
	wait 2>/dev/null || true
	if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}

bench_init() {
	DIR=$(mktemp -d "/tmp/rd-bench-$1-XXXXXX")
	trap bench_cleanup EXIT
}

# Asked from the kernel where python3 exists, else (UDP only) a random high
# port that `ss` does not list as bound.
bench_port() {
	local kind=SOCK_DGRAM p
	[ "${1:-}" = tcp ] && kind=SOCK_STREAM
	if command -v python3 >/dev/null; then
		python3 -c "import socket;s=socket.socket(socket.AF_INET,socket.$kind);s.bind(('127.0.0.1',0));print(s.getsockname()[1])"
		return
	fi
	while p=$((20000 + RANDOM % 40000)); ss -Hlun "sport = :$p" | grep -q .; do :; done
	echo "$p"
}

bench_certs() {
	"$SRC/conf/raftd-certs" all "$DIR/certs" "$1" >/dev/null
}

bench_conf() {
	cat >"$DIR/$1.conf" <<CONF
[node]
id = $2
data_dir = $DIR/$1
[cluster]
listen = 127.0.0.1:$3
peers = $4
data_groups = $5
replication_factor = $6
[tls]
mode = mutual
ca = $DIR/certs/ca.pem
cert = $DIR/certs/node$2.pem
key = $DIR/certs/node$2.key
[control]
socket = $DIR/$1.sock
# every client its own connection: up to 500 over 3 nodes (default 64)
max_connections = 1024
[admin]
listen = ${8:-off}
[log]
level = $7
CONF
}

bench_cluster_conf() {
	local i
	bench_certs 3
	P=()
	A=()
	for i in 1 2 3; do
		P[$i]=$(bench_port)
		A[$i]=$(bench_port tcp)
	done
	PEERS="1@127.0.0.1:${P[1]}, 2@127.0.0.1:${P[2]}, 3@127.0.0.1:${P[3]}"
	for i in 1 2 3; do
		bench_conf "node$i" "$i" "${P[$i]}" "$PEERS" "$1" 3 "$2" "127.0.0.1:${A[$i]}"
	done
}

bench_metric() {
	curl -sf "http://127.0.0.1:${A[$1]}/metrics" | awk -v n="$2" '$1 == n {v = $2} END {print v}'
}

bench_start() {
	local name=$1
	shift
	"$B/raftd" --config "$DIR/$name.conf" "$@" 2>>"$DIR/$name.log" &
	PIDS+=($!)
}

bench_ready() {
	"$B/raftctl" -s "$DIR/$1.sock" ready --wait "${2:-30}" >/dev/null
}

bench_cluster_start() {
	local i
	bench_cluster_conf "$1" "$2"
	for i in 1 2 3; do bench_start "node$i"; done
	for i in 1 2 3; do bench_ready "node$i"; done
}

bench_data_fs() {
	df -h "$DIR" | awk 'NR==2{print $1}'
}
