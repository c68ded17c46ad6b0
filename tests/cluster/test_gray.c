/* Gray failures with real processes (raftd(8), "Gray failures"): a node
 * whose disk turns slow moves its leaderships away and gets none back
 * while slow; a synced write that never returns ends the process; the
 * systemd watchdog keep-alive stops while the loop is stuck; the canary
 * counts a read older than an acknowledged write.
 *
 * Slow and stuck disks come from the storage layer's test-only fault hook
 * (lib/storage/stall.c): $RAFTD_TEST_FSYNC_FAULT names a file that says
 * "delay MS" or "block" to every synced write. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_S 60

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How many groups node `asker` sees led by `leader`, and how many have no
 * leader known; -1 when the groups could not be listed. */
static int led_by(unsigned asker, unsigned leader, unsigned *leaderless)
{
	char out[16384], *line, *save = NULL;
	int k = 0;

	*leaderless = 0;
	int rv = rd_h_ctl(&C, asker, out, sizeof out, "groups", (char *)NULL);
	if (rv != 0) {
		fprintf(stderr, "groups on node %u: exit %d: %s\n", asker, rv, out);
		return -1;
	}
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned g, l, t;
		char role[16];
		if (sscanf(line, "%u %15s %u %u", &g, role, &l, &t) != 4)
			continue;
		k += l == leader;
		*leaderless += l == 0;
	}
	return k;
}

/* A field of `raftctl --json status` on node `i` (0 when absent). */
static unsigned long long status_u64(unsigned i, const char *field)
{
	char out[16384], pat[64], *p;
	unsigned long long v = 0;

	if (rd_h_ctl(&C, i, out, sizeof out, "--json", "status", (char *)NULL) != 0)
		return 0;
	snprintf(pat, sizeof pat, "\"%s\":", field);
	p = strstr(out, pat);
	if (p == NULL)
		return 0;
	p += strlen(pat);
	if (strncmp(p, "true", 4) == 0)
		return 1;
	sscanf(p, "%llu", &v);
	return v;
}

/* The rule (raftd(8), "Gray failures"): a node whose synced writes stay
 * slow transfers every leadership it holds to a caught-up peer and takes
 * none back while slow, neither by election nor by a transfer aimed at
 * it. RD_GRAY_BENCH=1 (make bench-gray) runs it with the default
 * thresholds and prints the time from "disk turned slow" to "no
 * leadership left on that node"; RD_GRAY_DELAY_MS sets the injected delay
 * (default 300), RD_GRAY_ELECTION_TICKS [raft] election_ticks. The test
 * itself asserts no duration. */
Test(gray, slow_disk_moves_leadership_away_and_none_comes_back, .fini = teardown,
     .timeout = 300)
{
	bool bench = getenv("RD_GRAY_BENCH") != NULL;
	const char *conf = bench ? "[health]\ndisk_recover_ms = 600000\n"
	                         : "[health]\ndisk_slow_ms = 100\n"
	                           "disk_slow_window_ms = 1000\n"
	                           "disk_recover_ms = 600000\n"
	                           "canary_interval_ms = 500\n";
	const char *et = getenv("RD_GRAY_ELECTION_TICKS");
	char confbuf[512];
	if (et != NULL) {
		snprintf(confbuf, sizeof confbuf, "%s[raft]\nelection_ticks = %s\n", conf,
		         et);
		conf = confbuf;
	}
	struct rd_h_opts o = {.data_groups = 16, .extra_conf = conf};
	const char *d = getenv("RD_GRAY_DELAY_MS");
	unsigned leaderless = 0, delay_ms = d != NULL ? (unsigned)atoi(d) : 300;
	char out[4096], what[32];
	int led = 0;

	rd_h_cluster_init(&C, 3, &o);
	rd_h_start_hooked(&C, 1, NULL, NULL);
	rd_h_start(&C, 2);
	rd_h_start(&C, 3);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
	/* Bootstrap hints give node 1 a share of the groups (and group 0). */
	for (int i = 0; i < WAIT_S * 10 && led <= 0; i++) {
		led = led_by(1, 1, &leaderless);
		if (led <= 0)
			usleep(100 * 1000);
	}
	cr_assert_gt(led, 0, "node 1 leads nothing before the fault");
	cr_assert_eq(status_u64(1, "disk_slow"), 0);

	/* The benchmark lets every group's canary run first, so that the
	 * disk has a healthy record before it turns slow. */
	if (bench)
		sleep(12);
	snprintf(what, sizeof what, "delay %u", delay_ms);
	rd_h_set_fault(&C, 1, what);
	double t0 = now_s(), t_gone = 0;
	int led_at_fault = led;
	double t_slow = 0;
	/* Leadership as a healthy node sees it (it answers at once), and the
	 * slow node's own verdict. */
	for (int i = 0; i < WAIT_S * 20 && (t_gone == 0 || t_slow == 0); i++) {
		led = led_by(2, 1, &leaderless);
		if (led == 0 && t_gone == 0)
			t_gone = now_s();
		if (led > 0)
			t_gone = 0;
		if (t_slow == 0 && status_u64(1, "disk_slow") == 1)
			t_slow = now_s();
		usleep(50 * 1000);
	}
	cr_assert(t_gone != 0, "node 1 still leads %d groups (logs in %s)", led, C.dir);
	cr_assert(t_slow != 0, "node 1 never judged its disk slow");
	cr_assert_geq(status_u64(1, "disk_evacuations"), 1);
	cr_assert(rd_h_log_has(&C, 1, "disk slow:"), "no 'disk slow' line in %s",
	          C.nodes[0].log);
	if (bench)
		printf(
		    "bench-gray: 3 nodes, 16 data groups, node 1 led %d of 17 groups; "
		    "every fsync on node 1 made %u ms slower; default thresholds "
		    "(p99 over 100 ms for 5 s), election_ticks %s (10 ms ticks): node 1 "
		    "judged its disk slow after %.2f s; no leadership left on node 1 "
		    "(for good) after %.2f s\n",
		    led_at_fault, delay_ms, et != NULL ? et : "30", t_slow - t0,
		    t_gone - t0);

	/* Its batches told the peers: a transfer aimed at it is refused by
	 * the leader (and one that started anyway would be ignored by the
	 * slow node, see tests/raft). Give the flag a moment to arrive. */
	sleep(2);
	for (unsigned g = 0; g <= 16; g++) {
		char gs[8];
		snprintf(gs, sizeof gs, "%u", g);
		int rv = rd_h_ctl(&C, 2, out, sizeof out, "transfer-leader", gs, "1",
		                  (char *)NULL);
		cr_assert_neq(rv, 0, "node 2 started a transfer of group %u to node 1",
		              g);
	}
	cr_assert(rd_h_log_has(&C, 2, "peer reports a slow disk"),
	          "node 2 never learnt it");
	/* Several election timeouts: elections, the abandoned transfer. */
	for (int i = 0; i < 30; i++) {
		led = led_by(2, 1, &leaderless);
		cr_assert_leq(led, 0, "node 1 got leadership back (logs in %s)", C.dir);
		usleep(100 * 1000);
	}
	cr_assert_geq(status_u64(2, "canary_checks"), 1, "the canary never checked");
	cr_assert_eq(status_u64(2, "canary_violations"), 0);
	cr_assert_eq(status_u64(3, "canary_violations"), 0);
	/* Writes still work on the healthy nodes, and through the slow one. */
	cr_assert_eq(rd_h_ctl_retry(&C, 2, WAIT_S, out, sizeof out, "put", "gray-k", "v",
	                            (char *)NULL),
	             0);
	cr_assert_eq(rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "put", "gray-k2", "v",
	                            (char *)NULL),
	             0);
}

/* A synced write outstanding past [health] disk_stall_ms aborts the
 * process with one crit line, so that peers elect and the supervisor
 * restarts it instead of a node hanging forever. */
Test(gray, a_stuck_fsync_aborts_the_process_after_the_limit, .fini = teardown,
     .timeout = 180)
{
	struct rd_h_opts o = {.data_groups = 2,
	                      .extra_conf = "[health]\ndisk_stall_ms = 1500\n"
	                                    "canary_interval_ms = 0\n"};
	char out[4096];

	rd_h_hooked_node_up(&C, &o, WAIT_S);
	/* A slow write below the limit is fine. */
	rd_h_set_fault(&C, 1, "delay 500");
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "put", "b", "2", (char *)NULL), 0);
	cr_assert_eq(rd_h_wait_exit(&C, 1, 3), -1, "the node ended after a slow write");
	/* That write took 10 tick intervals: the log says so, as a slow
	 * iteration when the loop waited for it ([storage] async_write =
	 * no), else as a slow write. */
	cr_assert(rd_h_log_has(&C, 1, "slow loop iteration") ||
	              rd_h_log_has(&C, 1, "slow storage write"),
	          "no slow-iteration or slow-write line");
	cr_assert(rd_h_log_has(&C, 1, "phase=write"), "the slow phase is not named");

	rd_h_set_fault(&C, 1, "block");
	pid_t client = rd_h_put_async(&C, 1, "2000", "c");
	int st = rd_h_wait_exit(&C, 1, WAIT_S);
	rd_h_reap(client);
	cr_assert_neq(st, -1, "the node is still running with a stuck fsync");
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
	          "expected SIGABRT, wait status %#x", st);
	cr_assert(rd_h_log_has(&C, 1, "<2>storage stalled, aborting"),
	          "no crit line in %s", C.nodes[0].log);
}

/* Receive the next datagram on `fd` within `ms`: its length, 0 on timeout. */
static ssize_t recv_within(int fd, char *buf, size_t size, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t r;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	r = recv(fd, buf, size - 1, 0);
	if (r < 0)
		return 0;
	buf[r] = '\0';
	return r;
}

/* Wait at most `ms` for a WATCHDOG=1 keep-alive. */
static bool keepalive_within(int fd, int ms)
{
	char buf[512];
	double end = now_s() + ms / 1000.0;

	while (now_s() < end) {
		int left = (int)((end - now_s()) * 1000) + 1;
		if (recv_within(fd, buf, sizeof buf, left) > 0 &&
		    strstr(buf, "WATCHDOG=1"))
			return true;
	}
	return false;
}

/* sd_notify(3) protocol: the service sends datagrams to $NOTIFY_SOCKET and,
 * with $WATCHDOG_USEC set, WATCHDOG=1 within every period. raftd sends it
 * only while it makes progress, so a loop stuck in a synced write lets
 * the watchdog fire; it resumes once the write returns. */
Test(gray, the_watchdog_stops_while_the_loop_is_stuck, .fini = teardown, .timeout = 180)
{
	struct rd_h_opts o = {.data_groups = 2,
	                      .extra_conf = "[health]\ndisk_stall_ms = 0\n"
	                                    "canary_interval_ms = 0\n"};
	char out[4096];
	int fd;

	rd_h_cluster_init(&C, 1, &o);
	fd = rd_h_notify_bind(&C, "400000");
	rd_h_start_hooked(&C, 1, NULL, NULL);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node not ready (logs in %s)", C.dir);
	cr_assert(keepalive_within(fd, 10000), "no WATCHDOG=1 from a healthy node");

	rd_h_set_fault(&C, 1, "block");
	pid_t client = rd_h_put_async(&C, 1, "2000", "stuck");
	/* Once the write blocks, keep-alives stop: a silence of 5 periods
	 * must come (it cannot while the loop turns every 10 ms). */
	bool silent = false;
	for (int i = 0; i < 30 && !silent; i++)
		silent = !keepalive_within(fd, 2000);
	cr_assert(silent, "WATCHDOG=1 kept coming while the loop was stuck");

	rd_h_set_fault(&C, 1, "");
	cr_assert(keepalive_within(fd, 30000), "WATCHDOG=1 did not resume");
	rd_h_reap(client);
	cr_assert_eq(
	    rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "get", "stuck", (char *)NULL),
	    0);
	close(fd);
}

/* The canary writes and reads back linearizably; a read older than an
 * acknowledged write is a violation. The test hook makes every canary
 * read look one value older: the violation is logged at crit and counted. */
Test(gray, the_canary_counts_a_stale_read, .fini = teardown, .timeout = 180)
{
	struct rd_h_opts o = {.data_groups = 2,
	                      .extra_conf = "[health]\ncanary_interval_ms = 200\n"};
	unsigned long long v = 0;

	rd_h_cluster_init(&C, 1, &o);
	rd_h_start_hooked(&C, 1, "RAFTD_TEST_CANARY_STALE_READ", "1");
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node not ready (logs in %s)", C.dir);
	for (int i = 0; i < WAIT_S * 10 && v == 0; i++) {
		v = status_u64(1, "canary_violations");
		if (v == 0)
			usleep(100 * 1000);
	}
	cr_assert_gt(v, 0, "no canary violation counted (logs in %s)", C.dir);
	cr_assert(rd_h_log_has(&C, 1, "<2>canary violation"), "no crit line in %s",
	          C.nodes[0].log);
}
