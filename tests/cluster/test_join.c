/*
 * Joining a running cluster with [cluster] join (lib/multiraft/join.c),
 * real processes: a 4th and a 5th node join through the founders' addresses
 * while a client writes (grow 3 -> 5), are redirected to the group-0
 * leader, added as learners and promoted (thesis §4.2.1: a new server
 * catches up as a non-voting member first), become ready; `raftctl members`
 * shows them and group 0 has 5 voters; placement moves data replicas onto
 * them (lib/cluster/placement.h: learner, caught up, promoted, source
 * removed) until every data group has 3 voters, its target, and each node
 * votes in 2 or 3 of the 12 replicas; every acknowledged write is
 * readable through them; a restarted joined node uses its stored topology;
 * the cluster shrinks back to 3 with `raftctl members remove` (a
 * decommission: the replicas of nodes 4 and 5 move back first), each
 * removed node exits 0, and every data group has 3 voters on nodes 1..3.
 * Bad input: a join under an id a live incarnation holds, and one with a
 * bad address, are refused with the reason on both sides and change
 * nothing. No group ever has two leaders in one term.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_S 60
/* A decommission is several moves in series (learner, catch-up by
 * snapshot, promotion, and a leadership hand-over when the leaving node
 * leads), each paced by placement passes: under ASan with two suites at
 * once it took over a minute (CI's output showed the moves still in
 * progress, not stuck). A bound on "never", not a duration. */
#define DECOMMISSION_WAIT_S 240

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

/* Wait until `raftctl members` on `node` has a row for `id` holding `what`
 * (or, with want false, until no row for `id` holds it). */
static bool wait_member(unsigned node, unsigned id, const char *what, bool want)
{
	for (int t = 0; t < WAIT_S * 10; t++) {
		char out[8192], *line, *save = NULL;
		bool found = false;
		if (rd_h_ctl(&C, node, out, sizeof out, "members", (char *)NULL) == 0)
			for (line = strtok_r(out, "\n", &save); line != NULL;
			     line = strtok_r(NULL, "\n", &save)) {
				unsigned rid;
				if (sscanf(line, "%u", &rid) == 1 && rid == id &&
				    strstr(line, what) != NULL)
					found = true;
			}
		if (found == want)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* Voters of group 0 in `raftctl groups` on `node`, or -1. */
static int g0_voters(unsigned node)
{
	char out[16384], *line, *save = NULL;

	if (rd_h_ctl(&C, node, out, sizeof out, "groups", (char *)NULL) != 0)
		return -1;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned g, leader, term, commit, applied;
		char role[16], voters[128];
		int k = 1;
		if (sscanf(line, "%u %15s %u %u %u %u %127s", &g, role, &leader, &term,
		           &commit, &applied, voters) != 7 ||
		    g != 0)
			continue;
		for (const char *p = voters; *p != 0; p++)
			k += *p == ',';
		return k;
	}
	return -1;
}

static bool wait_g0_voters(unsigned node, int want)
{
	for (int t = 0; t < WAIT_S * 10; t++) {
		if (g0_voters(node) == want)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

static bool wait_log(unsigned node, const char *needle)
{
	for (int t = 0; t < WAIT_S * 10; t++) {
		if (rd_h_log_has(&C, node, needle))
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* A writer: a child process putting w0, w1, ... through the founders until
 * killed; each key it got an acknowledgement for is appended to `path`. */
static pid_t start_writer(const char *path)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid != 0)
		return pid;
	for (int i = 0;; i++) {
		char key[32], out[4096];
		FILE *f;
		snprintf(key, sizeof key, "w%d", i);
		if (rd_h_ctl(&C, 1 + (unsigned)(i % 3), out, sizeof out, "put", key, "x",
		             (char *)NULL) != 0)
			continue;
		f = fopen(path, "a");
		if (f != NULL) {
			fprintf(f, "%s\n", key);
			fclose(f);
		}
	}
}

/* Every key the writer logged as acknowledged reads "x" on `node`. */
static unsigned check_acked(const char *path, unsigned node)
{
	char key[64];
	unsigned k = 0;
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f);
	while (fgets(key, sizeof key, f) != NULL) {
		key[strcspn(key, "\n")] = 0;
		rd_h_expect_get(&C, node, WAIT_S, key, "x");
		k++;
	}
	fclose(f);
	return k;
}

Test(join, grow_three_to_five_and_shrink_back, .fini = teardown, .timeout = 600)
{
	struct rd_h_opts o = {.data_groups = 4, .founders = 3};
	char out[8192], acked[300];
	int st;

	rd_h_cluster_init(&C, 5, &o);
	for (unsigned i = 1; i <= 3; i++)
		rd_h_start(&C, i);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "founders not ready (logs in %s)", C.dir);
	rd_h_put_keys(&C, 3, WAIT_S, "a", 20, "before");

	snprintf(acked, sizeof acked, "%s/acked", C.dir);
	pid_t writer = start_writer(acked);

	rd_h_start(&C, 4);
	cr_assert(wait_log(4, "joined the cluster"), "node 4 did not join (logs in %s)",
	          C.dir);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node 4 not ready (logs in %s)", C.dir);
	cr_assert(wait_member(1, 4, "voter", true), "node 4 not promoted (logs in %s)",
	          C.dir);
	rd_h_start(&C, 5);
	cr_assert(wait_log(5, "joined the cluster"), "node 5 did not join (logs in %s)",
	          C.dir);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node 5 not ready (logs in %s)", C.dir);
	for (unsigned i = 1; i <= 5; i++) {
		cr_assert(wait_member(i, 5, "voter", true),
		          "node %u does not show node 5 as a voter (logs in %s)", i,
		          C.dir);
		cr_assert(wait_member(i, 4, "voter", true),
		          "node %u does not show node 4 as a voter (logs in %s)", i,
		          C.dir);
	}
	cr_assert(wait_g0_voters(1, 5), "group 0 has not 5 voters (logs in %s)", C.dir);
	cr_assert(wait_g0_voters(5, 5), "node 5 does not see 5 voters (logs in %s)",
	          C.dir);
	/* The data side: placement gives the joined nodes their share (12
	 * replicas over 5 nodes: 2 or 3 each), as voters. */
	unsigned held[RD_H_MAX_NODES + 1];
	bool shared = false;
	for (int t = 0; t < 240 * 5 && !shared; t++) {
		shared = rd_h_data_settled(&C, 4, 3, 5, held);
		for (unsigned i = 1; i <= 5 && shared; i++)
			shared = held[i] >= 2 && held[i] <= 3;
		if (!shared)
			usleep(200 * 1000);
	}
	cr_assert(shared,
	          "data groups not settled on 5 nodes: voters of %u/%u/%u/%u/%u "
	          "groups (logs in %s)",
	          held[1], held[2], held[3], held[4], held[5], C.dir);
	cr_assert_geq(held[4], 1);
	cr_assert_geq(held[5], 1);
	rd_h_check_leaders(&C);
	kill(writer, SIGKILL);
	waitpid(writer, &st, 0);

	/* What the cluster acknowledged is readable through the new nodes. */
	rd_h_expect_keys(&C, 1, WAIT_S, "a", 20, "before");
	for (int i = 0; i < 20; i++) {
		char key[16];
		snprintf(key, sizeof key, "a%d", i);
		rd_h_expect_get(&C, 4 + (unsigned)(i % 2), WAIT_S, key, "before");
	}
	unsigned n4 = check_acked(acked, 4), n5 = check_acked(acked, 5);
	cr_assert_gt(n4, 0, "the writer got no write acknowledged (logs in %s)", C.dir);
	cr_assert_eq(n4, n5);
	rd_h_put(&C, 5, WAIT_S, "via5", "yes");
	rd_h_expect_get(&C, 1, WAIT_S, "via5", "yes");

	/* A restart of a joined node needs no join address: its topology is
	 * stored. It says nothing about joining again. */
	st = rd_h_stop(&C, 4, SIGTERM);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "node 4 stop: %d", st);
	rd_h_start(&C, 4);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node 4 not ready again (logs in %s)",
	          C.dir);
	rd_h_expect_get(&C, 4, WAIT_S, "via5", "yes");

	/* Shrink back to 3: removing a node that holds data replicas is a
	 * decommission (their replicas move to the others first), then it
	 * leaves group 0; each removed node exits 0 with one line. */
	for (unsigned id = 5; id >= 4; id--) {
		char ids[8];
		snprintf(ids, sizeof ids, "%u", id);
		int rv = rd_h_ctl_retry(&C, 1, WAIT_S, out, sizeof out, "--timeout",
		                        "20000", "members", "remove", ids, (char *)NULL);
		cr_assert_eq(rv, 0, "remove %u: %s (logs in %s)", id, out, C.dir);
		st = rd_h_wait_exit(&C, id, DECOMMISSION_WAIT_S);
		cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		          "removed node %u: status %d (logs in %s)", id, st, C.dir);
		cr_assert(rd_h_log_has(&C, id, "was removed from the cluster"),
		          "(logs in %s)", C.dir);
		cr_assert(wait_member(1, id, "removed", true), "(logs in %s)", C.dir);
	}
	cr_assert(wait_g0_voters(1, 3), "group 0 has not 3 voters (logs in %s)", C.dir);
	/* Every data group: 3 voters, all on nodes 1..3; nodes 4 and 5 hold
	 * nothing, in the groups' configurations or in their targets. */
	cr_assert(rd_h_wait_data_settled(&C, 4, 3, 3, held, WAIT_S),
	          "data groups not back on nodes 1..3 (logs in %s)", C.dir);
	cr_assert(held[4] == 0 && held[5] == 0 && held[1] + held[2] + held[3] == 12,
	          "voters of %u/%u/%u/%u/%u groups (logs in %s)", held[1], held[2],
	          held[3], held[4], held[5], C.dir);
	for (unsigned i = 1; i <= 3; i++) {
		cr_assert_eq(rd_h_metric(&C, i, "raft_node_replicas{node=\"4\"}", true),
		             0, "node %u", i);
		cr_assert_eq(rd_h_metric(&C, i, "raft_node_replicas{node=\"5\"}", true),
		             0, "node %u", i);
	}
	rd_h_put(&C, 2, WAIT_S, "after", "shrink");
	rd_h_expect_get(&C, 3, WAIT_S, "after", "shrink");
	rd_h_expect_keys(&C, 3, WAIT_S, "a", 20, "before");
	check_acked(acked, 3);
	rd_h_check_leaders(&C);
	if (getenv("RD_KEEP_TMP") != NULL)
		printf("logs in %s\n", C.dir);
}

/* Wait until every data group of `groups` is settled on nodes 1..`nodes`
 * and each of them votes in `lo` to `lo` + 1 groups. */
static bool wait_share(unsigned groups, unsigned nodes, unsigned lo, unsigned secs)
{
	unsigned held[RD_H_MAX_NODES + 1];

	for (unsigned t = 0; t < secs * 5; t++) {
		bool ok = rd_h_data_settled(&C, groups, 3, nodes, held);
		for (unsigned i = 1; i <= nodes && ok; i++)
			ok = held[i] >= lo && held[i] <= lo + 1;
		if (ok)
			return true;
		usleep(200 * 1000);
	}
	return false;
}

/* Nodes 4 and 5 join a 3-node cluster of 16 data groups, one after the
 * other, and each gets its share of the 48 replicas (12 each over 4
 * nodes, then 9 or 10 over 5). The group-0 leader is a source of some of
 * the first moves and keeps those replicas open, stale
 * (lib/README.md "Placement"); the second join moves some of the same
 * groups again, to node 5: their moves finish (multiraft/replace.c: only
 * a group's leader reconciles from its configuration). Every write reads
 * back through node 5. */
Test(join, each_joined_node_gets_its_share_of_sixteen_groups, .fini = teardown,
     .timeout = 600)
{
	struct rd_h_opts o = {.data_groups = 16, .founders = 3};

	rd_h_cluster_init(&C, 5, &o);
	for (unsigned i = 1; i <= 3; i++)
		rd_h_start(&C, i);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "founders not ready (logs in %s)", C.dir);
	rd_h_put_keys(&C, 3, WAIT_S, "s", 64, "v");
	rd_h_start(&C, 4);
	cr_assert(wait_member(1, 4, "voter", true), "node 4 not promoted (logs in %s)",
	          C.dir);
	cr_assert(wait_share(16, 4, 12, 240), "node 4 has not its share (logs in %s)",
	          C.dir);
	rd_h_start(&C, 5);
	cr_assert(wait_member(1, 5, "voter", true), "node 5 not promoted (logs in %s)",
	          C.dir);
	cr_assert(wait_share(16, 5, 9, 240), "node 5 has not its share (logs in %s)",
	          C.dir);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "(logs in %s)", C.dir);
	for (int i = 0; i < 64; i++) {
		char key[16];
		snprintf(key, sizeof key, "s%d", i);
		rd_h_expect_get(&C, 5, WAIT_S, key, "v");
	}
	rd_h_check_leaders(&C);
	if (getenv("RD_KEEP_TMP") != NULL)
		printf("logs in %s\n", C.dir);
}

/* Replace node `i`'s config line starting with `key` by `line`. */
static void set_conf(unsigned i, const char *key, const char *line)
{
	char buf[8192], res[8192] = "", *l, *save = NULL;
	FILE *f = fopen(C.nodes[i - 1].conf, "r");
	size_t n;

	cr_assert_not_null(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	for (l = strtok_r(buf, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		strcat(res, strncmp(l, key, strlen(key)) == 0 ? line : l);
		strcat(res, "\n");
	}
	f = fopen(C.nodes[i - 1].conf, "w");
	cr_assert_not_null(f);
	fputs(res, f);
	fclose(f);
}

Test(join, refused_joins_change_nothing, .fini = teardown, .timeout = 300)
{
	struct rd_h_opts o = {.data_groups = 2, .founders = 3};
	char out[8192], line[256], cmd[512];
	int st;

	rd_h_cluster_init(&C, 4, &o);
	for (unsigned i = 1; i <= 3; i++)
		rd_h_start(&C, i);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "founders not ready (logs in %s)", C.dir);
	rd_h_put_keys(&C, 3, WAIT_S, "k", 5, "v");
	cr_assert(wait_member(1, 3, "voter", true));
	/* Wait until every founder registered its incarnation. */
	for (int t = 0; t < WAIT_S * 10; t++) {
		if (rd_h_ctl(&C, 1, out, sizeof out, "members", (char *)NULL) == 0 &&
		    strstr(out, "0000000000000000") == NULL)
			break;
		usleep(100 * 1000);
	}

	/* Node 4 configured as node 3 (its certificate and id), with an empty
	 * data directory: the id is held by a live incarnation (registered,
	 * not removed). Refused with the reason on both sides; it exits 1 and
	 * nothing changed. Node 3's process is stopped meanwhile: the
	 * transport keeps one connection per node id, so two processes of one
	 * id displace each other's connections (as a restarted node's do). */
	st = rd_h_stop(&C, 3, SIGTERM);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	snprintf(line, sizeof line, "id = 3");
	set_conf(4, "id =", line);
	snprintf(cmd, sizeof cmd, "sed -i 's#node4\\.#node3.#' %s", C.nodes[3].conf);
	cr_assert_eq(system(cmd), 0);
	rd_h_start(&C, 4);
	st = rd_h_wait_exit(&C, 4, WAIT_S);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 78,
	          "duplicate join: status %d, not the config error's (logs in %s)", st,
	          C.dir);
	cr_assert(rd_h_log_has(&C, 4, "held by a live member"),
	          "no reason on the joiner "
	          "(logs in %s)",
	          C.dir);
	bool seen = false;
	for (unsigned i = 1; i <= 3; i++)
		seen |= rd_h_log_has(&C, i, "join of node 3 refused");
	cr_assert(seen, "no refusal line on the leader (logs in %s)", C.dir);
	cr_assert(wait_member(1, 3, "voter", true));
	cr_assert(wait_g0_voters(1, 3));
	rd_h_start(&C, 3);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "node 3 not ready again (logs in %s)",
	          C.dir);
	rd_h_expect_keys(&C, 3, WAIT_S, "k", 5, "v");

	/* A bad address: one the leader cannot parse. The joiner sends its
	 * [cluster] listen, which its own config check accepted, so the
	 * harness cannot produce one through raftd; `raftctl members add`
	 * with a bad address goes through the same check (members.c). */
	int rv = rd_h_ctl(&C, 2, out, sizeof out, "--json", "members", "add", "7",
	                  "no-port-here", "--learner", (char *)NULL);
	cr_assert_neq(rv, 0);
	cr_assert(strstr(out, "port") != NULL, "%s", out);
	cr_assert(wait_member(1, 7, "7", false), "a refused add changed the members");

	/* The certificate names node 4 but the config says 6: the TLS
	 * handshake itself refuses the claim (the id is the certificate's). */
	snprintf(cmd, sizeof cmd, "sed -i 's#node3\\.#node4.#' %s", C.nodes[3].conf);
	cr_assert_eq(system(cmd), 0);
	set_conf(4, "id =", "id = 6");
	snprintf(cmd, sizeof cmd, "rm -rf %s/data4", C.dir);
	cr_assert_eq(system(cmd), 0);
	rd_h_start(&C, 4);
	sleep(3);
	cr_assert(wait_member(1, 6, "6", false), "an unknown id joined");
	rd_h_stop(&C, 4, SIGTERM);
	cr_assert(wait_g0_voters(1, 3));
	rd_h_expect_keys(&C, 3, WAIT_S, "k", 5, "v");
	rd_h_check_leaders(&C);
	if (getenv("RD_KEEP_TMP") != NULL)
		printf("logs in %s\n", C.dir);
}
