/*
 * Elections: pre-vote (thesis §9.6), RequestVote (§5.2) and the election
 * restriction (§5.4.1). A campaign asks every voter of the latest appended
 * configuration; learners never campaign and their answers are not counted.
 */
#include "raft/core.h"
#include "util/err.h"

int rd_raft_campaign(struct rd_raft *r)
{
	assert(!r->in_update);
	if (!rd__promotable(r))
		return RD_EINVAL;
	if (r->role == RD_RAFT_LEADER)
		return 0;
	if (r->no_campaign)
		return RD_EBUSY;
	rd__campaign(r, r->pre_vote, false);
	return 0;
}

void rd_raft_set_campaign(struct rd_raft *r, bool allowed)
{
	r->no_campaign = !allowed;
}

bool rd_raft_campaign_allowed(const struct rd_raft *r)
{
	return !r->no_campaign;
}

static uint32_t tally(struct rd_raft *r, int want)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (!r->prs[i].learner && r->prs[i].vote == want &&
		    rd__is_voter(r, r->prs[i].id))
			n++;
	return n;
}

static void become_candidate(struct rd_raft *r, bool pre)
{
	assert(r->role != RD_RAFT_LEADER);
	if (pre) {
		/* Pre-candidates keep their term and vote: nothing durable
		 * changes until a real election is known to be winnable. */
		uint64_t term = r->term;
		rd__become_follower(r, term, 0);
		r->role = RD_RAFT_PRE_CANDIDATE;
	} else {
		rd__become_follower(r, r->term + 1, 0);
		r->role = RD_RAFT_CANDIDATE;
		r->vote = r->id;
	}
	struct rd__pr *self = rd__pr(r, r->id);
	if (self != NULL)
		self->vote = 1;
}

void rd__campaign(struct rd_raft *r, bool pre, bool transfer)
{
	become_candidate(r, pre);
	if (tally(r, 1) >= rd__quorum(r)) {
		/* A single-voter group wins at once. */
		if (pre)
			rd__campaign(r, false, transfer);
		else
			rd__become_leader(r);
		return;
	}
	r->transfer_campaign = transfer;
	uint64_t last = rd__log_last(&r->log);
	for (uint32_t i = 0; i < r->conf->n_voters; i++) {
		uint64_t id = r->conf->voters[i];
		if (id == r->id)
			continue;
		struct rd_message m = {
		    .type = pre ? RD_MSG_PRE_VOTE : RD_MSG_VOTE,
		    .to = id,
		    .term = pre ? r->term + 1 : r->term,
		    .index = last,
		    .log_term = rd__log_term(&r->log, last),
		    .context = transfer ? RD_RAFT_CTX_TRANSFER : 0,
		};
		rd__send(r, &m, 0);
	}
}

/* §5.4.1: grant only to a candidate whose log is at least as up to date. */
static bool up_to_date(const struct rd_raft *r, uint64_t log_term, uint64_t index)
{
	uint64_t last = rd__log_last(&r->log);
	uint64_t lt = rd__log_term(&r->log, last);
	return log_term > lt || (log_term == lt && index >= last);
}

void rd__handle_vote(struct rd_raft *r, const struct rd_message *m)
{
	bool pre = m->type == RD_MSG_PRE_VOTE;
	/* One vote per term (§5.2): repeat a vote already given, else vote only
	 * when free and no leader is known. A pre-vote for a later term may be
	 * granted whatever our vote in this term. */
	bool can = r->vote == m->from || (r->vote == 0 && r->lead == 0) ||
	           (pre && m->term > r->term);
	struct rd_message out = {.type = pre ? RD_MSG_PRE_VOTE_RESP : RD_MSG_VOTE_RESP,
	                         .to = m->from};
	if (can && up_to_date(r, m->log_term, m->index)) {
		/* The response carries the request's term so that the
		 * candidate counts it (for pre-vote it is our term + 1). */
		out.term = m->term;
		if (!pre) {
			assert(m->term == r->term);
			assert(r->vote == 0 || r->vote == m->from);
			r->vote = m->from;
			r->election_elapsed = 0;
		}
	} else {
		out.reject = true;
		out.term = r->term;
	}
	rd__send(r, &out, 0);
}

void rd__handle_vote_resp(struct rd_raft *r, const struct rd_message *m)
{
	bool pre = m->type == RD_MSG_PRE_VOTE_RESP;
	if (pre != (r->role == RD_RAFT_PRE_CANDIDATE))
		return;
	if (pre && !m->reject && m->term != r->term + 1)
		return;
	struct rd__pr *pr = rd__pr(r, m->from);
	if (pr == NULL || pr->vote != 0)
		return;
	pr->vote = m->reject ? -1 : 1;
	uint32_t q = rd__quorum(r);
	if (tally(r, 1) >= q) {
		if (pre)
			rd__campaign(r, false, r->transfer_campaign);
		else
			rd__become_leader(r);
	} else if (tally(r, -1) >= q) {
		rd__become_follower(r, r->term, 0);
	}
}
