/*
 * Placement decisions (cluster/placement.h), pure: every step of a move
 * (retarget, add a learner, promote once caught up, transfer away from a
 * leaving leader, remove the source), the bound on moves in flight, one
 * replica per node, never below a quorum during a move (Raft thesis §4.1,
 * §4.2.1), abandoning a move whose target died, draining a leaving node,
 * spreading replicas onto an empty node and balancing leaders. A small
 * model of a cluster carries the actions out to check that the decisions
 * converge.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cluster/placement.h"
#include "util/err.h"

#define MAXG 32

struct model {
	struct rd_placement_node nodes[8];
	size_t n_nodes;
	struct rd_placement_group g[MAXG];
	size_t n_groups;
	struct rd_placement_in in;
	struct rd_placement_action a[8]; /* what decides() got */
};

static void set_list(uint64_t *v, uint32_t *n, const uint64_t *ids, uint32_t k)
{
	memcpy(v, ids, k * sizeof *ids);
	*n = k;
}

/* n_nodes live nodes 1..n, n_groups settled groups of rf voters placed
 * as the bootstrap does (group g on nodes g-1, g, g+1 mod n), led by the
 * first. */
static void model_init(struct model *m, size_t n_nodes, size_t n_groups, uint32_t rf)
{
	memset(m, 0, sizeof *m);
	m->n_nodes = n_nodes;
	for (size_t i = 0; i < n_nodes; i++)
		m->nodes[i] = (struct rd_placement_node){.id = i + 1, .live = true};
	m->n_groups = n_groups;
	for (size_t gi = 0; gi < n_groups; gi++) {
		struct rd_placement_group *g = &m->g[gi];
		g->id = (uint32_t)gi + 1;
		g->known = true;
		for (uint32_t r = 0; r < rf; r++)
			g->target[r] = (gi + r) % n_nodes + 1;
		g->n_target = rf;
		set_list(g->voters, &g->n_voters, g->target, rf);
		g->leader = g->target[0];
	}
	m->in = (struct rd_placement_in){
	    .nodes = m->nodes,
	    .n_nodes = n_nodes,
	    .groups = m->g,
	    .n_groups = n_groups,
	    .replication_factor = rf,
	    .max_moves = 4,
	    .max_transfers = 2,
	    .promote_max_lag = 10,
	};
}

static void del(uint64_t *v, uint32_t *n, uint64_t id)
{
	for (uint32_t i = 0; i < *n; i++)
		if (v[i] == id) {
			v[i] = v[--*n];
			return;
		}
}

static bool has(const uint64_t *v, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

/* Carry one action out in the model: learners catch up at once. */
static void apply(struct model *m, const struct rd_placement_action *a)
{
	struct rd_placement_group *g = &m->g[a->group - 1];

	switch (a->kind) {
	case RD_PLACE_RETARGET:
		set_list(g->target, &g->n_target, a->target, a->n_target);
		break;
	case RD_PLACE_ADD_LEARNER:
		g->learner_lag[g->n_learners] = 0;
		g->learners[g->n_learners++] = a->node;
		break;
	case RD_PLACE_PROMOTE:
		del(g->learners, &g->n_learners, a->node);
		g->voter_lag[g->n_voters] = 0;
		g->voters[g->n_voters++] = a->node;
		break;
	case RD_PLACE_REMOVE:
		cr_assert_neq(a->node, g->leader, "a leader is never removed");
		if (has(g->voters, g->n_voters, a->node))
			del(g->voters, &g->n_voters, a->node);
		else
			del(g->learners, &g->n_learners, a->node);
		break;
	case RD_PLACE_TRANSFER:
		cr_assert_eq(a->from, g->leader);
		cr_assert(has(g->voters, g->n_voters, a->node));
		g->leader = a->node;
		break;
	}
}

/* Invariants of every decision: targets distinct and of live members'
 * ids, at most one conf change per group, quorum kept. */
static void check(const struct model *m, const struct rd_placement_action *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct rd_placement_group *g = &m->g[a[i].group - 1];
		for (size_t j = i + 1; j < n; j++)
			cr_assert(a[j].group != a[i].group ||
			              a[i].kind == RD_PLACE_TRANSFER ||
			              a[j].kind == RD_PLACE_TRANSFER,
			          "two changes of group %u in one decision", a[i].group);
		if (a[i].kind == RD_PLACE_RETARGET)
			for (uint32_t x = 0; x < a[i].n_target; x++)
				for (uint32_t y = x + 1; y < a[i].n_target; y++)
					cr_assert_neq(
					    a[i].target[x], a[i].target[y],
					    "two replicas of group %u on node %llu",
					    a[i].group,
					    (unsigned long long)a[i].target[x]);
		if (a[i].kind == RD_PLACE_REMOVE &&
		    has(g->voters, g->n_voters, a[i].node))
			cr_assert_geq(g->n_voters - 1, g->n_target,
			              "group %u would drop below its target", g->id);
	}
}

/* Decide and apply until nothing is left to do (at most `rounds`);
 * returns the number of rounds, checking the bound on moves each round. */
static int run(struct model *m, int rounds)
{
	struct rd_placement_action a[64];
	struct rd_placement_stats st;

	for (int r = 0; r < rounds; r++) {
		size_t n = rd_placement_decide(&m->in, a, 64, &st);
		check(m, a, n);
		cr_assert_leq(st.moves_in_flight, m->in.max_moves);
		if (n == 0)
			return r;
		for (size_t i = 0; i < n; i++)
			apply(m, &a[i]);
	}
	cr_assert_fail("no fixed point after %d rounds", rounds);
	return rounds;
}

static uint32_t replicas_on(const struct model *m, uint64_t id)
{
	uint32_t k = 0;
	for (size_t gi = 0; gi < m->n_groups; gi++)
		k += has(m->g[gi].voters, m->g[gi].n_voters, id) ||
		     has(m->g[gi].learners, m->g[gi].n_learners, id);
	return k;
}

static uint32_t leaders_on(const struct model *m, uint64_t id)
{
	uint32_t k = 0;
	for (size_t gi = 0; gi < m->n_groups; gi++)
		k += m->g[gi].leader == id;
	return k;
}

static void check_settled(const struct model *m, uint32_t rf)
{
	for (size_t gi = 0; gi < m->n_groups; gi++) {
		const struct rd_placement_group *g = &m->g[gi];
		cr_assert_eq(g->n_voters, rf, "group %u has %u voters", g->id,
		             g->n_voters);
		cr_assert_eq(g->n_learners, 0);
		for (uint32_t i = 0; i < g->n_voters; i++)
			cr_assert(has(g->target, g->n_target, g->voters[i]));
	}
}

/* The placement decides exactly one action now, of `kind`, into m->a[0]. */
static void decides(struct model *m, uint8_t kind)
{
	cr_assert_eq(rd_placement_decide(&m->in, m->a, 8, NULL), 1);
	cr_assert_eq(m->a[0].kind, kind);
}

/* The placement decides nothing now. */
static void decides_nothing(struct model *m)
{
	cr_assert_eq(rd_placement_decide(&m->in, m->a, 8, NULL), 0);
}

/* A model of `n_nodes` nodes and one settled group of three (model_init)
 * whose target becomes target[0..3). */
static struct rd_placement_group *one_group(struct model *m, size_t n_nodes,
                                            const uint64_t *target)
{
	model_init(m, n_nodes, 1, 3);
	set_list(m->g[0].target, &m->g[0].n_target, target, 3);
	return &m->g[0];
}

Test(placement, a_balanced_cluster_needs_nothing)
{
	struct model m;

	model_init(&m, 3, 6, 3);
	decides_nothing(&m);
}

Test(placement, a_move_adds_a_learner_then_promotes_then_removes_the_source)
{
	struct model m;
	struct rd_placement_group *g;

	uint64_t t[3] = {2, 3, 4};
	g = one_group(&m, 4, t); /* group 1 on 1, 2, 3; node 4 empty */
	/* 1. the target is not in the configuration: add it as a learner. */
	decides(&m, RD_PLACE_ADD_LEARNER);
	cr_assert_eq(m.a[0].node, 4);
	apply(&m, &m.a[0]);
	/* 2. a lagging learner is not promoted (thesis §4.2.1). */
	g->learner_lag[0] = 11;
	decides_nothing(&m);
	g->learner_lag[0] = UINT64_MAX; /* nothing acknowledged */
	decides_nothing(&m);
	g->learner_lag[0] = 10;
	decides(&m, RD_PLACE_PROMOTE);
	cr_assert_eq(m.a[0].node, 4);
	apply(&m, &m.a[0]);
	/* 3. the source leads: leadership goes to a caught-up target voter
	 * first, never to a lagging one. */
	g->voter_lag[1] = 5; /* node 2 lags */
	g->voter_lag[2] = 0; /* node 3 */
	g->voter_lag[3] = 0; /* node 4 */
	decides(&m, RD_PLACE_TRANSFER);
	cr_assert_eq(m.a[0].from, 1);
	cr_assert(m.a[0].node == 3 || m.a[0].node == 4);
	apply(&m, &m.a[0]);
	/* 4. then the source is removed. */
	decides(&m, RD_PLACE_REMOVE);
	cr_assert_eq(m.a[0].node, 1);
	apply(&m, &m.a[0]);
	check_settled(&m, 3);
}

Test(placement, a_busy_or_unreported_group_is_left_alone)
{
	struct model m;
	uint64_t t[3] = {2, 3, 4};

	one_group(&m, 4, t);
	m.g[0].busy = true;
	decides_nothing(&m);
	m.g[0].busy = false;
	m.g[0].known = false;
	decides_nothing(&m);
}

Test(placement, a_source_is_not_removed_without_a_live_majority_left)
{
	struct model m;
	struct rd_placement_group *g;

	/* Voters 1 (leader), 2, 3, 4, target 1, 2, 4: node 3 goes. */
	uint64_t v[4] = {1, 2, 3, 4}, t[3] = {1, 2, 4};
	g = one_group(&m, 4, t);
	set_list(g->voters, &g->n_voters, v, 4);
	m.nodes[1].live = false; /* 2 */
	m.nodes[3].live = false; /* 4 */
	/* Removing 3 leaves {1, 2, 4} with only node 1 live: refused. */
	decides_nothing(&m);
	m.nodes[3].live = true;
	decides(&m, RD_PLACE_REMOVE);
	cr_assert_eq(m.a[0].node, 3);
}

Test(placement, a_learner_is_not_promoted_without_a_live_majority)
{
	struct model m;
	struct rd_placement_group *g;

	uint64_t t[3] = {1, 2, 4};
	g = one_group(&m, 4, t);
	uint64_t v[2] = {1, 2};
	set_list(g->voters, &g->n_voters, v, 2);
	g->learners[0] = 4;
	g->n_learners = 1;
	m.nodes[1].live = false; /* voters {1, 2} with 2 down */
	/* {1, 2, 4}: 1 and 4 are live, a majority of 3: promoted. */
	decides(&m, RD_PLACE_PROMOTE);
	/* With three voters, two of them down, adding a fourth has no majority. */
	uint64_t v3[3] = {1, 2, 3};
	uint64_t t4[4] = {1, 2, 3, 4};
	set_list(g->voters, &g->n_voters, v3, 3);
	set_list(g->target, &g->n_target, t4, 4);
	m.nodes[2].live = false;
	decides_nothing(&m);
}

Test(placement, a_move_whose_target_died_is_abandoned)
{
	struct model m;
	struct rd_placement_group *g;

	uint64_t t[3] = {2, 3, 4};
	g = one_group(&m, 5, t);
	m.nodes[0].leaving = true; /* node 1 drains */
	g->learners[0] = 4;
	g->learner_lag[0] = 1000;
	g->n_learners = 1;
	m.nodes[3].live = false; /* the target, node 4, dies */
	/* The target is taken back, the source in its place... */
	decides(&m, RD_PLACE_RETARGET);
	cr_assert(m.a[0].abandon);
	cr_assert_eq(m.a[0].n_target, 3);
	cr_assert(!has(m.a[0].target, m.a[0].n_target, 4));
	cr_assert(has(m.a[0].target, m.a[0].n_target, 1));
	apply(&m, &m.a[0]);
	/* ...its learner removed, and another node chosen: node 5. */
	decides(&m, RD_PLACE_REMOVE);
	cr_assert_eq(m.a[0].node, 4);
	apply(&m, &m.a[0]);
	run(&m, 20);
	cr_assert(has(g->voters, g->n_voters, 5));
	cr_assert(!has(g->voters, g->n_voters, 1));
	check_settled(&m, 3);
}

/* The same with no other node to take the replica (4 nodes, 3 replicas,
 * node 3 leaving, node 4 the move's dead target): the group keeps its 3
 * voters, node 3's included, and nothing is removed until node 4 is back;
 * then the move runs again and finishes. */
Test(placement, an_abandoned_move_keeps_the_replication_factor)
{
	struct model m;
	struct rd_placement_action a[8];
	struct rd_placement_group *g;
	size_t n;

	model_init(&m, 4, 1, 3);
	g = &m.g[0];
	m.nodes[2].leaving = true;
	uint64_t t[3] = {1, 2, 4};
	set_list(g->target, &g->n_target, t, 3);
	g->learners[0] = 4;
	g->learner_lag[0] = UINT64_MAX;
	g->n_learners = 1;
	m.nodes[3].live = false;
	cr_assert_eq(rd_placement_decide(&m.in, a, 8, NULL), 1);
	cr_assert_eq(a[0].kind, RD_PLACE_RETARGET);
	cr_assert(a[0].abandon);
	cr_assert_eq(a[0].node, 3);
	cr_assert_eq(a[0].from, 4);
	apply(&m, &a[0]);
	for (int r = 0; r < 10; r++) {
		n = rd_placement_decide(&m.in, a, 8, NULL);
		for (size_t i = 0; i < n; i++) {
			cr_assert(a[i].kind != RD_PLACE_REMOVE || a[i].node == 4,
			          "removes node %llu", (unsigned long long)a[i].node);
			apply(&m, &a[i]);
		}
	}
	cr_assert_eq(g->n_voters, 3);
	cr_assert(has(g->voters, g->n_voters, 3));
	cr_assert_eq(g->n_learners, 0);
	m.nodes[3].live = true;
	run(&m, 20);
	cr_assert(has(g->voters, g->n_voters, 4));
	cr_assert(!has(g->voters, g->n_voters, 3));
	check_settled(&m, 3);
}

Test(placement, moves_in_flight_stay_within_max_moves)
{
	struct model m;
	struct rd_placement_action a[64];
	struct rd_placement_stats st;
	size_t n, retargets = 0;

	model_init(&m, 4, 16, 3);
	m.nodes[0].leaving = true; /* 12 groups hold node 1 */
	m.in.max_moves = 3;
	n = rd_placement_decide(&m.in, a, 64, &st);
	for (size_t i = 0; i < n; i++)
		retargets += a[i].kind == RD_PLACE_RETARGET;
	cr_assert_eq(retargets, 3);
	cr_assert_eq(st.moves_in_flight, 3);
	/* Applied but not carried out, the next decision starts none. */
	for (size_t i = 0; i < n; i++)
		apply(&m, &a[i]);
	for (size_t gi = 0; gi < m.n_groups; gi++)
		m.g[gi].busy = true;
	n = rd_placement_decide(&m.in, a, 64, &st);
	cr_assert_eq(n, 0);
	cr_assert_eq(st.moves_in_flight, 3);
}

Test(placement, a_leaving_node_is_drained_and_leaders_end_balanced)
{
	struct model m;

	model_init(&m, 4, 16, 3);
	m.nodes[0].leaving = true;
	run(&m, 200);
	check_settled(&m, 3);
	cr_assert_eq(replicas_on(&m, 1), 0);
	for (uint64_t id = 2; id <= 4; id++) {
		cr_assert_eq(replicas_on(&m, id), 16, "node %llu",
		             (unsigned long long)id);
		cr_assert_geq(leaders_on(&m, id), 5);
		cr_assert_leq(leaders_on(&m, id), 6);
	}
	cr_assert_eq(leaders_on(&m, 1), 0);
}

Test(placement, an_empty_node_gets_its_share_of_replicas)
{
	struct model m;
	uint32_t lo = UINT32_MAX, hi = 0;

	model_init(&m, 5, 16, 3);
	/* Nodes 1..4 hold everything (as a 4-node cluster), node 5 is new. */
	for (size_t gi = 0; gi < 16; gi++) {
		struct rd_placement_group *g = &m.g[gi];
		for (uint32_t r = 0; r < 3; r++)
			g->target[r] = (gi + r) % 4 + 1;
		set_list(g->voters, &g->n_voters, g->target, 3);
		g->leader = g->target[0];
	}
	run(&m, 200);
	check_settled(&m, 3);
	for (uint64_t id = 1; id <= 5; id++) {
		uint32_t k = replicas_on(&m, id);
		lo = k < lo ? k : lo;
		hi = k > hi ? k : hi;
	}
	cr_assert_leq(hi - lo, 1, "replicas per node from %u to %u", lo, hi);
	cr_assert_geq(replicas_on(&m, 5), 9);
	for (uint64_t id = 1; id <= 5; id++)
		cr_assert_leq(leaders_on(&m, id), 4);
}

Test(placement, leaders_balance_never_to_a_lagging_voter)
{
	struct model m;

	model_init(&m, 3, 3, 3);
	for (size_t gi = 0; gi < 3; gi++)
		m.g[gi].leader = 1; /* node 1 leads all three */
	for (size_t gi = 0; gi < 3; gi++)
		for (uint32_t i = 0; i < 3; i++)
			m.g[gi].voter_lag[i] = m.g[gi].voters[i] == 1 ? 0 : 7;
	decides_nothing(&m);
	m.g[1].voter_lag[0] = 0; /* group 2's voters are 2, 3, 1: node 2 caught up */
	decides(&m, RD_PLACE_TRANSFER);
	cr_assert_eq(m.a[0].group, 2);
	cr_assert_eq(m.a[0].node, 2);
	/* A node that reports a slow disk is handed no leadership. */
	m.nodes[1].slow = true;
	cr_assert_eq(rd_placement_decide(&m.in, m.a, 8, NULL), 0, "slow");
	m.nodes[1].slow = false;
	m.in.max_transfers = 0;
	cr_assert_eq(rd_placement_decide(&m.in, m.a, 8, NULL), 0, "bounded");
}

Test(placement, a_decommission_no_node_can_take_is_refused)
{
	struct model m;
	char msg[RD_ERRMSG_SIZE];

	model_init(&m, 3, 4, 3);
	cr_assert_eq(rd_placement_can_drain(&m.in, 2, msg), RD_EINVAL);
	cr_assert(strstr(msg, "data group") != NULL, "%s", msg);
	model_init(&m, 4, 4, 3);
	cr_assert_eq(rd_placement_can_drain(&m.in, 2, msg), 0);
	m.nodes[3].live = false; /* node 4 is the only spare, and is down */
	cr_assert_eq(rd_placement_can_drain(&m.in, 2, msg), RD_EINVAL);
	/* A leaving node with nothing to take is stuck, not moved twice. */
	model_init(&m, 3, 2, 3);
	m.nodes[0].leaving = true;
	struct rd_placement_action a[8];
	struct rd_placement_stats st;
	cr_assert_eq(rd_placement_decide(&m.in, a, 8, &st), 0);
	cr_assert_eq(st.stuck, 2);
}

Test(placement, values_round_trip_and_bad_ones_are_refused)
{
	uint8_t buf[RD_PLACEMENT_VALUE_MAX];
	uint64_t nodes[3] = {4, 2, 9}, back[RD_ROUTING_MAX_REPLICAS], ver;
	uint32_t n;
	size_t len = rd_placement_encode(7, nodes, 3, buf);

	cr_assert_eq(rd_placement_decode(buf, len, &ver, back, &n), 0);
	cr_assert_eq(ver, 7);
	cr_assert_eq(n, 3);
	cr_assert_eq(back[2], 9);
	cr_assert_eq(rd_placement_decode(buf, len - 1, &ver, back, &n), RD_ECORRUPT);
	buf[len] = 0;
	cr_assert_eq(rd_placement_decode(buf, len + 1, &ver, back, &n), RD_ECORRUPT);
	nodes[2] = 4;
	len = rd_placement_encode(7, nodes, 3, buf);
	cr_assert_eq(rd_placement_decode(buf, len, &ver, back, &n), RD_ECORRUPT, "twice");
	buf[0] = 2;
	cr_assert_eq(rd_placement_decode(buf, len, &ver, back, &n), RD_ECORRUPT);
}
