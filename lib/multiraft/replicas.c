/*
 * Replica identity (cluster/members.h): which incarnation of each node a
 * group's own log added, and the rule that a node steps only the messages
 * addressed to itself (rd_membership_addressed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "cluster/members.h"
#include "multiraft/node_internal.h"
#include "multiraft/subscribe.h"
#include "raftd.pb-c.h"
#include "storage/kv.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/fatal.h"
#include "util/log.h"

/* ---- replica identity ------------------------------------------------------ */

/*
 * Why messages are addressed to replicas (thesis §3.8, §4; the counter-
 * example in lib/README.md "Replacing a wiped node"): a node id names a
 * server only as long as its data directory lives. When node N's directory
 * is lost, a new incarnation N' may come back under the same id; a member
 * whose configuration of a group still lists the old replica (a lagging
 * follower, a stale leader or candidate, in any group) would count N''s
 * answers as N's: a vote N already gave in that term, an acknowledgement of
 * entries N' never had. So every message names the replica it is for, as
 * the sender's own configuration of the group has it: the incarnation the
 * conf-change entry that added `to` carried (RaftMessage.to_incarnation),
 * or 0 for a founding replica (the group's bootstrap entries name none).
 *
 * Rules at the receiver, per message:
 *   R1. addressed to an incarnation that is not this data directory's:
 *       dropped (it is for another replica of this node id);
 *   R2. addressed to a founding replica (0) while this directory joined as
 *       a new replica (catalog "joined"): dropped (it founded nothing);
 *   R3. sent by a node whose replica in the group's configuration, as this
 *       node knows it, has another incarnation than the batch carries:
 *       dropped (it is not the replica the configuration counts).
 * Plus, per batch (rd_membership_accept): a sender whose member table
 * registration is another incarnation is dropped whole.
 *
 * Safety: a message's effect on its receiver's core is that of Raft's
 * RPC to the replica it names, since only that replica (the one data
 * directory with that incarnation, whose hard state and log persist, §3.8)
 * steps it (R1, R2). Each replica is added to a group by its own conf
 * change, one server at a time (§4.1, §4.3): from the group's point of view
 * N and N' are two different servers, the old one removed before the new
 * one is added as a learner, so the configurations a stale sender may
 * hold count N's old votes and acknowledgements only, which N' never
 * sends. A sender learns an incarnation from the same log as the
 * configuration (the replica key is state of the group and ships with its
 * snapshots, cluster/members.h), so its address and its configuration
 * always agree. Answers count only for the replica that was asked (R3).
 */

static void replica_set(struct rd_group *g, uint64_t id, uint64_t inc)
{
	for (unsigned i = 0; i < g->n_replicas; i++)
		if (g->replicas[i].id == id) {
			g->replicas[i].incarnation = inc;
			return;
		}
	if (g->n_replicas == RD_GROUP_MAX_REPLICAS)
		return;
	if (g->n_replicas == g->cap_replicas) {
		g->cap_replicas += 4;
		g->replicas =
		    rd_xrealloc(g->replicas, g->cap_replicas * sizeof *g->replicas);
	}
	g->replicas[g->n_replicas++] = (struct rd_replica_inc){id, inc};
}

uint64_t rd_membership_replica_inc(const struct rd_group *g, uint64_t id)
{
	for (unsigned i = 0; i < g->n_replicas; i++)
		if (g->replicas[i].id == id)
			return g->replicas[i].incarnation;
	return 0;
}

uint64_t rd_membership_address(struct rd_node *n, const struct rd_group *g, uint64_t to,
                               uint64_t heard)
{
	const struct rd_conf_state *cs;
	uint64_t inc;

	if (g == NULL)
		return 0;
	if ((inc = rd_membership_replica_inc(g, to)) != 0)
		return inc;
	cs = rd_raft_conf(g->raft);
	if (cs->n_voters != 0 || cs->n_learners != 0)
		return 0; /* the configuration lists `to`'s founding replica */
	/* An empty configuration: a replica created to catch up, before the
	 * leader's log or snapshot told it the members (peers.c from_member
	 * takes every sender then). What it sends answers the request it
	 * stepped, so it goes to the data directory that asked: the one the
	 * member table registers for `to`, the only one whose batches
	 * rd_membership_accept lets through; while this node's member table
	 * is empty too (group 0 catching up as well), the one whose batch
	 * from `to` arrived last (`heard`), which that check let through.
	 * Addressed as a founding replica (0), the answer was dropped by a
	 * leader that had itself joined as a new replica (R2): its learner
	 * acknowledged nothing, was never promoted, and the group stayed one
	 * replica short. A directory other than the asker's gets it only if
	 * `to` was replaced between the request and the answer; it then
	 * counts for nothing: an answer counts for the term it names, and the
	 * new replica led or campaigned in no term of its predecessor's
	 * (Election Safety, thesis §3.6, holds between replicas as between
	 * servers). */
	if (rd_membership_registered(n, to, &inc) != 0 || inc == 0)
		inc = heard;
	return inc;
}

void rd_membership_replicas_appended(struct rd_group *g, const struct rd_entry *e,
                                     size_t n_entries)
{
	for (size_t i = 0; i < n_entries; i++) {
		uint8_t type;
		uint64_t node, inc;
		char addr[256];
		bool joining;
		if (e[i].type != RD_ENTRY_CONF_CHANGE ||
		    rd_raft_cc_decode(e[i].data, e[i].len, &type, &node) != 0 ||
		    e[i].len == RD_RAFT_CC_HEADER ||
		    (type != RD_CC_ADD_VOTER && type != RD_CC_ADD_LEARNER) ||
		    rd_members_cc_ctx_decode(e[i].data + RD_RAFT_CC_HEADER,
		                             e[i].len - RD_RAFT_CC_HEADER, &inc, addr,
		                             &joining) != 0)
			continue;
		replica_set(g, node, inc);
	}
}

static int replicas_scan(void *arg, const struct rd_entry *e)
{
	rd_membership_replicas_appended(arg, e, 1);
	return 0;
}

void rd_membership_replicas_load(struct rd_node *n, struct rd_group *g)
{
	const struct rd_conf_state *cs = rd_raft_conf(g->raft);
	uint8_t key[RD_MEMBERS_REPLICA_KEY_MAX], *val;
	char msg[RD_ERRMSG_SIZE];
	size_t vl;

	g->n_replicas = 0;
	for (uint32_t i = 0; i < cs->n_voters + cs->n_learners; i++) {
		uint64_t id =
		    i < cs->n_voters ? cs->voters[i] : cs->learners[i - cs->n_voters];
		size_t kl = rd_members_replica_key(rd_storage_cluster_id(n->st), id, key);
		if (rd_storage_kv_get(n->st, g->id, key, kl, &val, &vl, msg) != 0)
			continue;
		if (vl == 8)
			replica_set(g, id, rd_be64_get(val));
		free(val);
	}
	/* Configurations take effect when appended (thesis §4.1): the log
	 * after the applied index may add replicas the state machine does not
	 * hold yet. */
	if (rd_raft_last_index(g->raft) > rd_raft_applied_index(g->raft) &&
	    rd_storage_log_scan(n->st, g->id, rd_raft_applied_index(g->raft) + 1,
	                        replicas_scan, g, msg) != 0)
		rd_log_err("group %llu: replica identities from the log: %s",
		           (unsigned long long)g->id, msg);
}

bool rd_membership_addressed(struct rd_node *n, uint64_t group, uint64_t from,
                             uint64_t from_incarnation, uint64_t to_incarnation)
{
	struct rd_membership *m = &n->members;
	struct rd_group *g = rd_node_group(n, group);
	uint64_t want;
	const char *why = NULL;

	if (to_incarnation != 0 && to_incarnation != rd_storage_incarnation(n->st))
		why = "addressed to another replica of this node"; /* R1 */
	else if (to_incarnation == 0 && m->joined)
		why = "addressed to this node's founding replica, which this data "
		      "directory is not"; /* R2 */
	else if (g != NULL && from_incarnation != 0 &&
	         (want = rd_membership_replica_inc(g, from)) != 0 &&
	         want != from_incarnation)
		why = "from a replica the group's configuration does not list"; /* R3 */
	if (why == NULL)
		return true;
	if (m->misaddressed++ % 1000 == 0)
		rd_log_warn("raft message dropped group=%llu from=%llu: %s",
		            (unsigned long long)group, (unsigned long long)from, why);
	return false;
}
