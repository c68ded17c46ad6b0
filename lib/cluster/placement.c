/*
 * Placement decisions: see placement.h for the moves and why they keep a
 * quorum. Three passes over the groups, each group acted on at most once:
 *   1. groups whose configuration differs from their target take their
 *      next step toward it (abandon a dead target, drop a stray learner,
 *      add, promote, transfer away from or remove a source);
 *   2. settled groups get new targets, within max_moves: off leaving or
 *      removed nodes first, then to the replication factor, then toward
 *      an even count of replicas per node;
 *   3. settled groups hand leadership from the node that leads most to
 *      the one that leads least, within max_transfers.
 */
#include "cluster/placement.h"

#include <stdio.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

struct ctx {
	const struct rd_placement_in *in;
	struct rd_placement_action *out;
	size_t max, n;
	bool *touched;   /* [n_groups] */
	uint32_t *load;  /* [n_nodes]: target replicas per node */
	uint32_t *leads; /* [n_nodes]: groups led per node */
};

static const struct rd_placement_node *node_of(const struct rd_placement_in *in,
                                               uint64_t id)
{
	for (size_t i = 0; i < in->n_nodes; i++)
		if (in->nodes[i].id == id)
			return &in->nodes[i];
	return NULL;
}

static long node_index(const struct rd_placement_in *in, uint64_t id)
{
	for (size_t i = 0; i < in->n_nodes; i++)
		if (in->nodes[i].id == id)
			return (long)i;
	return -1;
}

/* May `id` hold a new replica or lead: a live member that is not leaving. */
static bool usable(const struct rd_placement_in *in, uint64_t id)
{
	const struct rd_placement_node *nd = node_of(in, id);
	return nd != NULL && nd->live && !nd->leaving;
}

/* May `id` be handed a leadership: usable and not slow. */
static bool may_lead(const struct rd_placement_in *in, uint64_t id)
{
	const struct rd_placement_node *nd = node_of(in, id);
	return usable(in, id) && !nd->slow;
}

static bool live(const struct rd_placement_in *in, uint64_t id)
{
	const struct rd_placement_node *nd = node_of(in, id);
	return nd != NULL && nd->live;
}

static bool in_list(const uint64_t *v, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

static bool in_target(const struct rd_placement_group *g, uint64_t id)
{
	return in_list(g->target, g->n_target, id);
}

static bool is_voter(const struct rd_placement_group *g, uint64_t id)
{
	return in_list(g->voters, g->n_voters, id);
}

static bool in_conf(const struct rd_placement_group *g, uint64_t id)
{
	return is_voter(g, id) || in_list(g->learners, g->n_learners, id);
}

/* The configuration is the target: every target node a voter, nothing
 * else in it. */
static bool settled(const struct rd_placement_group *g)
{
	if (g->n_learners != 0 || g->n_voters != g->n_target)
		return false;
	for (uint32_t i = 0; i < g->n_target; i++)
		if (!is_voter(g, g->target[i]))
			return false;
	return true;
}

static uint32_t live_voters(const struct rd_placement_in *in,
                            const struct rd_placement_group *g)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < g->n_voters; i++)
		k += live(in, g->voters[i]);
	return k;
}

static struct rd_placement_action *emit(struct ctx *c, uint8_t kind,
                                        const struct rd_placement_group *g, size_t gi,
                                        uint64_t node)
{
	struct rd_placement_action *a;

	if (c->n == c->max)
		return NULL;
	a = &c->out[c->n++];
	memset(a, 0, sizeof *a);
	a->kind = kind;
	a->group = g->id;
	a->node = node;
	c->touched[gi] = true;
	return a;
}

/* RETARGET g to its target without `drop` and with `add` (0: none). */
static bool retarget(struct ctx *c, const struct rd_placement_group *g, size_t gi,
                     uint64_t drop, uint64_t add)
{
	struct rd_placement_action *a;
	long di = node_index(c->in, drop), ai = node_index(c->in, add);

	if (add != 0 && g->n_target - (drop != 0) >= RD_ROUTING_MAX_REPLICAS)
		return false;
	if (add == 0 && g->n_target <= 1)
		return false; /* a target names one node at least */
	a = emit(c, RD_PLACE_RETARGET, g, gi, add);
	if (a == NULL)
		return false;
	a->from = drop;
	for (uint32_t i = 0; i < g->n_target; i++)
		if (g->target[i] != drop)
			a->target[a->n_target++] = g->target[i];
	if (add != 0)
		a->target[a->n_target++] = add;
	if (di >= 0 && drop != 0)
		c->load[di]--;
	if (ai >= 0 && add != 0)
		c->load[ai]++;
	return true;
}

/* Pass 1: the next step of a group whose configuration is not its target. */
static void step_toward(struct ctx *c, const struct rd_placement_group *g, size_t gi)
{
	const struct rd_placement_in *in = c->in;
	bool all_voters = true;

	/* A target node not yet a voter that is gone: abandon the move, the
	 * source back in the target in its place (still a voter: it goes only
	 * once every target node is one). Dropped alone, the target would
	 * shrink below the replication factor and the source be removed next
	 * as a voter the target does not name: a group left with one replica
	 * fewer for as long as no other node could take it. */
	for (uint32_t i = 0; i < g->n_target; i++) {
		uint64_t t = g->target[i], back = 0;
		if (is_voter(g, t) || usable(in, t))
			continue;
		for (uint32_t k = 0; k < g->n_voters && back == 0; k++)
			if (!in_target(g, g->voters[k]))
				back = g->voters[k];
		if (retarget(c, g, gi, t, back))
			c->out[c->n - 1].abandon = true;
		return;
	}
	/* A learner the target does not name (an abandoned move). */
	for (uint32_t i = 0; i < g->n_learners; i++)
		if (!in_target(g, g->learners[i])) {
			emit(c, RD_PLACE_REMOVE, g, gi, g->learners[i]);
			return;
		}
	for (uint32_t i = 0; i < g->n_target; i++)
		if (!in_conf(g, g->target[i])) {
			emit(c, RD_PLACE_ADD_LEARNER, g, gi, g->target[i]);
			return;
		}
	for (uint32_t i = 0; i < g->n_learners; i++) {
		uint64_t lag = g->learner_lag[i];
		uint32_t nv = g->n_voters + 1;
		/* Caught up, and the new configuration has a live majority
		 * (the learner is live: it was checked above). */
		if (lag != UINT64_MAX && lag <= in->promote_max_lag &&
		    live_voters(in, g) + 1 >= nv / 2 + 1) {
			emit(c, RD_PLACE_PROMOTE, g, gi, g->learners[i]);
			return;
		}
		all_voters = false;
	}
	if (!all_voters || g->n_learners != 0)
		return; /* wait for the learner to catch up */
	/* Every target node is a voter: a source goes. */
	for (uint32_t i = 0; i < g->n_voters; i++) {
		uint64_t v = g->voters[i], best = 0, best_lag = UINT64_MAX;
		uint32_t nv = g->n_voters - 1;
		if (in_target(g, v))
			continue;
		if (v != g->leader) {
			uint32_t lv = live_voters(in, g) - live(in, v);
			if (nv >= 1 && lv >= nv / 2 + 1)
				emit(c, RD_PLACE_REMOVE, g, gi, v);
			return;
		}
		/* The leader goes: hand leadership to a caught-up target
		 * voter first (thesis §3.10). */
		for (uint32_t j = 0; j < g->n_voters; j++) {
			uint64_t w = g->voters[j];
			if (w == v || !in_target(g, w) || !may_lead(in, w) ||
			    g->voter_lag[j] != 0)
				continue;
			if (best == 0 || g->voter_lag[j] < best_lag) {
				best = w;
				best_lag = g->voter_lag[j];
			}
		}
		if (best != 0) {
			struct rd_placement_action *a =
			    emit(c, RD_PLACE_TRANSFER, g, gi, best);
			if (a != NULL)
				a->from = v;
		}
		return;
	}
}

/* The usable node with the fewest target replicas that `g` does not hold
 * (in its target or its configuration); 0 when none. */
static uint64_t candidate(const struct ctx *c, const struct rd_placement_group *g)
{
	const struct rd_placement_in *in = c->in;
	uint64_t best = 0;
	uint32_t best_load = 0;

	for (size_t i = 0; i < in->n_nodes; i++) {
		uint64_t id = in->nodes[i].id;
		if (!usable(in, id) || in_target(g, id) || in_conf(g, id))
			continue;
		if (best == 0 || c->load[i] < best_load ||
		    (c->load[i] == best_load && id < best)) {
			best = id;
			best_load = c->load[i];
		}
	}
	return best;
}

static uint32_t want_replicas(const struct rd_placement_in *in)
{
	/* Leaving members count: a group keeps its replica on one until
	 * another node can take it (a decommission no node can absorb is
	 * refused up front, rd_placement_can_drain). */
	size_t members = in->n_nodes;

	if (members > RD_ROUTING_MAX_REPLICAS)
		members = RD_ROUTING_MAX_REPLICAS;
	return in->replication_factor < members ? in->replication_factor
	                                        : (uint32_t)members;
}

/* Pass 2, one settled group: off a node that leaves (or is no member),
 * up to or down to the replication factor. Returns whether it acted. */
static bool repair(struct ctx *c, const struct rd_placement_group *g, size_t gi,
                   uint32_t *stuck)
{
	const struct rd_placement_in *in = c->in;
	uint32_t want = want_replicas(in);

	for (uint32_t i = 0; i < g->n_target; i++) {
		const struct rd_placement_node *nd = node_of(in, g->target[i]);
		uint64_t to;
		if (nd != NULL && !nd->leaving)
			continue;
		to = candidate(c, g);
		if (to != 0)
			return retarget(c, g, gi, g->target[i], to);
		if (g->n_target > want)
			return retarget(c, g, gi, g->target[i], 0);
		(*stuck)++;
		return false;
	}
	if (g->n_target < want) {
		uint64_t to = candidate(c, g);
		if (to != 0)
			return retarget(c, g, gi, 0, to);
		(*stuck)++;
		return false;
	}
	if (g->n_target > want) {
		/* Drop the most loaded non-leader. */
		uint64_t drop = 0;
		uint32_t worst = 0;
		for (uint32_t i = 0; i < g->n_target; i++) {
			long k = node_index(in, g->target[i]);
			uint32_t l = k >= 0 ? c->load[k] : UINT32_MAX;
			if (g->target[i] == g->leader)
				continue;
			if (drop == 0 || l > worst || (l == worst && g->target[i] < drop))
				drop = g->target[i], worst = l;
		}
		return drop != 0 && retarget(c, g, gi, drop, 0);
	}
	return false;
}

/* Pass 2, balance: one move from the most to the least loaded usable node
 * when they differ by more than one. Returns whether it moved one. */
static bool balance_one(struct ctx *c, const struct rd_placement_group *groups,
                        const bool *ok)
{
	const struct rd_placement_in *in = c->in;
	long hi = -1, lo = -1;

	for (size_t i = 0; i < in->n_nodes; i++) {
		if (!usable(in, in->nodes[i].id))
			continue;
		if (hi < 0 || c->load[i] > c->load[hi])
			hi = (long)i;
		if (lo < 0 || c->load[i] < c->load[lo])
			lo = (long)i;
	}
	if (hi < 0 || c->load[hi] <= c->load[lo] + 1)
		return false;
	for (size_t gi = 0; gi < in->n_groups; gi++) {
		const struct rd_placement_group *g = &groups[gi];
		if (!ok[gi] || c->touched[gi] || !in_target(g, in->nodes[hi].id) ||
		    in_target(g, in->nodes[lo].id) || in_conf(g, in->nodes[lo].id))
			continue;
		return retarget(c, g, gi, in->nodes[hi].id, in->nodes[lo].id);
	}
	return false;
}

static uint64_t voter_lag(const struct rd_placement_group *g, uint64_t id)
{
	for (uint32_t i = 0; i < g->n_voters; i++)
		if (g->voters[i] == id)
			return g->voter_lag[i];
	return UINT64_MAX;
}

/* Pass 3: one leadership transfer from the node leading most groups to
 * one leading fewer by more than one, to a voter that has the whole log
 * (thesis §3.10: never to a lagging replica). */
static bool transfer_one(struct ctx *c, const struct rd_placement_group *groups,
                         const bool *ok)
{
	const struct rd_placement_in *in = c->in;
	long hi = -1;

	for (size_t i = 0; i < in->n_nodes; i++)
		if (usable(in, in->nodes[i].id) && (hi < 0 || c->leads[i] > c->leads[hi]))
			hi = (long)i;
	if (hi < 0)
		return false;
	/* The least-leading nodes first, so that the spread narrows. */
	for (uint32_t want = 0; want + 1 < c->leads[hi]; want++)
		for (size_t lo = 0; lo < in->n_nodes; lo++) {
			uint64_t to = in->nodes[lo].id;
			if (c->leads[lo] != want || !may_lead(in, to))
				continue;
			for (size_t gi = 0; gi < in->n_groups; gi++) {
				const struct rd_placement_group *g = &groups[gi];
				struct rd_placement_action *a;
				if (!ok[gi] || c->touched[gi] ||
				    g->leader != in->nodes[hi].id ||
				    voter_lag(g, to) != 0)
					continue;
				a = emit(c, RD_PLACE_TRANSFER, g, gi, to);
				if (a == NULL)
					return false;
				a->from = g->leader;
				c->leads[hi]--;
				c->leads[lo]++;
				return true;
			}
		}
	return false;
}

size_t rd_placement_decide(const struct rd_placement_in *in,
                           struct rd_placement_action *out, size_t max,
                           struct rd_placement_stats *st)
{
	bool touched[RD_ROUTING_MAX_GROUPS] = {false}, ok[RD_ROUTING_MAX_GROUPS];
	uint32_t load[RD_TOPOLOGY_MAX_MEMBERS] = {0},
	         leads[RD_TOPOLOGY_MAX_MEMBERS] = {0};
	struct ctx c = {in, out, max, 0, touched, load, leads};
	uint32_t in_flight = 0, stuck = 0;
	size_t ng =
	    in->n_groups < RD_ROUTING_MAX_GROUPS ? in->n_groups : RD_ROUTING_MAX_GROUPS;

	if (in->n_nodes > RD_TOPOLOGY_MAX_MEMBERS)
		return 0;
	for (size_t gi = 0; gi < ng; gi++) {
		const struct rd_placement_group *g = &in->groups[gi];
		long li = node_index(in, g->leader);
		for (uint32_t i = 0; i < g->n_target; i++) {
			long k = node_index(in, g->target[i]);
			if (k >= 0)
				load[k]++;
		}
		if (g->known && li >= 0)
			leads[li]++;
		ok[gi] = g->known && !g->busy && settled(g);
		if (g->known && !settled(g))
			in_flight++;
	}
	/* 1. moves in flight take their next step. */
	for (size_t gi = 0; gi < ng; gi++) {
		const struct rd_placement_group *g = &in->groups[gi];
		if (g->known && !g->busy && !settled(g))
			step_toward(&c, g, gi);
	}
	/* 2. new moves, within the bound. */
	for (size_t gi = 0; gi < ng && in_flight < in->max_moves; gi++)
		if (ok[gi] && repair(&c, &in->groups[gi], gi, &stuck))
			in_flight++;
	while (in_flight < in->max_moves && balance_one(&c, in->groups, ok))
		in_flight++;
	/* 3. leaders. */
	for (uint32_t t = 0; t < in->max_transfers && transfer_one(&c, in->groups, ok);
	     t++)
		;
	if (st != NULL) {
		st->moves_in_flight = in_flight;
		st->stuck = stuck;
	}
	return c.n;
}

int rd_placement_can_drain(const struct rd_placement_in *in, uint64_t node, char *msg)
{
	for (size_t gi = 0; gi < in->n_groups; gi++) {
		const struct rd_placement_group *g = &in->groups[gi];
		bool found = false;
		if (!in_target(g, node))
			continue;
		for (size_t i = 0; i < in->n_nodes && !found; i++) {
			uint64_t id = in->nodes[i].id;
			found = id != node && usable(in, id) && !in_target(g, id);
		}
		if (!found)
			return rd_errorf(msg, RD_EINVAL,
			                 "no live node that is not leaving can take node "
			                 "%llu's replica of data group %u (it would keep "
			                 "fewer than %u replicas): add a node first",
			                 (unsigned long long)node, g->id, g->n_target);
	}
	return 0;
}

size_t rd_placement_encode(uint64_t version, const uint64_t *nodes, uint32_t n,
                           uint8_t *out)
{
	size_t k = 0;

	if (n > RD_ROUTING_MAX_REPLICAS)
		n = RD_ROUTING_MAX_REPLICAS;
	out[k++] = 1;
	rd_be64_put(out + k, version);
	k += 8;
	out[k++] = (uint8_t)n;
	for (uint32_t i = 0; i < n; i++, k += 8)
		rd_be64_put(out + k, nodes[i]);
	return k;
}

int rd_placement_decode(const uint8_t *buf, size_t len, uint64_t *version,
                        uint64_t *nodes, uint32_t *n)
{
	if (len < 10 || buf[0] != 1 || buf[9] == 0 || buf[9] > RD_ROUTING_MAX_REPLICAS ||
	    len != 10 + 8 * (size_t)buf[9])
		return RD_ECORRUPT;
	*version = rd_be64_get(buf + 1);
	*n = buf[9];
	for (uint32_t i = 0; i < *n; i++) {
		nodes[i] = rd_be64_get(buf + 10 + 8 * i);
		if (nodes[i] == 0 || in_list(nodes, i, nodes[i]))
			return RD_ECORRUPT;
	}
	return 0;
}
