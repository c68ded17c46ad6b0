/*
 * The bounded in-memory tail (raft.h, "The in-memory tail"): which entries
 * leave memory and when, what is kept of them (their terms in the log's
 * runs, log.c; the configurations after evicted membership changes, here),
 * and appends built from the caller's log source for a follower behind the
 * tail.
 *
 * Happy path: a working group evicts its oldest durable, applied entries
 * at each advance once its tail passes the bound; a quiesced one evicts
 * all of them and frees its buffers. Failure modes: a source read that
 * fails or returns entries whose index or term differ from the log's is
 * counted and nothing is sent (§5.3: a leader sends only entries of its
 * own log); the follower's next heartbeat answer tries again. ENOMEM
 * stops an eviction early (the entries stay) or loses one append.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/core.h"
#include "util/err.h"

/* How far past log_mem_bytes a leader's tail may grow with entries that
 * pipelining followers have not acknowledged yet. */
#define RD__TAIL_LEADER_FACTOR 4

void rd__tail_trim(struct rd_raft *r, bool all)
{
	struct rd__log *l = &r->log;

	assert(!r->in_update);
	if (r->src == NULL)
		return;
	/* Durable and applied: the source has it, the applier is done. */
	uint64_t limit = r->applied;
	if (r->persisted < limit)
		limit = r->persisted;
	if (r->applying < limit)
		limit = r->applying;
	/* Appends queued with in-memory entries resolve them at the hand-out. */
	for (size_t i = 0; i < r->msgq.n; i++) {
		const struct rd__qmsg *q = &r->msgq.v[i];
		if (q->m.n_entries > 0 && q->owned == NULL && q->ent_lo <= limit)
			limit = q->ent_lo - 1;
	}
	uint64_t upto = l->lo - 1;
	if (all) {
		if (limit > upto)
			upto = limit;
	} else if (r->log_mem_bytes > 0 && l->bytes > r->log_mem_bytes) {
		/* A leader keeps what its pipelining followers have still to
		 * acknowledge, so that a healthy follower is fed from memory,
		 * up to RD__TAIL_LEADER_FACTOR times the bound; a follower
		 * that probes or lags further reads from the source. */
		uint64_t soft = limit, cap = r->log_mem_bytes;
		for (uint32_t i = 0; r->role == RD_RAFT_LEADER && i < r->n_prs; i++) {
			const struct rd__pr *pr = &r->prs[i];
			if (pr->id == r->id || pr->down ||
			    pr->state != RD_PROGRESS_REPLICATE)
				continue;
			cap = r->log_mem_bytes * RD__TAIL_LEADER_FACTOR;
			if (pr->match < soft)
				soft = pr->match;
		}
		uint64_t bytes = l->bytes;
		while (upto < limit && bytes > r->log_mem_bytes &&
		       (upto < soft || bytes > cap)) {
			const struct rd_entry *e = rd__log_at(l, upto + 1);
			bytes -= e->len + sizeof(*e);
			upto++;
		}
	}
	for (uint64_t i = l->lo; i <= upto; i++) {
		const struct rd_entry *e = rd__log_at(l, i);
		if (e->type != RD_ENTRY_CONF_CHANGE)
			continue;
		struct rd_conf_state cs =
		    r->evicted_confs.n > 0
		        ? *r->evicted_confs.v[r->evicted_confs.n - 1].conf
		        : *r->snap_conf;
		rd__conf_apply_entry(&cs, e);
		struct rd__conf_rec rec = {.index = i, .conf = rd_conf_share(&cs)};
		if (!RD__VEC_PUSH(r->evicted_confs, rec)) {
			rd_conf_release(rec.conf);
			upto = i - 1; /* ENOMEM: this change stays in memory */
			break;
		}
	}
	rd__log_evict(l, upto);
	if (all)
		rd__log_release(l);
}

void rd__tail_confs(const struct rd_raft *r, struct rd_conf_state *conf,
                    struct rd_conf_state *prev, uint64_t *index)
{
	size_t n = r->evicted_confs.n;

	*conf = n > 0 ? *r->evicted_confs.v[n - 1].conf : *r->snap_conf;
	*prev = n > 1 ? *r->evicted_confs.v[n - 2].conf : *r->snap_conf;
	*index = n > 0 ? r->evicted_confs.v[n - 1].index : 0;
}

struct rd_conf_state rd__tail_conf_compact(struct rd_raft *r, uint64_t index)
{
	struct rd_conf_state cs = *r->snap_conf;
	size_t k = 0;

	while (k < r->evicted_confs.n && r->evicted_confs.v[k].index <= index) {
		cs = *r->evicted_confs.v[k].conf;
		rd_conf_release(r->evicted_confs.v[k++].conf);
	}
	if (k > 0) {
		memmove(r->evicted_confs.v, r->evicted_confs.v + k,
		        (r->evicted_confs.n - k) * sizeof(*r->evicted_confs.v));
		r->evicted_confs.n -= k;
	}
	return cs;
}

void rd__tail_confs_clear(struct rd_raft *r)
{
	for (size_t i = 0; i < r->evicted_confs.n; i++)
		rd_conf_release(r->evicted_confs.v[i].conf);
	r->evicted_confs.n = 0;
}

bool rd__tail_read(struct rd_raft *r, uint64_t lo, struct rd_entry **owned, uint32_t *n,
                   uint64_t *bytes)
{
	const struct rd_raft_log_source *src = r->src;
	uint64_t hi = r->log.lo;
	const struct rd_entry *ents = NULL;
	size_t got = 0;

	assert(src != NULL && lo > r->log.snap_index && lo < hi);
	r->src_reads++;
	int rc = src->entries(src->ud, r->group, lo, hi, r->max_msg_bytes, &ents, &got);
	if (rc == 0 && (got == 0 || got > hi - lo || ents == NULL))
		rc = RD_EPROTO;
	/* Only entries of this log (§5.3, Log Matching): the index and term
	 * of each must be the log's; a source that disagrees is not trusted
	 * for any of them. */
	size_t keep = 0;
	uint64_t counted = 0, data = 0;
	for (; rc == 0 && keep < got; keep++) {
		const struct rd_entry *e = &ents[keep];
		if (e->index != lo + keep || e->term != rd__log_term(&r->log, e->index) ||
		    (e->len > 0 && e->data == NULL)) {
			rc = RD_ECORRUPT;
			break;
		}
		uint64_t len = (uint64_t)e->len + RD_RAFT_ENTRY_OVERHEAD;
		if (keep > 0 && counted + len > r->max_msg_bytes)
			break;
		counted += len;
		data += e->len;
	}
	if (rc != 0) {
		r->src_errors++;
		return false;
	}
	struct rd_entry *blk = malloc(keep * sizeof(*blk) + (size_t)data);
	if (blk == NULL)
		return false;
	uint8_t *p = (uint8_t *)(blk + keep);
	for (size_t i = 0; i < keep; i++) {
		blk[i] = ents[i];
		if (ents[i].len > 0) {
			memcpy(p, ents[i].data, ents[i].len);
			blk[i].data = p;
			p += ents[i].len;
		} else {
			blk[i].data = NULL;
		}
	}
	*owned = blk;
	*n = (uint32_t)keep;
	*bytes = counted;
	return true;
}

void rd_raft_log_stats(const struct rd_raft *r, struct rd_raft_log_stats *out)
{
	out->mem_first = r->log.lo;
	out->mem_entries = r->log.n;
	out->mem_bytes = r->log.bytes;
	out->source_reads = r->src_reads;
	out->source_errors = r->src_errors;
}
