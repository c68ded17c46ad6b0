/*
 * The membership a node stores for a group, runs in process against a real
 * node runtime (lib/multiraft: its loop, storage and restart), one node,
 * one data group:
 *
 *   - a snapshot of the state machine carries the configuration as of its
 *     applied index (thesis §5.1), not a change appended after it that has
 *     not committed: a follower installing it would otherwise run with a
 *     membership that the log may still undo (thesis §4.1);
 *   - a restart after the log was compacted past membership changes comes
 *     back with the configuration of the compaction point plus the changes
 *     still in the log (thesis §4.1), i.e. the latest one in the log, and
 *     the compaction point's own configuration excludes the changes after
 *     it, so a truncation falls back to the right one.
 *
 * The node is driven from the test's thread (event loop turns); nothing
 * here waits on a clock beyond a bound on loop turns.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "multiraft/node.h"
#include "multiraft/node_internal.h"
#include "raft/raft.h"
#include "storage/kv.h"
#include "storage/snapshot.h"
#include "storage/storage.h"
#include "util/config.h"
#include "util/err.h"

static char dir[256];
static struct rd_config cfg;
static struct event_base *base;
static struct rd_node *node;
static char msg[RD_ERRMSG_SIZE];

static int free_port(int type)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t l = sizeof a;
	int fd = socket(AF_INET, type, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void start(void)
{
	base = event_base_new();
	cr_assert_not_null(base);
	cr_assert_eq(rd_node_start(&cfg, base, &node, msg), 0, "%s", msg);
}

static void stop(void)
{
	rd_node_shutdown(node);
	event_base_dispatch(base);
	rd_node_free(node);
	event_base_free(base);
	node = NULL;
	base = NULL;
}

static void setup(void)
{
	char text[2048];
	int quic = free_port(SOCK_DGRAM), admin = free_port(SOCK_STREAM);

	snprintf(dir, sizeof dir, "%s/rd-confstate-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(text, sizeof text,
	         "[node]\nid = 1\ndata_dir = %s/data\n"
	         "[cluster]\nlisten = 127.0.0.1:%d\npeers = 1@127.0.0.1:%d\n"
	         "data_groups = 1\nreplication_factor = 1\n"
	         "[raft]\nsnapshot_entries = 20\n"
	         "[tls]\nmode = insecure\n"
	         "[control]\nsocket = %s/sock\n"
	         "[admin]\nlisten = 127.0.0.1:%d\n"
	         "[log]\nlevel = warning\n",
	         dir, quic, quic, dir, admin);
	cr_assert_eq(rd_config_load_string(&cfg, "confstate.conf", text, msg), 0, "%s",
	             msg);
	start();
}

static void teardown(void)
{
	char cmd[512];
	if (node != NULL)
		stop();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(confstate, .init = setup, .fini = teardown);

/* Turn the loop until `done` holds (at most `turns` turns of 10 ms). */
static bool turn_until(bool (*done)(void), int turns)
{
	for (int i = 0; i < turns && !done(); i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	return done();
}

static struct rd_group *g1(void)
{
	return node->groups[1];
}

static bool leads(void)
{
	return g1() != NULL && rd_raft_role(g1()->raft) == RD_RAFT_LEADER;
}

static uint64_t want_applied;
static bool applied(void)
{
	return rd_raft_applied_index(g1()->raft) >= want_applied;
}

/* Propose on group 1's core as its leader would, and let the loop run. */
static uint64_t propose_cc(uint8_t type, uint64_t id)
{
	uint64_t idx = 0;
	int rv;
	/* RD_EBUSY until the leader's no-op commits (thesis §4.1). */
	for (int i = 0; i < 500; i++) {
		rv = rd_raft_propose_conf_change(g1()->raft, type, id, NULL, 0, &idx);
		if (rv != RD_EBUSY)
			break;
		want_applied = rd_raft_commit(g1()->raft) + 1;
		turn_until(applied, 1);
	}
	cr_assert_eq(rv, 0, "%s", rd_strerror(rv));
	rd_node_touch(node, g1());
	rd_node_wake(node);
	return idx;
}

static uint64_t propose_puts(int n)
{
	uint64_t idx = 0;
	for (int i = 0; i < n; i++) {
		uint8_t buf[128];
		char key[16];
		size_t len;
		snprintf(key, sizeof key, "k%d", i);
		struct rd_kv_cmd c = {.op = RD_KV_PUT,
		                      .key = (const uint8_t *)key,
		                      .key_len = (uint32_t)strlen(key),
		                      .value = (const uint8_t *)"v",
		                      .value_len = 1};
		cr_assert_eq(rd_kv_encode(&c, buf, sizeof buf, &len), 0);
		cr_assert_eq(rd_raft_propose(g1()->raft, RD_ENTRY_NORMAL, buf,
		                             (uint32_t)len, &idx),
		             0);
	}
	rd_node_touch(node, g1());
	rd_node_wake(node);
	return idx;
}

/* Learner 2 added (committed: the single voter is a quorum), entries past
 * it so that the log is compacted beyond the change, then voter 3 added:
 * with voters {1, 3} that change cannot commit (node 3 does not exist), so
 * it stays appended and unapplied. */
static uint64_t pending_change(void)
{
	cr_assert(turn_until(leads, 500), "node 1 leads group 1");
	want_applied = propose_cc(RD_CC_ADD_LEARNER, 2);
	cr_assert(turn_until(applied, 500));
	want_applied = propose_puts(60);
	cr_assert(turn_until(applied, 500));
	uint64_t learner_idx = want_applied - 60;
	/* The iteration that writes the next change compacts first. */
	uint64_t idx = propose_cc(RD_CC_ADD_VOTER, 3);
	/* Let it be written: a few turns, it never commits. */
	want_applied = UINT64_MAX;
	turn_until(applied, 20);
	cr_assert_gt(rd_raft_first_index(g1()->raft), learner_idx,
	             "the log was compacted past the learner's entry");
	cr_assert_leq(rd_raft_first_index(g1()->raft), rd_raft_applied_index(g1()->raft),
	              "a tail of applied entries is kept (not a compaction at applied)");
	cr_assert_eq(rd_raft_persisted_index(g1()->raft), idx);
	cr_assert_lt(rd_raft_commit(g1()->raft), idx);
	return idx;
}

Test(confstate, a_snapshot_ships_the_applied_configuration_not_a_pending_change)
{
	struct rd_snapshot_reader *r;
	struct rd_snapshot_meta meta;

	(void)pending_change();
	cr_assert(rd_raft_conf_has_voter(rd_raft_conf(g1()->raft), 3),
	          "thesis §4.1: in use at once");
	cr_assert_eq(rd_snapshot_reader_open(node->st, 1, &r, &meta, msg), 0, "%s", msg);
	rd_snapshot_reader_close(r);
	cr_assert_eq(meta.index, rd_raft_applied_index(g1()->raft));
	cr_assert(rd_raft_conf_has_voter(&meta.conf, 1));
	cr_assert(rd_raft_conf_has_learner(&meta.conf, 2),
	          "the applied learner is in it");
	cr_assert(!rd_raft_conf_has_voter(&meta.conf, 3),
	          "the uncommitted voter 3 is not part of the state at index %llu",
	          (unsigned long long)meta.index);
	cr_assert_eq(meta.conf.n_voters, 1);
}

Test(confstate, a_restart_after_compaction_across_changes_rebuilds_the_configuration)
{
	uint64_t idx = pending_change();
	uint64_t first = rd_raft_first_index(g1()->raft);

	stop();
	start();
	cr_assert_not_null(g1());
	cr_assert_eq(rd_raft_first_index(g1()->raft), first);
	cr_assert_eq(rd_raft_last_index(g1()->raft), idx);
	const struct rd_conf_state *cs = rd_raft_conf(g1()->raft);
	cr_assert(rd_raft_conf_has_voter(cs, 1) && rd_raft_conf_has_voter(cs, 3) &&
	              rd_raft_conf_has_learner(cs, 2),
	          "the latest configuration in the log (thesis §4.1)");
	cr_assert_eq(cs->n_voters, 2);
	cr_assert_eq(cs->n_learners, 1);
	/* The compaction point's configuration: learner 2 yes (compacted
	 * away), voter 3 no (its entry is after the point, uncommitted; a
	 * truncation must fall back to a membership without it). */
	const struct rd_snapshot_meta *sm = rd_raft_snapshot(g1()->raft);
	cr_assert_eq(sm->index, first - 1);
	cr_assert(rd_raft_conf_has_learner(&sm->conf, 2));
	cr_assert(!rd_raft_conf_has_voter(&sm->conf, 3),
	          "voter 3 is not in the configuration at the compaction point %llu",
	          (unsigned long long)sm->index);
	cr_assert_eq(sm->conf.n_voters, 1);
}

/* raftd --force-new-cluster (multiraft/recover.c): the uncommitted change
 * (voter 3) is discarded, the committed learner 2 removed, and the node
 * comes back as the group's only voter, leading it and committing. */
Test(confstate, force_new_cluster_discards_the_uncommitted_change_and_leaves_one_voter)
{
	uint64_t idx = pending_change();
	uint64_t commit = rd_raft_commit(g1()->raft);

	stop();
	cr_assert_eq(rd_node_force_new_cluster(&cfg, msg), 0, "%s", msg);
	start();
	cr_assert_eq(rd_raft_last_index(g1()->raft), commit + 1,
	             "entries %llu..%llu discarded, one removal appended",
	             (unsigned long long)commit + 1, (unsigned long long)idx);
	cr_assert_eq(rd_raft_commit(g1()->raft), commit + 1);
	const struct rd_conf_state *cs = rd_raft_conf(g1()->raft);
	cr_assert_eq(cs->n_voters, 1);
	cr_assert_eq(cs->voters[0], 1);
	cr_assert_eq(cs->n_learners, 0);
	cr_assert(turn_until(leads, 500));
	want_applied = propose_puts(3);
	cr_assert(turn_until(applied, 500), "a single voter commits alone");
	struct rd_storage_group_info gi;
	cr_assert_eq(rd_storage_group_info(node->st, 1, &gi), 0);
	cr_assert_eq(gi.conf.n_voters, 1, "the applied membership is stored");
	cr_assert_eq(gi.conf.n_learners, 0);
}
