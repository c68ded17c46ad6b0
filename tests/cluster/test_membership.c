/*
 * Membership safety with real processes (multiraft/membership.c): a node
 * whose data directory is wiped comes back with a new incarnation, and must
 * never vote or acknowledge with the state it forgot (Raft thesis §3.8).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/http.h"
#include "harness.h"

#define WAIT_S 30

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

/* Start all three and wait until node 1 applied every registration:
 * `raftctl members` shows an incarnation for each member (all zeros would
 * mean none). */
static void start_registered(const struct rd_h_opts *o)
{
	char mem[4096];
	bool all = false;

	rd_h_cluster_init(&C, 3, o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
	for (int i = 0; i < WAIT_S * 10 && !all; i++) {
		cr_assert_eq(rd_h_ctl(&C, 1, mem, sizeof mem, "members", (char *)NULL),
		             0);
		all = strstr(mem, "0000000000000000") == NULL;
		if (!all)
			usleep(100 * 1000);
	}
	cr_assert(all, "members without a registered incarnation:\n%s", mem);
}

/* Kill node 3, wipe its data directory, start it again: it comes back with
 * a new incarnation, asks its peers before founding, learns that the
 * cluster registers another one and says in one line that it rejoins as a
 * new replica, and creates no founding state (its groups open without a
 * configuration); the cluster keeps its writes and accepts new ones; no
 * group ever has two leaders in one term as the nodes report them; the
 * node becomes ready. (test_members_change.c: it ends a voter of every
 * group, and counts for a quorum.)
 */
Test(membership, a_wiped_node_does_not_vote_with_forgotten_state, .fini = teardown,
     .timeout = 240)
{
	/* The default idle timeout: the restarted node's dials replace its
	 * peers' connections to the killed process at once
	 * (lib/transport/peer.c). */
	struct rd_h_opts o = {.data_groups = 4};
	char key[32], cmd[512];

	start_registered(&o);
	/* Founders that all start empty ask first, then found: group 0 is
	 * created once on each. */
	for (unsigned i = 1; i <= 3; i++) {
		cr_assert(rd_h_log_has(&C, i, "no founding state: asking"),
		          "node %u founded without asking (logs in %s)", i, C.dir);
		cr_assert_eq(rd_h_log_count(&C, i, "group opened group=0 ", "new=1"), 1,
		             "node %u (logs in %s)", i, C.dir);
	}
	for (unsigned i = 1; i <= 3; i++)
		cr_assert(rd_h_wait_log(&C, i, "incarnation registered", WAIT_S),
		          "node %u did not register its incarnation (logs in %s)", i,
		          C.dir);
	rd_h_put_keys(&C, 3, WAIT_S, "a", 20, "before");
	rd_h_check_leaders(&C);

	int st = rd_h_stop(&C, 3, SIGKILL);
	cr_assert(WIFSIGNALED(st));
	snprintf(cmd, sizeof cmd, "rm -rf %s/data3", C.dir);
	cr_assert_eq(system(cmd), 0);
	rd_h_start(&C, 3);
	if (!rd_h_wait_log(&C, 3, "rejoining as a new replica", WAIT_S) &&
	    getenv("RD_TEST_KEEP") != NULL) {
		snprintf(cmd, sizeof cmd, "cp -r %s %s", C.dir, getenv("RD_TEST_KEEP"));
		cr_assert_eq(system(cmd), 0);
	}
	cr_assert(rd_h_log_has(&C, 3, "rejoining as a new replica"),
	          "the wiped node did not say it rejoins (logs in %s)", C.dir);
	/* It asked before founding and, told another incarnation holds its
	 * id, created no founding state: every group it opened since the
	 * wipe has no configuration (the founding ones are its first
	 * start's); it takes part only as the new replicas the group-0 leader
	 * adds (test_members_change.c follows it to the end). */
	cr_assert_eq(rd_h_log_count(&C, 3, "no founding state: asking", ""), 2,
	             "logs in %s", C.dir);
	cr_assert_eq(rd_h_log_count(&C, 3, "group opened", "voters=3 new=1"),
	             1 + o.data_groups,
	             "the wiped node created founding state (logs in %s)", C.dir);
	cr_assert_eq(rd_h_log_count(&C, 3, "group opened", "voters=0 new=1"),
	             1 + o.data_groups,
	             "the wiped node opened no empty group (logs in %s)", C.dir);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "b%d", i);
		rd_h_put(&C, 1 + (unsigned)(i % 2), WAIT_S, key, "after");
		rd_h_check_leaders(&C);
	}
	cr_assert(rd_h_wait_ready(&C, 120), "the rejoined node is not ready (logs in %s)",
	          C.dir);
	rd_h_expect_keys(&C, 2, WAIT_S, "a", 20, "before");
	rd_h_expect_keys(&C, 2, WAIT_S, "b", 20, "after");
	rd_h_check_leaders(&C);
}

/* What asking first does not cover: node 3 is wiped and starts while no
 * peer runs, so nobody answers its probes and it founds after the bound.
 * Once its peers are back, they drop its Raft batches (counted), it learns
 * that the cluster registers another incarnation and says so, it is never
 * ready, and the cluster keeps its writes and accepts new ones. */
Test(membership, a_wiped_node_that_founds_alone_is_refused, .fini = teardown,
     .timeout = 240)
{
	struct rd_h_opts o = {.data_groups = 2,
	                      .extra_conf = "[transport]\nidle_timeout_ms = 5000\n"};
	const char *refused =
	    "raft_tick_loop_errors_total{kind=\"stale_incarnation_batch\"}";
	char key[32], cmd[512], out[4096];
	int st;

	start_registered(&o);
	rd_h_put_keys(&C, 3, WAIT_S, "a", 10, "before");
	st = rd_h_stop(&C, 3, SIGKILL);
	cr_assert(WIFSIGNALED(st));
	for (unsigned i = 1; i <= 2; i++)
		cr_assert(WIFEXITED(rd_h_stop(&C, i, SIGTERM)));
	snprintf(cmd, sizeof cmd, "rm -rf %s/data3", C.dir);
	cr_assert_eq(system(cmd), 0);
	rd_h_start(&C, 3);
	cr_assert(rd_h_wait_log(&C, 3, "peers did not answer within", WAIT_S),
	          "the wiped node did not found alone (logs in %s)", C.dir);
	cr_assert_eq(rd_h_log_count(&C, 3, "group opened group=0 ", "new=1"), 2,
	             "logs in %s", C.dir);
	rd_h_start(&C, 1);
	rd_h_start(&C, 2);
	cr_assert(rd_h_wait_log(&C, 3, "this node's data was lost", WAIT_S),
	          "the wiped node did not say it lost its data (logs in %s)", C.dir);
	bool counted = false;
	for (int i = 0; i < WAIT_S * 10 && !counted; i++) {
		counted = rd_h_metric(&C, 1, refused, false) +
		              rd_h_metric(&C, 2, refused, false) >
		          0;
		if (!counted)
			usleep(100 * 1000);
	}
	cr_assert(counted, "no peer counted a refused batch of the wiped node");
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "a%d", i);
		rd_h_expect_get(&C, 1 + (unsigned)(i % 2), WAIT_S, key, "before");
		snprintf(key, sizeof key, "b%d", i);
		rd_h_put(&C, 1 + (unsigned)(i % 2), WAIT_S, key, "after");
		rd_h_check_leaders(&C);
	}
	cr_assert_neq(rd_h_ctl(&C, 3, out, sizeof out, "ready", (char *)NULL), 0,
	              "the wiped node must not serve as a member");
}
