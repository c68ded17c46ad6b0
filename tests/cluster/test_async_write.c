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
#include <fcntl.h>
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

static void start_hooked(unsigned i)
{
	char path[256];

	rd_h_fault_path(&C, i, path, sizeof path);
	setenv("RAFTD_TEST_FSYNC_FAULT", path, 1);
	rd_h_start(&C, i);
	unsetenv("RAFTD_TEST_FSYNC_FAULT");
}

/* `raftctl put KEY v` on node i from a child process, not waited for. */
static pid_t put_async(unsigned i, const char *key)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char out[256];
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		_exit(rd_h_ctl(&C, i, out, sizeof out, "--timeout", "60000", "put", key,
		               "v", (char *)NULL));
	}
	return pid;
}

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

static void reap(pid_t pid)
{
	int st;
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

/* A single node: the entry commits only once its own write is durable, and
 * the writer holds that write. The put is not answered while the write is
 * blocked, however long the loop keeps turning (it answers `status` all
 * along, which a loop waiting in fdatasync could not), and it is answered
 * once the write returns. */
Test(async_write, a_write_is_answered_only_after_its_batch_is_durable, .fini = teardown,
     .timeout = 180)
{
	struct rd_h_opts o = {.data_groups = 2,
	                      .extra_conf = "[storage]\nasync_write = yes\n"
	                                    "[health]\ndisk_stall_ms = 0\n"
	                                    "disk_slow_ms = 600000\n"
	                                    "canary_interval_ms = 0\n"};
	char out[4096];

	rd_h_cluster_init(&C, 1, &o);
	start_hooked(1);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node not ready (logs in %s)", C.dir);
	cr_assert_eq(
	    rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "put", "a", "1", (char *)NULL),
	    0);

	rd_h_set_fault(&C, 1, "block");
	pid_t client = put_async(1, "held");
	/* Several status requests over two seconds: each needs a turn of the
	 * loop, and the put stays unanswered through all of them. */
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "status", (char *)NULL), 0,
		             "the loop stopped turning while the write was held: %s",
		             out);
		int rv = exited_within(client, 1);
		if (rv != -1) {
			rd_h_set_fault(&C, 1, "");
			cr_assert_fail("the put was answered (exit %d) while its write "
			               "was still held",
			               rv);
		}
	}
	rd_h_set_fault(&C, 1, "");
	int rv = exited_within(client, WAIT_S);
	if (rv == -1)
		reap(client);
	cr_assert_eq(rv, 0, "the put was not answered once its write returned");
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "get", "held", (char *)NULL), 0);
	cr_assert_str_eq(out, "v\n");
}

/* The leader of group `group` as node 1 sees it, 0 when none. */
static unsigned leader_of(unsigned group)
{
	char out[16384], *line, *save = NULL;

	if (rd_h_ctl(&C, 1, out, sizeof out, "groups", (char *)NULL) != 0)
		return 0;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned g, l, t;
		char role[16];
		if (sscanf(line, "%u %15s %u %u", &g, role, &l, &t) == 4 && g == group)
			return l;
	}
	return 0;
}

/* Three nodes, only the data group leader's disk held: the followers'
 * writes go through, so they persist and acknowledge the entry (the
 * leader sent its appends before its own write, thesis §10.2.1), and still
 * the leader answers only after its own batch is written. */
Test(async_write, a_leader_with_a_held_disk_answers_after_its_write, .fini = teardown,
     .timeout = 240)
{
	struct rd_h_opts o = {.data_groups = 1,
	                      .extra_conf = "[storage]\nasync_write = yes\n"
	                                    "[health]\ndisk_stall_ms = 0\n"
	                                    "disk_slow_ms = 600000\n"
	                                    "canary_interval_ms = 0\n"};
	char out[4096];
	unsigned leader = 0;

	rd_h_cluster_init(&C, 3, &o);
	for (unsigned i = 1; i <= 3; i++)
		start_hooked(i);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "nodes not ready (logs in %s)", C.dir);
	cr_assert_eq(
	    rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "put", "a", "1", (char *)NULL),
	    0);
	for (int i = 0; i < WAIT_S * 10 && leader == 0; i++) {
		leader = leader_of(1);
		if (leader == 0)
			usleep(100 * 1000);
	}
	cr_assert_neq(leader, 0, "no leader of group 1 (logs in %s)", C.dir);

	rd_h_set_fault(&C, leader, "block");
	pid_t client = put_async(leader, "x");
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(
		    rd_h_ctl(&C, leader, out, sizeof out, "status", (char *)NULL), 0,
		    "the leader's loop stopped turning while its write was "
		    "held");
		int rv = exited_within(client, 1);
		if (rv != -1) {
			rd_h_set_fault(&C, leader, "");
			cr_assert_fail(
			    "the leader answered (exit %d) while its own write "
			    "was held",
			    rv);
		}
	}
	rd_h_set_fault(&C, leader, "");
	int rv = exited_within(client, WAIT_S);
	if (rv == -1)
		reap(client);
	cr_assert_eq(rv, 0, "put x not answered once the leader's write returned");
	for (unsigned i = 1; i <= 3; i++) {
		cr_assert_eq(rd_h_ctl_retry(&C, i, WAIT_S, out, sizeof out, "get", "x",
		                            (char *)NULL),
		             0);
		cr_assert_str_eq(out, "v\n");
	}
}
