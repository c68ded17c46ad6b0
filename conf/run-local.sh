#!/usr/bin/env bash
# conf/run-local.sh NODES: what `make run` runs. A local development cluster
# of NODES raftd processes on loopback, in the foreground:
#
#   1. development CA and node certificates (conf/raftd-certs all) in
#      RUN/certs,
#      made once and reused while they cover NODES nodes;
#   2. one config per node, RUN/nodeN/raftd.conf (QUIC on 127.0.0.1:7001..,
#      admin HTTP on 127.0.0.1:9101.., socket RUN/nodeN/raftd.sock, data in
#      RUN/nodeN/data), each checked with `raftd --check-config`;
#   3. every node started, its log lines prefixed with [nodeN];
#   4. a wait until `raftctl ready` succeeds on every node, then the raftctl
#      commands to try;
#   5. on Ctrl-C (SIGINT) or SIGTERM: one SIGTERM to every node (a graceful
#      shutdown; a second Ctrl-C kills them), a wait for all, and exit 0 when
#      every node exited 0.
#
#   conf/run-local.sh [--write-configs] NODES
#
# --write-configs stops after step 2 (used by tests, and to look first).
# Run from anywhere; paths are relative to the repository root, where the
# nodes run. Data is kept between runs of the same size and wiped when NODES
# changes (the founding peer list must not change under existing data).
#
# Environment:
#   RD_BUILD             directory with raftd and raftctl (default build)
#   RD_RUN_DIR           where certificates, configs and data go (build/run)
#   RD_RUN_BASE_PORT     QUIC port of node 1 (7001); node N uses BASE+N-1
#   RD_RUN_ADMIN_PORT    admin HTTP port of node 1 (BASE+2100, i.e. 9101)
#   RD_RUN_READY_TIMEOUT seconds to wait for readiness (60)
#   RD_RUN_STOP_TIMEOUT  seconds to wait for a graceful stop (30)
#   RD_RUN_FRESH=1       wipe the data directories before starting
set -uo pipefail

die() {
	printf '[run] error: %s\n' "$*" >&2
	exit 1
}
say() { printf '[run] %s\n' "$*"; }

WRITE_ONLY=0
if [ "${1:-}" = --write-configs ]; then
	WRITE_ONLY=1
	shift
fi
[ $# -eq 1 ] || die "usage: conf/run-local.sh [--write-configs] NODES"
NODES=$1
[[ $NODES =~ ^[1-9][0-9]*$ ]] && [ "$NODES" -le 64 ] || die "NODES must be 1..64, not '$NODES'"

cd "$(dirname "$0")/.." || die "cannot find the repository root"
BUILD=${RD_BUILD:-build}
RUN=${RD_RUN_DIR:-build/run}
BASE=${RD_RUN_BASE_PORT:-7001}
ADMIN=${RD_RUN_ADMIN_PORT:-$((BASE + 2100))}
READY_TIMEOUT=${RD_RUN_READY_TIMEOUT:-60}
STOP_TIMEOUT=${RD_RUN_STOP_TIMEOUT:-30}
RAFTD=$BUILD/raftd
RAFTCTL=$BUILD/raftctl
CERTS=$RUN/certs

for p in "$BASE" "$ADMIN"; do
	[[ $p =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ $((p + NODES - 1)) -le 65535 ] ||
		die "port $p does not leave room for $NODES nodes"
done
[ -x "$RAFTD" ] || die "$RAFTD is missing: run 'make' first"
[ -x "$RAFTCTL" ] || die "$RAFTCTL is missing: run 'make' first"

# --- 1. certificates ---------------------------------------------------------
certs_cover() {
	[ -f "$CERTS/ca.pem" ] || return 1
	for ((i = 1; i <= NODES; i++)); do
		[ -f "$CERTS/node$i.pem" ] && [ -f "$CERTS/node$i.key" ] || return 1
	done
}
mkdir -p "$RUN" || die "cannot create $RUN"
if ! certs_cover; then
	[ -x conf/raftd-certs ] || die "conf/raftd-certs is missing: it makes the development CA"
	say "creating a development CA and $NODES node certificates in $CERTS"
	conf/raftd-certs all "$CERTS" "$NODES" >"$RUN/certs.log" 2>&1 ||
		die "conf/raftd-certs failed (see $RUN/certs.log)"
	certs_cover || die "conf/raftd-certs did not write ca.pem and nodeN.pem/.key in $CERTS"
fi

# --- 2. configs -------------------------------------------------------------
peers=""
for ((i = 1; i <= NODES; i++)); do
	peers+="${peers:+, }$i@127.0.0.1:$((BASE + i - 1))"
done

# The text of node $1's config; conf/node1.conf .. node3.conf are this for
# NODES=3 and the default ports and directory.
node_conf() {
	local i=$1
	cat <<EOF
# Node $i of the local $NODES-node development cluster that \`make run\`
# starts (conf/run-local.sh). Paths are relative to the repository root.
# See raftd.conf(5) and conf/raftd.conf.example for every key.
[node]
id = $i
data_dir = $RUN/node$i/data

[cluster]
listen = 127.0.0.1:$((BASE + i - 1))
peers = $peers

[tls]
mode = mutual
ca = $CERTS/ca.pem
cert = $CERTS/node$i.pem
key = $CERTS/node$i.key

[control]
socket = $RUN/node$i/raftd.sock
socket_mode = 0600

[admin]
listen = 127.0.0.1:$((ADMIN + i - 1))

[log]
level = info
EOF
}

# Data made for another cluster size would bootstrap inconsistently.
if [ "${RD_RUN_FRESH:-0}" = 1 ] || [ "$(cat "$RUN/nodes" 2>/dev/null)" != "$NODES" ]; then
	for d in "$RUN"/node*/data; do
		[ -e "$d" ] || continue
		say "removing $d (new cluster of $NODES nodes)"
		rm -rf -- "$d"
	done
fi
for ((i = 1; i <= NODES; i++)); do
	mkdir -p "$RUN/node$i" || die "cannot create $RUN/node$i"
	node_conf "$i" >"$RUN/node$i/raftd.conf" || die "cannot write $RUN/node$i/raftd.conf"
	out=$("$RAFTD" --check-config "$RUN/node$i/raftd.conf" 2>&1) ||
		die "$RUN/node$i/raftd.conf is not valid: $out"
done
echo "$NODES" >"$RUN/nodes"
say "wrote $NODES configs: $RUN/node1/raftd.conf .. $RUN/node$NODES/raftd.conf"
[ "$WRITE_ONLY" = 1 ] && exit 0

# --- 3. start ---------------------------------------------------------------
# The admin ports are TCP: one already taken means another cluster runs.
for ((i = 1; i <= NODES; i++)); do
	p=$((ADMIN + i - 1))
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		die "127.0.0.1:$p is in use (another make run?); set RD_RUN_BASE_PORT"
	fi
done

declare -a PIDS EXITED # EXITED[i]: status of a node reaped before the stop
STOPPING=0

alive() { kill -0 "$1" 2>/dev/null; }

# One SIGTERM per node, a bounded wait, then SIGKILL for what is left. Exit
# 0 only when every node exited 0.
stop_all() {
	local rc=0 st i deadline
	[ "$STOPPING" = 1 ] && return
	STOPPING=1
	# A second Ctrl-C while waiting kills at once.
	trap 'say "second signal: killing the nodes"; kill -KILL "${PIDS[@]}" 2>/dev/null' INT TERM
	say "stopping $NODES nodes (SIGTERM)"
	for ((i = 1; i <= NODES; i++)); do
		alive "${PIDS[i]}" && kill -TERM "${PIDS[i]}"
	done
	deadline=$((SECONDS + STOP_TIMEOUT))
	for ((i = 1; i <= NODES; i++)); do
		while alive "${PIDS[i]}" && [ "$SECONDS" -lt "$deadline" ]; do
			sleep 0.1
		done
		if alive "${PIDS[i]}"; then
			say "node$i did not stop within ${STOP_TIMEOUT}s: SIGKILL"
			kill -KILL "${PIDS[i]}" 2>/dev/null
		fi
		if [ -n "${EXITED[i]:-}" ]; then
			st=${EXITED[i]}
		else
			wait "${PIDS[i]}"
			st=$?
			say "node$i exited with status $st"
		fi
		[ "$st" = 0 ] || rc=1
	done
	# Let the log prefixers drain the last lines.
	wait
	exit "$rc"
}
trap stop_all INT TERM

for ((i = 1; i <= NODES; i++)); do
	# setsid: the node gets its own session, so a Ctrl-C in the terminal
	# reaches only this script, which then sends exactly one SIGTERM (a
	# second signal would make raftd exit at once). The prefixer ignores
	# SIGINT so that the nodes' last lines still get through.
	setsid "$RAFTD" --config "$RUN/node$i/raftd.conf" \
		> >(trap '' INT; exec sed -u "s/^/[node$i] /") 2>&1 &
	PIDS[i]=$!
done
say "started $NODES nodes: pids ${PIDS[*]}"

# --- 4. readiness -------------------------------------------------------------
deadline=$((SECONDS + READY_TIMEOUT))
for ((i = 1; i <= NODES; i++)); do
	until "$RAFTCTL" -s "$RUN/node$i/raftd.sock" ready --wait 1 >/dev/null 2>&1; do
		if ! alive "${PIDS[i]}"; then
			say "node$i exited before it was ready (see its log above)"
			stop_all
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			say "node$i is not ready after ${READY_TIMEOUT}s (see the logs above)"
			stop_all
		fi
		sleep 0.2
	done
done

# The hints are for a shell in the repository root: paths below it are
# shown relative (make exports RD_BUILD as an absolute path).
rel() { printf '%s' "${1#"$PWD"/}"; }
CTL=$(rel "$RAFTCTL")
S1=$(rel "$RUN/node1/raftd.sock")
S2=$(rel "$RUN/node$((NODES > 1 ? 2 : 1))/raftd.sock")
cat <<EOF
[run] all $NODES nodes are ready. Try, in another terminal (in $PWD):
[run]   $CTL -s $S1 put greeting hello
[run]   $CTL -s $S2 get greeting
[run]   $CTL -s $S1 groups
[run]   $CTL -s $S1 members
[run]   $CTL -s $S1 status --json
[run]   curl -s http://127.0.0.1:$ADMIN/metrics
[run] Press Ctrl-C to stop all $NODES nodes.
EOF

# --- 5. run until a signal ------------------------------------------------------
# The nodes keep running when one of them dies (the cluster tolerates a
# minority); the script reports it and stops when all are gone.
while :; do
	left=0
	for ((i = 1; i <= NODES; i++)); do
		if alive "${PIDS[i]}"; then
			left=$((left + 1))
		elif [ -z "${EXITED[i]:-}" ]; then
			wait "${PIDS[i]}"
			EXITED[i]=$?
			say "node$i exited unexpectedly with status ${EXITED[i]}"
		fi
	done
	if [ "$left" = 0 ]; then
		say "no node left running"
		wait
		exit 1
	fi
	# wait (unlike a foreground sleep) returns at once when a signal arrives.
	sleep 1 &
	wait $!
done
