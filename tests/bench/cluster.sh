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
#                            certificates and DIR/node1..N.conf of an N-node
#                            cluster, N = $BENCH_NODES (default 3; 1 gives a
#                            single-node cluster) (P[1..N] its ports, PEERS
#                            its peer list, A[1..N] its admin HTTP ports on
#                            127.0.0.1, SOCKS its client sockets); each
#                            config ends with $BENCH_EXTRA_CONF's lines
#                            (e.g. "[storage] async_write = no"; the
#                            separator "; " starts a new line)
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
	if [ -n "${BENCH_EXTRA_CONF:-}" ]; then
		printf '%s\n' "${BENCH_EXTRA_CONF//; /$'\n'}" >>"$DIR/$1.conf"
	fi
}

BENCH_NODES=${BENCH_NODES:-3}
export BENCH_NODES

bench_cluster_conf() {
	local i rf=$((BENCH_NODES < 3 ? BENCH_NODES : 3))
	bench_certs "$BENCH_NODES"
	P=()
	A=()
	SOCKS=()
	PEERS=""
	for i in $(seq 1 "$BENCH_NODES"); do
		P[$i]=$(bench_port)
		A[$i]=$(bench_port tcp)
		PEERS+="${PEERS:+, }$i@127.0.0.1:${P[$i]}"
		SOCKS+=("$DIR/node$i.sock")
	done
	for i in $(seq 1 "$BENCH_NODES"); do
		bench_conf "node$i" "$i" "${P[$i]}" "$PEERS" "$1" "$rf" "$2" "127.0.0.1:${A[$i]}"
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
	for i in $(seq 1 "$BENCH_NODES"); do bench_start "node$i"; done
	for i in $(seq 1 "$BENCH_NODES"); do bench_ready "node$i"; done
}

bench_data_fs() {
	df -h "$DIR" | awk 'NR==2{print $1}'
}
