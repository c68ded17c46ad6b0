/*
 * Creating a group from restored durable state (or bootstrapping a new one),
 * freeing it, and the read-only accessors the runtime uses for `raftctl
 * groups`, metrics and routing.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/core.h"
#include "util/err.h"

/* Release every shared configuration `r` holds (raft/conf.h). */
static void release_confs(struct rd_raft *r)
{
	rd_conf_release(r->conf);
	rd_conf_release(r->prev_conf);
	rd_conf_release(r->applied_conf);
	rd_conf_release(r->snap_conf);
	rd_conf_release(r->pending_snap_conf);
	rd__tail_confs_clear(r);
	free(r->evicted_confs.v);
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
		return rd_errorf(msg, RD_EINVAL,
		                 "need 0 < heartbeat_ticks < election_ticks");
	if (cfg->max_inflight_msgs == 0 ||
	    cfg->max_inflight_msgs > RD_RAFT_MAX_INFLIGHT || cfg->max_msg_bytes == 0)
		return rd_errorf(msg, RD_EINVAL,
		                 "need 0 < max_inflight_msgs <= %d and max_msg_bytes > 0",
		                 RD_RAFT_MAX_INFLIGHT);

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
	r->group = cfg->group;
	r->id = cfg->id;
	r->election_ticks = cfg->election_ticks;
	r->heartbeat_ticks = cfg->heartbeat_ticks;
	r->max_inflight = cfg->max_inflight_msgs;
	r->max_inflight_bytes = cfg->max_inflight_bytes;
	r->max_msg_bytes = cfg->max_msg_bytes;
	r->pre_vote = cfg->pre_vote;
	r->check_quorum = cfg->check_quorum;
	r->conf = &rd_conf_none;
	r->prev_conf = &rd_conf_none;
	r->applied_conf = &rd_conf_none;
	r->snap_conf = &rd_conf_none;
	r->pending_snap_conf = &rd_conf_none;
	r->src = cfg->log_source;
	r->log_mem_bytes = cfg->log_mem_bytes;
	r->quiesce_on = cfg->quiesce;
	r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dULL);
	r->term = cfg->hard_state.term;
	r->vote = cfg->hard_state.vote;
	/* A crash between installing a snapshot (or writing entries) and
	 * writing the hard state can leave the log ahead of the term. Adopt the
	 * log's term with no vote: a vote in it was never durable, so none was
	 * sent (§5.2 one vote per term still holds). */
	uint64_t log_term = cfg->n_entries > 0 ? cfg->entries[cfg->n_entries - 1].term
	                                       : cfg->snapshot.term;
	if (log_term > r->term) {
		r->term = log_term;
		r->vote = 0;
	}

	rd__log_init(&r->log, cfg->snapshot.index, cfg->snapshot.term);
	for (size_t i = 0; i < cfg->n_entries; i++) {
		const struct rd_entry *e = &cfg->entries[i];
		if (e->index != cfg->snapshot.index + 1 + i ||
		    e->term < (i > 0 ? cfg->entries[i - 1].term : cfg->snapshot.term) ||
		    (e->len > 0 && e->data == NULL)) {
			rc = rd_errorf(msg, RD_EINVAL,
			               "entry %zu (index %llu) out of sequence", i,
			               (unsigned long long)e->index);
			goto err_after_log;
		}
		rc = rd__log_append(&r->log, e->term, e->type, e->data, e->len);
		if (rc != 0) {
			rd_errorf(msg, rc, "out of memory");
			goto err_after_log;
		}
	}
	rd_conf_assign(&r->snap_conf, &cfg->snapshot.conf);
	bool bootstrap = cfg->snapshot.index == 0 && cfg->n_entries == 0 &&
	                 cfg->hard_state.term == 0 && cfg->conf.n_voters > 0;
	if (bootstrap) {
		/* A new group writes its initial membership into the log as
		 * committed add-voter entries of term 1 (as etcd does), so that
		 * a server added later learns it by replication. Every founding
		 * node produces the same entries from the same voter list. */
		r->term = 1;
		rd_conf_assign(&r->snap_conf, &rd_conf_none);
		for (uint32_t i = 0; i < cfg->conf.n_voters; i++) {
			uint8_t cc[RD_RAFT_CC_HEADER];
			rd_raft_cc_encode(cc, RD_CC_ADD_VOTER, cfg->conf.voters[i]);
			rc = rd__log_append(&r->log, 1, RD_ENTRY_CONF_CHANGE, cc,
			                    sizeof(cc));
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
	r->applied =
	    cfg->applied > cfg->snapshot.index ? cfg->applied : cfg->snapshot.index;
	if (r->applied > r->commit)
		r->applied = r->commit;
	r->applying = r->applied;
	/* The configuration the state machine holds: the compaction point's
	 * plus the changes applied after it (thesis §5.1). */
	rd_conf_assign(&r->applied_conf, r->snap_conf);
	if (r->applying > r->log.snap_index)
		rd__conf_applying(r, rd__log_at(&r->log, r->log.snap_index + 1),
		                  (size_t)(r->applying - r->log.snap_index));
	r->prev_hs = cfg->hard_state; /* what is durable: a bootstrap differs */
	r->role = RD_RAFT_FOLLOWER;
	rd__reset_timeout(r);
	/* What the caller restored is durable; once applied it may leave
	 * memory like any entry (raft.h, "The in-memory tail"). */
	rd__tail_trim(r, false);
	*out = r;
	return 0;

err_after_log:
	release_confs(r);
	for (uint32_t i = 0; i < r->n_prs; i++)
		free(r->prs[i].infl_idx);
	free(r->prs);
	rd__log_free(&r->log);
	free(r);
	return rc;
}

void rd_raft_free(struct rd_raft *r)
{
	if (r == NULL)
		return;
	rd__log_free(&r->log);
	for (uint32_t i = 0; i < r->n_prs; i++)
		free(r->prs[i].infl_idx);
	free(r->prs);
	free(r->reads_pending.v);
	free(r->reads_ready.v);
	free(r->reads_out.v);
	free(r->reads_sent.v);
	free(r->reads_failed.v);
	free(r->reads_failed_out.v);
	for (size_t i = 0; i < r->msgq.n; i++)
		free(r->msgq.v[i].owned);
	free(r->msgq.v);
	for (size_t i = 0; i < r->owned_out.n; i++)
		free(r->owned_out.v[i]);
	free(r->owned_out.v);
	release_confs(r);
	free(r->out_early.v);
	free(r->out_late.v);
	free(r->snap_sends.v);
	free(r->snap_out.v);
	free(r);
}

/* --- accessors -------------------------------------------------------------------- */

enum rd_raft_role rd_raft_role(const struct rd_raft *r)
{
	return r->role;
}
uint64_t rd_raft_id(const struct rd_raft *r)
{
	return r->id;
}
uint64_t rd_raft_group(const struct rd_raft *r)
{
	return r->group;
}
uint64_t rd_raft_leader(const struct rd_raft *r)
{
	return r->lead;
}
uint64_t rd_raft_term(const struct rd_raft *r)
{
	return r->term;
}
uint64_t rd_raft_vote(const struct rd_raft *r)
{
	return r->vote;
}
uint64_t rd_raft_commit(const struct rd_raft *r)
{
	return r->commit;
}
uint64_t rd_raft_applied_index(const struct rd_raft *r)
{
	return r->applied;
}
uint64_t rd_raft_first_index(const struct rd_raft *r)
{
	return rd__log_first(&r->log);
}
uint64_t rd_raft_last_index(const struct rd_raft *r)
{
	return rd__log_last(&r->log);
}
uint64_t rd_raft_persisted_index(const struct rd_raft *r)
{
	return r->persisted;
}
uint64_t rd_raft_transferee(const struct rd_raft *r)
{
	return r->transferee;
}
uint64_t rd_raft_match(const struct rd_raft *r, uint64_t id)
{
	const struct rd__pr *pr;
	if (r->role != RD_RAFT_LEADER)
		return 0;
	if (id == r->id)
		return rd__log_last(&r->log);
	pr = rd__pr((struct rd_raft *)r, id);
	return pr != NULL ? pr->match : 0;
}
const struct rd_conf_state *rd_raft_conf(const struct rd_raft *r)
{
	return r->conf;
}
const struct rd_conf_state *rd_raft_conf_applied(const struct rd_raft *r)
{
	return r->applied_conf;
}

const struct rd_snapshot_meta *rd_raft_snapshot(const struct rd_raft *r)
{
	static _Thread_local struct rd_snapshot_meta meta;
	meta.index = r->log.snap_index;
	meta.term = r->log.snap_term;
	meta.conf = *r->snap_conf;
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
		out->next = pr->id == r->id ? rd__log_last(&r->log) + 1 : pr->next;
		out->state = pr->id == r->id ? RD_PROGRESS_REPLICATE : pr->state;
		out->learner = pr->learner;
		out->recent_active = pr->recent_active;
		out->inflight = pr->infl_count;
		out->inflight_bytes = pr->infl_total;
		out->window = pr->infl_idx != NULL;
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
	    "?",    "Vote",       "VoteResp",  "PreVote",       "PreVoteResp",
	    "App",  "AppResp",    "Heartbeat", "HeartbeatResp", "TimeoutNow",
	    "Snap", "SnapStatus", "ReadIndex", "ReadIndexResp",
	};
	return type <= RD_MSG_TYPE_MAX ? names[type] : "?";
}
