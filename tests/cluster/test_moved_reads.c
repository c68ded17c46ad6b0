/*
 * Reads on a node a data-group replica was moved away from, real
 * processes: three founders, a fourth node joins and placement moves a
 * share of the replicas onto it (add learner, promote, remove the source).
 * A source node keeps its removed replica's state (it may never hear of its
 * own removal, thesis §4.2.2), including the leader it last followed. Keys
 * written after the moves must read back on every node, the sources
 * included: a linearizable read there is not served by the removed replica
 * (whose applied index will never reach the leader's commit) but follows
 * the group to its leader, as for a group the node never held.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_S 60
#define GROUPS 4

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

/* Data-group replicas of `node` in group 0's placement, as `asker` has it. */
static double replicas_of(unsigned asker, unsigned node)
{
	char series[64];

	snprintf(series, sizeof series, "raft_node_replicas{node=\"%u\"}", node);
	return rd_h_metric(&C, asker, series, false);
}

Test(moved_reads, keys_written_after_a_move_read_back_on_its_source, .fini = teardown,
     .timeout = 300)
{
	struct rd_h_opts o = {.data_groups = GROUPS, .founders = 3};
	bool settled = false;

	rd_h_cluster_init(&C, 4, &o);
	for (unsigned i = 1; i <= 3; i++)
		rd_h_start(&C, i);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "founders not ready (logs in %s)", C.dir);
	rd_h_start(&C, 4);
	cr_assert(rd_h_wait_log(&C, 4, "joined the cluster", WAIT_S),
	          "node 4 did not join (logs in %s)", C.dir);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node 4 not ready (logs in %s)", C.dir);

	/* 12 replicas over 4 nodes, 3 each: node 4's moved off the founders
	 * (one each), as every node sees it, and no move is left in flight. */
	for (int t = 0; t < WAIT_S * 2 && !settled; t++) {
		settled =
		    rd_h_metric(&C, 1, "raft_placement_moves_in_flight", false) == 0 &&
		    rd_h_metric(&C, 2, "raft_placement_moves_in_flight", false) == 0 &&
		    rd_h_metric(&C, 3, "raft_placement_moves_in_flight", false) == 0;
		for (unsigned i = 1; i <= 4 && settled; i++)
			for (unsigned j = 1; j <= 4 && settled; j++)
				settled = replicas_of(i, j) == 3;
		if (!settled)
			usleep(500 * 1000);
	}
	cr_assert(settled,
	          "placement did not settle on node 4: it holds %.0f/%.0f/%.0f/%.0f as "
	          "nodes 1-4 see it (logs in %s)",
	          replicas_of(1, 4), replicas_of(2, 4), replicas_of(3, 4),
	          replicas_of(4, 4), C.dir);
	cr_assert(rd_h_wait_log(&C, 1, "membership change done: remove", WAIT_S),
	          "no source replica removed (logs in %s)", C.dir);

	/* Written after the moves: the leaders' commit indexes pass what the
	 * removed replicas hold. */
	rd_h_put_keys(&C, 4, WAIT_S, "m", 40, "after");
	for (unsigned i = 1; i <= 4; i++)
		for (int k = 0; k < 40; k++) {
			char key[16];
			snprintf(key, sizeof key, "m%d", k);
			rd_h_expect_get(&C, i, 10, key, "after");
		}
	rd_h_check_leaders(&C);
}
