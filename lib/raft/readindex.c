/*
 * ReadIndex (thesis §6.4): a read is linearizable if it observes at least the
 * leader's commit index at the time the read arrived, provided the leader is
 * still the leader then. The leader records its commit index (once it has
 * committed an entry of its own term, §6.4 step 1), confirms its leadership
 * with a round of heartbeats whose context carries a round number, and
 * releases the read once a quorum has acknowledged a round at least that
 * recent. The read state is handed out only once applied >= index (update.c).
 * Followers forward reads to the leader and get the index back.
 *
 * An answer is only as good as the request it belongs to. A follower keeps
 * the contexts it forwarded and has no answer for yet, and takes an answer
 * only for one of those, once: an answer to a request of a previous start of
 * this node (the network may still deliver it after a restart), a duplicate,
 * or an answer to a context it never sent would otherwise release a read
 * below writes acknowledged since that answer's index was chosen (a stale
 * read). Reads do not wait forever either: the leader drops a read it could
 * not confirm within an election timeout, the follower gives up on an
 * answer after two, and both report the context in the update's
 * reads_failed so that the caller fails the waiter instead of timing it out.
 */
#include <string.h>

#include "raft/core.h"
#include "util/err.h"

static void deliver(struct rd_raft *r, const struct rd__read *rd)
{
	if (rd->from == r->id) {
		struct rd_read_state rs = {rd->ctx, rd->index};
		(void)RD__VEC_PUSH(r->reads_ready, rs);
	} else {
		struct rd_message m = {.type = RD_MSG_READ_INDEX_RESP,
		                       .to = rd->from,
		                       .context = rd->ctx,
		                       .index = rd->index};
		rd__send(r, &m, 0);
	}
}

/* A read that will not be served: report it (local) or say so (remote). */
static void fail(struct rd_raft *r, const struct rd__read *rd)
{
	if (rd->from == r->id) {
		(void)RD__VEC_PUSH(r->reads_failed, rd->ctx);
	} else {
		struct rd_message m = {.type = RD_MSG_READ_INDEX_RESP,
		                       .to = rd->from,
		                       .context = rd->ctx,
		                       .reject = true};
		rd__send(r, &m, 0);
	}
}

/* Drop answered (ctx 0) entries at the front of reads_sent; reclaim the
 * space once the front is more than half of the vector. */
static void sent_trim(struct rd_raft *r)
{
	while (r->reads_sent_head < r->reads_sent.n &&
	       r->reads_sent.v[r->reads_sent_head].ctx == 0)
		r->reads_sent_head++;
	if (r->reads_sent_head == r->reads_sent.n) {
		r->reads_sent.n = 0;
		r->reads_sent_head = 0;
	} else if (r->reads_sent_head * 2 > r->reads_sent.n) {
		size_t left = r->reads_sent.n - r->reads_sent_head;
		memmove(r->reads_sent.v, r->reads_sent.v + r->reads_sent_head,
		        left * sizeof(*r->reads_sent.v));
		r->reads_sent.n = left;
		r->reads_sent_head = 0;
	}
}

void rd__reads_tick(struct rd_raft *r)
{
	/* Leader: a read not confirmed within an election timeout will not
	 * be (a quorum is not answering); the reads are in arrival order. */
	size_t done = 0;
	while (done < r->reads_pending.n &&
	       r->ticks - r->reads_pending.v[done].tick >= r->election_ticks)
		fail(r, &r->reads_pending.v[done++]);
	if (done > 0) {
		memmove(r->reads_pending.v, r->reads_pending.v + done,
		        (r->reads_pending.n - done) * sizeof(*r->reads_pending.v));
		r->reads_pending.n -= done;
	}
	/* Follower: the leader answers or refuses within about an election
	 * timeout; after two, the request or its answer was lost. */
	uint64_t limit = 2 * (uint64_t)r->election_ticks;
	for (size_t i = r->reads_sent_head; i < r->reads_sent.n; i++) {
		struct rd__sent_read *s = &r->reads_sent.v[i];
		if (s->ctx == 0)
			continue;
		if (r->ticks - s->tick < limit)
			break;
		(void)RD__VEC_PUSH(r->reads_failed, s->ctx);
		s->ctx = 0;
	}
	sent_trim(r);
}

void rd__handle_read_index_resp(struct rd_raft *r, const struct rd_message *m)
{
	size_t i = r->reads_sent_head;
	while (i < r->reads_sent.n && r->reads_sent.v[i].ctx != m->context)
		i++;
	if (m->context == 0 || i == r->reads_sent.n)
		return; /* not ours, or already answered: drop */
	r->reads_sent.v[i].ctx = 0;
	sent_trim(r);
	if (m->reject) {
		(void)RD__VEC_PUSH(r->reads_failed, m->context);
	} else {
		struct rd_read_state rs = {m->context, m->index};
		(void)RD__VEC_PUSH(r->reads_ready, rs);
	}
}

void rd__reads_advance(struct rd_raft *r)
{
	size_t done = 0;
	while (done < r->reads_pending.n) {
		const struct rd__read *rd = &r->reads_pending.v[done];
		if (rd->index == 0)
			break;
		uint32_t acks = 0;
		for (uint32_t i = 0; i < r->conf->n_voters; i++) {
			uint64_t id = r->conf->voters[i];
			const struct rd__pr *pr = rd__pr(r, id);
			if (id == r->id || (pr != NULL && pr->read_ack >= rd->seq))
				acks++;
		}
		if (acks < rd__quorum(r))
			break;
		deliver(r, rd);
		done++;
	}
	if (done > 0) {
		memmove(r->reads_pending.v, r->reads_pending.v + done,
		        (r->reads_pending.n - done) * sizeof(*r->reads_pending.v));
		r->reads_pending.n -= done;
	}
}

void rd__reads_on_commit(struct rd_raft *r)
{
	if (rd__log_term(&r->log, r->commit) != r->term)
		return;
	for (size_t i = 0; i < r->reads_pending.n; i++)
		if (r->reads_pending.v[i].index == 0)
			r->reads_pending.v[i].index = r->commit;
	rd__reads_advance(r);
}

void rd__reads_reset(struct rd_raft *r)
{
	/* Unconfirmed reads die with the leadership (thesis §6.4: only a
	 * leader that is still the leader may answer). Local ones are
	 * reported failed; a follower's expire on its side. */
	for (size_t i = 0; i < r->reads_pending.n; i++)
		if (r->reads_pending.v[i].from == r->id)
			(void)RD__VEC_PUSH(r->reads_failed, r->reads_pending.v[i].ctx);
	r->reads_pending.n = 0;
}

void rd__handle_read_index(struct rd_raft *r, uint64_t from, uint64_t ctx)
{
	struct rd__read rd = {
	    .seq = ++r->read_seq,
	    .ctx = ctx,
	    .from = from,
	    .index = rd__log_term(&r->log, r->commit) == r->term ? r->commit : 0,
	    .tick = r->ticks,
	};
	if (!RD__VEC_PUSH(r->reads_pending, rd))
		return;
	if (r->conf->n_voters > 1)
		rd__bcast_heartbeat(r, rd.seq, false);
	rd__reads_advance(r);
}

int rd_raft_read_index(struct rd_raft *r, uint64_t ctx)
{
	assert(!r->in_update);
	if (ctx == 0)
		return RD_EINVAL; /* 0 marks an answered slot in reads_sent */
	if (r->role == RD_RAFT_LEADER || r->lead != 0)
		rd__wake(r, RD_WAKE_READ); /* the answer or its expiry needs ticks */
	if (r->role == RD_RAFT_LEADER) {
		rd__handle_read_index(r, r->id, ctx);
		return 0;
	}
	if (r->lead == 0)
		return RD_ENOLEADER;
	struct rd__sent_read s = {ctx, r->ticks};
	if (!RD__VEC_PUSH(r->reads_sent, s))
		return RD_ENOMEM;
	struct rd_message m = {.type = RD_MSG_READ_INDEX, .to = r->lead, .context = ctx};
	rd__send(r, &m, 0);
	return 0;
}
