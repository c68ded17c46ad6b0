/*
 * Placement at run time, the group-0 leader's side: it drives the moves
 * the pure decision (cluster/placement.h) asks for. Every node's side
 * (following the targets, reporting, transfers) is placement_host.c.
 *
 * Happy path, once a second on the group-0 leader:
 *   1. every member gets a PeerRequest placement (at most one in flight
 *      per member) and answers with a report of each data group it leads
 *      (configuration, lags, replica incarnations, busy); groups this node
 *      leads are read from its own cores;
 *   2. rd_placement_decide turns the members (live: connected; leaving:
 *      their member record), the targets and the fresh reports into
 *      actions;
 *   3. RETARGET is a CAS on the group's placement key in group 0 (on the
 *      value read); conf changes are membership ops (member_ops.c) handed
 *      to the group's leader, checked there by rd_members_check; leader
 *      transfers ride on the next PeerRequest placement to the leader.
 * Failure modes: a report older than three intervals counts as none (the
 * group is left alone); a failed CAS or conf change is simply decided
 * again from the state the next round sees; a new group-0 leader starts
 * from the same group-0 state and the groups' own configurations, so
 * nothing in this file needs to survive a restart.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/members.h"
#include "cluster/placement.h"
#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/kv.h"
#include "transport/transport.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/log.h"

#define REPORT_FRESH_NS  (3000ull * 1000000ull)
#define CALL_DEADLINE_MS 2000u
#define MAX_TRANSFERS    2
#define MAX_ACTIONS      256

int rd_placement_init(struct rd_node *n, char *msg)
{
	struct rd_placement_drive *p = &n->place;

	p->reports = calloc(n->n_slots, sizeof *p->reports);
	p->writing = calloc(n->n_slots, sizeof *p->writing);
	p->moving = calloc(n->n_slots, sizeof *p->moving);
	if (p->reports == NULL || p->writing == NULL || p->moving == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	return 0;
}

void rd_placement_free(struct rd_node *n)
{
	free(n->place.reports);
	free(n->place.writing);
	free(n->place.moving);
	n->place.reports = NULL;
	n->place.writing = NULL;
	n->place.moving = NULL;
}

/* ---- the driver (group-0 leader) ------------------------------------------- */

static void on_report(void *arg, int err, const Raftd__PeerResponse *resp,
                      const char *errmsg)
{
	struct rd_place_call *c = arg;
	struct rd_node *n = c->n;
	uint64_t now = rd_clock_now_ns();
	const Raftd__PlacementResponse *pr;

	(void)errmsg;
	c->in_flight = false;
	if (err != 0 || resp == NULL || resp->error != RAFTD__ERROR_CODE__OK ||
	    resp->body_case != RAFTD__PEER_RESPONSE__BODY_PLACEMENT ||
	    n->place.reports == NULL)
		return;
	pr = resp->placement;
	c->n_unplaced = 0;
	for (size_t i = 0; i < pr->n_unplaced && c->n_unplaced < RD_PLACE_UNPLACED_MAX;
	     i++)
		if (pr->unplaced[i] != 0 && pr->unplaced[i] < n->n_slots)
			c->unplaced[c->n_unplaced++] = pr->unplaced[i];
	for (size_t i = 0; i < pr->n_groups; i++) {
		const Raftd__PlacementGroupReport *o = pr->groups[i];
		struct rd_place_report *r;
		if (o->group == 0 || o->group >= n->n_slots ||
		    o->n_voters > RD_PLACEMENT_MAX_CONF ||
		    o->n_learners > RD_PLACEMENT_MAX_CONF ||
		    o->n_voter_lag != o->n_voters ||
		    o->n_voter_incarnation != o->n_voters ||
		    o->n_learner_lag != o->n_learners ||
		    o->n_learner_incarnation != o->n_learners)
			continue; /* malformed: ignored */
		r = &n->place.reports[o->group];
		/* Of two fresh reports, the leader of the later term wins. */
		if (r->g.known && r->at_ns + REPORT_FRESH_NS > now && r->term > o->term)
			continue;
		memset(r, 0, sizeof *r);
		r->g.known = true;
		r->g.leader = c->peer;
		r->g.busy = o->busy;
		r->term = o->term;
		r->at_ns = now;
		r->g.n_voters = (uint32_t)o->n_voters;
		r->g.n_learners = (uint32_t)o->n_learners;
		for (size_t k = 0; k < o->n_voters; k++) {
			r->g.voters[k] = o->voters[k];
			r->g.voter_lag[k] = o->voter_lag[k];
			r->voter_inc[k] = o->voter_incarnation[k];
		}
		for (size_t k = 0; k < o->n_learners; k++) {
			r->g.learners[k] = o->learners[k];
			r->g.learner_lag[k] = o->learner_lag[k];
			r->learner_inc[k] = o->learner_incarnation[k];
		}
	}
}

/* Is `id` in the configuration `r` reports? */
static bool reported(const struct rd_place_report *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->g.n_voters; i++)
		if (r->g.voters[i] == id)
			return true;
	for (uint32_t i = 0; i < r->g.n_learners; i++)
		if (r->g.learners[i] == id)
			return true;
	return false;
}

/* Whether group `g` removed `node`, as its leader last reported it: a
 * fresh report with no change pending (its configuration is the applied
 * one, so committed) names `node` in no role, and the target does not name
 * it either (a move onto it would list it in the target first). */
static bool removed_from(const struct rd_node *n, uint32_t g, uint64_t node, uint64_t now)
{
	const struct rd_place_report *r = &n->place.reports[g];

	if (g == 0 || g > n->topo.routing.n_groups || !r->g.known || r->g.busy ||
	    r->at_ns + REPORT_FRESH_NS <= now ||
	    rd_routing_has_replica(&n->topo.routing, g, node))
		return false;
	return !reported(r, node);
}

static void ask(struct rd_node *n, struct rd_place_call *c, const uint64_t (*tr)[2],
                size_t n_tr)
{
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__PlacementRequest pr = RAFTD__PLACEMENT_REQUEST__INIT;
	Raftd__PlacementTransfer ts[MAX_TRANSFERS], *tp[MAX_TRANSFERS];
	struct rd_transport *t = rd_peers_transport(n);
	char msg[RD_ERRMSG_SIZE];
	size_t k = 0;

	if (t == NULL || c->in_flight)
		return;
	for (size_t i = 0; i < n_tr && k < MAX_TRANSFERS; i++) {
		raftd__placement_transfer__init(&ts[k]);
		ts[k].group = tr[i][0];
		ts[k].to = tr[i][1];
		tp[k] = &ts[k];
		k++;
	}
	pr.n_transfers = k;
	pr.transfers = tp;
	/* Its replicas the target moved away whose group removed it. */
	uint64_t close[RD_PLACE_UNPLACED_MAX], now = rd_clock_now_ns();
	for (uint32_t i = 0; i < c->n_unplaced; i++)
		if (removed_from(n, (uint32_t)c->unplaced[i], c->peer, now))
			close[pr.n_close++] = c->unplaced[i];
	pr.close = close;
	c->n_unplaced = 0;
	req.body_case = RAFTD__PEER_REQUEST__BODY_PLACEMENT;
	req.placement = &pr;
	c->n = n;
	c->in_flight = true;
	if (rd_transport_call(t, c->peer, &req, CALL_DEADLINE_MS, on_report, c, msg) != 0)
		c->in_flight = false;
}

static void on_written(void *ud, uint64_t request_id, const struct rd_result *res)
{
	struct rd_node *n = ud;

	if (n->place.writing != NULL && request_id < n->n_slots)
		n->place.writing[request_id] = false;
	if (res->code != RAFTD__ERROR_CODE__OK)
		rd_log_info(
		    "placement: target of group %llu not written (decided again): %s",
		    (unsigned long long)request_id,
		    res->message != NULL ? res->message : "");
}

/* Propose a group-0 CAS that replaces `key`'s value `old` (absent when
 * old_len is 0 and !found) with `val`. */
static int propose_cas(struct rd_node *n, const uint8_t *key, size_t kl,
                       const uint8_t *old, size_t ol, bool found, const uint8_t *val,
                       size_t vl, rd_reply_fn cb, void *ud, uint64_t request_id)
{
	struct rd_kv_cmd cmd = {.op = RD_KV_CAS};
	struct rd_waiter *w;
	size_t size, len;

	cmd.key = key;
	cmd.key_len = (uint32_t)kl;
	cmd.has_expected = found; /* absent: only if still absent */
	cmd.expected = old;
	cmd.expected_len = (uint32_t)ol;
	cmd.value = val;
	cmd.value_len = (uint32_t)vl;
	size = rd_kv_encoded_size(&cmd);
	w = rd_waiter_new(RD_WAIT_FORWARD, cb, ud, request_id,
	                  rd_clock_now_ns() +
	                      (uint64_t)n->cfg.request_timeout_ms * 1000000ull);
	if (w == NULL || (w->data = malloc(size)) == NULL ||
	    rd_kv_encode(&cmd, w->data, size, &len) != 0) {
		if (w != NULL)
			free(w->data);
		free(w);
		return RD_ENOMEM;
	}
	w->len = len;
	w->group = RD_STORAGE_META_GROUP;
	w->op = RD_OP_WRITE;
	rd_node_submit(n, w);
	return 0;
}

static void write_target(struct rd_node *n, const struct rd_placement_action *a)
{
	uint8_t key[RD_MEMBERS_PLACEMENT_KEY_MAX], val[RD_PLACEMENT_VALUE_MAX],
	    *old = NULL;
	uint64_t nodes[RD_ROUTING_MAX_REPLICAS], version = 0;
	size_t kl = rd_members_placement_key(rd_storage_cluster_id(n->st), a->group, key);
	size_t ol = 0, vl;
	char msg[RD_ERRMSG_SIZE];
	uint32_t k;
	int rv;

	if (a->n_target == 0 || n->place.writing[a->group])
		return;
	rv = rd_storage_kv_get(n->st, RD_STORAGE_META_GROUP, key, kl, &old, &ol, msg);
	if (rv != 0 && rv != RD_ENOTFOUND)
		return;
	if (rv == 0 && rd_placement_decode(old, ol, &version, nodes, &k) != 0)
		version = 0;
	vl = rd_placement_encode(version + 1, a->target, a->n_target, val);
	if (propose_cas(n, key, kl, old, ol, rv == 0, val, vl, on_written, n, a->group) ==
	    0) {
		n->place.writing[a->group] = true;
		if (a->abandon && a->node != 0)
			rd_log_notice("placement: group %u target version %llu: move to "
			              "node %llu abandoned (not live), node %llu kept",
			              a->group, (unsigned long long)(version + 1),
			              (unsigned long long)a->from,
			              (unsigned long long)a->node);
		else
			rd_log_notice(
			    "placement: group %u target version %llu: %s node %llu%s%s",
			    a->group, (unsigned long long)(version + 1),
			    a->node != 0 ? "move to" : "drop",
			    (unsigned long long)(a->node != 0 ? a->node : a->from),
			    a->node != 0 && a->from != 0 ? " from node " : "",
			    a->node != 0 && a->from != 0
			        ? (snprintf(msg, sizeof msg, "%llu",
			                    (unsigned long long)a->from),
			           msg)
			        : "");
	}
	free(old);
}

/* A replica a group's configuration lists under another incarnation than
 * the one its node's record was added with (a wiped node, lib/README.md
 * "Replacing a wiped node"): removed through its leader, then added again
 * as the registered incarnation by the ordinary placement steps. Returns
 * whether the group was acted on. */
static bool replace_stale(struct rd_node *n, const struct rd_place_report *r,
                          uint32_t group, const struct rd_member_record *recs,
                          const struct rd_placement_node *nodes, size_t n_nodes)
{
	for (size_t i = 0; i < n_nodes; i++) {
		const struct rd_member_record *rec = &recs[i];
		uint64_t id = nodes[i].id, inc = UINT64_MAX;
		if (!rec->added || rec->incarnation == 0)
			continue;
		for (uint32_t k = 0; k < r->g.n_voters; k++)
			if (r->g.voters[k] == id)
				inc = r->voter_inc[k];
		for (uint32_t k = 0; k < r->g.n_learners; k++)
			if (r->g.learners[k] == id)
				inc = r->learner_inc[k];
		if (inc == UINT64_MAX || inc == rec->incarnation || id == r->g.leader)
			continue;
		rd_membership_place_op(n, RD_MEMBERS_REMOVE, group, id, 0, r->g.leader);
		return true;
	}
	return false;
}

/* Is g's configuration its target: every target node a voter, nothing
 * else? */
static bool at_target(const struct rd_placement_group *g)
{
	if (g->n_learners != 0 || g->n_voters != g->n_target)
		return false;
	for (uint32_t i = 0; i < g->n_target; i++) {
		bool voter = false;
		for (uint32_t k = 0; k < g->n_voters; k++)
			voter |= g->voters[k] == g->target[i];
		if (!voter)
			return false;
	}
	return true;
}

static bool in_conf_of(const struct rd_placement_group *g, uint64_t id)
{
	for (uint32_t i = 0; i < g->n_voters; i++)
		if (g->voters[i] == id)
			return true;
	for (uint32_t i = 0; i < g->n_learners; i++)
		if (g->learners[i] == id)
			return true;
	return false;
}

/* The members as the driver sees them: group 0's configuration, without
 * removed ones, with their records. Returns how many. */
static size_t gather_nodes(struct rd_node *n, struct rd_group *g0,
                           struct rd_placement_node *nodes, struct rd_member_record *recs)
{
	const struct rd_conf_state *cs = rd_raft_conf(g0->raft);
	size_t k = 0;

	for (uint32_t i = 0; i < cs->n_voters + cs->n_learners; i++) {
		uint64_t id =
		    i < cs->n_voters ? cs->voters[i] : cs->learners[i - cs->n_voters];
		uint64_t rtt;
		memset(&recs[k], 0, sizeof recs[k]);
		if (rd_membership_read_record(n, id, &recs[k]) == 0 &&
		    recs[k].state == RD_MEMBER_REMOVED)
			continue;
		nodes[k] = (struct rd_placement_node){
		    .id = id,
		    .live = id == n->cfg.node_id || rd_peers_connected(n, id, &rtt),
		    .leaving = recs[k].state == RD_MEMBER_LEAVING,
		    .slow = rd_health_peer_slow(n, id),
		};
		if (++k == RD_TOPOLOGY_MAX_MEMBERS)
			break;
	}
	return k;
}

void rd_placement_tick(struct rd_node *n)
{
	static struct rd_placement_action acts[MAX_ACTIONS];
	struct rd_placement_drive *p = &n->place;
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);
	const struct rd_routing *rt = &n->topo.routing;
	struct rd_placement_node nodes[RD_TOPOLOGY_MAX_MEMBERS];
	struct rd_member_record recs[RD_TOPOLOGY_MAX_MEMBERS];
	struct rd_placement_group *groups;
	uint64_t tr[RD_TOPOLOGY_MAX_MEMBERS][MAX_TRANSFERS][2];
	size_t n_tr[RD_TOPOLOGY_MAX_MEMBERS] = {0}, n_nodes = 0, n_acts;
	struct rd_placement_stats st;
	uint64_t now = rd_clock_now_ns();

	/* Every second as well as after group 0 applied: the applied state
	 * may reach storage after the pass that flagged it. */
	rd_placement_reload(n);
	rd_placement_host(n);
	p->leading = false;
	if (g0 == NULL || rd_raft_role(g0->raft) != RD_RAFT_LEADER || n->stopping ||
	    n->in_pass || p->reports == NULL || rt->n_groups == 0)
		return;
	p->leading = true;
	/* A wiped node being replaced is out of group 0 for a moment (old
	 * replica removed, new one not added yet, member_ops.c): its replicas
	 * would look like a departed member's. Nothing moves meanwhile. */
	if (n->members.n_replace > 0)
		return;
	n_nodes = gather_nodes(n, g0, nodes, recs);
	groups = calloc(rt->n_groups, sizeof *groups);
	if (groups == NULL)
		return;
	for (uint32_t g = 1; g <= rt->n_groups; g++) {
		struct rd_placement_group *pg = &groups[g - 1];
		struct rd_place_report *r = &p->reports[g];
		const struct rd_group_placement *tp = rd_routing_placement(rt, g);
		struct rd_group *lg = n->groups[g];
		if (lg != NULL && rd_raft_role(lg->raft) == RD_RAFT_LEADER) {
			rd_placement_report_local(n, lg, r);
			r->term = rd_raft_term(lg->raft);
		}
		if (r->g.known && r->at_ns + REPORT_FRESH_NS > now)
			*pg = r->g;
		pg->known = pg->known && !p->writing[g] &&
		            !replace_stale(n, r, g, recs, nodes, n_nodes);
		pg->id = g;
		pg->n_target = tp->n_replicas;
		memcpy(pg->target, tp->replicas, tp->n_replicas * sizeof *tp->replicas);
		/* A move is done when the configuration is the target again. */
		if (pg->known) {
			bool settled = at_target(pg);
			if (p->moving[g] && settled)
				p->moves_done++;
			p->moving[g] = !settled;
		}
	}
	for (uint32_t g = 0; g < rt->n_groups; g++)
		if (groups[g].known &&
		    (groups[g].busy || groups[g].n_voters != groups[g].n_target ||
		     groups[g].n_learners != 0))
			rd_log_debug("placement: group %u busy=%d voters=%u learners=%u "
			             "leader=%llu",
			             g + 1, groups[g].busy, groups[g].n_voters,
			             groups[g].n_learners,
			             (unsigned long long)groups[g].leader);
	struct rd_placement_in in = {
	    .nodes = nodes,
	    .n_nodes = n_nodes,
	    .groups = groups,
	    .n_groups = rt->n_groups,
	    .replication_factor = n->cfg.replication_factor,
	    .max_moves = n->cfg.max_moves,
	    .max_transfers = MAX_TRANSFERS,
	    .promote_max_lag = n->cfg.promote_max_lag,
	};
	n_acts = rd_placement_decide(&in, acts, MAX_ACTIONS, &st);
	p->moves_in_flight = st.moves_in_flight;
	if (st.stuck != p->stuck && st.stuck != 0)
		rd_log_warn(
		    "placement: %u data groups need a replica no live node can take",
		    st.stuck);
	p->stuck = st.stuck;
	for (size_t i = 0; i < n_acts; i++) {
		const struct rd_placement_action *a = &acts[i];
		const struct rd_placement_group *pg = &groups[a->group - 1];
		size_t k;
		rd_log_debug(
		    "placement: action %u group %u node %llu from %llu leader %llu",
		    a->kind, a->group, (unsigned long long)a->node,
		    (unsigned long long)a->from, (unsigned long long)pg->leader);
		switch (a->kind) {
		case RD_PLACE_RETARGET:
			if (a->abandon)
				p->moves_abandoned++;
			else if (a->node != 0)
				p->moves_started++;
			else if (!reported(&p->reports[a->group], a->from) ||
			         pg->n_learners != 0)
				p->moves_abandoned++;
			write_target(n, a);
			break;
		case RD_PLACE_ADD_LEARNER:
			for (k = 0; k < n_nodes && nodes[k].id != a->node; k++)
				;
			if (k < n_nodes && recs[k].incarnation != 0)
				rd_membership_place_op(n, RD_MEMBERS_ADD, a->group,
				                       a->node, recs[k].incarnation,
				                       pg->leader);
			break;
		case RD_PLACE_PROMOTE:
			rd_membership_place_op(n, RD_MEMBERS_PROMOTE, a->group, a->node,
			                       0, pg->leader);
			break;
		case RD_PLACE_REMOVE:
			rd_membership_place_op(n, RD_MEMBERS_REMOVE, a->group, a->node, 0,
			                       pg->leader);
			break;
		case RD_PLACE_TRANSFER:
			p->transfers++;
			if (a->from == n->cfg.node_id) {
				rd_placement_transfer_local(n, n->groups[a->group],
				                            a->node);
				break;
			}
			for (k = 0; k < n_nodes && nodes[k].id != a->from; k++)
				;
			if (k < n_nodes && n_tr[k] < MAX_TRANSFERS) {
				tr[k][n_tr[k]][0] = a->group;
				tr[k][n_tr[k]][1] = a->node;
				n_tr[k]++;
			}
			break;
		}
	}
	/* A leaving node that holds nothing any more leaves group 0. */
	for (size_t i = 0; i < n_nodes; i++) {
		bool holds = false;
		if (!nodes[i].leaving)
			continue;
		for (uint32_t g = 0; g < rt->n_groups && !holds; g++)
			holds = rd_routing_has_replica(rt, g + 1, nodes[i].id) ||
			        !groups[g].known || in_conf_of(&groups[g], nodes[i].id);
		if (holds)
			continue;
		if (p->decommission_logged != nodes[i].id)
			rd_log_notice(
			    "placement: node %llu holds no data replica any more: "
			    "removing it from group 0",
			    (unsigned long long)nodes[i].id);
		p->decommission_logged = nodes[i].id;
		rd_membership_place_op(n, RD_MEMBERS_REMOVE, RD_STORAGE_META_GROUP,
		                       nodes[i].id, 0, 0);
	}
	/* Metrics: target replicas and leaders per member. */
	p->n_nodes = (unsigned)n_nodes;
	for (size_t i = 0; i < n_nodes; i++) {
		p->node_ids[i] = nodes[i].id;
		p->node_replicas[i] = p->node_leaders[i] = 0;
		for (uint32_t g = 0; g < rt->n_groups; g++) {
			p->node_replicas[i] +=
			    rd_routing_has_replica(rt, g + 1, nodes[i].id);
			p->node_leaders[i] +=
			    groups[g].known && groups[g].leader == nodes[i].id;
		}
	}
	free(groups);
	/* This node's own replicas moved away, as others' are (ask). */
	uint64_t mine[RD_PLACE_UNPLACED_MAX];
	size_t n_mine = rd_placement_unplaced(n, mine, RD_PLACE_UNPLACED_MAX);
	for (size_t i = 0; i < n_mine; i++)
		if (removed_from(n, (uint32_t)mine[i], n->cfg.node_id, now))
			rd_placement_close_asked(n, mine[i]);
	/* Ask every other live member for its reports (and transfers). */
	for (size_t i = 0; i < n_nodes; i++) {
		struct rd_place_call *c = &p->calls[i];
		if (nodes[i].id == n->cfg.node_id || !nodes[i].live)
			continue;
		if (c->peer != nodes[i].id) {
			if (c->in_flight)
				continue; /* the slot's previous peer: wait for it */
			c->peer = nodes[i].id;
			c->n_unplaced = 0; /* another node's list */
		}
		ask(n, c, (const uint64_t(*)[2])tr[i], n_tr[i]);
	}
}

/* ---- decommission ---------------------------------------------------------- */

int rd_placement_decommission(struct rd_node *n, uint64_t node, rd_reply_fn cb, void *ud,
                              uint64_t request_id, int *code, char *msg)
{
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);
	const struct rd_routing *rt = &n->topo.routing;
	struct rd_placement_node nodes[RD_TOPOLOGY_MAX_MEMBERS];
	struct rd_member_record recs[RD_TOPOLOGY_MAX_MEMBERS], rec;
	uint8_t key[RD_MEMBERS_KEY_MAX], old[RD_MEMBERS_VALUE_MAX],
	    val[RD_MEMBERS_VALUE_MAX];
	struct rd_placement_group *groups;
	size_t n_nodes, kl, ol;
	bool holds = false;
	int rv;

	for (uint32_t g = 1; g <= rt->n_groups && !holds; g++)
		holds = rd_routing_has_replica(rt, g, node);
	if (!holds || g0 == NULL)
		return 0;
	if (rd_membership_read_record(n, node, &rec) != 0) {
		*code = RAFTD__ERROR_CODE__INVALID;
		rd_errorf(msg, RD_EINVAL, "node %llu has no member record",
		          (unsigned long long)node);
		return 1;
	}
	if (rec.state == RD_MEMBER_LEAVING) {
		*code = RAFTD__ERROR_CODE__OK;
		snprintf(msg, RD_ERRMSG_SIZE,
		         "node %llu is already leaving: its data replicas move to other "
		         "nodes, then it is removed from group 0 and exits",
		         (unsigned long long)node);
		return 1;
	}
	n_nodes = gather_nodes(n, g0, nodes, recs);
	for (size_t i = 0; i < n_nodes; i++)
		if (nodes[i].id == node)
			nodes[i].leaving = true;
	groups = calloc(rt->n_groups, sizeof *groups);
	if (groups == NULL) {
		*code = RAFTD__ERROR_CODE__INTERNAL;
		rd_errorf(msg, RD_ENOMEM, "out of memory");
		return 1;
	}
	for (uint32_t g = 1; g <= rt->n_groups; g++) {
		const struct rd_group_placement *tp = rd_routing_placement(rt, g);
		groups[g - 1].id = g;
		groups[g - 1].n_target = tp->n_replicas;
		memcpy(groups[g - 1].target, tp->replicas,
		       tp->n_replicas * sizeof *tp->replicas);
	}
	struct rd_placement_in in = {
	    .nodes = nodes,
	    .n_nodes = n_nodes,
	    .groups = groups,
	    .n_groups = rt->n_groups,
	    .replication_factor = n->cfg.replication_factor,
	};
	rv = rd_placement_can_drain(&in, node, msg);
	free(groups);
	if (rv != 0) {
		*code = RAFTD__ERROR_CODE__INVALID;
		return 1;
	}
	/* Mark it leaving, a CAS on the record read: the driver moves its
	 * replicas from the next round on, on whichever node leads group 0. */
	kl = rd_members_key(rd_storage_cluster_id(n->st), node, key);
	ol = rd_members_encode(&rec, old);
	rec.state = RD_MEMBER_LEAVING;
	if (propose_cas(n, key, kl, old, ol, true, val, rd_members_encode(&rec, val), cb,
	                ud, request_id) != 0) {
		*code = RAFTD__ERROR_CODE__INTERNAL;
		rd_errorf(msg, RD_ENOMEM, "out of memory");
		return 1;
	}
	rd_log_notice("decommission: node %llu marked leaving (proposed): its data "
	              "replicas move first, then it leaves group 0",
	              (unsigned long long)node);
	return 2;
}
