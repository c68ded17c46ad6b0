/* Idle groups and node liveness (raftd(8), "Idle groups"; raft/raft.h,
 * "Quiescence"): on real processes, an idle cluster's groups quiesce on
 * every node while the nodes keep exchanging node heartbeats; a write to
 * a quiesced group is applied and read back linearizably; and when a node
 * is killed, the quiesced groups it led elect new leaders (their
 * followers hear that its node stopped being live), so every key can be
 * written and read through the survivors. A node whose groups are all
 * quiesced ticks once per node heartbeat interval, and still answers, sends
 * WATCHDOG=1 and notices a dead peer; with [raft] quiesce = no, groups
 * never quiesce. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/http.h"
#include "harness.h"

#define GROUPS 8
#define KEYS   48
#define WAIT_S 30

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

/* Wait until every group node i hosts (GROUPS data groups and group 0)
 * is quiesced; false after WAIT_S seconds. */
static bool all_quiesced(unsigned i)
{
	for (int t = 0; t < WAIT_S * 10; t++) {
		if (rd_h_metric(&C, i, "raft_groups_quiesced", true) == GROUPS + 1 &&
		    rd_h_metric(&C, i, "raft_groups_active", true) == 0)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* Key q-k. */
static const char *qkey(int k)
{
	static char key[32];
	snprintf(key, sizeof key, "q-%d", k);
	return key;
}

/* Keys q-0 .. q-(n - 1) set to `val` through node `node`. */
static void put_n(unsigned node, int n, const char *val)
{
	for (int k = 0; k < n; k++)
		rd_h_put(&C, node, WAIT_S, qkey(k), val);
}

/* Keys q-0 .. q-(n - 1) read through node `node` as `val`. */
static void expect_n(unsigned node, int n, const char *val)
{
	for (int k = 0; k < n; k++)
		rd_h_expect_get(&C, node, WAIT_S, qkey(k), val);
}

Test(quiesce, idle_groups_quiesce_and_a_dead_nodes_groups_elect_again, .fini = teardown,
     .timeout = 240)
{
	double woke = 0;

	rd_h_cluster_up(&C, 3, GROUPS, 60);
	for (unsigned i = 1; i <= 3; i++)
		cr_assert(all_quiesced(i), "node %u: groups did not quiesce (logs in %s)",
		          i, C.dir);
	/* Quiesced groups send nothing; the nodes still heartbeat each other. */
	cr_assert_gt(
	    rd_h_metric(&C, 1, "raft_peer_node_heartbeats_sent_total{peer=\"2\"}", true),
	    0);
	cr_assert_eq(rd_h_metric(&C, 1, "raft_peer_live{peer=\"2\"}", true), 1);

	/* Writes wake the groups; linearizable reads see them. */
	put_n(2, KEYS, "one");
	expect_n(3, KEYS, "one");
	cr_assert_gt(
	    rd_h_metric(&C, 1, "raft_group_wakeups_total{cause=\"proposal\"}", true) +
	        rd_h_metric(&C, 2, "raft_group_wakeups_total{cause=\"proposal\"}", true) +
	        rd_h_metric(&C, 3, "raft_group_wakeups_total{cause=\"proposal\"}", true),
	    0);
	for (unsigned i = 1; i <= 3; i++)
		cr_assert(all_quiesced(i), "node %u: groups did not quiesce again", i);

	/* Node 1 leads some groups (bootstrap hints spread leadership) and
	 * dies while they are quiesced: their followers must elect. */
	rd_h_stop(&C, 1, SIGKILL);
	put_n(2, KEYS, "two");
	expect_n(3, KEYS, "two");
	for (unsigned i = 2; i <= 3; i++)
		woke += rd_h_metric(
		    &C, i, "raft_group_wakeups_total{cause=\"peer_down\"}", true);
	cr_assert_gt(woke, 0, "no group woke because node 1 stopped being live");
	cr_assert(rd_h_log_has(&C, 2, "peer not live peer=1"), "logs in %s", C.dir);
	cr_assert_eq(rd_h_metric(&C, 2, "raft_peer_live{peer=\"1\"}", true), 0);

	/* Back with a new process: it catches up and reads the new values. */
	rd_h_start(&C, 1);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	expect_n(1, KEYS, "two");
}

/* Wait until node i's groups are all quiesced and its tick timer fires
 * once per node heartbeat interval (a third of an election timeout: 100
 * ms at the defaults, against a tick of 10 ms); false after WAIT_S
 * seconds. */
static bool ticks_slowly(unsigned i)
{
	for (int t = 0; t < WAIT_S * 10; t++) {
		if (rd_h_metric(&C, i, "raft_groups_active", true) == 0 &&
		    rd_h_metric(&C, i, "raft_tick_period_seconds", true) > 0.099 &&
		    rd_h_metric(&C, i, "raft_tick_period_seconds", true) < 0.101)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait at most `ms` for a WATCHDOG=1 datagram on `fd` (sd_notify(3)). */
static bool keepalive_within(int fd, int ms)
{
	char buf[512];
	double end = now_s() + ms / 1000.0;

	while (now_s() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;
		if (poll(&p, 1, (int)((end - now_s()) * 1000) + 1) <= 0)
			continue;
		r = recv(fd, buf, sizeof buf - 1, 0);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		if (strstr(buf, "WATCHDOG=1"))
			return true;
	}
	return false;
}

/* An idle node ticks at the node heartbeat interval instead of every
 * tick_ms (node.c, rd_node_tick_arm), and none of what the tick carries
 * stops: WATCHDOG=1 keeps coming (systemd would want one within 400 ms
 * here; raftd paces them to 100 ms), the node answers requests and
 * /livez, and when a peer dies the quiesced groups it led wake and elect
 * (node liveness counts the loop time each firing stands for), so every
 * key can be written through the survivors. */
Test(quiesce, an_idle_node_ticks_slowly_and_still_answers_watches_and_notifies,
     .fini = teardown, .timeout = 240)
{
	struct rd_h_opts o = {.data_groups = GROUPS,
	                      .extra_conf = "[health]\ncanary_interval_ms = 0\n"};
	char out[4096], body[256], path[300];
	int fd;

	rd_h_cluster_init(&C, 3, &o);
	fd = rd_h_notify_bind(&C, "400000");
	rd_h_start(&C, 1);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	rd_h_start(&C, 2);
	rd_h_start(&C, 3);
	cr_assert(rd_h_wait_ready(&C, 60), "cluster not ready (logs in %s)", C.dir);
	for (unsigned i = 1; i <= 3; i++)
		cr_assert(ticks_slowly(i),
		          "node %u: no slow tick with every group quiesced (logs in %s)",
		          i, C.dir);

	/* Idle, it still keeps its watchdog, answers and is live. */
	for (int k = 0; k < 5; k++)
		cr_assert(keepalive_within(fd, 2000), "no WATCHDOG=1 from an idle node");
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "status", (char *)NULL), 0, "%s",
	             out);
	cr_assert_eq(rd_t_http_get(C.nodes[0].admin_port, "/livez", body, sizeof body),
	             200, "%s", body);
	cr_assert_eq(rd_h_metric(&C, 1, "raft_groups_active", true), 0,
	             "a group woke while idle");

	/* Node 3 dies while everything is quiesced: node 1 notices through
	 * node liveness alone, its WATCHDOG=1 still coming meanwhile. */
	rd_h_stop(&C, 3, SIGKILL);
	bool noticed = false;
	for (int t = 0; t < WAIT_S && !noticed; t++) {
		cr_assert(keepalive_within(fd, 2000),
		          "no WATCHDOG=1 after the peer died");
		noticed = rd_h_log_has(&C, 1, "peer not live peer=3");
	}
	cr_assert(noticed, "node 1 did not notice node 3's death (logs in %s)", C.dir);
	/* Nobody reads the datagrams from now on: the socket goes, so that
	 * sd_notify(3) is refused instead of waiting for room. */
	close(fd);
	snprintf(path, sizeof path, "%s/notify", C.dir);
	unlink(path);

	/* The quiesced groups node 3 led elect again: every key can be
	 * written through the survivors. */
	put_n(1, KEYS, "idle");
	expect_n(2, KEYS, "idle");
	cr_assert_gt(
	    rd_h_metric(&C, 1, "raft_group_wakeups_total{cause=\"peer_down\"}", true) +
	        rd_h_metric(&C, 2, "raft_group_wakeups_total{cause=\"peer_down\"}", true),
	    0, "no group woke because node 3 stopped being live");
}

/* [raft] quiesce = no: every group keeps ticking and heartbeating as in
 * plain Raft, so none ever quiesces, and the tick stays at tick_ms. Two
 * seconds of idleness are more than sixty heartbeat intervals, when the
 * groups of the test above are quiesced after a few. */
Test(quiesce, with_quiesce_off_groups_keep_ticking, .fini = teardown, .timeout = 240)
{
	struct rd_h_opts o = {.data_groups = GROUPS,
	                      .extra_conf = "[raft]\nquiesce = no\n"
	                                    "[health]\ncanary_interval_ms = 0\n"};

	rd_h_cluster_init(&C, 3, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, 60), "cluster not ready (logs in %s)", C.dir);
	put_n(1, 1, "on");
	expect_n(2, 1, "on");
	sleep(2);
	for (unsigned i = 1; i <= 3; i++) {
		cr_assert_eq(rd_h_metric(&C, i, "raft_groups_quiesced", true), 0,
		             "node %u (logs in %s)", i, C.dir);
		cr_assert_eq(rd_h_metric(&C, i, "raft_groups_active", true), GROUPS + 1,
		             "node %u", i);
		cr_assert_eq(rd_h_metric(&C, i, "raft_group_quiesces_total", true), 0,
		             "node %u", i);
		cr_assert_lt(rd_h_metric(&C, i, "raft_tick_period_seconds", true), 0.011,
		             "node %u", i);
	}
}
