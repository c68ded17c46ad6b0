/* Idle groups and node liveness (raftd(8), "Idle groups"; raft/raft.h,
 * "Quiescence"): on real processes, an idle cluster's groups quiesce on
 * every node while the nodes keep exchanging node heartbeats; a write to
 * a quiesced group is applied and read back linearizably; and when a node
 * is killed, the quiesced groups it led elect new leaders (their
 * followers hear that its node stopped being live), so every key can be
 * written and read through the survivors. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void put(unsigned node, int k, const char *val)
{
	char key[32], out[256];
	snprintf(key, sizeof key, "q-%d", k);
	int rv = rd_h_ctl_retry(&C, node, WAIT_S, out, sizeof out, "put", key, val,
	                        (char *)NULL);
	cr_assert_eq(rv, 0, "put %s through node %u: exit %d (logs in %s)", key, node, rv,
	             C.dir);
}

static void expect(unsigned node, int k, const char *val)
{
	char key[32], out[256];
	snprintf(key, sizeof key, "q-%d", k);
	int rv =
	    rd_h_ctl_retry(&C, node, WAIT_S, out, sizeof out, "get", key, (char *)NULL);
	cr_assert_eq(rv, 0, "get %s on node %u: exit %d", key, node, rv);
	cr_assert_eq(strncmp(out, val, strlen(val)), 0, "get %s on node %u: %s", key,
	             node, out);
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
	for (int k = 0; k < KEYS; k++)
		put(2, k, "one");
	for (int k = 0; k < KEYS; k++)
		expect(3, k, "one");
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
	for (int k = 0; k < KEYS; k++)
		put(2, k, "two");
	for (int k = 0; k < KEYS; k++)
		expect(3, k, "two");
	for (unsigned i = 2; i <= 3; i++)
		woke += rd_h_metric(
		    &C, i, "raft_group_wakeups_total{cause=\"peer_down\"}", true);
	cr_assert_gt(woke, 0, "no group woke because node 1 stopped being live");
	cr_assert(rd_h_log_has(&C, 2, "peer not live peer=1"), "logs in %s", C.dir);
	cr_assert_eq(rd_h_metric(&C, 2, "raft_peer_live{peer=\"1\"}", true), 0);

	/* Back with a new process: it catches up and reads the new values. */
	rd_h_start(&C, 1);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	for (int k = 0; k < KEYS; k++)
		expect(1, k, "two");
}
