/*
 * Replacing a wiped node's replicas, on the group-0 leader: noticing a
 * node that answers with another incarnation than the registered one, and
 * reconciling every group with the registrations, one membership change
 * at a time through member_ops.c (rd_membership_flow_op).
 */
#include <inttypes.h>
#include <stdio.h>

#include "cluster/members.h"
#include "multiraft/node_internal.h"
#include "util/log.h"

/* ---- replacing a replica (the group-0 leader) ---------------------------- */

/*
 * The flow (lib/README.md "Replacing a wiped node"): a node whose probes
 * carry another incarnation than the registered one lost its data
 * (rd_membership_note_replacement). The group-0 leader then, one change at a time per
 * group, each proposed by that group's leader (handed over like any
 * membership request):
 *   1. group 0: removes the old replica, then adds the new one as a
 *      joining learner with its incarnation: that entry is the new
 *      registration (member record: added, joining);
 *   2. every data group whose placement holds the node and that this
 *      node leads (the others are the placement driver's, from their
 *      leaders' reports): removes the replica its configuration has (a
 *      founding one, or another incarnation), adds the registered
 *      incarnation's as a joining learner; it catches up from the
 *      leader's log or a snapshot;
 *   3. promotes each such learner once within promote_max_lag (refusals
 *      are retried), group 0's while it has fewer than 5 voters.
 * Nothing of it is kept but the groups' own state: a new group-0 leader
 * picks it up where the logs say it is (rd_membership_reconcile, every second), and the
 * wiped node probes until its registration applied.
 */

void rd_membership_note_replacement(struct rd_node *n, uint64_t peer,
                                    uint64_t incarnation)
{
	struct rd_membership *m = &n->members;
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);

	if (g0 == NULL || rd_raft_role(g0->raft) != RD_RAFT_LEADER)
		return;
	for (unsigned i = 0; i < m->n_replace; i++)
		if (m->replace[i].node == peer) {
			m->replace[i].incarnation = incarnation;
			return;
		}
	if (m->n_replace == sizeof m->replace / sizeof m->replace[0])
		return;
	m->replace[m->n_replace++] = (struct rd_replace){peer, incarnation};
	rd_log_notice("node %llu answers with incarnation %016" PRIx64 ", not the "
	              "registered one: replacing its replicas with new ones",
	              (unsigned long long)peer, incarnation);
}

static int member_role_in(const struct rd_conf_state *cs, uint64_t id)
{
	for (uint32_t i = 0; i < cs->n_voters; i++)
		if (cs->voters[i] == id)
			return 2;
	for (uint32_t i = 0; i < cs->n_learners; i++)
		if (cs->learners[i] == id)
			return 1;
	return 0;
}

/* One data group g for member `id`, registered as rec (added), decided
 * from g's configuration here only while this node leads g: a leader's
 * log holds every committed configuration of g (Leader Completeness,
 * thesis §3.6.3, and a configuration takes effect on append, §4.1), a
 * follower's may be stale for good. A source a move removed keeps its
 * replica open (lib/README.md "Placement") but hears no more of g's
 * entries, so its configuration lacks the move's target: an ADD asked
 * from it is refused by g's leader ("already a learner"), round after
 * round, and while it is in flight the placement driver's PROMOTE of
 * that learner is dropped as a second change of the same (group, node)
 * (member_ops.c op_busy): the move never finished. The groups this node
 * does not lead are the driver's, from their leaders' reports
 * (placement_drive.c: replace_stale, then the ordinary steps). */
static void reconcile_group(struct rd_node *n, struct rd_group *g, uint64_t id,
                            const struct rd_member_record *rec)
{
	const struct rd_conf_state *cs = rd_raft_conf(g->raft);
	int role = member_role_in(cs, id);
	bool right = role != 0 && rd_membership_replica_inc(g, id) == rec->incarnation;

	if (rd_raft_role(g->raft) != RD_RAFT_LEADER)
		return;
	if (role != 0 && !right)
		rd_membership_flow_op(n, RD_MEMBERS_REMOVE, g->id, id, 0, rec->addr, 0);
	else if (role == 0)
		rd_membership_flow_op(n, RD_MEMBERS_ADD, g->id, id, rec->incarnation,
		                      rec->addr, 0);
	else if (role == 1)
		rd_membership_flow_op(n, RD_MEMBERS_PROMOTE, g->id, id, 0, rec->addr, 0);
}

void rd_membership_reconcile(struct rd_node *n)
{
	struct rd_membership *m = &n->members;
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);
	const struct rd_routing *rt = &n->topo.routing;
	struct rd_member_record rec;

	if (g0 == NULL || rd_raft_role(g0->raft) != RD_RAFT_LEADER)
		return;
	/* 1. group 0: old replica out, new one in (its registration). */
	for (unsigned i = 0; i < m->n_replace;) {
		struct rd_replace *r = &m->replace[i];
		if (rd_membership_read_record(n, r->node, &rec) != 0 ||
		    rec.incarnation == r->incarnation) {
			m->replace[i] = m->replace[--m->n_replace];
			continue;
		}
		if (member_role_in(rd_raft_conf(g0->raft), r->node) != 0)
			rd_membership_flow_op(n, RD_MEMBERS_REMOVE, 0, r->node, 0,
			                      rec.addr, 0);
		else
			rd_membership_flow_op(n, RD_MEMBERS_ADD, 0, r->node,
			                      r->incarnation, rec.addr, 0);
		i++;
	}
	/* 2, 3. every registered new replica, in every group it belongs to. */
	for (unsigned i = 0; i < n->topo.n_members; i++) {
		uint64_t id = n->topo.members[i].id;
		if (rd_membership_read_record(n, id, &rec) != 0 || !rec.added ||
		    rec.incarnation == 0 || rec.state == RD_MEMBER_REMOVED)
			continue;
		if (rec.state == RD_MEMBER_JOINING &&
		    member_role_in(rd_raft_conf(g0->raft), id) == 1 &&
		    rd_raft_conf(g0->raft)->n_voters < RD_MEMBERS_MAX_VOTERS)
			rd_membership_flow_op(n, RD_MEMBERS_PROMOTE, 0, id, 0, rec.addr,
			                      0);
		if (rec.state != RD_MEMBER_JOINING && rec.state != RD_MEMBER_VOTER)
			continue;
		for (uint32_t gi = 1; gi <= rt->n_groups; gi++) {
			struct rd_group *g = rd_node_group(n, gi);
			if (g != NULL && rd_routing_has_replica(rt, gi, id))
				reconcile_group(n, g, id, &rec);
		}
	}
}
