/*
 * Lifecycle, accessors, ticks, role changes and the term rules every message
 * passes through before its type-specific handler (Raft §5.1: a higher term
 * turns anyone into a follower; a stale term is refused).
 */
#include <stdlib.h>
#include <string.h>

#include "raft/core.h"
#include "util/err.h"

/* splitmix64: a small, seedable generator; the core has no other source. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void rd__reset_timeout(struct rd_raft *r)
{
	/* §5.2: randomized in [T, 2T) so that split votes are rare. */
	r->randomized_timeout = r->election_ticks + (uint32_t)(rng_next(&r->rng) % r->election_ticks);
}

bool rd__vec_grow(void **v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 16;
	void *p = realloc(*v, nc * elem);
	if (p == NULL)
		return false;
	*v = p;
	*cap = nc;
	return true;
}

struct rd__pr *rd__pr(struct rd_raft *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == id)
			return &r->prs[i];
	return NULL;
}

bool rd__is_voter(const struct rd_raft *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->conf.n_voters; i++)
		if (r->conf.voters[i] == id)
			return true;
	return false;
}

uint32_t rd__quorum(const struct rd_raft *r)
{
	return r->conf.n_voters / 2 + 1;
}

static int check_conf(const struct rd_conf_state *cs, char *msg)
{
	if (cs->n_voters > RD_RAFT_MAX_MEMBERS || cs->n_learners > RD_RAFT_MAX_MEMBERS)
		return rd_errorf(msg, RD_EINVAL, "too many members");
	for (uint32_t i = 0; i < cs->n_voters; i++)
		if (cs->voters[i] == 0)
			return rd_errorf(msg, RD_EINVAL, "voter id 0");
	return 0;
}

int rd_raft_new(const struct rd_raft_config *cfg, struct rd_raft **out, char *msg)
{
	if (cfg->id == 0)
		return rd_errorf(msg, RD_EINVAL, "node id must be nonzero");
	if (cfg->election_ticks < 2 || cfg->heartbeat_ticks == 0 ||
	    cfg->heartbeat_ticks >= cfg->election_ticks)
		return rd_errorf(msg, RD_EINVAL, "need 0 < heartbeat_ticks < election_ticks");
	if (cfg->max_inflight_msgs == 0 || cfg->max_msg_bytes == 0)
		return rd_errorf(msg, RD_EINVAL, "max_inflight_msgs and max_msg_bytes must be > 0");
	int rc = check_conf(&cfg->conf, msg);
	if (rc == 0)
		rc = check_conf(&cfg->snapshot.conf, msg);
	if (rc != 0)
		return rc;
	uint64_t last = cfg->snapshot.index + cfg->n_entries;
	if (cfg->hard_state.commit > last)
		return rd_errorf(msg, RD_EINVAL, "commit %llu beyond last index %llu",
				 (unsigned long long)cfg->hard_state.commit,
				 (unsigned long long)last);
	if (cfg->applied > last)
		return rd_errorf(msg, RD_EINVAL, "applied beyond last index");

	struct rd_raft *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	r->infl_pool = calloc((size_t)cfg->max_inflight_msgs * 2 * RD_RAFT_MAX_MEMBERS * 2,
			      sizeof(uint64_t));
	if (r->infl_pool == NULL) {
		rc = rd_errorf(msg, RD_ENOMEM, "out of memory");
		goto err_after_raft;
	}
	r->group = cfg->group;
	r->id = cfg->id;
	r->election_ticks = cfg->election_ticks;
	r->heartbeat_ticks = cfg->heartbeat_ticks;
	r->max_inflight = cfg->max_inflight_msgs;
	r->max_inflight_bytes = cfg->max_inflight_bytes;
	r->max_msg_bytes = cfg->max_msg_bytes;
	r->pre_vote = cfg->pre_vote;
	r->check_quorum = cfg->check_quorum;
	r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dULL);
	r->term = cfg->hard_state.term;
	r->vote = cfg->hard_state.vote;

	rd__log_init(&r->log, cfg->snapshot.index, cfg->snapshot.term);
	for (size_t i = 0; i < cfg->n_entries; i++) {
		const struct rd_entry *e = &cfg->entries[i];
		if (e->index != cfg->snapshot.index + 1 + i) {
			rc = rd_errorf(msg, RD_EINVAL, "entry %zu has index %llu", i,
				       (unsigned long long)e->index);
			goto err_after_log;
		}
		rc = rd__log_append(&r->log, e->term, e->type, e->data, e->len);
		if (rc != 0) {
			rd_errorf(msg, rc, "out of memory");
			goto err_after_log;
		}
	}
	r->snap_conf = cfg->snapshot.conf;
	bool bootstrap = cfg->snapshot.index == 0 && cfg->n_entries == 0 &&
			 cfg->hard_state.term == 0 && cfg->conf.n_voters > 0;
	if (bootstrap) {
		/* A new group writes its initial membership into the log as
		 * committed add-voter entries of term 1 (as etcd does), so that
		 * a server added later learns it by replication. Every founding
		 * node produces the same entries from the same voter list. */
		r->term = 1;
		memset(&r->snap_conf, 0, sizeof(r->snap_conf));
		for (uint32_t i = 0; i < cfg->conf.n_voters; i++) {
			uint8_t cc[RD_RAFT_CC_HEADER];
			rd_raft_cc_encode(cc, RD_CC_ADD_VOTER, cfg->conf.voters[i]);
			rc = rd__log_append(&r->log, 1, RD_ENTRY_CONF_CHANGE, cc, sizeof(cc));
			if (rc != 0) {
				rd_errorf(msg, rc, "out of memory");
				goto err_after_log;
			}
		}
	}
	rd__conf_recompute(r);

	uint64_t commit = cfg->hard_state.commit;
	if (commit < cfg->snapshot.index)
		commit = cfg->snapshot.index;
	r->handed = last; /* what the caller restored is durable */
	if (bootstrap) {
		/* Handed out in the first update; regenerated identically if
		 * lost, so they count as durable already. */
		last = rd__log_last(&r->log);
		commit = last;
	}
	r->commit = commit;
	r->commit_hint = commit;
	r->persisted = last;
	r->applied = cfg->applied > cfg->snapshot.index ? cfg->applied : cfg->snapshot.index;
	if (r->applied > r->commit)
		r->applied = r->commit;
	r->applying = r->applied;
	/* A bootstrapped group's term and commit are new: the first update
	 * must carry them so the caller persists them with the entries. */
	r->prev_hs = bootstrap ? (struct rd_hard_state){0, 0, 0}
			       : (struct rd_hard_state){r->term, r->vote, r->commit};
	r->role = RD_RAFT_FOLLOWER;
	rd__reset_timeout(r);
	*out = r;
	return 0;

err_after_log:
	rd__log_free(&r->log);
	free(r->infl_pool);
err_after_raft:
	free(r);
	return rc;
}

void rd_raft_free(struct rd_raft *r)
{
	if (r == NULL)
		return;
	rd__log_free(&r->log);
	free(r->infl_pool);
	free(r->reads_pending.v);
	free(r->reads_ready.v);
	free(r->reads_out.v);
	free(r->msgq.v);
	free(r->out_early.v);
	free(r->out_late.v);
	free(r->snap_sends.v);
	free(r->snap_out.v);
	free(r);
}

/* --- role changes -------------------------------------------------------------- */

static void reset(struct rd_raft *r, uint64_t term)
{
	if (term != r->term) {
		/* Invariant: the term never decreases (§5.1). */
		assert(term > r->term);
		r->term = term;
		r->vote = 0;
	}
	r->lead = 0;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	rd__reset_timeout(r);
	r->transferee = 0;
	r->transfer_campaign = false;
	for (uint32_t i = 0; i < r->n_prs; i++)
		r->prs[i].vote = 0;
	rd__reads_reset(r);
	r->role_changed = true;
}

void rd__become_follower(struct rd_raft *r, uint64_t term, uint64_t lead)
{
	reset(r, term);
	r->role = RD_RAFT_FOLLOWER;
	r->lead = lead;
}

void rd__become_leader(struct rd_raft *r)
{
	assert(r->role == RD_RAFT_CANDIDATE);
	reset(r, r->term);
	r->role = RD_RAFT_LEADER;
	r->lead = r->id;
	for (uint32_t i = 0; i < r->n_prs; i++)
		rd__pr_reset(r, &r->prs[i]);
	/* No conf change until the first entry of this term commits (thesis
	 * §4.1 errata: a new leader must commit in its term first). */
	r->pending_conf_index = rd__log_last(&r->log) + 1;
	/* §5.4.2 / §8: a no-op lets the leader commit earlier terms' entries. */
	if (rd__append_local(r, RD_ENTRY_NOOP, NULL, 0, NULL) != 0)
		rd__become_follower(r, r->term, 0);
	else
		rd__bcast_append(r);
}

/* --- ticks ------------------------------------------------------------------------ */

static bool quorum_active(struct rd_raft *r)
{
	uint32_t active = 0;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		struct rd__pr *pr = &r->prs[i];
		if (pr->learner)
			continue;
		if (pr->id == r->id || pr->recent_active)
			active++;
		if (pr->id != r->id)
			pr->recent_active = false;
	}
	return active >= rd__quorum(r);
}

void rd_raft_tick(struct rd_raft *r)
{
	assert(!r->in_update);
	r->election_elapsed++;
	if (r->role != RD_RAFT_LEADER) {
		if (rd__is_voter(r, r->id) && r->election_elapsed >= r->randomized_timeout) {
			r->election_elapsed = 0;
			rd__campaign(r, r->pre_vote, false);
		}
		return;
	}
	r->heartbeat_elapsed++;
	if (r->election_elapsed >= r->election_ticks) {
		r->election_elapsed = 0;
		/* Check-quorum (thesis §6.2): step down when a quorum has not
		 * been heard from within an election timeout. */
		if (r->check_quorum && !quorum_active(r)) {
			rd__become_follower(r, r->term, 0);
			return;
		}
		/* A transfer that did not finish in an election timeout is
		 * abandoned (thesis §3.10). */
		r->transferee = 0;
	}
	if (r->heartbeat_elapsed >= r->heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		rd__bcast_heartbeat(r, r->reads_pending.n ? r->read_seq : 0);
	}
}

/* --- step ------------------------------------------------------------------------- */

static void respond(struct rd_raft *r, const struct rd_message *m, uint8_t type, bool reject)
{
	struct rd_message out = {.type = type, .to = m->from, .reject = reject};
	rd__send(r, &out, 0);
}

static int step_term(struct rd_raft *r, const struct rd_message *m, bool *drop)
{
	*drop = false;
	if (m->term > r->term) {
		if (m->type == RD_MSG_VOTE || m->type == RD_MSG_PRE_VOTE) {
			/* Leader lease (thesis §4.2.3): while a leader is heard
			 * from, a vote request from a disruptive server is ignored
			 * unless it comes from a leadership transfer. */
			bool in_lease = r->check_quorum && r->lead != 0 &&
					r->election_elapsed < r->election_ticks;
			if (in_lease && m->context != RD_RAFT_CTX_TRANSFER) {
				*drop = true;
				return 0;
			}
		}
		if (m->type == RD_MSG_PRE_VOTE)
			return 0; /* pre-vote never changes our term (thesis §9.6) */
		if (m->type == RD_MSG_PRE_VOTE_RESP && !m->reject)
			return 0; /* granted at the term we would use */
		bool from_leader = m->type == RD_MSG_APPEND || m->type == RD_MSG_HEARTBEAT ||
				   m->type == RD_MSG_SNAPSHOT;
		rd__become_follower(r, m->term, from_leader ? m->from : 0);
		return 0;
	}
	if (m->term < r->term) {
		*drop = true;
		if ((r->check_quorum || r->pre_vote) &&
		    (m->type == RD_MSG_APPEND || m->type == RD_MSG_HEARTBEAT)) {
			/* Tell a stale leader about the newer term so that it
			 * steps down; with pre-vote or check-quorum it would
			 * otherwise never learn it. */
			respond(r, m, RD_MSG_APPEND_RESP, false);
		} else if (m->type == RD_MSG_PRE_VOTE) {
			respond(r, m, RD_MSG_PRE_VOTE_RESP, true);
		}
	}
	return 0;
}

static void step_leader(struct rd_raft *r, const struct rd_message *m)
{
	switch (m->type) {
	case RD_MSG_APPEND_RESP:
		rd__handle_append_resp(r, m);
		break;
	case RD_MSG_HEARTBEAT_RESP:
		rd__handle_heartbeat_resp(r, m);
		break;
	case RD_MSG_SNAPSHOT_STATUS:
		rd_raft_report_snapshot(r, m->from, !m->reject);
		break;
	case RD_MSG_READ_INDEX:
		rd__handle_read_index(r, m->from, m->context);
		break;
	default:
		break;
	}
}

static void step_candidate(struct rd_raft *r, const struct rd_message *m)
{
	switch (m->type) {
	case RD_MSG_APPEND:
	case RD_MSG_HEARTBEAT:
	case RD_MSG_SNAPSHOT:
		/* §5.2: a leader of our term exists. */
		rd__become_follower(r, m->term, m->from);
		if (m->type == RD_MSG_APPEND)
			rd__handle_append(r, m);
		else if (m->type == RD_MSG_HEARTBEAT)
			rd__handle_heartbeat(r, m);
		else
			rd__handle_snapshot(r, m);
		break;
	case RD_MSG_VOTE_RESP:
	case RD_MSG_PRE_VOTE_RESP:
		rd__handle_vote_resp(r, m);
		break;
	default:
		break;
	}
}

static void step_follower(struct rd_raft *r, const struct rd_message *m)
{
	switch (m->type) {
	case RD_MSG_APPEND:
		r->election_elapsed = 0;
		r->lead = m->from;
		rd__handle_append(r, m);
		break;
	case RD_MSG_HEARTBEAT:
		r->election_elapsed = 0;
		r->lead = m->from;
		rd__handle_heartbeat(r, m);
		break;
	case RD_MSG_SNAPSHOT:
		r->election_elapsed = 0;
		r->lead = m->from;
		rd__handle_snapshot(r, m);
		break;
	case RD_MSG_TIMEOUT_NOW:
		rd__handle_timeout_now(r, m);
		break;
	case RD_MSG_READ_INDEX_RESP:
		if (!m->reject) {
			struct rd_read_state rs = {m->context, m->index};
			(void)RD__VEC_PUSH(r->reads_ready, rs);
		}
		break;
	default:
		break;
	}
}

int rd_raft_step(struct rd_raft *r, const struct rd_message *m)
{
	assert(!r->in_update);
	if (r->in_update)
		return RD_EBUSY;
	if (m->group != r->group || m->to != r->id || m->from == 0 || m->from == r->id ||
	    m->type == 0 || m->type > RD_MSG_TYPE_MAX)
		return RD_EINVAL;
	if (m->n_entries > 0 && (m->type != RD_MSG_APPEND || m->entries == NULL))
		return RD_EPROTO;
	bool drop;
	step_term(r, m, &drop);
	if (drop)
		return 0;
	if (m->type == RD_MSG_VOTE || m->type == RD_MSG_PRE_VOTE) {
		rd__handle_vote(r, m);
		return 0;
	}
	switch (r->role) {
	case RD_RAFT_LEADER:
		step_leader(r, m);
		break;
	case RD_RAFT_CANDIDATE:
	case RD_RAFT_PRE_CANDIDATE:
		step_candidate(r, m);
		break;
	case RD_RAFT_FOLLOWER:
		step_follower(r, m);
		break;
	}
	return 0;
}

/* --- accessors -------------------------------------------------------------------- */

enum rd_raft_role rd_raft_role(const struct rd_raft *r) { return r->role; }
uint64_t rd_raft_id(const struct rd_raft *r) { return r->id; }
uint64_t rd_raft_group(const struct rd_raft *r) { return r->group; }
uint64_t rd_raft_leader(const struct rd_raft *r) { return r->lead; }
uint64_t rd_raft_term(const struct rd_raft *r) { return r->term; }
uint64_t rd_raft_vote(const struct rd_raft *r) { return r->vote; }
uint64_t rd_raft_commit(const struct rd_raft *r) { return r->commit; }
uint64_t rd_raft_applied_index(const struct rd_raft *r) { return r->applied; }
uint64_t rd_raft_first_index(const struct rd_raft *r) { return rd__log_first(&r->log); }
uint64_t rd_raft_last_index(const struct rd_raft *r) { return rd__log_last(&r->log); }
uint64_t rd_raft_persisted_index(const struct rd_raft *r) { return r->persisted; }
uint64_t rd_raft_transferee(const struct rd_raft *r) { return r->transferee; }
const struct rd_conf_state *rd_raft_conf(const struct rd_raft *r) { return &r->conf; }

const struct rd_snapshot_meta *rd_raft_snapshot(const struct rd_raft *r)
{
	static _Thread_local struct rd_snapshot_meta meta;
	meta.index = r->log.snap_index;
	meta.term = r->log.snap_term;
	meta.conf = r->snap_conf;
	return &meta;
}

uint64_t rd_raft_term_at(const struct rd_raft *r, uint64_t index)
{
	return rd__log_term(&r->log, index);
}

bool rd_raft_progress(const struct rd_raft *r, uint64_t id, struct rd_progress *out)
{
	if (r->role != RD_RAFT_LEADER)
		return false;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		const struct rd__pr *pr = &r->prs[i];
		if (pr->id != id)
			continue;
		out->id = pr->id;
		out->match = pr->id == r->id ? r->persisted : pr->match;
		out->next = pr->next;
		out->state = pr->state;
		out->learner = pr->learner;
		out->recent_active = pr->recent_active;
		out->inflight = pr->infl_count;
		out->inflight_bytes = pr->infl_total;
		return true;
	}
	return false;
}

const char *rd_raft_role_name(enum rd_raft_role role)
{
	switch (role) {
	case RD_RAFT_FOLLOWER:
		return "follower";
	case RD_RAFT_PRE_CANDIDATE:
		return "pre-candidate";
	case RD_RAFT_CANDIDATE:
		return "candidate";
	case RD_RAFT_LEADER:
		return "leader";
	}
	return "?";
}

const char *rd_msg_type_name(uint8_t type)
{
	static const char *const names[] = {
		"?",           "Vote",          "VoteResp",   "PreVote",  "PreVoteResp",
		"App",         "AppResp",       "Heartbeat",  "HeartbeatResp",
		"TimeoutNow",  "Snap",          "SnapStatus", "ReadIndex", "ReadIndexResp",
	};
	return type <= RD_MSG_TYPE_MAX ? names[type] : "?";
}
