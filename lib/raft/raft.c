/*
 * Ticks, role changes and the term rules every message passes through
 * before its type-specific handler (Raft §5.1: a higher term turns anyone
 * into a follower; a stale term is refused). Lifecycle: lifecycle.c.
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
	r->randomized_timeout =
	    r->election_ticks + (uint32_t)(rng_next(&r->rng) % r->election_ticks);
}

bool rd__vec_grow(void **v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return true;
	/* Messages are some 400 bytes: a group's one or two per update fit
	 * in 2, and a quiesced group frees them (update.c release_idle). */
	size_t nc = *cap ? *cap * 2 : elem >= 128 ? 2 : 16;
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
	return rd_raft_conf_has_voter(r->conf, id);
}

bool rd__promotable(const struct rd_raft *r)
{
	/* Thesis §4.2.2: a server removed by a configuration that is not yet
	 * committed keeps starting elections, as it may still be needed to
	 * commit that very change (its own vote does not count then). */
	return rd_raft_conf_has_voter(r->conf, r->id) ||
	       (r->conf_index > r->commit && rd_raft_conf_has_voter(r->prev_conf, r->id));
}

uint32_t rd__quorum(const struct rd_raft *r)
{
	return r->conf->n_voters / 2 + 1;
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
	rd__wake(r, RD_WAKE_ELECTION); /* a quiesced group ticks again */
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
	/* Only a leader pipelines: a follower keeps no in-flight window. */
	if (r->role == RD_RAFT_LEADER)
		for (uint32_t i = 0; i < r->n_prs; i++)
			rd__pr_window_free(&r->prs[i]);
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

/* --- quiescence (raft.h) ------------------------------------------------------------ */

/* Reads this node forwarded to a leader and has no answer for: their
 * expiry (rd__reads_tick) needs ticks, so the group must not quiesce. */
static bool reads_sent_live(const struct rd_raft *r)
{
	for (size_t i = r->reads_sent_head; i < r->reads_sent.n; i++)
		if (r->reads_sent.v[i].ctx != 0)
			return true;
	return false;
}

void rd__wake(struct rd_raft *r, uint8_t cause)
{
	if (!r->quiesced)
		return;
	r->quiesced = false;
	r->quiesce_changed = true;
	if (r->wake_cause == RD_WAKE_NONE)
		r->wake_cause = cause;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	if (r->role != RD_RAFT_LEADER)
		return;
	/* Check-quorum (thesis §6.2) counts, in the round that starts now,
	 * only members heard from after the wake: what it heard before it
	 * quiesced may be long past. */
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].id != r->id)
			r->prs[i].recent_active = false;
}

/* Quiescing: the log's recycled payload buffers (up to four chunks of up
 * to 1 MiB each after a burst of writes) go back to the allocator, so an
 * idle group holds only the chunks its entries live in. */
static void quiesce_trim(struct rd_raft *r)
{
	for (size_t i = 0; i < r->log.n_spare; i++)
		free(r->log.spare[i].buf);
	r->log.n_spare = 0;
}

bool rd__can_quiesce(const struct rd_raft *r)
{
	uint64_t last = rd__log_last(&r->log);
	uint32_t active = 0;

	/* reads_sent: a read forwarded while it was a follower (to a leader
	 * that may be gone) fails only once it expires. */
	if (r->role != RD_RAFT_LEADER || r->transferee != 0 || r->reads_pending.n > 0 ||
	    reads_sent_live(r) || r->bcast_pending || r->snap_sends.n > 0 ||
	    r->commit != last || r->persisted != last)
		return false;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		const struct rd__pr *pr = &r->prs[i];
		if (pr->id == r->id) {
			active += !pr->learner;
			continue;
		}
		/* A member whose node is down gets the entries when it is
		 * back: its first message wakes the group (rd_raft_step). */
		if (pr->down)
			continue;
		/* Everything acknowledged, nothing in flight: no timer is needed
		 * to resend or to resume it. */
		if (pr->match != last || pr->state != RD_PROGRESS_REPLICATE ||
		    pr->infl_count > 0)
			return false;
		if (!pr->learner && pr->recent_active && rd__is_voter(r, pr->id))
			active++;
	}
	/* A quorum answered in this check-quorum round (thesis §6.2). */
	return active >= rd__quorum(r);
}

bool rd_raft_quiesced(const struct rd_raft *r)
{
	return r->quiesced;
}

bool rd_raft_peer_down(struct rd_raft *r, uint64_t node)
{
	assert(!r->in_update);
	if (node == r->id)
		return false;
	if (r->role == RD_RAFT_LEADER) {
		struct rd__pr *pr = rd__pr(r, node);
		if (pr == NULL || pr->down)
			return false;
		pr->down = true;
		if (!r->quiesced)
			return false;
		rd__wake(r, RD_WAKE_PEER_DOWN);
		return true;
	}
	if (!r->quiesced || r->lead != node)
		return false;
	rd__wake(r, RD_WAKE_PEER_DOWN);
	/* The leader lease (thesis §4.2.3) is over: nothing came from the
	 * leader's node for an election timeout. The follower grants votes
	 * now and campaigns once its randomized timeout runs out. */
	r->election_elapsed = r->election_ticks;
	return true;
}

const char *rd_raft_wake_name(uint8_t cause)
{
	static const char *const names[] = {
	    [RD_WAKE_NONE] = "none",
	    [RD_WAKE_PROPOSAL] = "proposal",
	    [RD_WAKE_CONF_CHANGE] = "conf_change",
	    [RD_WAKE_READ] = "read",
	    [RD_WAKE_TRANSFER] = "transfer",
	    [RD_WAKE_MESSAGE] = "message",
	    [RD_WAKE_PEER_DOWN] = "peer_down",
	    [RD_WAKE_ELECTION] = "election",
	};
	return cause <= RD_WAKE_MAX ? names[cause] : "?";
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
	r->ticks++;
	if (r->quiesced)
		return; /* timers stand still (raft.h, "Quiescence") */
	r->election_elapsed++;
	rd__reads_tick(r);
	if (r->role != RD_RAFT_LEADER) {
		if (rd__promotable(r) && !r->no_campaign &&
		    r->election_elapsed >= r->randomized_timeout) {
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
		/* Nothing to do: the last heartbeat tells the followers to stop
		 * their election timers, and this one stops ticking. */
		bool q = r->quiesce_on && r->conf->n_voters > 1 && rd__can_quiesce(r);
		rd__bcast_heartbeat(r, r->reads_pending.n ? r->read_seq : 0, q);
		if (q) {
			r->quiesced = true;
			r->quiesce_changed = true;
			/* Idle: the windows with nothing in flight can go. A
			 * member that is down may have appends in flight:
			 * forgetting them would send it more on every wake. */
			for (uint32_t i = 0; i < r->n_prs; i++)
				if (r->prs[i].infl_count == 0)
					rd__pr_window_free(&r->prs[i]);
			quiesce_trim(r);
		}
	}
}

/* --- step ------------------------------------------------------------------------- */

static void respond(struct rd_raft *r, const struct rd_message *m, uint8_t type,
                    bool reject)
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
		bool from_leader = m->type == RD_MSG_APPEND ||
		                   m->type == RD_MSG_HEARTBEAT ||
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

/* A follower's answer to its leader's heartbeat: stop the election timer
 * on a quiesce heartbeat (raft.h, "Quiescence"), unless a read it forwarded
 * waits for an answer (its expiry needs ticks); wake on any other. */
static void follower_quiesce(struct rd_raft *r, const struct rd_message *m)
{
	if (!m->quiesce || !r->quiesce_on || reads_sent_live(r)) {
		rd__wake(r, RD_WAKE_MESSAGE);
		return;
	}
	if (!r->quiesced) {
		r->quiesced = true;
		r->quiesce_changed = true;
		quiesce_trim(r);
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
		else if (m->type == RD_MSG_SNAPSHOT)
			rd__handle_snapshot(r, m);
		else {
			rd__handle_heartbeat(r, m);
			follower_quiesce(r, m);
		}
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
		follower_quiesce(r, m);
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
		rd__handle_read_index_resp(r, m);
		break;
	default:
		break;
	}
}

/* Does a message of the current term wake a quiesced group (raft.h)? The
 * answers a quiesced leader expects leave it asleep unless they show work
 * (checked after the step); a follower's leader heartbeat is decided by
 * follower_quiesce. */
static void step_wake(struct rd_raft *r, const struct rd_message *m)
{
	if (!r->quiesced)
		return;
	switch (m->type) {
	case RD_MSG_HEARTBEAT_RESP:
	case RD_MSG_APPEND_RESP:
	case RD_MSG_READ_INDEX_RESP:
	case RD_MSG_VOTE_RESP:
	case RD_MSG_PRE_VOTE_RESP:
		return;
	case RD_MSG_HEARTBEAT:
		if (r->role == RD_RAFT_FOLLOWER)
			return;
		break;
	default:
		break;
	}
	rd__wake(r, RD_WAKE_MESSAGE);
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
	for (uint32_t i = 0; i < m->n_entries; i++)
		if ((m->entries[i].len > 0 && m->entries[i].data == NULL) ||
		    m->entries[i].type > RD_ENTRY_CONF_CHANGE)
			return RD_EPROTO;
	/* A (pre-)vote request of a later term wakes a quiesced leader, even
	 * one refused below by the lease: it must heartbeat a candidate that
	 * lost it. A quiesced follower wakes only when the candidate is its
	 * own leader, which thereby says it leads no more: the lease (thesis
	 * §4.2.3) is over. From anyone else the request is refused under the
	 * lease while the runtime says the leader's node is live; waking would
	 * let the follower's timer run while the quiesced leader is silent,
	 * and it would end the lease of a leader that is alive. */
	if ((m->type == RD_MSG_VOTE || m->type == RD_MSG_PRE_VOTE) && m->term > r->term &&
	    r->quiesced) {
		if (r->role == RD_RAFT_LEADER) {
			rd__wake(r, RD_WAKE_MESSAGE);
		} else if (m->from == r->lead) {
			rd__wake(r, RD_WAKE_MESSAGE);
			r->election_elapsed = r->election_ticks;
		}
	}
	bool drop;
	step_term(r, m, &drop);
	if (drop)
		return 0;
	step_wake(r, m);
	if (m->type == RD_MSG_VOTE || m->type == RD_MSG_PRE_VOTE) {
		rd__handle_vote(r, m);
		return 0;
	}
	switch (r->role) {
	case RD_RAFT_LEADER: {
		struct rd__pr *from = rd__pr(r, m->from);
		if (from != NULL)
			from->down = false; /* it is back: quiesce waits for it again */
		step_leader(r, m);
		if (r->quiesced && !rd__can_quiesce(r))
			rd__wake(r, RD_WAKE_MESSAGE);
		break;
	}
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
