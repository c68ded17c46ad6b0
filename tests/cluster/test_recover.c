/*
 * Quorum-loss recovery (multiraft/recover.c, raftd(8) --force-new-cluster),
 * with real processes: 3 nodes, 2 of them gone for good. The survivor alone
 * serves nothing (no quorum, thesis §3.6); started with
 * --force-new-cluster it becomes the only member of every group, serves
 * writes, and every write it acknowledged before is still readable (it
 * answered each only after applying it, so each was committed there).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_S 30
#define KEYS   40

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

static void put(unsigned node, const char *key, const char *value)
{
	char out[512];
	int rv = rd_h_ctl_retry(&C, node, WAIT_S, out, sizeof out, "put", key, value,
	                        (char *)NULL);
	cr_assert_eq(rv, 0, "put %s on node %u: exit %d", key, node, rv);
}

static void expect(unsigned node, const char *key, const char *value)
{
	char out[512];
	int rv =
	    rd_h_ctl_retry(&C, node, WAIT_S, out, sizeof out, "get", key, (char *)NULL);
	cr_assert_eq(rv, 0, "get %s on node %u: exit %d", key, node, rv);
	size_t len = strlen(out);
	if (len > 0 && out[len - 1] == '\n')
		out[len - 1] = '\0';
	cr_assert_str_eq(out, value, "key %s", key);
}

/* Lines of `raftctl members` on node 1 that contain `word`. */
static unsigned members_with(const char *word)
{
	char out[4096], *line, *save = NULL;
	unsigned k = 0;

	if (rd_h_ctl(&C, 1, out, sizeof out, "members", (char *)NULL) != 0)
		return 0;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		k += strstr(line, word) != NULL;
	return k;
}

/* Start node 1 alone, with or without the option, and wait until ready. */
static void start_survivor(bool force)
{
	C.nodes[0].force_new = force;
	rd_h_start(&C, 1);
	C.nodes[0].force_new = false;
	cr_assert(rd_h_wait_ready(&C, 60), "node 1 ready (logs in %s)", C.dir);
}

Test(recover, a_survivor_forced_into_a_new_cluster_keeps_what_it_acknowledged,
     .fini = teardown, .timeout = 300)
{
	char key[32], val[32], out[512];

	rd_h_cluster_up(&C, 3, 4, WAIT_S);
	/* Every node's incarnation registered (no all-zero one listed). */
	for (int i = 0; i < WAIT_S * 10 && members_with("0000000000000000") > 0; i++)
		usleep(100 * 1000);
	cr_assert_eq(members_with("0000000000000000"), 0);
	for (int i = 0; i < KEYS; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(val, sizeof val, "v%d", i);
		put(1, key, val);
	}
	/* Nodes 2 and 3 are lost for good; node 1 restarts alone. */
	rd_h_stop(&C, 2, SIGKILL);
	rd_h_stop(&C, 3, SIGKILL);
	cr_assert(WIFEXITED(rd_h_stop(&C, 1, SIGTERM)));
	rd_h_start(&C, 1);
	cr_assert_eq(
	    rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "status", (char *)NULL), 0);
	cr_assert_eq(
	    rd_h_ctl(&C, 1, out, sizeof out, "put", "lost", "quorum", (char *)NULL), 1,
	    "one of three voters is no quorum: the write fails");
	rd_h_stop(&C, 1, SIGTERM);

	start_survivor(true);
	cr_assert(rd_h_log_has(&C, 1, "force-new-cluster: UNSAFE"));
	cr_assert(rd_h_log_has(
	    &C, 1, "force-new-cluster: group=0 old configuration voters=1,2,3"));
	cr_assert(rd_h_log_has(&C, 1,
	                       "force-new-cluster: group=1 new configuration "
	                       "voters=1 learners=-"));
	for (int i = 0; i < KEYS; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(val, sizeof val, "v%d", i);
		expect(1, key, val);
	}
	put(1, "after", "recovery");
	expect(1, "after", "recovery");
	/* Group 0's removals updated the member table: 2 and 3 "removed". */
	cr_assert_eq(members_with("removed"), 2, "members of node 1 after recovery");

	/* Later starts need no option; the option again changes nothing. */
	rd_h_stop(&C, 1, SIGTERM);
	start_survivor(false);
	expect(1, "after", "recovery");
	rd_h_stop(&C, 1, SIGTERM);
	start_survivor(true);
	cr_assert(
	    rd_h_log_has(&C, 1, "group=1 already has this node as its only member"));
	expect(1, "k0", "v0");
	put(1, "again", "ok");
	expect(1, "again", "ok");
}
