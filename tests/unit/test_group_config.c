/*
 * What the core of every group on a node is configured with comes from the
 * node's config (lib/multiraft/group.c rd_group_raft_config): a key that the
 * file sets but that never reaches the core would be accepted and ignored.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "raft/raft.h"
#include "util/config.h"
#include "util/err.h"

#define CONF                                                                             \
	"[node]\nid = 2\ndata_dir = /d\n[cluster]\nlisten = 127.0.0.1:1\n"               \
	"peers = 2@127.0.0.1:1\n[tls]\nmode = insecure\n"

static void load(struct rd_config *c, const char *text)
{
	char msg[RD_ERRMSG_SIZE] = "";

	cr_assert_eq(rd_config_load_string(c, "x.conf", text, msg), 0, "%s", msg);
}

Test(group_config, the_raft_keys_reach_the_core)
{
	struct rd_config c;
	struct rd_raft_config rc;

	load(&c, CONF "[raft]\nelection_ticks = 40\nheartbeat_ticks = 4\n"
	              "max_inflight_msgs = 8\nmax_inflight_bytes = 2MiB\n"
	              "max_msg_bytes = 64KiB\nlog_cache_bytes = 128KiB\n"
	              "quiesce = no\n");
	memset(&rc, 0xff, sizeof rc);
	rd_group_raft_config(&c, 7, &rc);
	cr_assert_eq(rc.group, 7);
	cr_assert_eq(rc.id, 2);
	cr_assert_eq(rc.election_ticks, 40);
	cr_assert_eq(rc.heartbeat_ticks, 4);
	cr_assert_eq(rc.max_inflight_msgs, 8);
	cr_assert_eq(rc.max_inflight_bytes, 2u << 20);
	cr_assert_eq(rc.max_msg_bytes, 64u << 10);
	cr_assert_eq(rc.log_mem_bytes, 128u << 10);
	cr_assert(!rc.quiesce);
	cr_assert(rc.pre_vote && rc.check_quorum);
	/* Nothing the node adds itself is left over from the caller's memory. */
	cr_assert_null(rc.log_source);
	cr_assert_eq(rc.conf.n_voters, 0);
	cr_assert_eq(rc.n_entries, 0);
}

/* The defaults bound what a returning follower is sent per group. */
Test(group_config, defaults_bound_the_bytes_in_flight)
{
	struct rd_config c;
	struct rd_raft_config rc;

	load(&c, CONF);
	rd_group_raft_config(&c, 1, &rc);
	cr_assert_eq(rc.max_inflight_bytes, 16u << 20);
	cr_assert_eq(rc.max_inflight_msgs, 256);
	cr_assert(rc.quiesce);
}
