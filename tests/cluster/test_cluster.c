/* Multi-process clusters on loopback with mutual TLS: the behaviour a user
 * of raftctl sees (proto/raftd.proto ClientRequest, conf/man/raftctl.1). */
#include <criterion/criterion.h>
#include <errno.h>
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

#define WAIT_S 30

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

/* One row of `raftctl groups`. */
struct row {
	unsigned group, leader, term;
	char role[16];
};

static unsigned groups_of(unsigned node, struct row *rows, unsigned cap)
{
	char out[16384], *line, *save = NULL;
	unsigned k = 0;
	cr_assert_eq(rd_h_ctl(&C, node, out, sizeof out, "groups", (char *)NULL), 0);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		struct row r;
		if (sscanf(line, "%u %15s %u %u", &r.group, r.role, &r.leader, &r.term) ==
		        4 &&
		    k < cap)
			rows[k++] = r;
	}
	return k;
}

/* Wait until every group has a leader and all nodes agree on it. */
static bool leaders_agree(unsigned n_groups)
{
	struct row rows[RD_H_MAX_NODES][64];
	unsigned cnt[RD_H_MAX_NODES];

	for (unsigned i = 1; i <= C.n; i++) {
		if (C.nodes[i - 1].pid == 0)
			return false;
		cnt[i - 1] = groups_of(i, rows[i - 1], 64);
		if (cnt[i - 1] != n_groups + 1)
			return false;
		for (unsigned g = 0; g < cnt[i - 1]; g++)
			if (rows[i - 1][g].leader == 0)
				return false;
	}
	for (unsigned i = 1; i < C.n; i++)
		for (unsigned g = 0; g < cnt[0]; g++)
			if (rows[i][g].leader != rows[0][g].leader ||
			    rows[i][g].term != rows[0][g].term)
				return false;
	return true;
}

static bool wait_leaders(unsigned n_groups)
{
	for (int i = 0; i < WAIT_S * 10; i++) {
		if (leaders_agree(n_groups))
			return true;
		usleep(150 * 1000);
	}
	return false;
}

Test(cluster, three_nodes_replicate_writes_and_reads, .fini = teardown, .timeout = 120)
{
	char out[4096];

	rd_h_cluster_up(&C, 3, 4, WAIT_S);
	/* A write on any node (leader or follower) is readable everywhere. */
	for (unsigned i = 1; i <= 3; i++) {
		char key[16], val[16];
		snprintf(key, sizeof key, "k%u", i);
		snprintf(val, sizeof val, "v%u", i);
		cr_assert_eq(rd_h_ctl_retry(&C, i, WAIT_S, out, sizeof out, "put", key,
		                            val, (char *)NULL),
		             0, "put on node %u", i);
	}
	for (unsigned i = 1; i <= 3; i++)
		for (unsigned k = 1; k <= 3; k++) {
			char key[16], val[16];
			snprintf(key, sizeof key, "k%u", k);
			snprintf(val, sizeof val, "v%u", k);
			rd_h_expect_get(&C, i, WAIT_S, key, val);
		}
	/* Missing keys: exit 1. */
	cr_assert_eq(rd_h_ctl(&C, 2, out, sizeof out, "get", "nope", (char *)NULL), 1);
	/* Compare-and-set: success, then failure with the current value. */
	cr_assert_eq(
	    rd_h_ctl(&C, 2, out, sizeof out, "cas", "k1", "v1", "w1", (char *)NULL), 0);
	rd_h_expect_get(&C, 3, WAIT_S, "k1", "w1");
	cr_assert_eq(rd_h_ctl(&C, 3, out, sizeof out, "--json", "cas", "k1", "v1", "x1",
	                      (char *)NULL),
	             1);
	cr_assert(strstr(out, "\"error\":\"CAS_FAILED\"") != NULL, "%s", out);
	cr_assert(strstr(out, "\"value\":\"w1\"") != NULL, "%s", out);
	rd_h_expect_get(&C, 1, WAIT_S, "k1", "w1");
	/* A cas on an absent key fails with no current value; forwarded from
	 * the followers, the leader's answer carries none (an empty result must
	 * not be copied from a NULL value: UBSan aborted the leader here). */
	for (unsigned i = 1; i <= 3; i++) {
		cr_assert_eq(rd_h_ctl(&C, i, out, sizeof out, "--json", "cas", "absent",
		                      "v", "w", (char *)NULL),
		             1, "cas on node %u", i);
		cr_assert(strstr(out, "\"error\":\"CAS_FAILED\"") != NULL, "%s", out);
	}
	for (unsigned i = 1; i <= 3; i++)
		rd_h_expect_get(&C, i, WAIT_S, "k1", "w1");
	/* Delete. */
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "delete", "k2", (char *)NULL), 0);
	cr_assert_eq(rd_h_ctl(&C, 3, out, sizeof out, "get", "k2", (char *)NULL), 1);
	/* Metadata group: a follower's write reaches group 0's leader. */
	for (unsigned i = 1; i <= 3; i++)
		cr_assert_eq(rd_h_ctl(&C, i, out, sizeof out, "meta", "put", "owner",
		                      "ops", (char *)NULL),
		             0, "meta put on node %u", i);
	for (unsigned i = 1; i <= 3; i++) {
		cr_assert_eq(rd_h_ctl(&C, i, out, sizeof out, "meta", "get", "owner",
		                      (char *)NULL),
		             0);
		cr_assert_str_eq(out, "ops\n");
	}
	/* Raw proposal to a vShard: answered with group and index. */
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "propose", "--vshard", "7", "blob",
	                      (char *)NULL),
	             0);
	cr_assert(strstr(out, "group=1 index=") != NULL, "%s", out);
}

Test(cluster, one_node_with_16_groups_elects_every_leader, .fini = teardown,
     .timeout = 120)
{
	struct row rows[64];
	char out[256];

	rd_h_cluster_up(&C, 1, 16, WAIT_S);
	cr_assert(wait_leaders(16));
	cr_assert_eq(groups_of(1, rows, 64), 17);
	for (unsigned g = 0; g < 17; g++) {
		cr_assert_eq(rows[g].leader, 1);
		cr_assert_str_eq(rows[g].role, "leader");
	}
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "put", "a", "b", (char *)NULL), 0);
	rd_h_expect_get(&C, 1, WAIT_S, "a", "b");
}

Test(cluster, three_nodes_with_16_groups_agree_on_leaders, .fini = teardown,
     .timeout = 120)
{
	struct row rows[64];
	unsigned leads[4] = {0};

	rd_h_cluster_up(&C, 3, 16, WAIT_S);
	cr_assert(wait_leaders(16), "leaders never agreed");
	cr_assert_eq(groups_of(1, rows, 64), 17);
	for (unsigned g = 0; g < 17; g++)
		leads[rows[g].leader]++;
	/* Every node leads some group: the bootstrap hints spread leadership. */
	for (unsigned i = 1; i <= 3; i++)
		cr_assert_gt(leads[i], 0, "node %u leads nothing", i);
}

/* Which node leads `group`, as node `asker` sees it. */
static unsigned leader_of(unsigned asker, unsigned group)
{
	struct row rows[64];
	unsigned n = groups_of(asker, rows, 64);
	for (unsigned i = 0; i < n; i++)
		if (rows[i].group == group)
			return rows[i].leader;
	return 0;
}

Test(cluster, killed_leaders_are_replaced_and_the_node_catches_up, .fini = teardown,
     .timeout = 180)
{
	char out[4096], key[32], val[32];
	unsigned victim, other;

	rd_h_cluster_up(&C, 3, 2, WAIT_S);
	cr_assert(wait_leaders(2));
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "put", "before", "1", (char *)NULL),
	             0);
	/* Kill the leader of group 0 (and whatever data groups it leads). */
	victim = leader_of(1, 0);
	cr_assert_neq(victim, 0);
	other = victim == 1 ? 2 : 1;
	rd_h_stop(&C, victim, SIGKILL);
	/* Writes continue on the survivors once a new leader is elected. */
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "during%d", i);
		snprintf(val, sizeof val, "%d", i);
		cr_assert_eq(rd_h_ctl_retry(&C, other, WAIT_S, out, sizeof out, "put",
		                            key, val, (char *)NULL),
		             0, "put %s after the kill", key);
	}
	cr_assert_eq(rd_h_ctl_retry(&C, other, WAIT_S, out, sizeof out, "meta", "put",
	                            "m", "1", (char *)NULL),
	             0);
	unsigned new_leader = leader_of(other, 0);
	cr_assert(new_leader != 0 && new_leader != victim);
	/* The killed node restarts from its data directory and catches up. */
	rd_h_start(&C, victim);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	rd_h_expect_get(&C, victim, WAIT_S, "before", "1");
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "during%d", i);
		snprintf(val, sizeof val, "%d", i);
		rd_h_expect_get(&C, victim, WAIT_S, key, val);
	}
}

/* The state machine hash from `raftctl --json status`. */
static unsigned long long state_hash(unsigned node)
{
	char out[65536];
	const char *p;
	cr_assert_eq(
	    rd_h_ctl(&C, node, out, sizeof out, "--json", "status", (char *)NULL), 0);
	p = strstr(out, "\"state_machine_hash\":");
	cr_assert_not_null(p, "%s", out);
	return strtoull(p + strlen("\"state_machine_hash\":"), NULL, 10);
}

static bool hashes_equal(void)
{
	for (int i = 0; i < WAIT_S * 5; i++) {
		unsigned long long h1 = state_hash(1);
		if (h1 == state_hash(2) && h1 == state_hash(3))
			return true;
		usleep(200 * 1000);
	}
	return false;
}

Test(cluster, restarted_node_catches_up_to_identical_state, .fini = teardown,
     .timeout = 180)
{
	rd_h_cluster_up(&C, 3, 4, WAIT_S);
	rd_h_put_keys(&C, 1, WAIT_S, "a", 10, "x");
	int st = rd_h_stop(&C, 3, SIGTERM);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	rd_h_put_keys(&C, 2, WAIT_S, "b", 50, "y");
	rd_h_start(&C, 3);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	rd_h_expect_get(&C, 3, WAIT_S, "b49", "y");
	cr_assert(hashes_equal(), "state machines differ");
}

Test(cluster, sigterm_exits_0_removes_socket_and_restart_works, .fini = teardown,
     .timeout = 120)
{
	char out[256];
	int st;

	rd_h_cluster_up(&C, 1, 2, WAIT_S);
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "put", "p", "1", (char *)NULL), 0);
	st = rd_h_stop(&C, 1, SIGTERM);
	cr_assert(WIFEXITED(st), "not exited");
	cr_assert_eq(WEXITSTATUS(st), 0);
	cr_assert_eq(access(C.nodes[0].sock, F_OK), -1, "socket file left behind");
	/* Unreachable daemon: exit code 3. */
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "status", (char *)NULL), 3);
	rd_h_start(&C, 1);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	rd_h_expect_get(&C, 1, WAIT_S, "p", "1");
	/* raftctl shutdown is a graceful stop too. */
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "shutdown", (char *)NULL), 0);
	st = rd_h_stop(&C, 1, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

Test(cluster, not_ready_before_quorum_then_ready, .fini = teardown, .timeout = 120)
{
	/* Founders that start empty ask every peer before founding
	 * (membership.c): with node 3 never started, nodes 1 and 2 found once
	 * the bound passed, [transport] idle_timeout_ms plus ten election
	 * timeouts; a short idle timeout keeps that within WAIT_S. */
	struct rd_h_opts o = {.data_groups = 2,
	                      .extra_conf = "[transport]\nidle_timeout_ms = 5000\n"};
	char out[256];

	rd_h_cluster_init(&C, 3, &o);
	/* One node of three: no quorum, so no metadata leader: not ready. */
	rd_h_start(&C, 1);
	cr_assert_eq(
	    rd_h_ctl(&C, 1, out, sizeof out, "ready", "--wait", "2", (char *)NULL), 1);
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "put", "k", "v", (char *)NULL), 1);
	rd_h_start(&C, 2);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "put", "k", "v", (char *)NULL), 0);
}

Test(cluster, garbage_on_the_client_socket_is_rejected, .fini = teardown, .timeout = 120)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	unsigned char junk[] = {0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff};
	unsigned char big[] = {0x7f, 0xff, 0xff, 0xff};
	unsigned char buf[256];
	char out[256];
	int fd;
	ssize_t r;

	rd_h_cluster_up(&C, 1, 1, WAIT_S);
	strcpy(sun.sun_path, C.nodes[0].sock);
	/* A frame that does not decode: an INVALID answer (error = 6). */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	r = read(fd, buf, sizeof buf);
	cr_assert_gt(r, 4);
	/* ClientResponse field 2 (error) = INVALID (6): bytes 0x10 0x06. */
	cr_assert(memmem(buf + 4, (size_t)r - 4, "\x10\x06", 2) != NULL);
	close(fd);
	/* An oversized length: the connection is closed. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	cr_assert_eq(write(fd, big, sizeof big), (ssize_t)sizeof big);
	cr_assert_eq(read(fd, buf, sizeof buf), 0);
	close(fd);
	/* The daemon keeps serving. */
	cr_assert_eq(
	    rd_h_ctl(&C, 1, out, sizeof out, "put", "still", "here", (char *)NULL), 0);
	rd_h_expect_get(&C, 1, WAIT_S, "still", "here");
}

Test(cluster, lagging_node_catches_up_through_a_snapshot, .fini = teardown,
     .timeout = 180)
{
	struct rd_h_opts o = {
	    .data_groups = 1,
	    .extra_conf = "[raft]\nsnapshot_entries = 40\nmax_inflight_msgs = 2\n",
	    .log_level = "debug"}; /* "log compacted" lines */
	char out[4096], key[32];

	rd_h_cluster_init(&C, 3, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	cr_assert_eq(rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "put", "first", "1",
	                            (char *)NULL),
	             0);
	int st = rd_h_stop(&C, 3, SIGTERM);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Enough writes that the others compact their logs past node 3. */
	for (int i = 0; i < 150; i++) {
		snprintf(key, sizeof key, "s%d", i);
		int rv = rd_h_ctl_retry(&C, 1 + (unsigned)(i % 2), WAIT_S, out,
		                        sizeof out, "put", key, "z", (char *)NULL);
		cr_assert_eq(rv, 0, "put %s on node %u: exit %d: %s", key,
		             1 + (unsigned)(i % 2), rv, out);
	}
	/* A node compacts only what its flushed state covers (each command
	 * is written once: storage/README.md), so the compaction past node
	 * 3's log may come a flush after the last write: wait for it on both
	 * nodes, or node 3 could catch up from the log. */
	for (unsigned i = 1; i <= 2; i++) {
		char cmd[512];
		snprintf(cmd, sizeof cmd,
		         "grep -Eq 'log compacted group=1 upto=(1[0-9]{2})$' %s",
		         C.nodes[i - 1].log);
		time_t until = time(NULL) + WAIT_S;
		while (system(cmd) != 0 && time(NULL) < until)
			usleep(100 * 1000);
		cr_assert_eq(system(cmd), 0, "node %u never compacted past index 100", i);
	}
	rd_h_start(&C, 3);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	rd_h_expect_get(&C, 3, WAIT_S, "first", "1");
	rd_h_expect_get(&C, 3, WAIT_S, "s149", "z");
	cr_assert(hashes_equal(), "state machines differ after the snapshot");
	/* The node really was caught up by a snapshot. */
	char cmd[512];
	snprintf(cmd, sizeof cmd, "grep -q 'snapshot installed group=1' %s",
	         C.nodes[2].log);
	cr_assert_eq(system(cmd), 0, "no snapshot was installed on node 3");
}

/* Raft §7: a follower that falls behind the leader's compacted log is sent
 * a snapshot, installs it durably and only then steps the SNAPSHOT message,
 * and keeps working from the installed state. Here the follower compacts
 * after nearly every entry it applies (snapshot_entries = 2) while it
 * catches up after pauses, so a snapshot often arrives right after one of
 * its own compactions. Such a compaction used to stay in the node's batch
 * until the next loop iteration: an install under it was refused by
 * storage ("a batch holds uncommitted work", a snapshot dropped) or, before
 * storage refused, left the batch with a view of the old log and the node
 * aborted on "commit beyond the last index". Every install must succeed
 * and the replicas converge. (flush_interval_ms = 10: a compaction reaches
 * only applies on disk, storage/README.md; frequent flushes keep both
 * nodes compacting nearly every entry.) */
Test(cluster, snapshot_installs_right_after_compactions_succeed, .fini = teardown,
     .timeout = 240)
{
	struct rd_h_opts o = {.data_groups = 4,
	                      .extra_conf =
	                          "[raft]\nsnapshot_entries = 2\nmax_inflight_msgs = 1\n"
	                          "flush_interval_ms = 10\n"};
	char out[4096], key[32], cmd[1024];
	pid_t writers[5];

	rd_h_cluster_init(&C, 3, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	/* Writers through nodes 1 and 2 while node 3 pauses and catches up. */
	for (unsigned w = 0; w < 5; w++) {
		writers[w] = fork();
		cr_assert_neq(writers[w], -1);
		if (writers[w] == 0) {
			for (unsigned i = 0;; i++) {
				snprintf(key, sizeof key, "w%u.%u", w, i % 50);
				rd_h_ctl(&C, 1 + (w + i) % 2, out, sizeof out, "put", key,
				         "z", (char *)NULL);
			}
		}
	}
	/* At least 50 pauses, and more (bounded) until node 3 has installed a
	 * snapshot: a slow machine writes less per pause. */
	snprintf(cmd, sizeof cmd, "grep -q 'snapshot installed group=' %s",
	         C.nodes[2].log);
	for (int round = 0; round < 50 || (round < 400 && system(cmd) != 0); round++) {
		cr_assert_eq(kill(C.nodes[2].pid, SIGSTOP), 0);
		usleep(150 * 1000);
		cr_assert_eq(kill(C.nodes[2].pid, SIGCONT), 0);
		usleep(150 * 1000);
	}
	for (unsigned w = 0; w < 5; w++) {
		kill(writers[w], SIGKILL);
		waitpid(writers[w], NULL, 0);
	}
	cr_assert_eq(rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "put", "last", "1",
	                            (char *)NULL),
	             0);
	rd_h_expect_get(&C, 3, WAIT_S, "last", "1");
	cr_assert(hashes_equal(), "state machines differ after the snapshots");
	snprintf(cmd, sizeof cmd, "grep -q 'snapshot installed group=' %s",
	         C.nodes[2].log);
	cr_assert_eq(system(cmd), 0, "no snapshot was installed on node 3");
	snprintf(cmd, sizeof cmd, "grep 'snapshot install failed.*batch holds' %s %s %s",
	         C.nodes[0].log, C.nodes[1].log, C.nodes[2].log);
	cr_assert_neq(system(cmd), 0, "a snapshot install was refused (logs in %s)",
	              C.dir);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(kill(C.nodes[i].pid, 0), 0, "node %u is gone", i + 1);
}

/* The founding peers may be listed in any order in each node's config and
 * still form one cluster that elects, replicates and agrees. (The initial
 * membership entries are written in sorted id order on every node; this
 * test cannot see their bytes, only that the cluster works.) */
Test(cluster, peers_listed_in_different_orders_form_one_cluster, .fini = teardown,
     .timeout = 120)
{
	struct rd_h_opts o = {.data_groups = 2, .rotate_peers = true};
	char out[256];

	rd_h_cluster_init(&C, 3, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	cr_assert_eq(rd_h_ctl_retry(&C, 2, WAIT_S, out, sizeof out, "meta", "put", "x",
	                            "1", (char *)NULL),
	             0);
	cr_assert_eq(
	    rd_h_ctl_retry(&C, 3, WAIT_S, out, sizeof out, "put", "y", "2", (char *)NULL),
	    0);
	rd_h_expect_get(&C, 1, WAIT_S, "y", "2");
	cr_assert(hashes_equal(), "state machines differ");
}
