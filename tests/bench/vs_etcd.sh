#!/usr/bin/env bash
# raftd against etcd on the same machine, in one run (make bench-vs-etcd):
# three etcd members on loopback (ephemeral ports, temp dirs, fsync on, as
# etcd always syncs) measured with `etcdctl check perf --load=l` (500
# clients, 256-byte keys, 1 KiB values, 60 s, etcd's own rate cap of 8,000
# puts/s), then tests/bench/e2e.sh with 500 clients and the same sizes.
# Prints both figures and their ratio on one line:
#   RESULT vs-etcd etcd_writes_per_s=<n> raftd_writes_per_s=<n> ratio=<x>
#
# usage: vs_etcd.sh BUILD_DIR [RAFTD_SECONDS]
set -euo pipefail
B=${1:?build dir}
SECS=${2:-10}
. "$(dirname "$0")/cluster.sh"
bash "$SRC/.ci/pkgs.sh" etcd-server etcd-client
bench_init etcd

C=(); P=(); CLUSTER=""; EPS=""
for i in 1 2 3; do
	C[$i]=$(bench_port tcp); P[$i]=$(bench_port tcp)
	CLUSTER+="${CLUSTER:+,}m$i=http://127.0.0.1:${P[$i]}"
	EPS+="${EPS:+,}127.0.0.1:${C[$i]}"
done
for i in 1 2 3; do
	etcd --name "m$i" --data-dir "$DIR/etcd$i" \
		--listen-client-urls "http://127.0.0.1:${C[$i]}" \
		--advertise-client-urls "http://127.0.0.1:${C[$i]}" \
		--listen-peer-urls "http://127.0.0.1:${P[$i]}" \
		--initial-advertise-peer-urls "http://127.0.0.1:${P[$i]}" \
		--initial-cluster "$CLUSTER" --initial-cluster-state new \
		--initial-cluster-token rd-bench --log-level error \
		>>"$DIR/etcd$i.log" 2>&1 &
	PIDS+=($!)
done
export ETCDCTL_API=3
for _ in $(seq 60); do
	etcdctl --endpoints="$EPS" endpoint health >/dev/null 2>&1 && break
	sleep 0.5
done
etcdctl --endpoints="$EPS" endpoint health >/dev/null 2>&1 || { echo "bench-vs-etcd: etcd did not become healthy" >&2; exit 1; }
echo "bench-vs-etcd: $(nproc) cores, data on $(bench_data_fs); $(etcd --version | head -1), 3 members on loopback; etcdctl check perf --load=l"
# A check that fails before measuring (a request timing out on a loaded
# machine) is tried again, at most three times in all.
ETCD=""
for _ in 1 2 3; do
	{ etcdctl --endpoints="$EPS" check perf --load=l 2>&1 || true; } |
		tr '\r' '\n' | grep -v '^ *$' | grep -v '%' | tee "$DIR/etcd.out"
	ETCD=$(sed -n 's/.*Throughput[^0-9]*\([0-9][0-9.]*\) writes\/s.*/\1/p' "$DIR/etcd.out" | head -1)
	[ -z "$ETCD" ] || break
done
[ -n "$ETCD" ] || { echo "bench-vs-etcd: no throughput in etcdctl's output" >&2; exit 1; }
bench_stop

bash "$SRC/tests/bench/e2e.sh" "$B" "$SECS" 500 | tee "$DIR/raftd.out"
RAFTD=$(sed -n 's/^RESULT .* writes_per_s=\([0-9]*\).*/\1/p' "$DIR/raftd.out")
awk -v e="$ETCD" -v r="$RAFTD" 'BEGIN{printf "RESULT vs-etcd etcd_writes_per_s=%.0f raftd_writes_per_s=%.0f ratio=%.2f\n", e, r, (e > 0 ? r / e : 0)}'
