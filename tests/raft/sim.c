/*
 * Randomized simulation of one seed. 3 or 5 voters plus one spare node that
 * may join as a learner and be promoted; a lossy network (drop, duplicate,
 * delay, hence reorder), partitions (some one-way), crashes (sometimes
 * between taking an update and persisting it, losing its writes), slow
 * asynchronous writes, restarts, proposals, reads, membership changes,
 * leadership transfers and compactions. The safety properties are checked
 * after every processing step (checker.c). Then the network heals and every
 * node restarts: a leader must be elected and a proposal must commit within
 * a bound of simulated time (liveness). Half of the seeds run with
 * quiescence and the node liveness model of cluster.h (rd_raft_peer_down).
 */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "raft/conf.h"
#include "util/err.h"

#define CHAOS_TICKS          1000
#define LIVE_BOUND_ELECTIONS 30

static uint64_t pick(struct rc_cluster *c, uint64_t n)
{
	return rc_rand(c) % n;
}

static bool chance(struct rc_cluster *c, uint32_t per_mille)
{
	return rc_rand(c) % 1000 < per_mille;
}

struct sim {
	struct rc_cluster c;
	uint64_t n; /* initial voters 1..n; node n+1 is the spare */
	uint64_t props;
	uint64_t rm_node, rm_index, rm_term; /* a pending removal */
	bool verbose;
};

static void step_all(struct sim *s)
{
	struct rc_cluster *c = &s->c;
	for (int round = 0; round < 4; round++) {
		bool any = false;
		for (uint64_t id = 1; id <= s->n + 1; id++)
			any |= rc_process(c, id);
		any |= rc_deliver(c, 0) > 0;
		if (!any)
			break;
	}
}

static void retire_removed(struct sim *s)
{
	struct rc_cluster *c = &s->c;
	if (s->rm_node == 0)
		return;
	/* Once the removal commits, the operator stops the node for good. */
	for (uint64_t id = 1; id <= s->n + 1; id++) {
		struct rc_node *nd = &c->nodes[id];
		if (!nd->up || rd_raft_commit(nd->r) < s->rm_index)
			continue;
		if (rd_raft_term_at(nd->r, s->rm_index) == s->rm_term ||
		    rd_raft_first_index(nd->r) > s->rm_index) {
			if (rd_raft_term_at(nd->r, s->rm_index) != s->rm_term &&
			    rd_raft_first_index(nd->r) > s->rm_index) {
				/* compacted: check membership instead */
				const struct rd_conf_state *cs = rd_raft_conf(nd->r);
				bool member = false;
				for (uint32_t i = 0; i < cs->n_voters; i++)
					member |= cs->voters[i] == s->rm_node;
				for (uint32_t i = 0; i < cs->n_learners; i++)
					member |= cs->learners[i] == s->rm_node;
				if (member)
					continue;
			}
			if (s->verbose)
				fprintf(stderr, "t=%llu retire %llu\n",
				        (unsigned long long)c->now,
				        (unsigned long long)s->rm_node);
			rc_crash(c, s->rm_node);
			c->nodes[s->rm_node].retired = true;
			s->rm_node = 0;
			return;
		}
	}
}

static void leader_actions(struct sim *s, uint64_t lead)
{
	struct rc_cluster *c = &s->c;
	struct rd_raft *r = c->nodes[lead].r;
	uint64_t idx;
	if (chance(c, 300)) {
		char d[48];
		int l = snprintf(d, sizeof(d), "p%llu", (unsigned long long)++s->props);
		rd_raft_propose(r, RD_ENTRY_NORMAL, d, (uint32_t)l, &idx);
	}
	if (chance(c, 40)) {
		rc_note_read(c, ++s->props);
		rc_read(c, lead, s->props);
	}
	if (chance(c, 5)) {
		uint64_t to = 1 + pick(c, s->n + 1);
		c->st_transfers += rd_raft_transfer_leader(r, to) == 0 && to != lead;
	}
	if (chance(c, 10) && s->rm_node == 0) {
		const struct rd_conf_state *cs = rd_raft_conf(r);
		uint64_t spare = s->n + 1;
		bool is_voter = false, is_learner = false;
		for (uint32_t i = 0; i < cs->n_voters; i++)
			is_voter |= cs->voters[i] == spare;
		for (uint32_t i = 0; i < cs->n_learners; i++)
			is_learner |= cs->learners[i] == spare;
		uint8_t t;
		uint64_t node;
		if (!c->nodes[spare].retired && !is_voter && !is_learner) {
			t = RD_CC_ADD_LEARNER;
			node = spare;
		} else if (is_learner && chance(c, 200)) {
			/* a learner removed before its promotion */
			t = RD_CC_REMOVE;
			node = spare;
		} else if (is_learner) {
			t = RD_CC_PROMOTE_LEARNER;
			node = spare;
		} else if (cs->n_voters > 3) {
			t = RD_CC_REMOVE;
			node = cs->voters[pick(c, cs->n_voters)]; /* may be the leader */
		} else {
			return;
		}
		int rc = rd_raft_propose_conf_change(r, t, node, NULL, 0, &idx);
		c->st_conf_changes += rc == 0;
		if (rc == 0 && t == RD_CC_REMOVE) {
			s->rm_node = node;
			s->rm_index = idx;
			s->rm_term = rd_raft_term(r);
		}
		if (rc == 0 && chance(c, 250)) {
			/* The change interrupted by a leader crash: before its
			 * entry left, or after the appends that may go before
			 * the write (thesis §10.2.1) but before the write. The
			 * others elect a leader whose log decides whether the
			 * change survives (thesis §4.1). */
			if (chance(c, 500))
				(void)rc_process_early(c, lead);
			rc_crash(c, lead);
			c->st_conf_interrupted++;
		}
	}
}

static void chaos_tick(struct sim *s)
{
	struct rc_cluster *c = &s->c;
	uint64_t nn = s->n + 1;
	c->now++;
	if (chance(c, 8)) {
		uint64_t id = 1 + pick(c, nn);
		if (c->nodes[id].up && chance(c, 500) && rc_process_early(c, id)) {
			/* crash after sending, before the write is durable */
		}
		rc_crash(c, id);
	}
	if (chance(c, 30)) {
		uint64_t id = 1 + pick(c, nn);
		if (!c->nodes[id].up && !c->nodes[id].retired)
			rc_start(c, id);
	}
	if (chance(c, 8)) {
		/* A random bipartition; sometimes only one direction is cut. */
		uint64_t mask = rc_rand(c);
		bool one_way = chance(c, 300);
		for (uint64_t x = 1; x <= nn; x++)
			for (uint64_t y = 1; y <= nn; y++)
				c->cut[x][y] = ((mask >> x) & 1) != ((mask >> y) & 1) &&
				               (!one_way || ((mask >> x) & 1));
	}
	if (chance(c, 15))
		memset(c->cut, 0, sizeof(c->cut));
	for (uint64_t id = 1; id <= nn; id++)
		if (c->nodes[id].up)
			rd_raft_tick(c->nodes[id].r);
	rc_liveness(c);
	uint64_t lead = rc_leader(c);
	if (lead)
		leader_actions(s, lead);
	if (chance(c, 10)) {
		/* Crash a node after it sent what may leave early but before
		 * its write was durable: the update's writes are lost. */
		uint64_t id = lead && chance(c, 500) ? lead : 1 + pick(c, nn);
		if (rc_process_early(c, id))
			rc_crash(c, id);
	}
	/* Slow disks: some writes complete asynchronously, while the node
	 * keeps receiving (the leader counts itself only once durable). */
	for (uint64_t id = 1; id <= nn; id++) {
		if (c->nodes[id].holding && chance(c, 400))
			rc_finish(c, id);
		else if (chance(c, 60))
			rc_process_early(c, id);
	}
	for (uint64_t id = 1; id <= nn; id++) {
		if (c->nodes[id].up && chance(c, 5)) {
			rc_note_read(c, ++s->props);
			rc_read(c, id, s->props);
		}
		if (chance(c, 15)) {
			/* At the applied index, or behind it keeping a tail
			 * as the runtime does: a restart then rebuilds the
			 * configuration from the compaction point's plus the
			 * conf changes after it (thesis §4.1). */
			uint64_t at = 0;
			if (c->nodes[id].up && chance(c, 500)) {
				uint64_t a = rd_raft_applied_index(c->nodes[id].r);
				uint64_t back = pick(c, 8);
				at = a > back ? a - back : 0;
			}
			rc_compact(c, id, at);
		}
	}
	step_all(s);
	retire_removed(s);
}

uint64_t rc_sim_run(uint64_t seed, bool verbose, char *why, size_t whylen,
                    uint64_t *stats)
{
	/* Every core's configurations are shared (raft/conf.h): once the
	 * cores are freed, none of this run's may be left. */
	size_t shared = rd_conf_shared_count();
	struct sim *s = calloc(1, sizeof(*s));
	struct rc_cluster *c = &s->c;
	rc_init(c, seed);
	c->ship_applied = true;
	s->verbose = verbose;
	if (verbose) {
		c->out = stderr;
		c->verbose = true;
	}
	s->n = (seed & 1) ? 5 : 3;
	c->base.pre_vote = chance(c, 500);
	c->base.check_quorum = chance(c, 500);
	/* Quiescence with node liveness on every other pair of seeds (drawn
	 * from the seed, not the generator, so that the other seeds replay as
	 * before). */
	c->base.quiesce = c->liveness = (seed >> 1) & 1;
	c->base.election_ticks = 10;
	c->base.heartbeat_ticks = 1 + (uint32_t)pick(c, 3);
	c->base.max_inflight_msgs = 1 + (uint32_t)pick(c, 8);
	c->base.max_msg_bytes = 30 + pick(c, 100);
	c->base.max_inflight_bytes = chance(c, 300) ? 150 : 0;
	/* Every seed keeps a tiny tail of the log in memory (raft.h, "The
	 * in-memory tail": 1, 65, 129 or 193 bytes, a few entries at most;
	 * drawn from the seed so that the generator's draws stay as they
	 * were), so lagging followers are fed from the log source. */
	c->log_source = true;
	c->base.log_mem_bytes = 1 + ((seed >> 2) & 3) * 64;
	c->p_drop = (uint32_t)pick(c, 100);
	c->p_dup = (uint32_t)pick(c, 50);
	c->max_delay = (uint32_t)pick(c, 4);
	rc_add_voters(c, (uint32_t)s->n);
	rc_add(c, s->n + 1, NULL, 0);

	for (int t = 0; t < CHAOS_TICKS && c->violations == 0; t++)
		chaos_tick(s);

	/* Heal: every live node up, no loss, no partitions. */
	memset(c->cut, 0, sizeof(c->cut));
	c->p_drop = c->p_dup = 0;
	for (uint64_t id = 1; id <= s->n + 1; id++) {
		if (c->nodes[id].holding)
			rc_crash(c, id);
		if (!c->nodes[id].retired)
			rc_start(c, id);
	}
	uint64_t bound = (uint64_t)LIVE_BOUND_ELECTIONS * c->base.election_ticks;
	uint64_t want_node = 0, want_index = 0, want_term = 0;
	bool live = false;
	for (uint64_t t = 0; t < bound && c->violations == 0 && !live; t++) {
		c->now++;
		for (uint64_t id = 1; id <= s->n + 1; id++)
			if (c->nodes[id].up)
				rd_raft_tick(c->nodes[id].r);
		rc_liveness(c);
		step_all(s);
		retire_removed(s);
		uint64_t lead = rc_leader(c);
		if (lead == 0)
			continue;
		struct rd_raft *r = c->nodes[lead].r;
		if (want_node != lead || rd_raft_term(r) != want_term) {
			if (rd_raft_propose(r, RD_ENTRY_NORMAL, "live", 4, &want_index) ==
			    0) {
				want_node = lead;
				want_term = rd_raft_term(r);
			}
			continue;
		}
		live = rd_raft_applied_index(r) >= want_index &&
		       rd_raft_term_at(r, want_index) == want_term;
	}
	if (!live && c->violations == 0)
		rc_violation(c, "liveness: no commit within %llu ticks after healing",
		             (unsigned long long)bound);
	uint64_t v = c->violations;
	if (stats != NULL) {
		stats[0] += c->applied_total;
		stats[1] += c->st_elections;
		stats[2] += c->st_snap_installs;
		stats[3] += c->st_reads;
		stats[4] += c->st_crashes;
		stats[5] += c->st_lost_updates;
		stats[6] += c->st_conf_changes;
		stats[7] += c->st_transfers;
		stats[8] += c->st_compactions;
		stats[9] += c->st_quiesces;
		stats[10] += c->st_peer_down_wakes;
		stats[11] += c->st_conf_interrupted;
		stats[12] += c->st_applied_snapshots;
		for (uint64_t id = 1; id <= RC_MAX; id++)
			stats[13] += c->nodes[id].src_reads;
	}
	if (v && why)
		snprintf(why, whylen, "%s", c->violation);
	if (verbose)
		fprintf(
		    stderr,
		    "seed %llu: n=%llu prevote=%d checkquorum=%d applied=%llu v=%llu\n",
		    (unsigned long long)seed, (unsigned long long)s->n, c->base.pre_vote,
		    c->base.check_quorum, (unsigned long long)c->applied_total,
		    (unsigned long long)v);
	rc_free(c);
	free(s);
	if (rd_conf_shared_count() != shared) {
		if (why && v == 0)
			snprintf(why, whylen,
			         "%zu shared configurations left after the run",
			         rd_conf_shared_count() - shared);
		v++;
	}
	return v;
}
