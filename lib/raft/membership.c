/*
 * Membership: single-server changes (thesis §4.1) with learners, the rule
 * that a configuration takes effect as soon as its entry is appended (and is
 * undone if that entry is truncated), at most one uncommitted change, a
 * leader that steps down once its own removal commits (thesis §4.2.2),
 * leadership transfer (thesis §3.10) and log compaction (§7).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raft/core.h"
#include "util/err.h"

void rd_raft_cc_encode(uint8_t out[RD_RAFT_CC_HEADER], uint8_t cc_type, uint64_t node)
{
	out[0] = cc_type;
	for (int i = 0; i < 8; i++)
		out[1 + i] = (uint8_t)(node >> (8 * i));
}

int rd_raft_cc_decode(const uint8_t *data, uint32_t len, uint8_t *cc_type, uint64_t *node)
{
	if (data == NULL || len < RD_RAFT_CC_HEADER || data[0] > RD_CC_REMOVE)
		return RD_EINVAL;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)data[1 + i] << (8 * i);
	if (v == 0)
		return RD_EINVAL;
	*cc_type = data[0];
	*node = v;
	return 0;
}

static int find(const uint64_t *v, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == id)
			return (int)i;
	return -1;
}

static void remove_at(uint64_t *v, uint32_t *n, int i)
{
	/* Keep the order: membership listings stay stable. */
	for (uint32_t k = (uint32_t)i; k + 1 < *n; k++)
		v[k] = v[k + 1];
	(*n)--;
}

bool rd_raft_conf_has_voter(const struct rd_conf_state *cs, uint64_t id)
{
	return find(cs->voters, cs->n_voters, id) >= 0;
}

bool rd_raft_conf_has_learner(const struct rd_conf_state *cs, uint64_t id)
{
	return find(cs->learners, cs->n_learners, id) >= 0;
}

int rd_raft_conf_apply(struct rd_conf_state *cs, uint8_t cc_type, uint64_t node)
{
	int v = find(cs->voters, cs->n_voters, node);
	int l = find(cs->learners, cs->n_learners, node);
	switch (cc_type) {
	case RD_CC_ADD_VOTER:
		if (v >= 0 || l >= 0 || cs->n_voters >= RD_RAFT_MAX_MEMBERS)
			return RD_EINVAL;
		cs->voters[cs->n_voters++] = node;
		return 0;
	case RD_CC_ADD_LEARNER:
		if (v >= 0 || l >= 0 || cs->n_learners >= RD_RAFT_MAX_MEMBERS)
			return RD_EINVAL;
		cs->learners[cs->n_learners++] = node;
		return 0;
	case RD_CC_PROMOTE_LEARNER:
		if (l < 0 || cs->n_voters >= RD_RAFT_MAX_MEMBERS)
			return RD_EINVAL;
		remove_at(cs->learners, &cs->n_learners, l);
		cs->voters[cs->n_voters++] = node;
		return 0;
	case RD_CC_REMOVE:
		if (v >= 0) {
			if (cs->n_voters == 1)
				return RD_EINVAL; /* a group needs a voter */
			remove_at(cs->voters, &cs->n_voters, v);
			return 0;
		}
		if (l >= 0) {
			remove_at(cs->learners, &cs->n_learners, l);
			return 0;
		}
		return RD_EINVAL;
	default:
		return RD_EINVAL;
	}
}

void rd__conf_apply_entry(struct rd_conf_state *cs, const struct rd_entry *e)
{
	uint8_t t;
	uint64_t node;
	/* Invalid changes are skipped identically on every node (same log). */
	if (rd_raft_cc_decode(e->data, e->len, &t, &node) == 0)
		(void)rd_raft_conf_apply(cs, t, node);
}

void rd__sync_progress(struct rd_raft *r)
{
	const struct rd_conf_state *cs = r->conf;
	for (uint32_t i = 0; i < r->n_prs;) {
		struct rd__pr *pr = &r->prs[i];
		bool voter = find(cs->voters, cs->n_voters, pr->id) >= 0;
		bool learner = find(cs->learners, cs->n_learners, pr->id) >= 0;
		if (voter || learner) {
			pr->learner = learner;
			i++;
			continue;
		}
		if (pr->id == r->transferee)
			r->transferee = 0;
		free(pr->infl_idx);
		r->prs[i] = r->prs[--r->n_prs];
	}
	for (uint32_t k = 0; k < cs->n_voters + cs->n_learners; k++) {
		bool learner = k >= cs->n_voters;
		uint64_t id = learner ? cs->learners[k - cs->n_voters] : cs->voters[k];
		if (rd__pr(r, id) != NULL)
			continue;
		if (r->n_prs == r->cap_prs) {
			/* Moves the entries: pointers to them are stale now, as
			 * after any change of the membership (core.h rd__pr).
			 * Sized to the configuration: every progress left is a
			 * member's, and this one is missing, so it is more. */
			uint32_t cap = cs->n_voters + cs->n_learners;
			assert(cap > r->n_prs);
			struct rd__pr *p = realloc(r->prs, cap * sizeof(*p));
			if (p == NULL)
				continue; /* ENOMEM: no progress, so none of its
				           * answers counts (safe; retried at the
				           * next change) */
			r->prs = p;
			r->cap_prs = cap;
		}
		struct rd__pr *pr = &r->prs[r->n_prs];
		memset(pr, 0, sizeof(*pr));
		pr->id = id;
		pr->learner = learner;
		/* The in-flight window is allocated when a leader starts
		 * pipelining to it (rd__pr_window), never per entry. */
		pr->infl_idx = NULL;
		pr->infl_bytes = NULL;
		pr->infl_cap = 0;
		r->n_prs++;
		rd__pr_reset(r, pr);
		if (r->role == RD_RAFT_LEADER)
			r->bcast_pending = true;
	}
}

void rd__conf_entry_appended(struct rd_raft *r, const struct rd_entry *e)
{
	struct rd_conf_state next = *r->conf;
	rd__conf_apply_entry(&next, e);
	rd_conf_assign(&r->prev_conf, r->conf);
	rd_conf_assign(&r->conf, &next);
	r->conf_index = e->index;
	rd__sync_progress(r);
}

void rd__conf_applying(struct rd_raft *r, const struct rd_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (e[i].type != RD_ENTRY_CONF_CHANGE)
			continue;
		struct rd_conf_state next = *r->applied_conf;
		rd__conf_apply_entry(&next, &e[i]);
		rd_conf_assign(&r->applied_conf, &next);
	}
}

void rd__conf_recompute(struct rd_raft *r)
{
	/* Entries below the in-memory tail are committed (tail.c): the
	 * configurations they made are kept, and the scan starts there. */
	struct rd_conf_state conf, prev;
	rd__tail_confs(r, &conf, &prev, &r->conf_index);
	for (uint64_t i = r->log.lo; i <= rd__log_last(&r->log); i++) {
		const struct rd_entry *e = rd__log_at(&r->log, i);
		if (e->type == RD_ENTRY_CONF_CHANGE) {
			prev = conf;
			rd__conf_apply_entry(&conf, e);
			r->conf_index = i;
		}
	}
	rd_conf_assign(&r->conf, &conf);
	rd_conf_assign(&r->prev_conf, &prev);
	rd__sync_progress(r);
}

void rd__leader_conf_committed(struct rd_raft *r)
{
	/* Thesis §4.2.2: a leader removed from the configuration manages the
	 * cluster until the change commits, then steps down. */
	if (r->role == RD_RAFT_LEADER && r->conf_index <= r->commit &&
	    !rd__is_voter(r, r->id)) {
		/* Let the others learn the commit before going quiet. */
		rd__bcast_append(r);
		rd__become_follower(r, r->term, 0);
	}
}

int rd_raft_propose_conf_change(struct rd_raft *r, uint8_t cc_type, uint64_t node,
                                const void *ctx, uint32_t len, uint64_t *index_out)
{
	assert(!r->in_update);
	uint8_t buf[RD_RAFT_CC_HEADER + 256];
	if (r->role != RD_RAFT_LEADER)
		return RD_ENOTLEADER;
	if (r->transferee != 0 || r->pending_conf_index > r->commit)
		return RD_EBUSY;
	if (len > sizeof(buf) - RD_RAFT_CC_HEADER)
		return RD_ETOOBIG;
	struct rd_conf_state next = *r->conf;
	if (node == 0 || rd_raft_conf_apply(&next, cc_type, node) != 0)
		return RD_EINVAL;
	rd__wake(r, RD_WAKE_CONF_CHANGE);
	rd_raft_cc_encode(buf, cc_type, node);
	if (len > 0)
		memcpy(buf + RD_RAFT_CC_HEADER, ctx, len);
	uint64_t idx;
	int rc =
	    rd__append_local(r, RD_ENTRY_CONF_CHANGE, buf, RD_RAFT_CC_HEADER + len, &idx);
	if (rc != 0)
		return rc;
	r->pending_conf_index = idx;
	r->bcast_pending = true;
	/* A smaller quorum may commit earlier entries right away. */
	rd__maybe_commit(r);
	if (index_out != NULL)
		*index_out = idx;
	return 0;
}

int rd_raft_transfer_leader(struct rd_raft *r, uint64_t to)
{
	assert(!r->in_update);
	if (r->role != RD_RAFT_LEADER)
		return RD_ENOTLEADER;
	if (r->transferee != 0)
		return r->transferee == to ? 0 : RD_EBUSY;
	if (to == r->id)
		return 0;
	struct rd__pr *pr = rd__pr(r, to);
	if (pr == NULL || !rd__is_voter(r, to))
		return RD_EINVAL;
	rd__wake(r, RD_WAKE_TRANSFER);
	r->transferee = to;
	/* The transfer is abandoned after an election timeout (raft.c). */
	r->election_elapsed = 0;
	if (pr->match == rd__log_last(&r->log)) {
		struct rd_message m = {.type = RD_MSG_TIMEOUT_NOW, .to = to};
		rd__send(r, &m, 0);
	} else {
		/* Catch it up first; TimeoutNow follows its acknowledgement. */
		rd__send_append(r, pr, true);
	}
	return 0;
}

void rd__handle_timeout_now(struct rd_raft *r, const struct rd_message *m)
{
	(void)m;
	/* Thesis §3.10: start an election at once, skipping pre-vote, and mark
	 * it so that voters ignore their leader lease. A node told not to
	 * campaign ignores it; the leader abandons the transfer after an
	 * election timeout and stays. */
	if (rd__promotable(r) && !r->no_campaign)
		rd__campaign(r, false, true);
}

int rd_raft_compact(struct rd_raft *r, uint64_t index, struct rd_snapshot_meta *meta_out)
{
	assert(!r->in_update);
	if (index > r->applied)
		return RD_EINVAL;
	if (index > r->log.snap_index) {
		struct rd_conf_state cs = rd__tail_conf_compact(r, index);
		for (uint64_t i = r->log.lo; i <= index; i++) {
			const struct rd_entry *e = rd__log_at(&r->log, i);
			if (e->type == RD_ENTRY_CONF_CHANGE)
				rd__conf_apply_entry(&cs, e);
		}
		rd_conf_assign(&r->snap_conf, &cs);
		rd__log_compact(&r->log, index);
	}
	if (meta_out != NULL) {
		meta_out->index = r->log.snap_index;
		meta_out->term = r->log.snap_term;
		meta_out->conf = *r->snap_conf;
	}
	return 0;
}
