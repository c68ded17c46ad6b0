/*
 * Log replication (§5.3): the leader's per-follower progress (probe, then
 * pipelined replicate within an in-flight window of messages and bytes),
 * batching by bytes, fast backtracking with conflict hints, heartbeats, the
 * commit rule (§5.4.2), and snapshots for followers behind the compaction
 * point (§7). Followers check consistency, truncate conflicts and acknowledge.
 *
 * The leader's own log counts toward commit only up to `persisted` (thesis
 * §10.2.1); so does every node's commit index: commit <= persisted always.
 */
#include <stdlib.h>

#include "raft/core.h"
#include "util/err.h"

/* --- in-flight window ------------------------------------------------------------ */

/* First slots of a window: a group that sees little traffic never needs
 * more, and thousands of groups each with max_inflight slots per follower
 * (4 KiB at the default 256) would cost an idle node, which frees them on
 * quiescence, a heap of holes. */
#define INFL_FIRST 8u

/* Double the ring of `pr` (in order from slot 0), at most to max_inflight
 * slots. False on ENOMEM (the ring is as it was). */
static bool infl_grow(const struct rd_raft *r, struct rd__pr *pr)
{
	uint32_t cap =
	    pr->infl_cap * 2 < r->max_inflight ? pr->infl_cap * 2 : r->max_inflight;
	uint64_t *p = calloc((size_t)cap * 2, sizeof(uint64_t));

	if (p == NULL)
		return false;
	for (uint32_t i = 0; i < pr->infl_count; i++) {
		uint32_t s = (pr->infl_start + i) % pr->infl_cap;
		p[i] = pr->infl_idx[s];
		p[cap + i] = pr->infl_bytes[s];
	}
	free(pr->infl_idx);
	pr->infl_idx = p;
	pr->infl_bytes = p + cap;
	pr->infl_cap = cap;
	pr->infl_start = 0;
	return true;
}

/* Full: max_inflight appends or max_inflight_bytes in flight, or the ring
 * is at its capacity and cannot grow (ENOMEM: as full, so the heartbeat
 * answer's resumption frees a slot, rd__handle_heartbeat_resp). */
static bool infl_full(const struct rd_raft *r, struct rd__pr *pr)
{
	if (pr->infl_count >= r->max_inflight ||
	    (r->max_inflight_bytes > 0 && pr->infl_total >= r->max_inflight_bytes))
		return true;
	/* No window (a quiesced leader's): nothing in flight, and an append
	 * with entries allocates it first (rd__send_append). */
	if (pr->infl_idx == NULL)
		return false;
	return pr->infl_count == pr->infl_cap && !infl_grow(r, pr);
}

static void infl_add(struct rd__pr *pr, uint64_t index, uint64_t bytes)
{
	assert(pr->infl_count < pr->infl_cap);
	uint32_t slot = (pr->infl_start + pr->infl_count) % pr->infl_cap;
	pr->infl_idx[slot] = index;
	pr->infl_bytes[slot] = bytes;
	pr->infl_count++;
	pr->infl_total += bytes;
}

static void infl_free_first(struct rd__pr *pr)
{
	if (pr->infl_count == 0)
		return;
	pr->infl_total -= pr->infl_bytes[pr->infl_start];
	pr->infl_start = (pr->infl_start + 1) % pr->infl_cap;
	pr->infl_count--;
}

static void infl_free_le(struct rd__pr *pr, uint64_t index)
{
	while (pr->infl_count > 0 && pr->infl_idx[pr->infl_start] <= index)
		infl_free_first(pr);
}

static void infl_reset(struct rd__pr *pr)
{
	pr->infl_start = 0;
	pr->infl_count = 0;
	pr->infl_total = 0;
}

void rd__pr_reset(struct rd_raft *r, struct rd__pr *pr)
{
	pr->match = 0;
	pr->next = rd__log_last(&r->log) + 1;
	pr->state = RD_PROGRESS_PROBE;
	pr->probe_sent = false;
	pr->pending_snapshot = 0;
	pr->recent_active = false;
	pr->read_ack = 0;
	pr->resume_tick = 0;
	pr->down = false;
	infl_reset(pr);
}

static void become_probe(struct rd_raft *r, struct rd__pr *pr)
{
	if (pr->state == RD_PROGRESS_SNAPSHOT) {
		uint64_t p = pr->pending_snapshot;
		pr->next = (pr->match > p ? pr->match : p) + 1;
	} else {
		pr->next = pr->match + 1;
	}
	pr->state = RD_PROGRESS_PROBE;
	pr->probe_sent = false;
	pr->pending_snapshot = 0;
	infl_reset(pr);
	(void)r;
}

bool rd__pr_window(struct rd_raft *r, struct rd__pr *pr)
{
	if (pr->infl_idx != NULL)
		return true;
	uint32_t cap = r->max_inflight < INFL_FIRST ? r->max_inflight : INFL_FIRST;
	pr->infl_idx = calloc((size_t)cap * 2, sizeof(uint64_t));
	pr->infl_bytes = pr->infl_idx ? pr->infl_idx + cap : NULL;
	pr->infl_cap = pr->infl_idx ? cap : 0;
	infl_reset(pr);
	return pr->infl_idx != NULL;
}

void rd__pr_window_free(struct rd__pr *pr)
{
	free(pr->infl_idx);
	pr->infl_idx = NULL;
	pr->infl_bytes = NULL;
	pr->infl_cap = 0;
	infl_reset(pr);
}

static void become_replicate(struct rd_raft *r, struct rd__pr *pr)
{
	if (!rd__pr_window(r, pr)) {
		/* No window memory: keep probing one append at a time. */
		pr->state = RD_PROGRESS_PROBE;
		pr->next = pr->match + 1;
		pr->probe_sent = false;
		return;
	}
	pr->state = RD_PROGRESS_REPLICATE;
	pr->next = pr->match + 1;
	pr->probe_sent = false;
	infl_reset(pr);
}

/* --- sending ------------------------------------------------------------------------ */

static void send_snapshot(struct rd_raft *r, struct rd__pr *pr)
{
	struct rd_snap_send s = {
	    .to = pr->id,
	    .term = r->term,
	    .meta = {.index = r->log.snap_index,
	             .term = r->log.snap_term,
	             .conf = *r->snap_conf},
	};
	if (!RD__VEC_PUSH(r->snap_sends, s))
		return;
	pr->state = RD_PROGRESS_SNAPSHOT;
	pr->pending_snapshot = r->log.snap_index;
	pr->probe_sent = false;
	infl_reset(pr);
}

bool rd__send_append(struct rd_raft *r, struct rd__pr *pr, bool send_if_empty)
{
	if (pr->id == r->id || r->role != RD_RAFT_LEADER)
		return false;
	/* Its window went when the leader quiesced: back before use, which
	 * is only when there are entries to send. An answer that arrives
	 * after the leader quiesced (to its last commit update, or a
	 * duplicate) leaves the group asleep and must not bring it back: an
	 * idle group holds no window. */
	if (pr->state == RD_PROGRESS_REPLICATE && pr->infl_idx == NULL &&
	    pr->next <= rd__log_last(&r->log) && !rd__pr_window(r, pr))
		become_probe(r, pr);
	if ((pr->state == RD_PROGRESS_PROBE && pr->probe_sent) ||
	    (pr->state == RD_PROGRESS_REPLICATE && infl_full(r, pr)) ||
	    pr->state == RD_PROGRESS_SNAPSHOT)
		return false;
	uint64_t last = rd__log_last(&r->log);
	if (pr->next <= r->log.snap_index) {
		/* §7: the entries it needs are compacted away. */
		send_snapshot(r, pr);
		return true;
	}
	uint64_t prev = pr->next - 1;
	uint32_t n = 0;
	uint64_t bytes = 0;
	struct rd_entry *owned = NULL;
	if (pr->next < r->log.lo) {
		/* Behind the in-memory tail: from the log source (tail.c). A
		 * failed read sends nothing; its next heartbeat answer retries. */
		if (!rd__tail_read(r, pr->next, &owned, &n, &bytes))
			return false;
	}
	while (owned == NULL && pr->next + n <= last) {
		uint64_t len =
		    rd__log_at(&r->log, pr->next + n)->len + RD_RAFT_ENTRY_OVERHEAD;
		if (n > 0 && bytes + len > r->max_msg_bytes)
			break;
		bytes += len;
		n++;
	}
	if (n == 0 && !send_if_empty)
		return false;
	struct rd_message m = {
	    .type = RD_MSG_APPEND,
	    .to = pr->id,
	    .index = prev,
	    .log_term = rd__log_term(&r->log, prev),
	    .commit = r->commit,
	    .n_entries = n,
	};
	if (owned != NULL)
		rd__send_owned(r, &m, owned);
	else
		rd__send(r, &m, pr->next);
	if (pr->state == RD_PROGRESS_REPLICATE) {
		if (n > 0) {
			/* Pipelining: assume success, move on (etcd's optimistic
			 * next); a reject brings the follower back to probe. */
			pr->next += n;
			infl_add(pr, pr->next - 1, bytes);
		}
	} else {
		pr->probe_sent = true;
	}
	return true;
}

void rd__bcast_append(struct rd_raft *r)
{
	for (uint32_t i = 0; i < r->n_prs; i++) {
		struct rd__pr *pr = &r->prs[i];
		rd__send_append(r, pr, true);
		/* Pipelining: fill the window with what is left. */
		while (pr->state == RD_PROGRESS_REPLICATE &&
		       rd__send_append(r, pr, false))
			;
	}
}

void rd__bcast_heartbeat(struct rd_raft *r, uint64_t ctx, bool quiesce)
{
	for (uint32_t i = 0; i < r->n_prs; i++) {
		struct rd__pr *pr = &r->prs[i];
		if (pr->id == r->id)
			continue;
		/* Only what the follower is known to hold may be declared
		 * committed to it. */
		struct rd_message m = {
		    .type = RD_MSG_HEARTBEAT,
		    .to = pr->id,
		    .commit = pr->match < r->commit ? pr->match : r->commit,
		    .context = ctx,
		    .quiesce = quiesce,
		};
		rd__send(r, &m, 0);
	}
}

/* --- commit ---------------------------------------------------------------------------
 */

static void sort_desc(uint64_t *v, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		uint32_t j = i;
		while (j > 0 && v[j - 1] < x) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

static void set_commit(struct rd_raft *r, uint64_t c)
{
	/* Invariants: commit is monotonic and never passes what this node has
	 * made durable. */
	assert(c >= r->commit);
	assert(c <= r->persisted && c <= rd__log_last(&r->log));
	r->commit = c;
}

bool rd__maybe_commit(struct rd_raft *r)
{
	uint64_t m[RD_RAFT_MAX_MEMBERS];
	uint32_t n = 0;
	for (uint32_t i = 0; i < r->conf->n_voters; i++) {
		uint64_t id = r->conf->voters[i];
		if (id == r->id) {
			m[n++] = r->persisted;
		} else {
			struct rd__pr *pr = rd__pr(r, id);
			m[n++] = pr ? pr->match : 0;
		}
	}
	if (n == 0)
		return false;
	sort_desc(m, n);
	uint64_t c = m[rd__quorum(r) - 1];
	if (c > r->persisted)
		c = r->persisted;
	/* §5.4.2: only an entry of the current term commits by counting. */
	if (c <= r->commit || rd__log_term(&r->log, c) != r->term)
		return false;
	set_commit(r, c);
	rd__reads_on_commit(r);
	rd__leader_conf_committed(r);
	return true;
}

void rd__follower_commit(struct rd_raft *r)
{
	uint64_t c = r->commit_hint;
	if (c > r->persisted)
		c = r->persisted;
	if (c > rd__log_last(&r->log))
		c = rd__log_last(&r->log);
	if (c > r->commit)
		set_commit(r, c);
}

/* --- leader: local appends -------------------------------------------------------------
 */

int rd__append_local(struct rd_raft *r, uint8_t type, const void *data, uint32_t len,
                     uint64_t *index_out)
{
	int rc = rd__log_append(&r->log, r->term, type, data, len);
	if (rc != 0)
		return rc;
	struct rd_entry *e = rd__log_at(&r->log, rd__log_last(&r->log));
	if (type == RD_ENTRY_CONF_CHANGE)
		rd__conf_entry_appended(r, e);
	if (index_out != NULL)
		*index_out = e->index;
	return 0;
}

int rd_raft_propose(struct rd_raft *r, uint8_t type, const void *data, uint32_t len,
                    uint64_t *index_out)
{
	assert(!r->in_update);
	if (r->role != RD_RAFT_LEADER)
		return RD_ENOTLEADER;
	if (r->transferee != 0)
		return RD_EBUSY;
	if (type == RD_ENTRY_CONF_CHANGE || type > RD_ENTRY_CONF_CHANGE)
		return RD_EINVAL;
	if (len > r->max_msg_bytes)
		return RD_ETOOBIG;
	rd__wake(r, RD_WAKE_PROPOSAL);
	int rc = rd__append_local(r, type, data, len, index_out);
	if (rc == 0)
		r->bcast_pending = true; /* sent batched at the next hand-out */
	return rc;
}

/* --- follower: AppendEntries ----------------------------------------------------------
 */

static void truncate_from(struct rd_raft *r, uint64_t idx)
{
	/* Log matching (§5.3): a conflicting suffix goes. Committed entries
	 * never conflict (leader completeness). */
	assert(idx > r->commit);
	rd__log_truncate(&r->log, idx);
	if (r->persisted >= idx)
		r->persisted = idx - 1;
	if (r->handed >= idx)
		r->handed = idx - 1;
	if (r->conf_index >= idx)
		rd__conf_recompute(r);
}

void rd__handle_append(struct rd_raft *r, const struct rd_message *m)
{
	struct rd_message out = {.type = RD_MSG_APPEND_RESP, .to = m->from};
	if (m->index < r->commit) {
		out.index = r->commit;
		rd__send(r, &out, 0);
		return;
	}
	uint64_t last = rd__log_last(&r->log);
	if (m->index > last || rd__log_term(&r->log, m->index) != m->log_term) {
		/* Reject with a hint (fast backtracking): the last index whose
		 * term is at most the leader's term at m->index. */
		uint64_t h = m->index < last ? m->index : last;
		while (h > r->log.snap_index && rd__log_term(&r->log, h) > m->log_term)
			h--;
		out.reject = true;
		out.index = m->index;
		out.reject_hint = h;
		out.conflict_term = rd__log_term(&r->log, h);
		rd__send(r, &out, 0);
		return;
	}
	for (uint32_t k = 0; k < m->n_entries; k++) {
		const struct rd_entry *e = &m->entries[k];
		uint64_t idx = m->index + 1 + k;
		if (e->index != idx || e->term > m->term)
			return; /* malformed: drop */
		if (idx <= r->log.snap_index)
			continue;
		if (idx <= rd__log_last(&r->log)) {
			if (rd__log_term(&r->log, idx) == e->term)
				continue;
			truncate_from(r, idx);
		}
		if (rd__log_append(&r->log, e->term, e->type, e->data, e->len) != 0)
			return; /* out of memory: as if the message was lost */
		if (e->type == RD_ENTRY_CONF_CHANGE)
			rd__conf_entry_appended(r, rd__log_at(&r->log, idx));
	}
	uint64_t lastnew = m->index + m->n_entries;
	uint64_t hint = m->commit < lastnew ? m->commit : lastnew;
	if (hint > r->commit_hint)
		r->commit_hint = hint;
	rd__follower_commit(r);
	out.index = lastnew;
	rd__send(r, &out, 0);
}

void rd__handle_heartbeat(struct rd_raft *r, const struct rd_message *m)
{
	uint64_t c = m->commit;
	if (c > rd__log_last(&r->log))
		c = rd__log_last(&r->log);
	if (c > r->commit_hint)
		r->commit_hint = c;
	rd__follower_commit(r);
	struct rd_message out = {
	    .type = RD_MSG_HEARTBEAT_RESP, .to = m->from, .context = m->context};
	rd__send(r, &out, 0);
}

void rd__handle_snapshot(struct rd_raft *r, const struct rd_message *m)
{
	const struct rd_snapshot_meta *s = &m->snapshot;
	struct rd_message out = {.type = RD_MSG_APPEND_RESP, .to = m->from};
	if (s->index <= r->commit) {
		out.index = r->commit;
	} else {
		/* Install: the snapshot replaces the state machine and the
		 * membership. Raft §7: "if an existing log entry has the same
		 * index and term as the snapshot's last included entry, retain
		 * log entries following it", as storage does on disk
		 * (storage/snapshot.h) and etcd's raft `restore`; otherwise the
		 * whole log goes. Entries kept that were handed out stay so:
		 * those up to `persisted` are durable, the rest are in writes
		 * that land before this update's. */
		if (s->index <= rd__log_last(&r->log) &&
		    rd__log_term(&r->log, s->index) == s->term) {
			rd__log_compact(&r->log, s->index);
			if (r->persisted < s->index)
				r->persisted = s->index;
			if (r->handed < s->index)
				r->handed = s->index;
		} else {
			rd__log_reset(&r->log, s->index, s->term);
			r->persisted = s->index;
			r->handed = s->index;
		}
		/* Every evicted entry was applied, so is at or below commit
		 * and below s->index: their configurations are the snapshot's
		 * history now (tail.c). */
		rd__tail_confs_clear(r);
		rd_conf_assign(&r->snap_conf, &s->conf);
		r->commit_hint = s->index;
		set_commit(r, s->index);
		r->applying = s->index;
		rd_conf_assign(&r->applied_conf, &s->conf);
		rd__conf_recompute(r);
		r->has_pending_snapshot = true;
		r->pending_snap_index = s->index;
		r->pending_snap_term = s->term;
		rd_conf_assign(&r->pending_snap_conf, &s->conf);
		out.index = s->index;
	}
	rd__send(r, &out, 0);
}

/* --- leader: responses -------------------------------------------------------------- */

static bool maybe_decr(struct rd_raft *r, struct rd__pr *pr, const struct rd_message *m)
{
	if (pr->state == RD_PROGRESS_REPLICATE) {
		if (m->index <= pr->match)
			return false; /* stale */
		pr->next = pr->match + 1;
		return true;
	}
	if (pr->next - 1 != m->index)
		return false; /* not a response to the probe in flight */
	uint64_t h = m->reject_hint;
	if (m->conflict_term > 0) {
		/* Skip every entry of ours whose term the follower cannot hold
		 * at that position (thesis §5.3 optimization). */
		while (h > r->log.snap_index &&
		       rd__log_term(&r->log, h) > m->conflict_term)
			h--;
	}
	uint64_t next = m->index < h + 1 ? m->index : h + 1;
	if (next < pr->match + 1)
		next = pr->match + 1;
	if (next < 1)
		next = 1;
	pr->next = next;
	pr->probe_sent = false;
	return true;
}

void rd__handle_append_resp(struct rd_raft *r, const struct rd_message *m)
{
	struct rd__pr *pr = rd__pr(r, m->from);
	if (pr == NULL)
		return;
	pr->recent_active = true;
	if (m->reject) {
		if (maybe_decr(r, pr, m)) {
			if (pr->state == RD_PROGRESS_REPLICATE)
				become_probe(r, pr);
			rd__send_append(r, pr, true);
		}
		return;
	}
	if (m->index > rd__log_last(&r->log))
		return; /* acknowledges entries we do not have: stale */
	bool was_paused = (pr->state == RD_PROGRESS_PROBE && pr->probe_sent) ||
	                  (pr->state == RD_PROGRESS_REPLICATE && infl_full(r, pr));
	bool updated = false;
	if (m->index > pr->match) {
		pr->match = m->index;
		updated = true;
	}
	if (pr->next < m->index + 1)
		pr->next = m->index + 1;
	pr->probe_sent = false;
	if (!updated && pr->state != RD_PROGRESS_SNAPSHOT)
		goto send_more;
	switch (pr->state) {
	case RD_PROGRESS_PROBE:
		become_replicate(r, pr);
		break;
	case RD_PROGRESS_SNAPSHOT:
		if (pr->match >= pr->pending_snapshot) {
			become_probe(r, pr);
			become_replicate(r, pr);
		}
		break;
	case RD_PROGRESS_REPLICATE:
		infl_free_le(pr, m->index);
		break;
	}
	if (rd__maybe_commit(r))
		rd__bcast_append(r);
	else if (was_paused)
		/* It missed the commit index while paused: tell it now. */
		rd__send_append(r, pr, true);
	if (r->role != RD_RAFT_LEADER)
		return; /* removed itself on commit */
send_more:
	while (rd__send_append(r, pr, false))
		;
	if (m->from == r->transferee && pr->match == rd__log_last(&r->log)) {
		struct rd_message tn = {.type = RD_MSG_TIMEOUT_NOW, .to = m->from};
		rd__send(r, &tn, 0);
	}
}

void rd__handle_heartbeat_resp(struct rd_raft *r, const struct rd_message *m)
{
	struct rd__pr *pr = rd__pr(r, m->from);
	if (pr == NULL)
		return;
	pr->recent_active = true;
	/* A heartbeat response resumes a follower that may have lost what it
	 * was sent (a probe, or the appends filling its window), as in
	 * etcd-raft, but at most once per heartbeat interval: each resumption
	 * sends up to max_msg_bytes again, and heartbeats queued for a peer
	 * that was down arrive together once it is back (duplicated or
	 * delayed, §5.3 allows both), so answering every response would
	 * send the same entries once per queued heartbeat, a burst that
	 * grows past what the transport carries and takes the real
	 * heartbeats down with it. */
	if (r->ticks >= pr->resume_tick) {
		pr->resume_tick = r->ticks + r->heartbeat_ticks;
		pr->probe_sent = false;
		/* A lost append must not stall a full window forever. */
		if (pr->state == RD_PROGRESS_REPLICATE && infl_full(r, pr))
			infl_free_first(pr);
		if (pr->match < rd__log_last(&r->log) || pr->state == RD_PROGRESS_PROBE)
			rd__send_append(r, pr, true);
	}
	if (m->context > pr->read_ack) {
		pr->read_ack = m->context;
		rd__reads_advance(r);
	}
}

bool rd_raft_snapshot_acceptable(const struct rd_raft *r, uint64_t term,
                                 const struct rd_snapshot_meta *meta)
{
	/* Exactly the cases in which stepping the SNAPSHOT message installs
	 * it: not from an old term, and beyond our commit index. */
	return term >= r->term && meta->index > r->commit;
}

void rd_raft_report_snapshot(struct rd_raft *r, uint64_t to, bool ok)
{
	assert(!r->in_update);
	if (r->role != RD_RAFT_LEADER)
		return;
	struct rd__pr *pr = rd__pr(r, to);
	if (pr == NULL || pr->state != RD_PROGRESS_SNAPSHOT)
		return;
	if (!ok)
		pr->pending_snapshot = 0;
	become_probe(r, pr);
	/* On success wait for the follower's response before probing. */
	pr->probe_sent = ok;
}

void rd_raft_persisted(struct rd_raft *r, uint64_t index, uint64_t term)
{
	if (index <= r->persisted || index > rd__log_last(&r->log) ||
	    rd__log_term(&r->log, index) != term)
		return; /* stale or already known */
	r->persisted = index;
	if (r->role == RD_RAFT_LEADER) {
		if (rd__maybe_commit(r))
			rd__bcast_append(r);
	} else {
		rd__follower_commit(r);
	}
}
