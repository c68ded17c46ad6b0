/* The storage writer thread ([storage] async_write, lib/storage/writer.c):
 * the loop hands each iteration's batch to it and goes on stepping input,
 * but nothing that depends on the batch leaves before the writer reports
 * it durable (lib/README.md, "The ordering rule"; Raft thesis §3.8: a
 * server answers only from state on stable storage).
 *
 * The disk is held with the storage layer's test-only fault hook
 * (lib/storage/stall.c): $RAFTD_TEST_FSYNC_FAULT names a file that says
 * "block" to every synced write until it says something else. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_S 60

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

/* The writer thread on, and no health rule that would act on a held disk
 * (no stall abort, no slow-disk step-down, no canary). */
#define HELD_CONF                                                                        \
	"[storage]\nasync_write = yes\n"                                                 \
	"[health]\ndisk_stall_ms = 0\ndisk_slow_ms = 600000\ncanary_interval_ms = 0\n"

/* The child's exit status once it ends within `secs`, -1 if it did not. */
static int exited_within(pid_t pid, unsigned secs)
{
	int st;

	for (unsigned k = 0; k < secs * 10; k++) {
		pid_t p = waitpid(pid, &st, WNOHANG);
		if (p == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		usleep(100 * 1000);
	}
	return -1;
}

/* Hold node `node`'s disk and put `key` on it from a child: through four
 * turns of the loop (each a `status` it answers) the put stays unanswered;
 * once the disk is released it is answered. */
static void put_answered_only_after_release(unsigned node, const char *key)
{
	char out[4096];

	rd_h_set_fault(&C, node, "block");
	pid_t client = rd_h_put_async(&C, node, "60000", key);
	/* Several status requests over two seconds: each needs a turn of the
	 * loop, and the put stays unanswered through all of them. */
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(rd_h_ctl(&C, node, out, sizeof out, "status", (char *)NULL),
		             0, "node %u's loop stopped turning while its write was held",
		             node);
		int rv = exited_within(client, 1);
		if (rv != -1) {
			rd_h_set_fault(&C, node, "");
			cr_assert_fail("node %u answered the put (exit %d) while its own "
			               "write was held",
			               node, rv);
		}
	}
	rd_h_set_fault(&C, node, "");
	int rv = exited_within(client, WAIT_S);
	if (rv == -1)
		rd_h_reap(client);
	cr_assert_eq(rv, 0, "put %s not answered once node %u's write returned", key,
	             node);
}

/* A single node: the entry commits only once its own write is durable, and
 * the writer holds that write. The put is not answered while the write is
 * blocked, however long the loop keeps turning (it answers `status` all
 * along, which a loop waiting in fdatasync could not), and it is answered
 * once the write returns. */
Test(async_write, a_write_is_answered_only_after_its_batch_is_durable, .fini = teardown,
     .timeout = 180)
{
	struct rd_h_opts o = {.data_groups = 2, .extra_conf = HELD_CONF};
	char out[4096];

	rd_h_hooked_node_up(&C, &o, WAIT_S);

	put_answered_only_after_release(1, "held");
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "get", "held", (char *)NULL), 0);
	cr_assert_str_eq(out, "v\n");
}

/* Three nodes, only the data group leader's disk held: the followers'
 * writes go through, so they persist and acknowledge the entry (the
 * leader sent its appends before its own write, thesis §10.2.1), and still
 * the leader answers only after its own batch is written. */
Test(async_write, a_leader_with_a_held_disk_answers_after_its_write, .fini = teardown,
     .timeout = 240)
{
	struct rd_h_opts o = {.data_groups = 1, .extra_conf = HELD_CONF};
	char out[4096];
	unsigned leader = 0;

	rd_h_cluster_init(&C, 3, &o);
	for (unsigned i = 1; i <= 3; i++)
		rd_h_start_hooked(&C, i, NULL, NULL);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "nodes not ready (logs in %s)", C.dir);
	cr_assert_eq(
	    rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "put", "a", "1", (char *)NULL),
	    0);
	for (int i = 0; i < WAIT_S * 10 && leader == 0; i++) {
		leader = rd_h_leader_of(&C, 1, 1);
		if (leader == 0)
			usleep(100 * 1000);
	}
	cr_assert_neq(leader, 0, "no leader of group 1 (logs in %s)", C.dir);

	put_answered_only_after_release(leader, "x");
	for (unsigned i = 1; i <= 3; i++) {
		cr_assert_eq(rd_h_ctl_retry(&C, i, WAIT_S, out, sizeof out, "get", "x",
		                            (char *)NULL),
		             0);
		cr_assert_str_eq(out, "v\n");
	}
}
