#!/usr/bin/env bash
# make test-systemd: boot a minimal Debian root under systemd-nspawn with
# raftd installed by `make install`, let a test unit inside run
# tests/systemd/checks.sh, and report its PASS/FAIL lines. Exits non-zero
# if any check failed, if the run did not finish, or on any error here.
#
#   run.sh BUILD_DIR     (BUILD_DIR holds raftd and raftctl; default build)
#
# The root is built once by mkroot.sh and cached under build/systemd/;
# each run copies it (reflinks where the file system can), installs into
# the copy, boots it with a private network (only its own loopback, so the
# fixed ports of the configs below meet nothing on the host) and removes it.
# The last run's results, console and (on failure) journal are kept in
# build/systemd/last/. Needs root, for systemd-nspawn and debootstrap.
#
# The host's PID 1 need not be systemd: --register=no --keep-unit keep
# nspawn from asking a host systemd or machined for anything.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'test-systemd: %s\n' "$*" >&2; }
die() { printf 'test-systemd: error: %s\n' "$*" >&2; exit 1; }

B=${1:-build}
TIMEOUT=${RD_SYSTEMD_TIMEOUT:-300}
[ "$(id -u)" = 0 ] || die "needs root (systemd-nspawn, debootstrap)"
[ -x "$B/raftd" ] && [ -x "$B/raftctl" ] || die "no $B/raftd or $B/raftctl (run make first)"
bash .ci/pkgs.sh debootstrap systemd-container openssl

t0=$(date +%s)
ROOT=$(bash tests/systemd/mkroot.sh build/systemd "$B/raftd" "$B/raftctl")
t_root=$(($(date +%s) - t0))

RUN=$(mktemp -d "$PWD/build/systemd/run.XXXXXX")
MACHINE=raftd-test-${RUN##*.}
LAST=$PWD/build/systemd/last
pid=""

cleanup() {
	local rc=$?
	set +e
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		say "stopping the container"
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	# nspawn unmounts what it mounted when it exits (its mounts live in
	# its own namespace); anything left under the run directory is ours.
	findmnt -rn -o TARGET | grep "^$RUN/" | sort -r | xargs -r -n1 umount -l
	if [ -d "$RUN/out" ]; then
		rm -rf "$LAST"
		mv "$RUN/out" "$LAST"
	fi
	rm -rf --one-file-system "$RUN" "/run/systemd/nspawn/propagate/$MACHINE" \
		"/run/systemd/nspawn/unix-export/$MACHINE"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

t1=$(date +%s)
cp -a --reflink=auto "$ROOT" "$RUN/root"
R=$RUN/root
make --no-print-directory -s install B="$B" DESTDIR="$R" >/dev/null

# Configs: see the header of checks.sh for who is who.
bash conf/raftd-certs all "$RUN/certs" 3
install -d "$R/etc/raftd/tls"
install -m 0640 "$RUN"/certs/ca.pem "$RUN"/certs/node[123].pem "$RUN"/certs/node[123].key \
	"$R/etc/raftd/tls/"
conf() { # NAME ID LISTEN_PORT PEERS ADMIN_PORT DIR [EXTRA]
	local rf=1
	case $4 in *,*) rf=3 ;; esac
	cat >"$R/etc/raftd/$1.conf" <<-EOF
		[node]
		id = $2
		data_dir = /var/lib/$6
		[cluster]
		listen = 127.0.0.1:$3
		peers = $4
		data_groups = 4
		replication_factor = $rf
		[tls]
		mode = mutual
		ca = /etc/raftd/tls/ca.pem
		cert = /etc/raftd/tls/node$2.pem
		key = /etc/raftd/tls/node$2.key
		[control]
		socket = /run/$6/raftd.sock
		socket_mode = 0660
		[admin]
		listen = 127.0.0.1:$5
		[log]
		level = info
		${7:-}
	EOF
}
W=1@127.0.0.1:7201,2@127.0.0.1:7202,3@127.0.0.1:7203
conf raftd 1 7001 1@127.0.0.1:7001 9101 raftd
conf solo 1 7101 1@127.0.0.1:7101 9111 raftd-solo
conf w1 1 7201 $W 9201 raftd-w1
conf w2 2 7202 $W 9202 raftd-w2
conf bad 1 7301 1@127.0.0.1:7301 9301 raftd-bad "no_such_key = 1"
conf clash 1 7401 1@127.0.0.1:7401 9901 raftd-clash

# The test unit, its helpers, and an operator "op" in group raftctl.
install -d "$R/usr/local/lib/raftd-test" "$R/etc/systemd/system/multi-user.target.wants"
install -m 0755 tests/systemd/checks.sh "$R/usr/local/lib/raftd-test/"
install -m 0644 tests/systemd/raftd-checks.service tests/systemd/holder.socket \
	tests/systemd/holder.service "$R/etc/systemd/system/"
ln -sf ../raftd-checks.service "$R/etc/systemd/system/multi-user.target.wants/"
printf 'u op - "raftctl user"\nm op raftctl\n' >"$R/usr/lib/sysusers.d/raftd-test.conf"
# The one change to the shipped units: a system call outside their filter
# kills raftd (SIGSYS) instead of failing with EPERM, so that one shows.
for u in raftd.service raftd@.service; do
	install -d "$R/etc/systemd/system/$u.d"
	printf '[Service]\nSystemCallErrorNumber=kill\n' >"$R/etc/systemd/system/$u.d/syscall-kill.conf"
done
mkdir -p "$RUN/out"

say "booting $MACHINE (root: $ROOT)"
timeout --kill-after=20 "$TIMEOUT" systemd-nspawn --quiet --directory="$R" \
	--machine="$MACHINE" --boot --register=no --keep-unit --private-network \
	--console=read-only --bind="$RUN/out:/raftd-test-out" \
	</dev/null >"$RUN/out/console.log" 2>&1 &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=""
t_run=$(($(date +%s) - t1))

res=$RUN/out/results
[ -f "$res" ] || die "no results (nspawn exit $rc); see $LAST/console.log"
grep -E '^(PASS|FAIL|INFO)' "$res" || true
npass=$(grep -c '^PASS' "$res" || true)
nfail=$(grep -c '^FAIL' "$res" || true)
say "root ready in ${t_root} s, install, boot and checks ${t_run} s"
if ! grep -qx DONE "$res"; then
	say "the checks did not finish (nspawn exit $rc); see $LAST/console.log"
	exit 1
fi
if [ "$nfail" != 0 ]; then
	say "$nfail of $((npass + nfail)) checks failed; journal in $LAST/journal.txt"
	exit 1
fi
say "all $npass checks passed"
