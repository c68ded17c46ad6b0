/*
 * Placement with real processes (lib/cluster/placement.h,
 * multiraft/placement_drive.c): a 4-node founding cluster with 16 data
 * groups and replication_factor 3. `raftctl members remove` of a node
 * that holds data replicas is a decommission: its replicas move to the
 * other nodes first (learner, caught up, promoted, source removed: Raft
 * thesis §4.1, one server at a time), then it leaves group 0 and exits 0.
 * Afterwards every group has 3 voters on 3 distinct live nodes, no
 * learner, and its target placement is its configuration; every
 * acknowledged write is readable on every node; no group had two leaders
 * in one term; leaders per node differ by at most one. A decommission no
 * node can absorb (3 nodes left, 3 replicas each) is refused with why.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/http.h"
#include "harness.h"

#define WAIT_S 30
#define KEYS   200
#define GROUPS 16

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

static bool all_registered(unsigned node)
{
	for (int t = 0; t < WAIT_S * 10; t++) {
		char out[8192];
		if (rd_h_ctl(&C, node, out, sizeof out, "members", (char *)NULL) == 0 &&
		    strstr(out, "0000000000000000") == NULL)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

struct view {
	unsigned rows;
	unsigned leaders[RD_H_MAX_NODES + 1]; /* data groups led, by node id */
	bool ok; /* every data group: 3 voters, distinct, none `gone`, no
	          * learner, voters == placement, a leader among them */
};

/* `raftctl groups` on `node`: is every data group settled away from
 * `gone` (0: none)? */
static struct view look(unsigned node, unsigned gone)
{
	char out[16384], *line, *save = NULL;
	struct view v = {.ok = true};

	if (rd_h_ctl(&C, node, out, sizeof out, "groups", (char *)NULL) != 0) {
		v.ok = false;
		return v;
	}
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned g, leader, term, commit, applied, nv, np, vs[8], ps[8], vsh;
		char role[16], voters[64], learners[64], placement[64];
		if (sscanf(line, "%u %15s %u %u %u %u %63s %63s %u %63s", &g, role,
		           &leader, &term, &commit, &applied, voters, learners, &vsh,
		           placement) != 10 ||
		    g == 0)
			continue;
		v.rows++;
		nv = rd_h_parse_ids(voters, vs, 8);
		np = rd_h_parse_ids(placement, ps, 8);
		bool lead_in = false;
		if (nv != 3 || np != 3 || strcmp(learners, "-") != 0)
			v.ok = false;
		for (unsigned i = 0; i < nv; i++) {
			bool in_p = false;
			for (unsigned j = 0; j < np; j++)
				in_p |= ps[j] == vs[i];
			for (unsigned j = i + 1; j < nv; j++)
				if (vs[j] == vs[i])
					v.ok = false;
			if (!in_p || vs[i] == gone)
				v.ok = false;
			lead_in |= vs[i] == leader;
		}
		if (!lead_in)
			v.ok = false;
		else if (leader <= RD_H_MAX_NODES)
			v.leaders[leader]++;
	}
	if (v.rows != GROUPS)
		v.ok = false;
	return v;
}

/* The value of the sample `series` (name and labels, as exposed) in node
 * i's /metrics; -1 when absent. */
static double metric(unsigned i, const char *series)
{
	static char text[1 << 20];
	size_t n = strlen(series);

	if (rd_t_http_get(C.nodes[i - 1].admin_port, "/metrics", text, sizeof text) < 0)
		return -1;
	for (char *line = text; line != NULL && *line != 0;) {
		char *end = strchr(line, '\n');
		if (strncmp(line, series, n) == 0 && line[n] == ' ')
			return strtod(line + n + 1, NULL);
		line = end != NULL ? end + 1 : NULL;
	}
	return -1;
}

static bool balanced(const struct view *v, const unsigned *nodes, unsigned n)
{
	unsigned lo = ~0u, hi = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned k = v->leaders[nodes[i]];
		lo = k < lo ? k : lo;
		hi = k > hi ? k : hi;
	}
	return hi <= lo + 1;
}

Test(placement, a_decommissioned_node_s_replicas_move_and_it_exits_0, .fini = teardown,
     .timeout = 420)
{
	struct rd_h_opts o = {.data_groups = GROUPS, .replication = 3};
	char out[8192];
	unsigned left[3], k = 0;
	struct view v = {0};
	int rv, st;

	rd_h_cluster_init(&C, 4, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
	cr_assert(all_registered(1), "registrations not applied (logs in %s)", C.dir);
	rd_h_put_keys(&C, 4, WAIT_S, "k", KEYS, "v");

	/* Node 4 leaves. */
	rv = rd_h_ctl(&C, 1, out, sizeof out, "--json", "--timeout", "20000", "members",
	              "remove", "4", (char *)NULL);
	cr_assert_eq(rv, 0, "members remove 4: %s (logs in %s)", out, C.dir);
	st = rd_h_wait_exit(&C, 4, 240);
	cr_assert(st != -1, "node 4 did not exit (logs in %s)", C.dir);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "node 4: status %d", st);
	cr_assert(rd_h_log_has(&C, 4, "was removed from the cluster"),
	          "no line saying so (logs in %s)", C.dir);

	/* Every group settles on nodes 1..3, leaders balanced. */
	for (unsigned i = 1; i <= 3; i++)
		left[k++] = i;
	for (int t = 0; t < 600; t++) {
		bool all = true;
		for (unsigned i = 1; i <= 3 && all; i++) {
			v = look(i, 4);
			all = v.ok && balanced(&v, left, 3);
		}
		if (all)
			break;
		usleep(200 * 1000);
	}
	for (unsigned i = 1; i <= 3; i++) {
		v = look(i, 4);
		cr_assert(v.ok,
		          "node %u: groups not settled away from node 4 (logs in %s)", i,
		          C.dir);
	}
	cr_assert(balanced(&v, left, 3), "leaders %u/%u/%u (logs in %s)", v.leaders[1],
	          v.leaders[2], v.leaders[3], C.dir);
	rd_h_expect_keys(&C, 3, WAIT_S, "k", KEYS, "v");
	rd_h_check_leaders(&C);

	/* The metrics say the same: node 4 held 12 of the 48 replicas. */
	double started = 0;
	for (unsigned i = 1; i <= 3; i++) {
		cr_assert_eq(metric(i, "raft_node_replicas{node=\"4\"}"), 0, "node %u",
		             i);
		cr_assert_eq(metric(i, "raft_node_replicas{node=\"1\"}"), GROUPS,
		             "node %u", i);
		cr_assert_eq(metric(i, "raft_placement_moves_in_flight"), 0, "node %u",
		             i);
		started += metric(i, "raft_placement_moves_total{result=\"started\"}");
	}
	cr_assert_geq(started, 12, "moves started: %.0f", started);

	/* Three nodes left, three replicas each: a decommission no node can
	 * take is refused, and nothing changes. */
	rv = rd_h_ctl(&C, 2, out, sizeof out, "--json", "--timeout", "20000", "members",
	              "remove", "3", (char *)NULL);
	cr_assert_neq(rv, 0, "%s", out);
	cr_assert(strstr(out, "can take") != NULL, "%s (logs in %s)", out, C.dir);
	cr_assert(!rd_h_log_has(&C, 1, "node 3 marked leaving") &&
	              !rd_h_log_has(&C, 2, "node 3 marked leaving") &&
	              !rd_h_log_has(&C, 3, "node 3 marked leaving"),
	          "(logs in %s)", C.dir);
	if (getenv("RD_KEEP_TMP") != NULL)
		printf("logs in %s\n", C.dir);
}

/* The node `raftctl status` on `node` names as group 0's leader (0: none). */
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

/* `raftctl groups` on `node`: `want` data groups, each with a leader and
 * `node` among its voters and no learner. */
static bool voter_of_all(unsigned node, unsigned want)
{
	char out[16384], *line, *save = NULL;
	unsigned rows = 0, good = 0;

	if (rd_h_ctl(&C, node, out, sizeof out, "groups", (char *)NULL) != 0)
		return false;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned g, leader, term, commit, applied, vs[8], nv;
		char role[16], voters[64], learners[64];
		bool in = false;
		if (sscanf(line, "%u %15s %u %u %u %u %63s %63s", &g, role, &leader,
		           &term, &commit, &applied, voters, learners) != 8 ||
		    g == 0)
			continue;
		rows++;
		nv = rd_h_parse_ids(voters, vs, 8);
		for (unsigned i = 0; i < nv; i++)
			in |= vs[i] == node;
		good += in && leader != 0 && strcmp(learners, "-") == 0;
	}
	return rows == want && good == want;
}

/* A wiped node is replaced by a new replica in every data group it holds,
 * also in the groups the group-0 leader does not host (with 4 nodes and 3
 * replicas, 4 of the 16): the placement driver learns of their stale
 * replica from their leaders' reports and has them removed and the new
 * incarnation added (lib/README.md "Replacing a wiped node"). */
Test(placement, a_wiped_node_is_replaced_in_groups_the_group0_leader_does_not_host,
     .fini = teardown, .timeout = 420)
{
	struct rd_h_opts o = {.data_groups = GROUPS,
	                      .replication = 3,
	                      .extra_conf = "[transport]\nidle_timeout_ms = 3000\n"
	                                    "[raft]\nelection_ticks = 100\n"};
	char cmd[512];
	unsigned lead, x;
	bool ok = false;
	int st;

	rd_h_cluster_init(&C, 4, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
	cr_assert(all_registered(1), "registrations not applied (logs in %s)", C.dir);
	rd_h_put_keys(&C, 4, WAIT_S, "k", KEYS, "v");
	lead = meta_leader(1);
	cr_assert_neq(lead, 0, "(logs in %s)", C.dir);
	x = lead == 4 ? 3 : 4;

	st = rd_h_stop(&C, x, SIGKILL);
	cr_assert(WIFSIGNALED(st));
	snprintf(cmd, sizeof cmd, "rm -rf %s/data%u", C.dir, x);
	cr_assert_eq(system(cmd), 0);
	rd_h_start(&C, x);
	for (int t = 0; t < 240 * 10 && !ok; t++) {
		ok = voter_of_all(x, 12);
		if (!ok)
			usleep(100 * 1000);
	}
	cr_assert(ok, "node %u is not a voter of its 12 groups again (logs in %s)", x,
	          C.dir);
	cr_assert(rd_h_log_has(&C, x, "rejoined: the cluster registers"), "(logs in %s)",
	          C.dir);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node %u not ready (logs in %s)", x,
	          C.dir);
	for (int i = 0; i < KEYS; i += 7) {
		char key[32];
		snprintf(key, sizeof key, "k%d", i);
		rd_h_expect_get(&C, x, WAIT_S, key, "v");
	}
	rd_h_check_leaders(&C);
	if (getenv("RD_KEEP_TMP") != NULL)
		printf("logs in %s\n", C.dir);
}

/* Does the leader of some data group, as nodes 1..3 show it, list `id` as
 * a learner? */
static bool learner_somewhere(unsigned id)
{
	for (unsigned i = 1; i <= 3; i++) {
		char out[16384], *line, *save = NULL;
		if (rd_h_ctl(&C, i, out, sizeof out, "groups", (char *)NULL) != 0)
			continue;
		for (line = strtok_r(out, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			unsigned g, leader, term, commit, applied, ls[8], nl;
			char role[16], voters[64], learners[64];
			if (sscanf(line, "%u %15s %u %u %u %u %63s %63s", &g, role,
			           &leader, &term, &commit, &applied, voters,
			           learners) != 8 ||
			    g == 0 || strcmp(role, "leader") != 0)
				continue;
			nl = rd_h_parse_ids(learners, ls, 8);
			for (unsigned k = 0; k < nl; k++)
				if (ls[k] == id)
					return true;
		}
	}
	return false;
}

/* A move's target dies in the middle of the move: node 3 is decommissioned
 * while node 4's disk holds every synced write (the storage layer's
 * test-only fault hook, lib/storage/stall.c), so the learner a move adds
 * on node 4 acknowledges nothing and is not promoted (thesis §4.2.1); node
 * 4 is then SIGKILLed. The move is abandoned (placement.h: a target not
 * live before its promotion: RETARGET back, learner removed), every group
 * keeps 3 voters and a leader, every acknowledged write stays readable.
 * Node 4 restarted with its disk back: the move is retried and finishes,
 * node 3 holds nothing and exits 0. No group has two leaders in a term. */
Test(placement, a_move_whose_target_dies_before_promotion_is_abandoned_then_retried,
     .fini = teardown, .timeout = 420)
{
	struct rd_h_opts o = {.data_groups = 4,
	                      .replication = 3,
	                      .extra_conf = "[transport]\nidle_timeout_ms = 3000\n"
	                                    "[health]\ndisk_stall_ms = 0\n"
	                                    "disk_slow_ms = 0\n"
	                                    "canary_interval_ms = 0\n"};
	unsigned held[RD_H_MAX_NODES + 1];
	char out[8192], path[256];
	bool seen = false;
	double abandoned = 0;
	int rv, st;

	rd_h_cluster_init(&C, 4, &o);
	for (unsigned i = 1; i <= 3; i++)
		rd_h_start(&C, i);
	rd_h_fault_path(&C, 4, path, sizeof path);
	setenv("RAFTD_TEST_FSYNC_FAULT", path, 1);
	rd_h_start(&C, 4);
	unsetenv("RAFTD_TEST_FSYNC_FAULT");
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
	cr_assert(all_registered(1), "registrations not applied (logs in %s)", C.dir);
	rd_h_put_keys(&C, 4, WAIT_S, "k", KEYS, "v");
	cr_assert(rd_h_wait_data_settled(&C, 4, 3, 4, held, WAIT_S), "(logs in %s)",
	          C.dir);

	/* Node 4's disk holds; node 3 leaves: at least one of its groups can
	 * only move to node 4 (4 nodes, 3 replicas each). */
	rd_h_set_fault(&C, 4, "block");
	rv = rd_h_ctl(&C, 1, out, sizeof out, "--json", "--timeout", "20000", "members",
	              "remove", "3", (char *)NULL);
	cr_assert_eq(rv, 0, "members remove 3: %s (logs in %s)", out, C.dir);
	for (int t = 0; t < 120 * 5 && !seen; t++) {
		seen = learner_somewhere(4);
		if (!seen)
			usleep(200 * 1000);
	}
	cr_assert(seen, "no learner added on node 4 (logs in %s)", C.dir);
	rd_h_check_leaders(&C);
	st = rd_h_stop(&C, 4, SIGKILL);
	cr_assert(WIFSIGNALED(st));

	/* Abandoned: no learner left, every group 3 voters, a leader, its
	 * target; node 3 still holds what nobody can take. */
	for (int t = 0; t < 120 * 5 && abandoned < 1; t++) {
		abandoned = 0;
		for (unsigned i = 1; i <= 3; i++)
			abandoned += rd_h_metric(
			    &C, i, "raft_placement_moves_total{result=\"abandoned\"}",
			    false);
		if (abandoned < 1)
			usleep(200 * 1000);
	}
	cr_assert_geq(abandoned, 1, "no move abandoned (logs in %s)", C.dir);
	cr_assert(rd_h_wait_data_settled(&C, 4, 3, 4, held, 120),
	          "groups not settled after the abandoned move (logs in %s)", C.dir);
	cr_assert(!learner_somewhere(4), "(logs in %s)", C.dir);
	cr_assert_geq(held[3], 1, "node 3 gave away a replica nobody took");
	cr_assert_eq(rd_h_wait_exit(&C, 3, 1), -1, "node 3 left holding replicas");
	rd_h_expect_keys(&C, 3, WAIT_S, "k", KEYS, "v");
	rd_h_check_leaders(&C);

	/* Node 4 back with its disk: the move is retried and node 3 goes. */
	rd_h_set_fault(&C, 4, "");
	rd_h_start(&C, 4);
	st = rd_h_wait_exit(&C, 3, 240);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	          "node 3: status %d (logs in %s)", st, C.dir);
	cr_assert(rd_h_wait_data_settled(&C, 4, 3, 4, held, 120),
	          "groups not settled after the retry (logs in %s)", C.dir);
	cr_assert_eq(held[3], 0);
	/* Through node 4 (its replicas caught up), and nodes 1 and 2. */
	for (int k = 0; k < KEYS; k += 5) {
		char key[32];
		snprintf(key, sizeof key, "k%d", k);
		rd_h_expect_get(&C, 4, WAIT_S, key, "v");
	}
	rd_h_expect_keys(&C, 2, WAIT_S, "k", KEYS, "v");
	rd_h_check_leaders(&C);
	if (getenv("RD_KEEP_TMP") != NULL)
		printf("logs in %s\n", C.dir);
}
