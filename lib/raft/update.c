/*
 * The hand-out: outbound messages are queued as they are produced (with
 * their entries as a log range, resolved to pointers only when handed out so
 * that appends and truncations in between cannot leave them dangling), and
 * rd_raft_get_update packs everything pending into one update. Messages are
 * split by whether they may leave before the update's writes are durable
 * (thesis §10.2.1; see raft.h).
 */
#include <stdlib.h>
#include <string.h>

#include "raft/core.h"
#include "util/err.h"

/* `m` as the queue holds it: stamped with this core's group, id and (unless
 * the caller set one) term, its entries to be resolved when handed out. */
static struct rd__qmsg queued(const struct rd_raft *r, const struct rd_message *m)
{
	struct rd__qmsg q = {.m = *m, .gen = r->log.gen};
	q.m.group = r->group;
	q.m.from = r->id;
	if (q.m.term == 0)
		q.m.term = r->term;
	q.m.entries = NULL;
	return q;
}

void rd__send(struct rd_raft *r, const struct rd_message *m, uint64_t ent_lo)
{
	struct rd__qmsg q = queued(r, m);
	q.ent_lo = ent_lo;
	/* A message that cannot be queued is lost, which Raft tolerates. */
	(void)RD__VEC_PUSH(r->msgq, q);
}

void rd__send_owned(struct rd_raft *r, const struct rd_message *m, struct rd_entry *owned)
{
	struct rd__qmsg q = queued(r, m);
	q.owned = owned;
	q.ent_lo = owned[0].index;
	if (!RD__VEC_PUSH(r->msgq, q))
		free(owned); /* lost, which Raft tolerates */
}

static bool read_ready(const struct rd_raft *r, uint64_t upto)
{
	for (size_t i = 0; i < r->reads_ready.n; i++)
		if (r->reads_ready.v[i].index <= upto)
			return true;
	return false;
}

bool rd_raft_has_update(const struct rd_raft *r)
{
	return r->bcast_pending || r->msgq.n > 0 || r->snap_sends.n > 0 ||
	       r->has_pending_snapshot || r->handed < rd__log_last(&r->log) ||
	       r->applying < r->commit || r->prev_hs.term != r->term ||
	       r->prev_hs.vote != r->vote || r->prev_hs.commit != r->commit ||
	       read_ready(r, r->commit) || r->reads_failed.n > 0 || r->role_changed ||
	       r->quiesce_changed;
}

/* Move the elements of vector `in` into vector `out` of the same element
 * type (dropping what `out` held): `in` is left empty with `out`'s old
 * storage, so that an update points at `out` while new elements queue in
 * `in` until the next update. */
static void vec_take(void **out, size_t *out_n, size_t *out_cap, void **in, size_t *in_n,
                     size_t *in_cap)
{
	void *v = *out;
	size_t cap = *out_cap;

	*out = *in;
	*out_n = *in_n;
	*out_cap = *in_cap;
	*in = v;
	*in_cap = cap;
	*in_n = 0;
}
#define VEC_TAKE(out, in)                                                                \
	vec_take((void **)&(out).v, &(out).n, &(out).cap, (void **)&(in).v, &(in).n,     \
	         &(in).cap)

static bool may_go_early(uint8_t type)
{
	return type == RD_MSG_APPEND || type == RD_MSG_HEARTBEAT ||
	       type == RD_MSG_SNAPSHOT || type == RD_MSG_TIMEOUT_NOW;
}

void rd_raft_get_update(struct rd_raft *r, struct rd_raft_update *u)
{
	assert(!r->in_update);
	/* Invariants (figure 2, thesis §10.2.1). */
	assert(r->applied <= r->commit);
	assert(r->commit <= r->persisted);
	assert(r->persisted <= rd__log_last(&r->log));
	assert(r->vote == 0 || r->term > 0);
	memset(u, 0, sizeof(*u));
	if (r->bcast_pending) {
		r->bcast_pending = false;
		if (r->role == RD_RAFT_LEADER)
			rd__bcast_append(r);
	}

	struct rd_hard_state hs = {r->term, r->vote, r->commit};
	bool durable_first = hs.term != r->prev_hs.term || hs.vote != r->prev_hs.vote;
	if (durable_first || hs.commit != r->prev_hs.commit) {
		u->hard_state_changed = true;
		u->hard_state = hs;
		r->prev_hs = hs;
	}

	uint64_t last = rd__log_last(&r->log);
	if (r->handed < last) {
		u->entries = rd__log_at(&r->log, r->handed + 1);
		u->n_entries = (size_t)(last - r->handed);
		r->handed = last;
	}
	if (r->has_pending_snapshot) {
		u->has_snapshot = true;
		u->snapshot.index = r->pending_snap_index;
		u->snapshot.term = r->pending_snap_term;
		u->snapshot.conf = *r->pending_snap_conf;
		rd_conf_assign(&r->pending_snap_conf, &rd_conf_none);
		r->has_pending_snapshot = false;
	}

	r->out_early.n = 0;
	r->out_late.n = 0;
	for (size_t i = 0; i < r->msgq.n; i++) {
		struct rd__qmsg *q = &r->msgq.v[i];
		if (q->owned != NULL) {
			/* Read from the log source: freed at advance. */
			if (!RD__VEC_PUSH(r->owned_out, q->owned)) {
				free(q->owned);
				continue;
			}
			q->m.entries = q->owned;
		} else if (q->m.n_entries > 0) {
			uint64_t hi = q->ent_lo + q->m.n_entries - 1;
			if (q->gen != r->log.gen || q->ent_lo < r->log.lo || hi > last)
				continue; /* its entries are gone: drop, like a loss */
			q->m.entries = rd__log_at(&r->log, q->ent_lo);
		}
		if (!durable_first && may_go_early(q->m.type))
			(void)RD__VEC_PUSH(r->out_early, q->m);
		else
			(void)RD__VEC_PUSH(r->out_late, q->m);
	}
	r->msgq.n = 0;
	u->msgs = r->out_early.v;
	u->n_msgs = r->out_early.n;
	u->msgs_after_persist = r->out_late.v;
	u->n_msgs_after_persist = r->out_late.n;

	if (r->applying < r->commit) {
		u->committed = rd__log_at(&r->log, r->applying + 1);
		u->n_committed = (size_t)(r->commit - r->applying);
		r->applying = r->commit;
		rd__conf_applying(r, u->committed, u->n_committed);
	}

	/* Reads are served after this update's entries are applied. */
	r->reads_out.n = 0;
	size_t keep = 0;
	for (size_t i = 0; i < r->reads_ready.n; i++) {
		struct rd_read_state rs = r->reads_ready.v[i];
		if (rs.index <= r->applying && RD__VEC_PUSH(r->reads_out, rs))
			continue;
		r->reads_ready.v[keep++] = rs;
	}
	r->reads_ready.n = keep;
	u->reads = r->reads_out.v;
	u->n_reads = r->reads_out.n;

	/* Swap the failed reads and the snapshot requests out so that new
	 * ones can queue. */
	VEC_TAKE(r->reads_failed_out, r->reads_failed);
	u->reads_failed = r->reads_failed_out.v;
	u->n_reads_failed = r->reads_failed_out.n;
	VEC_TAKE(r->snap_out, r->snap_sends);
	u->snap_sends = r->snap_out.v;
	u->n_snap_sends = r->snap_out.n;

	u->role_changed = r->role_changed;
	r->role_changed = false;
	u->quiesce_changed = r->quiesce_changed;
	u->quiesced = r->quiesced;
	u->wake_cause = r->wake_cause;
	r->quiesce_changed = false;
	r->wake_cause = RD_WAKE_NONE;
	r->in_update = true;
}

void rd_raft_applied(struct rd_raft *r, uint64_t index)
{
	assert(index <= r->applying);
	if (index > r->applying)
		index = r->applying;
	if (index > r->applied)
		r->applied = index;
	assert(r->applied <= r->commit);
}

/* Free vector `vec` if it holds nothing. */
#define VEC_RELEASE(vec)                                                                 \
	do {                                                                             \
		if ((vec).n == 0) {                                                      \
			free((vec).v);                                                   \
			(vec).v = NULL;                                                  \
			(vec).cap = 0;                                                   \
		}                                                                        \
	} while (0)

/* Shrink vector `vec` to what it holds (it keeps its buffer if the
 * allocator cannot). */
#define VEC_FIT(vec)                                                                     \
	do {                                                                             \
		if ((vec).n > 0 && (vec).n < (vec).cap) {                                \
			void *p_ = realloc((vec).v, (vec).n * sizeof(*(vec).v));         \
			if (p_ != NULL) {                                                \
				(vec).v = p_;                                            \
				(vec).cap = (vec).n;                                     \
			}                                                                \
		}                                                                        \
	} while (0)

/* A quiesced group gives back its empty message and read buffers (a
 * message is some 400 bytes): an idle group holds none, a group that
 * wakes allocates them again (rd__vec_grow). The records of evicted
 * membership changes (tail.c; an index and a shared configuration each,
 * raft/conf.h; a founding group has one per founding voter) stay, in a
 * buffer of their size. */
static void release_idle(struct rd_raft *r)
{
	VEC_FIT(r->evicted_confs);
	VEC_RELEASE(r->msgq);
	VEC_RELEASE(r->out_early);
	VEC_RELEASE(r->out_late);
	VEC_RELEASE(r->owned_out);
	VEC_RELEASE(r->snap_sends);
	VEC_RELEASE(r->snap_out);
	VEC_RELEASE(r->reads_pending);
	VEC_RELEASE(r->reads_ready);
	VEC_RELEASE(r->reads_out);
	VEC_RELEASE(r->reads_failed);
	VEC_RELEASE(r->reads_failed_out);
	if (r->reads_sent.n == 0) {
		VEC_RELEASE(r->reads_sent);
		r->reads_sent_head = 0;
	}
}

void rd_raft_advance(struct rd_raft *r, const struct rd_raft_update *u)
{
	assert(r->in_update);
	r->in_update = false;
	if (u->has_snapshot && u->snapshot.index > r->applied)
		r->applied = u->snapshot.index;
	if (u->n_committed > 0)
		rd_raft_applied(r, u->committed[u->n_committed - 1].index);
	r->out_early.n = 0;
	r->out_late.n = 0;
	r->reads_out.n = 0;
	r->reads_failed_out.n = 0;
	r->snap_out.n = 0;
	for (size_t i = 0; i < r->owned_out.n; i++)
		free(r->owned_out.v[i]);
	r->owned_out.n = 0;
	/* What was applied and is durable may leave memory; all of it when
	 * quiesced (raft.h, "The in-memory tail"). */
	rd__tail_trim(r, r->quiesced);
	if (r->quiesced)
		release_idle(r);
}
