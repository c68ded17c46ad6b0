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
 *
 * The removed replica is then closed on its source (placement_host.c,
 * closable), and a move back opens it again from its storage: after a
 * decommission of the fourth node every founder hosts every group again
 * and reads back what was written meanwhile.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
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

/* Groups node i hosts: those that tick and those quiesced. */
static double hosted(unsigned i)
{
	return rd_h_metric(&C, i, "raft_groups_active", false) +
	       rd_h_metric(&C, i, "raft_groups_quiesced", false);
}

/* Three founders, a fourth node joins, and placement moves a replica of
 * one group off each founder onto it. */
static void grow_to_four(void)
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
		settled = true;
		for (unsigned i = 1; i <= 3 && settled; i++)
			settled = rd_h_metric(&C, i, "raft_placement_moves_in_flight",
			                      false) == 0;
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
}

Test(moved_reads, keys_written_after_a_move_read_back_on_its_source, .fini = teardown,
     .timeout = 300)
{
	grow_to_four();
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

/* Each founder gave one replica to node 4: it closes it (group 0 and three
 * data groups stay), though the group's leader stopped replicating to it
 * before it could apply its removal. Node 4's decommission moves the
 * replicas back: each founder opens its closed replica again from its
 * storage (not as a new one) and serves the keys written while it was
 * closed. */
Test(moved_reads, a_moved_away_replica_closes_and_reopens_when_moved_back,
     .fini = teardown, .timeout = 400)
{
	char out[4096];
	bool closed = false, back = false;
	int st;

	grow_to_four();
	for (int t = 0; t < WAIT_S * 2 && !closed; t++) {
		closed = true;
		for (unsigned i = 1; i <= 3 && closed; i++)
			closed =
			    hosted(i) == 1 + GROUPS - 1 &&
			    rd_h_metric(&C, i, "raft_placement_replicas_closed_total",
			                false) == 1;
		if (!closed)
			usleep(500 * 1000);
	}
	cr_assert(closed,
	          "moved-away replicas not closed: nodes 1-3 host %.0f/%.0f/%.0f groups, "
	          "closed %.0f/%.0f/%.0f (logs in %s)",
	          hosted(1), hosted(2), hosted(3),
	          rd_h_metric(&C, 1, "raft_placement_replicas_closed_total", false),
	          rd_h_metric(&C, 2, "raft_placement_replicas_closed_total", false),
	          rd_h_metric(&C, 3, "raft_placement_replicas_closed_total", false),
	          C.dir);
	for (unsigned i = 1; i <= 3; i++)
		cr_assert(
		    rd_h_log_has(&C, i, "moved away from this node: replica closed"),
		    "node %u (logs in %s)", i, C.dir);

	/* Written while the replicas are closed: the reopened ones must
	 * catch up past them. */
	rd_h_put_keys(&C, 4, WAIT_S, "c", 40, "while-closed");
	int rv = rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "--timeout", "20000",
	                        "members", "remove", "4", (char *)NULL);
	cr_assert_eq(rv, 0, "remove 4: %s (logs in %s)", out, C.dir);
	st = rd_h_wait_exit(&C, 4, 240);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	          "removed node 4: status %d (logs in %s)", st, C.dir);
	for (int t = 0; t < WAIT_S * 2 && !back; t++) {
		back = true;
		for (unsigned i = 1; i <= 3 && back; i++)
			back = hosted(i) == 1 + GROUPS;
		if (!back)
			usleep(500 * 1000);
	}
	cr_assert(back, "not every group hosted again: %.0f/%.0f/%.0f (logs in %s)",
	          hosted(1), hosted(2), hosted(3), C.dir);
	for (unsigned i = 1; i <= 3; i++) {
		/* Reopened from storage: no founder opened a group as new
		 * after its start. */
		cr_assert(rd_h_log_has(&C, i, "this node is a target of group"),
		          "node %u did not reopen (logs in %s)", i, C.dir);
		cr_assert_eq(rd_h_log_count(&C, i, "group opened", "new=1"), GROUPS + 1,
		             "node %u opened a group as new after its start (logs in %s)",
		             i, C.dir);
		for (int k = 0; k < 40; k++) {
			char key[16];
			snprintf(key, sizeof key, "c%d", k);
			rd_h_expect_get(&C, i, WAIT_S, key, "while-closed");
		}
	}
	rd_h_check_leaders(&C);
}
