/*
 * Placement on every node: following group 0's target placements
 * (rd_placement_reload, rd_placement_host: open the groups this node is a
 * target of, close the replicas moved away from it) and answering the
 * group-0 leader's PeerRequest placement with a report of each data group
 * this node leads, handing leadership over when the request asks
 * (rd_placement_serve). The driver that asks is in placement_drive.c.
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

/* ---- following group 0's targets (every node) ------------------------------ */

struct reload_ctx {
	struct rd_node *n;
	size_t prefix_len;
	uint8_t prefix[RD_MEMBERS_PLACEMENT_KEY_MAX];
	uint64_t versions;
};

#define SCAN_DONE (RD_ERR_COUNT + 1) /* not an RD_E* code */

static int reload_one(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
                      size_t val_len)
{
	struct reload_ctx *c = arg;
	struct rd_routing *rt = &c->n->topo.routing;
	uint64_t nodes[RD_ROUTING_MAX_REPLICAS], version, g;
	uint32_t k;

	if (key_len < c->prefix_len || memcmp(key, c->prefix, c->prefix_len) != 0)
		/* Keys are in order: past the placements, stop. */
		return memcmp(key, c->prefix,
		              key_len < c->prefix_len ? key_len : c->prefix_len) > 0
		           ? SCAN_DONE
		           : 0;
	if (key_len != c->prefix_len + 8)
		return 0;
	g = rd_be64_get(key + c->prefix_len);
	if (g == 0 || g > rt->n_groups ||
	    rd_placement_decode(val, val_len, &version, nodes, &k) != 0) {
		rd_log_err("placement of group %llu in group 0: malformed, ignored",
		           (unsigned long long)g);
		return 0;
	}
	rt->groups[g - 1].n_replicas = k;
	memcpy(rt->groups[g - 1].replicas, nodes, k * sizeof *nodes);
	rt->groups[g - 1].version = version;
	c->versions += version;
	return 0;
}

void rd_placement_reload(struct rd_node *n)
{
	struct reload_ctx c = {.n = n};
	char msg[RD_ERRMSG_SIZE];
	uint64_t before = n->topo.routing.version;
	int rv;

	n->place.reload = false;
	c.prefix_len =
	    rd_members_placement_key(rd_storage_cluster_id(n->st), 0, c.prefix) - 8;
	rv = rd_storage_kv_scan(n->st, RD_STORAGE_META_GROUP, reload_one, &c, msg);
	if (rv != 0 && rv != SCAN_DONE) {
		rd_log_err("placement not read from group 0: %s", msg);
		return;
	}
	/* Every change of a target bumps that group's version: their sum
	 * grows with each, the same on every node. */
	n->topo.routing.version = 1 + c.versions;
	if (n->topo.routing.version != before && before != 0)
		rd_log_info("topology version %llu",
		            (unsigned long long)n->topo.routing.version);
}

/*
 * A replica that placement moved away: group 0's target no longer names
 * this node, and the group removed it. It serves nothing (waiter.c
 * serving_group forwards) and counts in no quorum, but it would tick, hold
 * its core in memory and, when it never heard of its removal (the leader
 * stops replicating to a server its new configuration leaves out, thesis
 * §4.1, §4.2.2), campaign in vain until the node restarts, and again after.
 * It knows of the removal from its own applied configuration, durable
 * here, or from the group-0 leader (`close_asked`), which saw the group's
 * leader report a settled configuration without this node
 * (placement_drive.c).
 *
 * Closing it leaves what a crash would: nothing of the group in memory,
 * its storage whole (term and vote, log, state machine, journal). So a move
 * back opens it from there (rd_placement_host below), with the term and
 * the vote it had: a replica never votes twice in a term (thesis §3.8), and
 * its log and applied state are those it acknowledged. A restart opens a
 * replica whose stored configuration lists this node, and the driver's
 * next round closes it again. Closing drops nothing that was not durable:
 * only a group with no update pending, no write in flight (!n->writing), no
 * request waiting and no snapshot arriving is closed.
 */
static bool closable(const struct rd_node *n, struct rd_group *g)
{
	uint64_t self = n->cfg.node_id;

	if (g->id == 0)
		return false;
	if (rd_routing_has_replica(&n->topo.routing, (uint32_t)g->id, self)) {
		g->close_asked = false; /* moved back before it closed */
		return false;
	}
	if (rd_raft_role(g->raft) == RD_RAFT_LEADER)
		return false;
	if (!g->close_asked &&
	    (rd_group_conf_role(g->conf_persisted, self) != RD_CONF_ROLE_NONE ||
	     rd_group_conf_role(rd_raft_conf(g->raft), self) != RD_CONF_ROLE_NONE))
		return false;
	if (g->dirty || rd_raft_has_update(g->raft) || g->compact_wait ||
	    g->props.head != NULL || g->reads.head != NULL)
		return false;
	for (unsigned i = 0; i < RD_SNAP_IN_SLOTS; i++)
		if (n->snap_in[i].sw != NULL && n->snap_in[i].sw_group == g->id)
			return false;
	return true;
}

static void close_moved(struct rd_node *n)
{
	for (size_t id = 1; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		if (g == NULL || !closable(n, g))
			continue;
		rd_log_notice("placement: group %zu moved away from this node: replica "
		              "closed term=%llu applied=%llu removal=%s (its data stays "
		              "on disk)",
		              id, (unsigned long long)rd_raft_term(g->raft),
		              (unsigned long long)g->applied,
		              g->close_asked ? "reported" : "applied");
		rd_node_set_ticking(n, g, false);
		n->groups[id] = NULL;
		rd_group_free(g);
		n->place.closed++;
	}
}

/* A data group hosted here, not led here, that its target does not name
 * this node for: a replica moved away, or being moved. */
static bool unplaced(const struct rd_node *n, const struct rd_group *g)
{
	return g != NULL && g->id != RD_STORAGE_META_GROUP &&
	       rd_raft_role(g->raft) != RD_RAFT_LEADER &&
	       !rd_routing_has_replica(&n->topo.routing, (uint32_t)g->id, n->cfg.node_id);
}

void rd_placement_close_asked(struct rd_node *n, uint64_t id)
{
	struct rd_group *g = rd_node_group(n, id);

	if (unplaced(n, g))
		g->close_asked = true;
}

size_t rd_placement_unplaced(const struct rd_node *n, uint64_t *out, size_t max)
{
	size_t k = 0;

	for (size_t id = 1; id < n->n_slots && k < max; id++)
		if (unplaced(n, n->groups[id]))
			out[k++] = id;
	return k;
}

void rd_placement_host(struct rd_node *n)
{
	const struct rd_routing *rt = &n->topo.routing;
	const uint64_t none[1] = {0}; /* no voters (rd_group_open copies none) */
	char msg[RD_ERRMSG_SIZE];

	if (n->members.asking || n->stopping || n->in_pass)
		return;
	if (!n->writing)
		close_moved(n);
	for (uint32_t g = 1; g <= rt->n_groups; g++) {
		if (n->groups[g] != NULL ||
		    !rd_routing_has_replica(rt, g, n->cfg.node_id))
			continue;
		/* No founding voters: the group's leader adds this node as a
		 * learner and it learns the configuration from the log. */
		if (rd_group_open(n, g, none, 0, msg) != 0) {
			rd_log_err("placement: group %u not opened: %s", g, msg);
			continue;
		}
		n->groups[g]->hint_handed = true;
		rd_node_set_ticking(n, n->groups[g], true);
		rd_node_touch(n, n->groups[g]);
		rd_log_notice("placement: this node is a target of group %u: hosting it, "
		              "to be added as a learner by its leader",
		              g);
	}
}

/* ---- reports (every node, asked by the group-0 leader) ---------------------- */

/* The same members in the same roles, in any order. */
static bool conf_equal(const struct rd_conf_state *a, const struct rd_conf_state *b)
{
	if (a->n_voters != b->n_voters || a->n_learners != b->n_learners)
		return false;
	for (uint32_t i = 0; i < a->n_voters; i++)
		if (rd_group_conf_role(b, a->voters[i]) != RD_CONF_ROLE_VOTER)
			return false;
	for (uint32_t i = 0; i < a->n_learners; i++)
		if (rd_group_conf_role(b, a->learners[i]) != RD_CONF_ROLE_LEARNER)
			return false;
	return true;
}

static uint64_t lag_of(const struct rd_node *n, const struct rd_group *g, uint64_t id)
{
	uint64_t last = rd_raft_last_index(g->raft), m;

	if (id == n->cfg.node_id)
		return 0;
	m = rd_raft_match(g->raft, id);
	return m == 0 ? UINT64_MAX : m >= last ? 0 : last - m;
}

/* What this node, leading g, reports of it. */
void rd_placement_report_local(const struct rd_node *n, const struct rd_group *g,
                               struct rd_place_report *r)
{
	const struct rd_conf_state *cs = rd_raft_conf(g->raft);

	r->g.known = true;
	r->g.leader = n->cfg.node_id;
	r->g.busy = rd_raft_transferee(g->raft) != 0 ||
	            !conf_equal(cs, rd_raft_conf_applied(g->raft));
	r->g.n_voters =
	    cs->n_voters < RD_PLACEMENT_MAX_CONF ? cs->n_voters : RD_PLACEMENT_MAX_CONF;
	r->g.n_learners = cs->n_learners < RD_PLACEMENT_MAX_CONF ? cs->n_learners
	                                                         : RD_PLACEMENT_MAX_CONF;
	for (uint32_t i = 0; i < r->g.n_voters; i++) {
		r->g.voters[i] = cs->voters[i];
		r->g.voter_lag[i] = lag_of(n, g, cs->voters[i]);
		r->voter_inc[i] = rd_membership_replica_inc(g, cs->voters[i]);
	}
	for (uint32_t i = 0; i < r->g.n_learners; i++) {
		r->g.learners[i] = cs->learners[i];
		r->g.learner_lag[i] = lag_of(n, g, cs->learners[i]);
		r->learner_inc[i] = rd_membership_replica_inc(g, cs->learners[i]);
	}
	r->at_ns = rd_clock_now_ns();
}

/* Hand leadership of a group this node leads to `to`, only when `to` is a
 * voter that holds the whole log (thesis §3.10). */
void rd_placement_transfer_local(struct rd_node *n, struct rd_group *g, uint64_t to)
{
	if (rd_raft_role(g->raft) != RD_RAFT_LEADER || to == n->cfg.node_id ||
	    rd_group_conf_role(rd_raft_conf(g->raft), to) != RD_CONF_ROLE_VOTER ||
	    rd_raft_match(g->raft, to) != rd_raft_last_index(g->raft) ||
	    rd_health_peer_slow(n, to) || rd_raft_transfer_leader(g->raft, to) != 0)
		return;
	rd_log_info("placement: leadership of group %llu handed to node %llu (leaders "
	            "per node balanced)",
	            (unsigned long long)g->id, (unsigned long long)to);
	rd_node_touch(n, g);
	rd_node_wake(n);
}

void rd_placement_serve(struct rd_node *n, uint64_t peer,
                        const struct Raftd__PeerRequest *req,
                        struct rd_transport_responder *r)
{
	const Raftd__PlacementRequest *pr = req->placement;
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__PlacementResponse out = RAFTD__PLACEMENT_RESPONSE__INIT;
	Raftd__PlacementGroupReport *reps = NULL, **ptrs = NULL;
	uint64_t *nums = NULL, unplaced[RD_PLACE_UNPLACED_MAX];
	size_t k = 0;

	if (g0 == NULL || rd_raft_leader(g0->raft) != peer || pr->n_transfers > 4096 ||
	    pr->n_close > 4096) {
		resp.error = RAFTD__ERROR_CODE__INVALID;
		resp.error_message =
		    "placement asked by a node that does not lead group 0";
		rd_transport_respond(r, &resp);
		return;
	}
	for (size_t i = 0; i < pr->n_transfers; i++) {
		struct rd_group *g = rd_node_group(n, pr->transfers[i]->group);
		if (g != NULL && g->id != RD_STORAGE_META_GROUP && !n->in_pass)
			rd_placement_transfer_local(n, g, pr->transfers[i]->to);
	}
	for (size_t i = 0; i < pr->n_close; i++)
		rd_placement_close_asked(n, pr->close[i]);
	reps = calloc(n->n_slots, sizeof *reps);
	ptrs = calloc(n->n_slots, sizeof *ptrs);
	nums = calloc(n->n_slots * 6 * RD_PLACEMENT_MAX_CONF, sizeof *nums);
	if (reps == NULL || ptrs == NULL || nums == NULL)
		goto out;
	for (size_t id = 1; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		struct rd_place_report rl = {0};
		Raftd__PlacementGroupReport *o = &reps[k];
		/* Six arrays of RD_PLACEMENT_MAX_CONF, alive until the answer
		 * is encoded. */
		uint64_t *a = nums + k * 6 * RD_PLACEMENT_MAX_CONF;
		size_t nv, nl, sz = sizeof *a;
		if (g == NULL || rd_raft_role(g->raft) != RD_RAFT_LEADER)
			continue;
		rd_placement_report_local(n, g, &rl);
		nv = rl.g.n_voters;
		nl = rl.g.n_learners;
		raftd__placement_group_report__init(o);
		o->group = id;
		o->term = rd_raft_term(g->raft);
		o->busy = rl.g.busy;
		o->n_voters = o->n_voter_lag = o->n_voter_incarnation = nv;
		o->n_learners = o->n_learner_lag = o->n_learner_incarnation = nl;
		o->voters = memcpy(a, rl.g.voters, nv * sz);
		o->voter_lag =
		    memcpy(a + 1 * RD_PLACEMENT_MAX_CONF, rl.g.voter_lag, nv * sz);
		o->voter_incarnation =
		    memcpy(a + 2 * RD_PLACEMENT_MAX_CONF, rl.voter_inc, nv * sz);
		o->learners =
		    memcpy(a + 3 * RD_PLACEMENT_MAX_CONF, rl.g.learners, nl * sz);
		o->learner_lag =
		    memcpy(a + 4 * RD_PLACEMENT_MAX_CONF, rl.g.learner_lag, nl * sz);
		o->learner_incarnation =
		    memcpy(a + 5 * RD_PLACEMENT_MAX_CONF, rl.learner_inc, nl * sz);
		ptrs[k++] = o;
	}
out:
	out.n_groups = k;
	out.groups = ptrs;
	out.unplaced = unplaced;
	out.n_unplaced = rd_placement_unplaced(n, unplaced, RD_PLACE_UNPLACED_MAX);
	resp.body_case = RAFTD__PEER_RESPONSE__BODY_PLACEMENT;
	resp.placement = &out;
	rd_transport_respond(r, &resp);
	free(reps);
	free(ptrs);
	free(nums);
}
