#!/usr/bin/env bash
# The checks of `make test-systemd`, run inside the container by
# raftd-checks.service (tests/systemd/run.sh installs both). Each check
# writes one line to $OUT: "PASS name" or "FAIL name: why"; "DONE" ends a
# run that got to the end. The host side reads that file.
#
# The nodes (configs written by run.sh into /etc/raftd):
#   raftd.service   node 1 of a one-node cluster, the unit as shipped
#   raftd@w1, w2    nodes 1 and 2 of a three-node cluster whose node 3 never
#                   starts: w1 alone waits for founders, w1+w2 are a quorum
#   raftd@solo      a one-node cluster beside raftd.service
#   raftd@bad       a config with an unknown key
#   raftd@clash     admin port already taken (by holder.socket): exits 1 at
#                   every start, a crash loop that the start limit must end
set -uo pipefail

OUT=/raftd-test-out/results
: >"$OUT"
failed=0

pass() { echo "PASS $*" | tee -a "$OUT"; }
fail() { echo "FAIL $*" | tee -a "$OUT"; failed=1; }
info() { echo "INFO $*" | tee -a "$OUT"; }
# check NAME WHY COMMAND...: PASS if COMMAND succeeds, else FAIL with WHY,
# which is expanded then (give it in single quotes, with no double quotes
# in it, to show the state after the check).
check() {
	local name=$1 why=$2
	shift 2
	if "$@"; then pass "$name"; else fail "$name: $(eval "printf '%s' \"$why\"")"; fi
}

prop() { systemctl show -P "$2" "$1"; }
state_is() { [ "$(prop "$1" ActiveState)" = "$2" ]; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_until SECONDS COMMAND...: poll every 100 ms until COMMAND succeeds.
wait_until() {
	local end=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt $end ] || return 1
		sleep 0.1
	done
}
# journal UNIT [journalctl options]: the unit's messages since boot.
journal() {
	local u=$1
	shift
	journalctl -b -q --no-pager -o cat -u "$u" "$@"
}
in_journal() { journal "$1" | grep -q -- "$2"; }
ctl() { raftctl -s "$1" --timeout 5000 "${@:2}"; }
# ctl_retry SECONDS SOCKET ARGS...: a request retried until it succeeds;
# prints the number of attempts.
ctl_retry() {
	local end=$(($(now_ms) + $1 * 1000)) n=0 sock=$2
	shift 2
	while :; do
		n=$((n + 1))
		if ctl "$sock" "$@" >/tmp/ctl.out 2>&1; then
			echo $n
			return 0
		fi
		[ $n != 1 ] || cp /tmp/ctl.out /tmp/ctl.first
		[ "$(now_ms)" -lt $end ] || { cat /tmp/ctl.out >&2; echo $n; return 1; }
		sleep 0.2
	done
}
mono_ms() { echo $(($(prop "$1" "$2") / 1000)); }

SOCK=/run/raftd/raftd.sock
SOLO=/run/raftd-solo/raftd.sock

# What `make install` does on a live system: the raftd user and groups
# (here already made at boot by systemd-sysusers), and /etc/raftd readable
# by group raftd only, TLS keys included.
chgrp -R raftd /etc/raftd
chmod 0750 /etc/raftd /etc/raftd/tls
chmod 0640 /etc/raftd/*.conf /etc/raftd/tls/*

# --- 1. Type=notify: activating while founders are missing, active on READY
systemctl start holder.socket
systemctl start --no-block raftd@clash.service
systemctl start --no-block raftd@w1.service
wait_until 20 in_journal raftd@w1 'started node=1'
ok=1
for _ in $(seq 30); do # 3 s of samples
	state_is raftd@w1 activating || ok=0
	prop raftd@w1 StatusText | grep -q bootstrapping || ok=0
	sleep 0.1
done
check notify.waiting_stays_activating \
	'raftd@w1 left activating/bootstrapping without a quorum: $(prop raftd@w1 ActiveState), status $(prop raftd@w1 StatusText)' \
	[ $ok = 1 ]
check notify.not_ready_while_waiting "raftctl ready said ready" \
	eval '! ctl /run/raftd-w1/raftd.sock ready >/dev/null 2>&1'
check notify.second_founder_starts "systemctl start raftd@w2 failed" \
	timeout 60 systemctl start raftd@w2.service
check notify.first_founder_becomes_active 'raftd@w1: $(prop raftd@w1 ActiveState)' \
	wait_until 30 state_is raftd@w1 active
w1_active=$(mono_ms raftd@w1 ActiveEnterTimestampMonotonic)
w1_start=$(mono_ms raftd@w1 ExecMainStartTimestampMonotonic)
w2_start=$(mono_ms raftd@w2 ExecMainStartTimestampMonotonic)
check notify.active_only_after_quorum \
	"raftd@w1 active at ${w1_active} ms, before raftd@w2 started at ${w2_start} ms" \
	[ "$w1_active" -gt "$w2_start" ]
check notify.ready_status 'StatusText $(prop raftd@w1 StatusText)' \
	eval 'prop raftd@w1 StatusText | grep -q "^ready with"'
check notify.ready_logged "no 'node ready' in raftd@w1's journal" \
	in_journal raftd@w1 'node ready'
tries=$(ctl_retry 20 /run/raftd-w1/raftd.sock put k v)
[ "$tries" = 1 ] || info "notify: the first put on raftd@w1 after READY took $tries" \
	"attempts (0.2 s apart); the first said: $(head -c 200 /tmp/ctl.first)"
info "notify: raftd@w1 activating for $((w1_active - w1_start)) ms," \
	"active $((w1_active - w2_start)) ms after raftd@w2 started"
systemctl stop raftd@w1.service raftd@w2.service

# --- 2. raftd.service: start, serve, journal, sandbox, socket permissions
t0=$(now_ms)
check service.starts "systemctl start raftd failed" timeout 60 systemctl start raftd.service
info "service: systemctl start raftd took $(($(now_ms) - t0)) ms (READY after" \
	"$(($(mono_ms raftd ActiveEnterTimestampMonotonic) - $(mono_ms raftd ExecMainStartTimestampMonotonic))) ms)"
check service.active '$(prop raftd ActiveState)/$(prop raftd SubState)' state_is raftd active
tries=$(ctl_retry 20 $SOCK put greeting hello)
rc=$?
check service.put "put failed after $tries attempts" [ $rc = 0 ]
[ "$tries" = 1 ] || info "service: the first put after READY needed $tries attempts;" \
	"the first said: $(head -c 200 /tmp/ctl.first)"
check service.get 'get greeting: $(ctl $SOCK get greeting 2>&1)' \
	eval '[ "$(ctl $SOCK get greeting)" = hello ]'

check journal.notice_parsed "'node ready' not at priority 5 (notice)" \
	eval 'journal raftd -p 5..5 | grep -q "node ready"'
check journal.info_not_notice "'node ready' also at another priority" \
	eval '! journal raftd -p 6..7 | grep -q "node ready"'

pid=$(prop raftd MainPID)
st=/proc/$pid/status
check sandbox.user '$(grep ^Uid: $st)' \
	eval '[ "$(awk "/^Uid:/ {print \$2}" $st)" = "$(id -u raftd)" ]'
check sandbox.groups '$(grep -E ^G $st | tr -s [:space:] \ )' \
	eval '[ "$(awk "/^Gid:/ {print \$2}" $st)" = "$(getent group raftctl | cut -d: -f3)" ] &&
	      awk "/^Groups:/" $st | grep -qw "$(getent group raftd | cut -d: -f3)"'
check sandbox.no_capabilities '$(grep -E ^Cap $st | tr -s [:space:] \ )' \
	eval '[ "$(grep -cE "^Cap(Eff|Prm|Bnd):[[:space:]]+0+$" $st)" = 3 ]'
check sandbox.no_new_privs '$(grep NoNewPrivs $st)' grep -qE '^NoNewPrivs:[[:space:]]+1' $st
check sandbox.seccomp '$(grep ^Seccomp: $st)' grep -qE '^Seccomp:[[:space:]]+2' $st
# run.sh's drop-in: a call outside the filter kills raftd instead of EPERM
# (systemd shows "kill" as 2147483646).
check sandbox.filter_kills 'SystemCallErrorNumber=$(prop raftd SystemCallErrorNumber)' \
	eval 'case $(prop raftd SystemCallErrorNumber) in kill | 2147483646) ;; *) false ;; esac'
check limits.core '$(grep core /proc/$pid/limits)' \
	grep -qE '^Max core file size +0 +0 ' /proc/$pid/limits
check limits.tasks_memory 'TasksMax=$(prop raftd TasksMax) MemoryMax=$(prop raftd MemoryMax)' \
	eval '[ "$(prop raftd TasksMax)" = 256 ] && [ "$(prop raftd MemoryMax)" = $((4 << 30)) ]'
info "limits: raftd runs $(awk '/^Threads:/ {print $2}' $st) threads," \
	"RSS $(awk '/^VmRSS:/ {print $2, $3}' $st)"

check socket.mode '$(stat -c %a:%U:%G $SOCK)' eval '[ "$(stat -c "%a %U:%G" $SOCK)" = "660 raftd:raftctl" ]'
check socket.raftctl_member_allowed 'user op (group raftctl): $(setpriv --reuid=op --regid=op --init-groups raftctl -s $SOCK get greeting 2>&1)' \
	eval '[ "$(setpriv --reuid=op --regid=op --init-groups raftctl -s $SOCK get greeting)" = hello ]'
err=$(setpriv --reuid=nobody --regid=nogroup --clear-groups raftctl -s $SOCK get greeting 2>&1)
rc=$?
check socket.stranger_refused "nobody: exit $rc: $err" \
	eval '[ $rc = 3 ] && echo "$err" | grep -q "Permission denied"'
check socket.member_cannot_read_key "user op read the TLS key" \
	eval '! setpriv --reuid=op --regid=op --init-groups cat /etc/raftd/tls/node1.key >/dev/null 2>&1'

for u in raftd.service raftd@solo.service; do
	score=$(SYSTEMD_LOG_COLOR=0 systemd-analyze security --no-pager "$u" 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	check "security.${u%.service}" "exposure '${score}' above 1.5" \
		awk -v s="${score:-99}" 'BEGIN { exit !(s <= 1.5) }'
	info "security: $u exposure $score"
done

# --- 3. reload: the PID stays; a bad file fails the reload, raftd runs on
pid=$(prop raftd MainPID)
sed -i 's/^level = info/level = debug/' /etc/raftd/raftd.conf
check reload.ok "systemctl reload raftd failed" systemctl reload raftd.service
check reload.pid_kept 'MainPID $pid -> $(prop raftd MainPID)' [ "$(prop raftd MainPID)" = "$pid" ]
check reload.applied "no 'config reloaded ... level=debug'" \
	wait_until 10 eval 'journal raftd | grep -q "config reloaded.*level=debug"'
cp /etc/raftd/raftd.conf /tmp/good.conf
printf '[log]\nno_such_key = 1\n' >>/etc/raftd/raftd.conf
check reload.bad_fails "systemctl reload succeeded with an unknown key" \
	eval '! systemctl reload raftd.service 2>/dev/null'
check reload.bad_keeps_running '$(prop raftd ActiveState), MainPID $(prop raftd MainPID)' \
	eval 'state_is raftd active && [ "$(prop raftd MainPID)" = "$pid" ]'
check reload.bad_not_signalled "raftd was sent SIGHUP for a bad file" \
	eval '! journal raftd | grep -q "config reload failed"'
check reload.bad_serves_on 'get after a failed reload: $(ctl $SOCK get greeting 2>&1)' \
	eval '[ "$(ctl $SOCK get greeting)" = hello ]'
check journal.err_parsed "the failed check is not at priority 3 (err)" \
	eval 'journal raftd -p 3..3 | grep -q "invalid config: .*no_such_key: unknown key"'
cp /tmp/good.conf /etc/raftd/raftd.conf

# --- 4. a crash loop ends (raftd@clash, started in step 1). Checked before
# any daemon-reload: systemd 252 forgets a unit's start count on a reload.
check crashloop.ends 'raftd@clash: $(prop raftd@clash ActiveState), NRestarts $(prop raftd@clash NRestarts)' \
	wait_until 60 eval 'state_is raftd@clash failed &&
	                    in_journal raftd@clash "Start request repeated too quickly"'
starts() { journalctl -b -q --no-pager -o cat _SYSTEMD_UNIT=raftd@clash.service | grep -c 'cannot start'; }
n=$(starts)
sleep 3
check crashloop.stays_failed 'raftd@clash: $(prop raftd@clash ActiveState), $n starts, then $(starts)' \
	eval 'state_is raftd@clash failed && [ "$(starts)" = "$n" ] && [ "$n" -le 5 ]'
info "crashloop: raftd@clash started $n times, then no more"

# --- 5. the watchdog: a stopped process is killed and restarted, data kept
mkdir -p /run/systemd/system/raftd.service.d
printf '[Service]\nWatchdogSec=2s\n' >/run/systemd/system/raftd.service.d/watchdog.conf
systemctl daemon-reload
systemctl restart raftd.service
ctl_retry 20 $SOCK put wd before >/dev/null
restarts=$(prop raftd NRestarts)
pid=$(prop raftd MainPID)
sleep 3 # longer than the period: keep-alives must arrive
check watchdog.quiet_while_turning 'restarted while healthy (NRestarts $restarts -> $(prop raftd NRestarts))' \
	eval '[ "$(prop raftd NRestarts)" = "$restarts" ] && [ "$(prop raftd MainPID)" = "$pid" ]'
kill -STOP "$pid"
check watchdog.restarts_stopped_process 'no restart after SIGSTOP (NRestarts $(prop raftd NRestarts))' \
	wait_until 30 eval '[ "$(prop raftd NRestarts)" -gt "$restarts" ] && state_is raftd active'
check watchdog.timeout_logged "no 'Watchdog timeout' for raftd" in_journal raftd 'Watchdog timeout'
check watchdog.new_pid "MainPID still $pid" [ "$(prop raftd MainPID)" != "$pid" ]
check watchdog.data_survives 'get wd: $(ctl $SOCK get wd 2>&1)' \
	eval '[ "$(ctl_retry 20 $SOCK get wd >/dev/null; cat /tmp/ctl.out)" = before ]'
rm -f /run/systemd/system/raftd.service.d/watchdog.conf
systemctl daemon-reload

# --- 6. raftd.service and an instance side by side
check side.instance_starts "systemctl start raftd@solo failed" \
	timeout 60 systemctl start raftd@solo.service
ctl_retry 20 $SOLO put where solo >/dev/null
check side.instance_data_apart "instance data inside raftd.service's data dir" \
	eval '[ -d /var/lib/raftd-solo ] && [ -n "$(ls /var/lib/raftd-solo)" ] &&
	      [ -z "$(find /var/lib/raftd -maxdepth 1 -name "*solo*")" ]'
systemctl stop raftd.service
check side.instance_socket_survives "stopping raftd.service removed $SOLO" [ -S $SOLO ]
check side.instance_serves_on 'get on raftd@solo: $(ctl $SOLO get where 2>&1)' \
	eval '[ "$(ctl $SOLO get where)" = solo ]'
systemctl start raftd.service
systemctl stop raftd@solo.service
check side.service_serves_on 'get on raftd.service: $(ctl $SOCK get greeting 2>&1)' \
	eval '[ -S $SOCK ] && [ "$(ctl_retry 20 $SOCK get greeting >/dev/null; cat /tmp/ctl.out)" = hello ]'

# --- 7. stop: exit 0, the socket removed by raftd itself
# The runtime directory is kept, so that a missing socket is raftd's doing;
# the exit status is recorded as the unit stops (a stopped unit is unloaded,
# and systemctl show then tells nothing).
cat >/run/systemd/system/raftd.service.d/stop.conf <<'EOF'
[Service]
RuntimeDirectoryPreserve=yes
ExecStopPost=+/bin/sh -c 'echo "$SERVICE_RESULT $EXIT_CODE $EXIT_STATUS" >/run/raftd-stop-status'
EOF
systemctl daemon-reload
t0=$(now_ms)
systemctl stop raftd.service
info "stop: systemctl stop raftd took $(($(now_ms) - t0)) ms"
check stop.exit_0 'result, code, status: $(cat /run/raftd-stop-status)' \
	eval '[ "$(cat /run/raftd-stop-status)" = "success exited 0" ]'
check stop.socket_removed "$SOCK still there after stop" eval '[ -d /run/raftd ] && [ ! -e $SOCK ]'
check stop.logged "no 'shutdown complete'" in_journal raftd 'shutdown complete'
rm -f /run/systemd/system/raftd.service.d/stop.conf
systemctl daemon-reload

# --- 8. a config error: failed at once, never restarted
systemctl start raftd@bad.service 2>/dev/null
sleep 5 # two RestartSec= periods: a restart would show
check badconfig.failed 'raftd@bad: $(prop raftd@bad ActiveState), NRestarts $(prop raftd@bad NRestarts), status $(prop raftd@bad ExecMainStatus)' \
	eval 'state_is raftd@bad failed && [ "$(prop raftd@bad NRestarts)" = 0 ] &&
	      [ "$(prop raftd@bad ExecMainStatus)" = 78 ]'
check badconfig.named "no file/key in the journal" in_journal raftd@bad 'bad.conf:.*unknown key'

# --- 9. over the whole run
check journal.no_raw_prefixes "a '<N>' prefix reached the journal" \
	eval '! journalctl -b -q --no-pager -o cat _COMM=raftd | grep -q "^<[0-7]>"'
check sandbox.no_sigsys "a raftd process was killed by the syscall filter" \
	eval '! journalctl -b -q --no-pager -o cat | grep -q "status=31/SYS"'

[ $failed = 0 ] || journalctl -b --no-pager >/raftd-test-out/journal.txt 2>&1
echo DONE >>"$OUT"
exit $failed
