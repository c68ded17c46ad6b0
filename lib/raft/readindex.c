/*
 * ReadIndex (thesis §6.4): a read is linearizable if it observes at least the
 * leader's commit index at the time the read arrived, provided the leader is
 * still the leader then. The leader records its commit index (once it has
 * committed an entry of its own term, §6.4 step 1), confirms its leadership
 * with a round of heartbeats whose context carries a round number, and
 * releases the read once a quorum has acknowledged a round at least that
 * recent. The read state is handed out only once applied >= index (update.c).
 * Followers forward reads to the leader and get the index back.
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

void rd__reads_advance(struct rd_raft *r)
{
	size_t done = 0;
	while (done < r->reads_pending.n) {
		const struct rd__read *rd = &r->reads_pending.v[done];
		if (rd->index == 0)
			break;
		uint32_t acks = 0;
		for (uint32_t i = 0; i < r->conf.n_voters; i++) {
			uint64_t id = r->conf.voters[i];
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
	/* Unconfirmed reads die with the leadership; callers time them out. */
	r->reads_pending.n = 0;
}

void rd__handle_read_index(struct rd_raft *r, uint64_t from, uint64_t ctx)
{
	struct rd__read rd = {
	    .seq = ++r->read_seq,
	    .ctx = ctx,
	    .from = from,
	    .index = rd__log_term(&r->log, r->commit) == r->term ? r->commit : 0,
	};
	if (!RD__VEC_PUSH(r->reads_pending, rd))
		return;
	if (r->conf.n_voters > 1)
		rd__bcast_heartbeat(r, rd.seq);
	rd__reads_advance(r);
}

int rd_raft_read_index(struct rd_raft *r, uint64_t ctx)
{
	assert(!r->in_update);
	if (r->role == RD_RAFT_LEADER) {
		rd__handle_read_index(r, r->id, ctx);
		return 0;
	}
	if (r->lead == 0)
		return RD_ENOLEADER;
	struct rd_message m = {.type = RD_MSG_READ_INDEX, .to = r->lead, .context = ctx};
	rd__send(r, &m, 0);
	return 0;
}
