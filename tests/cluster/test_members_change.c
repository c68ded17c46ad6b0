/*
 * Membership changes of group 0 with real processes (raftctl members add /
 * remove / promote, multiraft/membership.c): bad requests are refused with
 * why and change nothing; a learner is added through a follower (handed to
 * the group-0 leader), refused promotion while far behind, removed; a
 * removal that would leave a group without a quorum is refused; the
 * group-0 leader asked to remove itself hands its leadership over first,
 * and the removed node exits 0 with one line; every acknowledged write is
 * still readable; no group has two leaders in one term.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_S 30

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

/* `raftctl --json members ...` on `node`: exit code, output in out. */
#define MEMBERS(node, out, ...)                                                          \
	rd_h_ctl(&C, node, out, sizeof out, "--json", "--timeout", "20000", "members",   \
	         __VA_ARGS__, (char *)NULL)

/* The node `raftctl status` on `node` names as group 0's leader. */
static unsigned meta_leader(unsigned node)
{
	char out[8192];
	const char *p;
	unsigned l = 0;

	if (rd_h_ctl(&C, node, out, sizeof out, "status", (char *)NULL) != 0 ||
	    (p = strstr(out, "metadata leader")) == NULL)
		return 0;
	sscanf(p + strlen("metadata leader"), " %u", &l);
	return l;
}

/* Three nodes up and ready, every registration applied, then keys
 * `prefix`0 .. `prefix`(n - 1) written through every node in turn. */
static void up(const struct rd_h_opts *o, const char *prefix, int n, const char *value)
{
	rd_h_cluster_init(&C, 3, o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
	cr_assert(rd_h_wait_registered(&C, 1, WAIT_S),
	          "registrations not applied (logs in %s)", C.dir);
	rd_h_put_keys(&C, 3, WAIT_S, prefix, n, value);
	rd_h_check_leaders(&C);
}

Test(members_change, add_promote_remove_and_refusals, .fini = teardown, .timeout = 300)
{
	/* Two replicas per data group: a removed node's replicas can move to
	 * the third node (a decommission, test_placement.c). */
	struct rd_h_opts o = {.data_groups = 4, .replication = 2};
	char out[8192], key[32], addr[64];
	int rv, st;

	up(&o, "k", 12, "v");

	/* Bad input: refused with why, and nothing changes. */
	rv = MEMBERS(2, out, "add", "3", "127.0.0.1:1");
	cr_assert_neq(rv, 0, "%s (logs in %s)", out, C.dir);
	cr_assert(strstr(out, "already a voter") != NULL, "%s", out);
	rv = MEMBERS(2, out, "add", "4", "no-port-here");
	cr_assert_neq(rv, 0);
	cr_assert(strstr(out, "INVALID") != NULL && strstr(out, "port") != NULL, "%s",
	          out);
	rv = MEMBERS(3, out, "promote", "2");
	cr_assert_neq(rv, 0);
	cr_assert(strstr(out, "already a voter") != NULL, "%s", out);
	rv = MEMBERS(3, out, "remove", "9");
	cr_assert_neq(rv, 0);
	cr_assert(strstr(out, "not a member") != NULL, "%s", out);
	cr_assert(rd_h_wait_member(&C, 1, 4, "4", false, WAIT_S),
	          "a refused add changed the members");

	/* A learner that never starts: added through a follower, shown on
	 * every node, refused promotion (it holds none of the log), removed. */
	snprintf(addr, sizeof addr, "127.0.0.1:%d", rd_h_free_port(true));
	unsigned lead = meta_leader(1), other = lead == 2 ? 3 : 2;
	cr_assert_neq(lead, 0, "no group-0 leader (logs in %s)", C.dir);
	rv = MEMBERS(other, out, "add", "4", addr, "--learner");
	cr_assert_eq(rv, 0, "add learner through node %u: %s (logs in %s)", other, out,
	             C.dir);
	for (unsigned i = 1; i <= 3; i++)
		cr_assert(rd_h_wait_member(&C, i, 4, "learner", true, WAIT_S),
		          "node %u does not show learner 4 (logs in %s)", i, C.dir);
	rv = MEMBERS(other, out, "promote", "4");
	cr_assert_neq(rv, 0);
	cr_assert(strstr(out, "not promoted") != NULL, "%s", out);
	cr_assert(rd_h_wait_member(&C, 1, 4, "learner", true, WAIT_S),
	          "a refused promotion changed it");
	rv = MEMBERS(lead, out, "remove", "4");
	cr_assert_eq(rv, 0, "remove learner 4: %s (logs in %s)", out, C.dir);
	cr_assert(rd_h_wait_member(&C, 1, 4, "removed", true, WAIT_S),
	          "4 not removed (logs in %s)", C.dir);

	/* With node 2 down, removing node 3 would leave group 0 with {1, 2}
	 * and one of them reachable: refused. */
	st = rd_h_stop(&C, 2, SIGTERM);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	rv = MEMBERS(1, out, "remove", "3");
	cr_assert_neq(rv, 0);
	cr_assert(strstr(out, "no quorum") != NULL, "%s (logs in %s)", out, C.dir);
	rd_h_start(&C, 2);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node 2 not ready again (logs in %s)",
	          C.dir);
	rd_h_check_leaders(&C);

	/* The group-0 leader is asked (on itself) to remove itself: a
	 * decommission, its data replicas move to the other nodes; then it
	 * hands its leadership of group 0 over, the next leader removes it,
	 * and it exits 0 with one line. */
	lead = meta_leader(1);
	cr_assert_neq(lead, 0);
	for (int t = 0; t < 100; t++) {
		rv = MEMBERS(lead, out, "remove",
		             (lead == 1   ? "1"
		              : lead == 2 ? "2"
		                          : "3"));
		if (rv == 0 || strstr(out, "no quorum") == NULL)
			break;
		usleep(200 * 1000); /* node 2's connections are still coming up */
	}
	cr_assert_eq(rv, 0, "leader %u removing itself: %s (logs in %s)", lead, out,
	             C.dir);
	cr_assert(rd_h_log_has(&C, lead, "marked leaving"), "(logs in %s)", C.dir);
	st = rd_h_wait_exit(&C, lead, 4 * WAIT_S);
	cr_assert(rd_h_log_has(&C, lead, "leadership handed to node"),
	          "node %u did not hand group 0 over first (logs in %s)", lead, C.dir);
	cr_assert(st != -1, "removed node %u did not exit (logs in %s)", lead, C.dir);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "removed node %u: status %d",
	          lead, st);
	cr_assert(rd_h_log_has(&C, lead, "was removed from the cluster"),
	          "no line saying so (logs in %s)", C.dir);

	/* Started again, it learns its removal again (from its own table, or
	 * its peers') and exits 0. */
	rd_h_start(&C, lead);
	st = rd_h_wait_exit(&C, lead, WAIT_S);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	          "removed node %u restarted: status %d (logs in %s)", lead, st, C.dir);
	cr_assert_eq(rd_h_log_count(&C, lead, "was removed from the cluster", NULL), 2,
	             "(logs in %s)", C.dir);

	unsigned a = lead == 1 ? 2 : 1, b = 6 - lead - a;
	cr_assert(rd_h_wait_member(&C, a, lead, "removed", true, WAIT_S), "(logs in %s)",
	          C.dir);
	rd_h_put(&C, a, WAIT_S, "after", "removal");
	for (int i = 0; i < 12; i++) {
		snprintf(key, sizeof key, "k%d", i);
		rd_h_expect_get(&C, a, WAIT_S, key, "v");
		rd_h_expect_get(&C, b, WAIT_S, key, "v");
	}
	rd_h_expect_get(&C, b, WAIT_S, "after", "removal");
	rd_h_check_leaders(&C);

	/* Two nodes left, two replicas per group: no node could take the
	 * replicas of one more removed node. Refused, with why. */
	char id[8];
	snprintf(id, sizeof id, "%u", b);
	rv = MEMBERS(a, out, "remove", id);
	cr_assert_neq(rv, 0);
	cr_assert(strstr(out, "data group") != NULL && strstr(out, "can take") != NULL,
	          "%s", out);
	if (getenv("RD_KEEP_TMP") != NULL)
		printf("logs in %s\n", C.dir);
}

/* Does the comma-separated id list `ids` hold `id`? */
static bool ids_have(const char *ids, unsigned id)
{
	const char *p = ids;
	while (*p != 0) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p)
			return false;
		if (v == id)
			return true;
		p = *end == ',' ? end + 1 : end;
	}
	return false;
}

/* `raftctl groups` on `node` lists `want` groups, each with a leader and
 * `node` among its voters (as node's own configuration says). */
static bool all_groups_voter(unsigned node, unsigned want)
{
	char out[16384], *line, *save = NULL;
	unsigned rows = 0, voter = 0;

	if (rd_h_ctl(&C, node, out, sizeof out, "groups", (char *)NULL) != 0)
		return false;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned g, leader, term, commit, applied;
		char role[16], voters[64];
		if (sscanf(line, "%u %15s %u %u %u %u %63s", &g, role, &leader, &term,
		           &commit, &applied, voters) != 7)
			continue;
		rows++;
		voter += leader != 0 && ids_have(voters, node);
	}
	return rows == want && voter == want;
}

/* Kill node 3, wipe its data directory, start it again: it learns from its
 * peers that the cluster registers another incarnation of its id, says in
 * one line that it rejoins as a new replica, and the group-0 leader
 * replaces its old replica in every group by a new one (learner, caught up
 * from the log or a snapshot, promoted). It ends a voter of every group
 * again; every acknowledged write is readable through it; with node 1
 * stopped, nodes 2 and 3 still serve (node 3 votes with its new state); no
 * group ever had two leaders in one term as the nodes report them. */
Test(members_change, a_wiped_node_rejoins_as_a_new_replica, .fini = teardown,
     .timeout = 300)
{
	/* The restarted node's dials replace its peers' connections to the
	 * killed process at once (lib/transport/peer.c, boot ids), so its
	 * probes get through with the default idle timeout; the longer
	 * election timeout gives the rejoin room on a loaded machine. */
	struct rd_h_opts o = {.data_groups = 4,
	                      .extra_conf = "[raft]\nelection_ticks = 100\n"};
	char out[8192], key[32], cmd[512];
	bool ok = false;

	up(&o, "a", 30, "before");

	int st = rd_h_stop(&C, 3, SIGKILL);
	cr_assert(WIFSIGNALED(st));
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "b%d", i);
		rd_h_put(&C, 1 + (unsigned)(i % 2), WAIT_S, key, "while-down");
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s/data3", C.dir);
	cr_assert_eq(system(cmd), 0);
	rd_h_start(&C, 3);
	for (int t = 0; t < 120 * 10 && !ok; t++) {
		ok = rd_h_log_has(&C, 3, "rejoining as a new replica");
		if (!ok)
			usleep(100 * 1000);
	}
	cr_assert(ok, "the wiped node did not say it rejoins (logs in %s)", C.dir);
	ok = false;
	for (int t = 0; t < 120 * 10 && !ok; t++) {
		rd_h_check_leaders(&C);
		ok = all_groups_voter(3, 5);
		if (!ok)
			usleep(100 * 1000);
	}
	cr_assert(ok, "node 3 is not a voter of every group again (logs in %s)", C.dir);
	cr_assert(rd_h_log_has(&C, 3, "rejoined: the cluster registers"), "(logs in %s)",
	          C.dir);
	cr_assert(rd_h_wait_member(&C, 1, 3, "voter", true, WAIT_S), "(logs in %s)",
	          C.dir);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node 3 not ready (logs in %s)", C.dir);
	for (int i = 0; i < 30; i++) {
		snprintf(key, sizeof key, "a%d", i);
		rd_h_expect_get(&C, 3, WAIT_S, key, "before");
	}
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "b%d", i);
		rd_h_expect_get(&C, 3, WAIT_S, key, "while-down");
	}
	rd_h_check_leaders(&C);

	/* Node 3's new replicas count: with node 1 down, 2 and 3 are a
	 * majority of every group and keep serving. */
	st = rd_h_stop(&C, 1, SIGTERM);
	cr_assert(WIFEXITED(st));
	rd_h_put(&C, 2, WAIT_S, "c0", "after");
	rd_h_expect_get(&C, 3, WAIT_S, "c0", "after");
	rd_h_expect_get(&C, 3, WAIT_S, "a7", "before");
	rd_h_check_leaders(&C);
	rd_h_start(&C, 1);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "(logs in %s)", C.dir);
	rd_h_expect_get(&C, 1, WAIT_S, "c0", "after");
	rd_h_check_leaders(&C);
	(void)out;
	if (getenv("RD_KEEP_TMP") != NULL)
		printf("logs in %s\n", C.dir);
}

/* The leader of `group` as `node`'s `raftctl groups` shows it (0: none). */
static unsigned leader_of(unsigned node, unsigned group)
{
	char out[16384], *line, *save = NULL;
	unsigned found = 0;

	if (rd_h_ctl(&C, node, out, sizeof out, "groups", (char *)NULL) != 0)
		return 0;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned g, leader;
		char role[16];
		if (sscanf(line, "%u %15s %u", &g, role, &leader) == 3 && g == group)
			found = leader;
	}
	return found;
}

/* Kill, wipe and restart node `i`; wait until it is a voter of each of the
 * `groups` groups again. */
static void replace(unsigned i, unsigned groups)
{
	char cmd[512];
	bool ok = false;
	int st = rd_h_stop(&C, i, SIGKILL);

	cr_assert(WIFSIGNALED(st));
	snprintf(cmd, sizeof cmd, "rm -rf %s/data%u", C.dir, i);
	cr_assert_eq(system(cmd), 0);
	rd_h_start(&C, i);
	for (int t = 0; t < 120 * 10 && !ok; t++) {
		rd_h_check_leaders(&C);
		ok = all_groups_voter(i, groups);
		if (!ok)
			usleep(100 * 1000);
	}
	cr_assert(ok, "node %u is not a voter of every group again (logs in %s)", i,
	          C.dir);
}

/* Two disks replaced one after the other: node 3 rejoins as a new
 * replica and then leads every group; node 2 is wiped next. Its new
 * replicas start with an empty configuration (and an empty member table)
 * and must answer node 3's replicas (new ones, not the founding ones) to
 * be caught up and promoted (multiraft/replicas.c, rd_membership_address):
 * node 2 ends a voter of every group, and every acknowledged write is
 * readable through it. */
Test(members_change, a_node_wiped_after_another_rejoins_through_its_leaders,
     .fini = teardown, .timeout = 400)
{
	struct rd_h_opts o = {.data_groups = 2,
	                      .extra_conf = "[raft]\nelection_ticks = 100\n"};
	char out[4096], key[32], g[8];
	bool ok = false;

	rd_h_cluster_init(&C, 3, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
	cr_assert(rd_h_wait_registered(&C, 1, WAIT_S),
	          "registrations not applied (logs in %s)", C.dir);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "a%d", i);
		rd_h_put(&C, 1 + (unsigned)(i % 3), WAIT_S, key, "before");
	}
	replace(3, 3);
	/* Node 3's new replicas lead every group, group 0 included (so that
	 * node 2's new replicas learn neither the member table nor any
	 * group's members from a founding replica). */
	for (unsigned grp = 0; grp <= 2; grp++) {
		snprintf(g, sizeof g, "%u", grp);
		ok = false;
		for (int t = 0; t < WAIT_S * 10 && !ok; t++) {
			unsigned l = leader_of(1, grp);
			ok = l == 3;
			if (!ok && l != 0)
				rd_h_ctl(&C, l, out, sizeof out, "transfer-leader", g,
				         "3", (char *)NULL);
			if (!ok)
				usleep(100 * 1000);
		}
		cr_assert(ok, "node 3 does not lead group %u (logs in %s)", grp, C.dir);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "b%d", i);
		rd_h_put(&C, 1 + (unsigned)(i % 3), WAIT_S, key, "between");
	}
	replace(2, 3);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "a%d", i);
		rd_h_expect_get(&C, 2, WAIT_S, key, "before");
	}
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "b%d", i);
		rd_h_expect_get(&C, 2, WAIT_S, key, "between");
	}
	rd_h_check_leaders(&C);
}

/* A replaced disk in a 5-node cluster (4 data groups, 3 replicas each: a
 * node holds 2 or 3): node x, holding data replicas and not leading group
 * 0, is killed, its directory wiped, and it starts again. It rejoins as a
 * new replica (lib/README.md "Replacing a wiped node"): group 0's and each
 * data group's old replica of it removed, a new one added as a learner,
 * caught up, promoted. Every data group ends with 3 voters, its target
 * placement, and node x a voter of as many groups as its target names
 * (from its new, empty directory); every acknowledged write, those made
 * while it was down included, reads back through it; no group had two
 * leaders in one term. */
Test(members_change, a_wiped_node_of_five_rejoins_and_every_group_is_whole_again,
     .fini = teardown, .timeout = 420)
{
	struct rd_h_opts o = {.data_groups = 4,
	                      .replication = 3,
	                      .extra_conf = "[raft]\nelection_ticks = 100\n"};
	unsigned held[RD_H_MAX_NODES + 1], x = 0, lead;
	char key[32], cmd[512], series[64];
	bool ok = false;
	int st;

	rd_h_cluster_init(&C, 5, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
	cr_assert(rd_h_wait_registered(&C, 1, WAIT_S),
	          "registrations not applied (logs in %s)", C.dir);
	rd_h_put_keys(&C, 5, WAIT_S, "a", 40, "before");
	cr_assert(rd_h_wait_data_settled(&C, 4, 3, 5, held, WAIT_S), "(logs in %s)",
	          C.dir);
	lead = meta_leader(1);
	for (unsigned i = 5; i >= 1 && x == 0; i--)
		if (i != lead && held[i] > 0)
			x = i;
	cr_assert_neq(x, 0, "(logs in %s)", C.dir);

	st = rd_h_stop(&C, x, SIGKILL);
	cr_assert(WIFSIGNALED(st));
	for (int i = 0; i < 10; i++) {
		unsigned via = 1 + (unsigned)i % 5;
		snprintf(key, sizeof key, "b%d", i);
		rd_h_put(&C, via == x ? (via % 5) + 1 : via, WAIT_S, key, "while-down");
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s/data%u", C.dir, x);
	cr_assert_eq(system(cmd), 0);
	rd_h_start(&C, x);
	cr_assert(rd_h_wait_log(&C, x, "rejoining as a new replica", 120),
	          "node %u did not say it rejoins (logs in %s)", x, C.dir);
	cr_assert(rd_h_wait_log(&C, x, "rejoined: the cluster registers", 120),
	          "(logs in %s)", C.dir);
	/* Whole again: every group 3 voters and its target, node x a voter of
	 * as many as its target names, in its own groups too. */
	snprintf(series, sizeof series, "raft_node_replicas{node=\"%u\"}", x);
	for (int t = 0; t < 240 * 5 && !ok; t++) {
		rd_h_check_leaders(&C);
		ok = rd_h_data_settled(&C, 4, 3, 5, held) && held[x] > 0 &&
		     held[x] == (unsigned)rd_h_metric(&C, lead, series, false) &&
		     all_groups_voter(x, 1 + held[x]);
		if (!ok)
			usleep(200 * 1000);
	}
	cr_assert(ok, "node %u's groups are not whole again (logs in %s)", x, C.dir);
	cr_assert(rd_h_wait_member(&C, 1, x, "voter", true, WAIT_S), "(logs in %s)",
	          C.dir);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node %u not ready (logs in %s)", x,
	          C.dir);
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof key, "a%d", i);
		rd_h_expect_get(&C, x, WAIT_S, key, "before");
	}
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "b%d", i);
		rd_h_expect_get(&C, x, WAIT_S, key, "while-down");
	}
	rd_h_expect_keys(&C, 5, WAIT_S, "b", 10, "while-down");
	rd_h_check_leaders(&C);
	if (getenv("RD_KEEP_TMP") != NULL)
		printf("logs in %s\n", C.dir);
}
