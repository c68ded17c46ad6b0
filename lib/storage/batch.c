/*
 * Group commit (storage.h, "Failure policy"): one rd_storage_batch collects the
 * persist work of every group for one loop iteration (entries, hard state,
 * conf state, applied KV commands, compaction) and rd_storage_commit writes
 * it with a single RocksDB write with sync=true: one fdatasync for all.
 *
 * While the batch is filled, each touched group has a pending view
 * (struct rd_pend) so that later calls in the same batch see earlier ones
 * (append then set commit, put then cas). State records are encoded once,
 * at commit, from the pending view. The in-memory durable state and the
 * entry caches change only after the write returned.
 *
 * Failure modes: a call that would break a Raft invariant is refused with
 * RD_EINVAL/RD_ECOMPACTED and leaves the batch as it was; a failed write is
 * fatal (logged, abort()): nothing is retried and then acknowledged.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "util/err.h"
#include "util/log.h"

#define ARENA_BLOCK (256u << 10)
uint8_t *rd__arena_alloc(struct rd_storage_batch *b, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	while (b->curblock < b->nblocks) {
		struct rd_arena_block *k = &b->blocks[b->curblock];
		if (k->cap - k->used >= n) {
			uint8_t *p = k->p + k->used;
			k->used += n;
			return p;
		}
		b->curblock++;
	}
	b->blocks = rd_xrealloc(b->blocks, (b->nblocks + 1) * sizeof *b->blocks);
	struct rd_arena_block *k = &b->blocks[b->nblocks++];
	k->cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
	k->p = rd_xrealloc(NULL, k->cap);
	k->used = n;
	b->curblock = b->nblocks - 1;
	return k->p;
}

struct rd_storage_batch *rd_storage_batch_new(struct rd_storage *st)
{
	struct rd_storage_batch *b = calloc(1, sizeof *b);
	if (b == NULL)
		return NULL;
	b->st = st;
	b->wb = rocksdb_writebatch_create();
	b->wb2 = rocksdb_writebatch_create();
	/* RocksDB's per-thread perf counters (on by default) cost a
	 * thread-local lookup per memtable comparison, over a tenth of the
	 * commit's CPU; nothing reads them. The setting is per thread: the
	 * thread that makes the batch is the one that commits it. */
	rocksdb_set_perf_level(1 /* rocksdb_disable */);
	rd_storage_batch_reset(b);
	return b;
}

void rd_storage_batch_free(struct rd_storage_batch *b)
{
	if (b == NULL)
		return;
	if (b->st->inflight == b)
		rd_storage_commit_finish(b->st, b); /* its write first */
	if (b->st->filling == b)
		b->st->filling = NULL;
	rocksdb_writebatch_destroy(b->wb);
	rocksdb_writebatch_destroy(b->wb2);
	for (size_t i = 0; i < b->nblocks; i++)
		free(b->blocks[i].p);
	free(b->blocks);
	free(b->pend);
	free(b->ents);
	rd__kv_free(b);
	rd__session_batch_free(b);
	free(b);
}

void rd_storage_batch_reset(struct rd_storage_batch *b)
{
	rocksdb_writebatch_clear(b->wb);
	rocksdb_writebatch_clear(b->wb2);
	b->npend = 0;
	b->nents = 0;
	for (size_t i = 0; i < b->nblocks; i++)
		b->blocks[i].used = 0;
	b->curblock = 0;
	rd__kv_reset(b);
	rd__session_reset(b);
	b->epoch = ++b->st->epoch;
	b->committed = false;
	b->st->filling = b;
}

void rd_storage_batch_trim(struct rd_storage_batch *b)
{
	if (b->st->inflight == b || !rd_storage_batch_empty(b))
		return;
	/* Sized to the largest batch: the start's held every group. */
	free(b->pend);
	b->pend = NULL;
	b->cappend = 0;
	free(b->ents);
	b->ents = NULL;
	b->capents = 0;
	for (size_t i = 0; i < b->nblocks; i++)
		free(b->blocks[i].p);
	free(b->blocks);
	b->blocks = NULL;
	b->nblocks = 0;
	/* A cleared RocksDB batch keeps its buffer: a new one has none. */
	rocksdb_writebatch_destroy(b->wb);
	rocksdb_writebatch_destroy(b->wb2);
	b->wb = rocksdb_writebatch_create();
	b->wb2 = rocksdb_writebatch_create();
	rd_storage_batch_reset(b);
}

bool rd__batch_holds(const struct rd_storage *st, const struct rd_sgroup *g)
{
	const struct rd_storage_batch *b = st->filling;
	return b != NULL && !b->committed && g->batch_epoch == b->epoch &&
	       b->pend[g->batch_slot].flags != 0;
}

void rd__batch_forget(struct rd_sgroup *g)
{
	/* Epochs start at 1 (rd_storage_batch_reset): 0 matches no batch, and
	 * the old slot, with no flags, is skipped at commit. */
	g->batch_epoch = 0;
}

void rd__batch_begin(struct rd_storage_batch *b)
{
	/* The writer thread reads the batch until rd_storage_commit_finish
	 * (writer.c): a mutation before that is a driver bug. */
	if (b->st->inflight == b)
		rd_fatal("fatal: storage batch changed while its write is in flight");
	if (b->committed)
		rd_storage_batch_reset(b);
}

bool rd_storage_batch_empty(const struct rd_storage_batch *b)
{
	if (b->committed)
		return true;
	for (size_t i = 0; i < b->npend; i++)
		if (b->pend[i].flags != 0)
			return false;
	return rocksdb_writebatch_count(b->wb) == 0 &&
	       rocksdb_writebatch_count(b->wb2) == 0;
}

struct rd_pend *rd__pend_get(struct rd_storage_batch *b, uint64_t group)
{
	struct rd_sgroup *g = rd__group_get(b->st, group);
	if (g->batch_epoch == b->epoch)
		return &b->pend[g->batch_slot];
	if (b->npend == b->cappend) {
		b->cappend = b->cappend ? b->cappend * 2 : 64;
		b->pend = rd_xrealloc(b->pend, b->cappend * sizeof *b->pend);
	}
	struct rd_pend *p = &b->pend[b->npend];
	g->batch_epoch = b->epoch;
	g->batch_slot = (uint32_t)b->npend++;
	p->g = g;
	p->flags = 0;
	p->first = g->first;
	p->last = g->last;
	p->last_term = g->last_term;
	p->compact_term = g->compact_term;
	p->min_written = UINT64_MAX;
	p->hs = g->hs;
	p->cs = *g->conf;
	p->start_conf = *g->start_conf;
	p->applied = g->applied;
	p->n_sessions = g->sessions.count;
	p->sop_head = p->sop_tail = p->sop_cursor = 0;
	p->dur_cursor = g->sessions.oldest;
	return p;
}

#define ULL(x) ((unsigned long long)(x))

static int pend_term(struct rd_storage_batch *b, struct rd_pend *p, uint64_t index,
                     uint64_t *term, char *msg);

void rd__log_delete(struct rd_storage *st, rocksdb_writebatch_t *wb, uint64_t group,
                    uint64_t from, uint64_t to)
{
	uint8_t key[RD_LOG_KEY_LEN];

	for (uint64_t i = from; i <= to && i >= from; i++) {
		rd_log_key(key, group, i);
		rocksdb_writebatch_delete_cf(wb, st->cf[RD_CF_LOG], (const char *)key,
		                             sizeof key);
	}
}

/* Delete log keys [from, to] of `group` in the batch. */
static void delete_log(struct rd_storage_batch *b, uint64_t group, uint64_t from,
                       uint64_t to)
{
	rd__log_delete(b->st, b->wb, group, from, to);
}

int rd_storage_batch_append(struct rd_storage_batch *b, uint64_t group,
                            const struct rd_entry *ents, size_t n, char *msg)
{
	uint8_t key[RD_LOG_KEY_LEN];

	rd__batch_begin(b);
	if (n == 0)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if (ents[i].index != ents[i - 1].index + 1)
			return rd_errorf(msg, RD_EINVAL,
			                 "group %llu index %llu: entries not consecutive",
			                 ULL(group), ULL(ents[i].index));
		if (ents[i].term < ents[i - 1].term)
			return rd_errorf(msg, RD_EINVAL,
			                 "group %llu index %llu: term decreases",
			                 ULL(group), ULL(ents[i].index));
	}
	struct rd_pend *p = rd__pend_get(b, group);
	uint64_t i0 = ents[0].index, last = ents[n - 1].index;
	if (i0 < p->first)
		return rd_errorf(msg, RD_ECOMPACTED,
		                 "group %llu index %llu: below the log start %llu",
		                 ULL(group), ULL(i0), ULL(p->first));
	if (i0 > p->last + 1)
		return rd_errorf(
		    msg, RD_EINVAL,
		    "group %llu index %llu: would leave a gap after last index %llu",
		    ULL(group), ULL(i0), ULL(p->last));
	/* Committed entries never change (Raft §5.4, Log Matching). */
	if (i0 <= p->last && i0 <= p->g->hs.commit)
		return rd_errorf(
		    msg, RD_EINVAL,
		    "group %llu index %llu: truncation below the commit index %llu "
		    "refused",
		    ULL(group), ULL(i0), ULL(p->g->hs.commit));
	/* A commit index set earlier in this batch must stay within the log. */
	if (last < p->hs.commit)
		return rd_errorf(
		    msg, RD_EINVAL,
		    "group %llu index %llu: would end the log below the commit "
		    "index %llu",
		    ULL(group), ULL(last), ULL(p->hs.commit));
	uint64_t prev_term = i0 == p->last + 1 ? p->last_term
	                     : i0 == p->first  ? p->compact_term
	                                       : 0;
	if (ents[0].term < prev_term)
		return rd_errorf(
		    msg, RD_EINVAL,
		    "group %llu index %llu: term %llu below the previous entry's %llu",
		    ULL(group), ULL(i0), ULL(ents[0].term), ULL(prev_term));

	/* Remove the part of a conflicting suffix that the new entries do not
	 * overwrite (Raft §5.3). */
	if (p->last > last)
		delete_log(b, group, last + 1, p->last);
	if (b->nents + n > b->capents) {
		while (b->nents + n > b->capents)
			b->capents = b->capents ? b->capents * 2 : 256;
		b->ents = rd_xrealloc(b->ents, b->capents * sizeof *b->ents);
	}
	for (size_t i = 0; i < n; i++) {
		const struct rd_entry *e = &ents[i];
		size_t vlen = RD_LOG_VAL_HDR + (size_t)e->len;
		uint8_t *v = rd__arena_alloc(b, vlen);
		rd__enc_entry(v, group, e->index, e->term, e->type, e->data, e->len);
		rd_log_key(key, group, e->index);
		rocksdb_writebatch_put_cf(b->wb, b->st->cf[RD_CF_LOG], (const char *)key,
		                          sizeof key, (const char *)v, vlen);
		b->ents[b->nents++] = (struct rd_bent){p->g, e->index, v, e->len};
	}
	p->last = last;
	p->last_term = ents[n - 1].term;
	if (i0 < p->min_written)
		p->min_written = i0;
	p->flags |= RD_P_LOG;
	return 0;
}

int rd_storage_batch_truncate(struct rd_storage_batch *b, uint64_t group, uint64_t index,
                              char *msg)
{
	uint64_t term;
	int rv;

	rd__batch_begin(b);
	struct rd_pend *p = rd__pend_get(b, group);
	if (index > p->last)
		return 0;
	if (index < p->first)
		return rd_errorf(msg, RD_ECOMPACTED,
		                 "group %llu index %llu: below the log start %llu",
		                 ULL(group), ULL(index), ULL(p->first));
	if (index <= p->g->hs.commit || index <= p->hs.commit)
		return rd_errorf(
		    msg, RD_EINVAL,
		    "group %llu index %llu: truncation below the commit index %llu "
		    "refused",
		    ULL(group), ULL(index), ULL(p->hs.commit));
	if ((rv = pend_term(b, p, index - 1, &term, msg)) != 0)
		return rv;
	delete_log(b, group, index, p->last);
	p->last = index - 1;
	p->last_term = term;
	if (index < p->min_written)
		p->min_written = index;
	p->flags |= RD_P_LOG;
	return 0;
}

int rd_storage_batch_set_hard_state(struct rd_storage_batch *b, uint64_t group,
                                    const struct rd_hard_state *hs, char *msg)
{
	rd__batch_begin(b);
	struct rd_pend *p = rd__pend_get(b, group);

	if (hs->term < p->hs.term)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu: term would go back from %llu to %llu",
		                 ULL(group), ULL(p->hs.term), ULL(hs->term));
	/* One vote per term (Raft §5.2). */
	if (hs->term == p->hs.term && p->hs.vote != 0 && hs->vote != p->hs.vote)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu: second vote in term %llu (%llu, then %llu)",
		                 ULL(group), ULL(hs->term), ULL(p->hs.vote),
		                 ULL(hs->vote));
	if (hs->commit < p->hs.commit)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu: commit would go back from %llu to %llu",
		                 ULL(group), ULL(p->hs.commit), ULL(hs->commit));
	if (hs->commit > p->last)
		return rd_errorf(
		    msg, RD_EINVAL,
		    "group %llu index %llu: commit beyond the last index %llu",
		    ULL(group), ULL(hs->commit), ULL(p->last));
	p->hs = *hs;
	p->flags |= RD_P_HS;
	return 0;
}

int rd_storage_batch_set_conf_state(struct rd_storage_batch *b, uint64_t group,
                                    const struct rd_conf_state *cs, char *msg)
{
	rd__batch_begin(b);
	if (cs->n_voters > RD_RAFT_MAX_MEMBERS || cs->n_learners > RD_RAFT_MAX_MEMBERS)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu: conf state with too many members",
		                 ULL(group));
	struct rd_pend *p = rd__pend_get(b, group);
	p->cs = *cs;
	p->flags |= RD_P_CONF;
	return 0;
}

int rd_storage_batch_set_applied(struct rd_storage_batch *b, uint64_t group,
                                 uint64_t index, char *msg)
{
	rd__batch_begin(b);
	struct rd_pend *p = rd__pend_get(b, group);
	if (index <= p->applied)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu index %llu: already applied (%llu)",
		                 ULL(group), ULL(index), ULL(p->applied));
	if (index > p->hs.commit)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu index %llu: not committed (commit %llu)",
		                 ULL(group), ULL(index), ULL(p->hs.commit));
	p->applied = index;
	p->flags |= RD_P_APPLIED;
	return 0;
}

/* Term of `index` as the batch will leave it (index within the log). */
static int pend_term(struct rd_storage_batch *b, struct rd_pend *p, uint64_t index,
                     uint64_t *term, char *msg)
{
	if (index == p->last) {
		*term = p->last_term;
		return 0;
	}
	if (index + 1 == p->first) {
		*term = p->compact_term;
		return 0;
	}
	if (index >= p->min_written) {
		for (size_t i = b->nents; i-- > 0;) {
			if (b->ents[i].g == p->g && b->ents[i].index == index) {
				*term = rd_be64_get(b->ents[i].val + 4);
				return 0;
			}
		}
	}
	return rd_storage_term(b->st, p->g->id, index, term, msg);
}

int rd_storage_batch_compact(struct rd_storage_batch *b, uint64_t group, uint64_t index,
                             const struct rd_conf_state *conf, char *msg)
{
	uint64_t term;
	int rv;

	rd__batch_begin(b);
	struct rd_pend *p = rd__pend_get(b, group);
	if (index < p->first)
		return 0;
	/* Entries above the durable applied index may still be needed to
	 * rebuild the state machine after a crash (rd_storage_commit: what
	 * applying changed reaches the disk at the next flush). */
	if (index > p->g->durable)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu index %llu: cannot compact beyond the "
		                 "applied index on disk %llu (applied %llu)",
		                 ULL(group), ULL(index), ULL(p->g->durable),
		                 ULL(p->applied));
	if (index > p->last)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu index %llu: cannot compact beyond last %llu",
		                 ULL(group), ULL(index), ULL(p->last));
	if (conf->n_voters > RD_RAFT_MAX_MEMBERS ||
	    conf->n_learners > RD_RAFT_MAX_MEMBERS)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu: conf state with too many members",
		                 ULL(group));
	if ((rv = pend_term(b, p, index, &term, msg)) != 0)
		return rv;
	/* The log holds exactly [first, last]: one point deletion per
	 * compacted entry, each entry deleted once in its life. */
	delete_log(b, group, p->first, index);
	p->first = index + 1;
	p->compact_term = term;
	p->start_conf = *conf;
	p->flags |= RD_P_COMPACT;
	return 0;
}

int rd_storage_batch_catalog_put(struct rd_storage_batch *b, const char *name,
                                 const uint8_t *data, size_t len, char *msg)
{
	int rv;

	rd__batch_begin(b);
	if ((rv = rd__catalog_check_name(name, msg)) != 0)
		return rv;
	rocksdb_writebatch_put_cf(b->wb, b->st->cf[RD_CF_CATALOG], name, strlen(name),
	                          (const char *)data, len);
	return 0;
}

static void put_state(rocksdb_writebatch_t *wb, struct rd_storage_batch *b,
                      uint64_t group, uint8_t kind, const uint8_t *v, size_t vlen)
{
	uint8_t k[RD_STATE_KEY_LEN];
	rd_state_key(k, group, kind);
	rocksdb_writebatch_put_cf(wb, b->st->cf[RD_CF_STATE], (const char *)k, sizeof k,
	                          (const char *)v, vlen);
}

void rd__encode_states(struct rd_storage_batch *b)
{
	uint8_t v[RD_STATE_VAL_MAX];

	b->n_commit_only = 0;
	for (size_t i = 0; i < b->npend; i++) {
		struct rd_pend *p = &b->pend[i];
		uint64_t id = p->g->id;
		if (p->flags & RD_P_HS) {
			put_state(b->wb, b, id, RD_STATE_HARD, v,
			          rd__enc_hard(v, id, &p->hs));
			/* Term and vote as last written (and synced: a change
			 * of either is never written lazily): this record
			 * only moves commit (rd__commit_write). */
			if (p->g->present && p->hs.term == p->g->hs.term &&
			    p->hs.vote == p->g->hs.vote)
				b->n_commit_only++;
		}
		/* The applied index goes with what the apply changed (W2),
		 * and so does the membership as of it (schema.h): a kill that
		 * loses those applies loses it with them. */
		if (p->flags & RD_P_CONF)
			put_state(b->wb2, b, id, RD_STATE_CONF, v,
			          rd__enc_conf(v, id, &p->cs));
		if (p->flags & RD_P_APPLIED)
			put_state(b->wb2, b, id, RD_STATE_APPLIED, v,
			          rd__enc_u64(v, id, RD_STATE_APPLIED, p->applied));
		if (p->flags & RD_P_COMPACT)
			put_state(b->wb, b, id, RD_STATE_LOGSTART, v,
			          rd__enc_logstart(v, id, p->first - 1, p->compact_term,
			                           &p->start_conf));
	}
}

void rd__record_sync(struct rd_storage *st, uint64_t ns)
{
	struct rd_storage_stats *s = &st->stats;
	double sec = (double)ns / 1e9;
	size_t k = 0;

	rd__sync_end(st, ns);
	while (k < RD_STORAGE_SYNC_BUCKETS && sec > rd_storage_sync_bucket_le[k])
		k++;
	s->sync_buckets[k]++;
	s->syncs++;
	s->sync_ns_total += ns;
	s->sync_ns_last = ns;
}

/* The two writes of a filled batch whose states are encoded
 * (rd__encode_states); on the writer thread (writer.c) or the caller's.
 * Touches only b's RocksDB write batches and its write figures, the
 * database and the "outstanding since" word (stall.c). */
void rd__commit_write(struct rd_storage *st, struct rd_storage_batch *b)
{
	char *err = NULL;
	size_t wlen = 0;

	b->w1_bytes = b->w2_bytes = 0;
	b->w1_synced = false;
	b->w1_lazy = false;
	/* W1 first: the apply in W2 is of entries whose commit is on disk
	 * or in the WAL (in this W1 or an earlier one), so whatever prefix
	 * of the write sequence a flush puts on disk never holds an apply
	 * whose commit could be lost (README.md, "Writing each command
	 * once").
	 *
	 * A W1 whose every record is a hard state that only moves commit
	 * goes through the WAL without a sync (README.md, "Commit advances
	 * without a sync"): the commit index is volatile state in Raft
	 * (paper Fig. 2, thesis §3.8: only currentTerm, votedFor and log[]
	 * must be on stable storage before answering), entries, truncations,
	 * compactions, term, vote and catalog records all count against
	 * n_commit_only and so are synced as before. */
	size_t n1 = (size_t)rocksdb_writebatch_count(b->wb);
	if (n1 > 0 && n1 == b->n_commit_only) {
		rocksdb_writebatch_data(b->wb, &wlen);
		rocksdb_write(st->db, st->wo_lazy, b->wb, &err);
		if (err != NULL)
			rd_fatal(RD_STORAGE_FATAL_FMT,
			         "group commit (commit advances, WAL without sync)", err);
		b->w1_lazy = true;
		b->w1_bytes = wlen;
	} else if (n1 > 0) {
		rocksdb_writebatch_data(b->wb, &wlen);
		uint64_t t0 = rd__sync_begin(st);
		rocksdb_write(st->db, st->wo, b->wb, &err);
		if (err != NULL)
			rd_fatal(RD_STORAGE_FATAL_FMT, "group commit (synced write)",
			         err);
		b->sync_ns = rd_clock_now_ns() - t0;
		rd__sync_clear(st);
		b->w1_synced = true;
		b->w1_bytes = wlen;
	}
	if (rocksdb_writebatch_count(b->wb2) > 0) {
		rocksdb_writebatch_data(b->wb2, &wlen);
		rocksdb_write(st->db, st->wo_nowal, b->wb2, &err);
		if (err != NULL)
			rd_fatal(RD_STORAGE_FATAL_FMT, "apply (write without the WAL)",
			         err);
		b->w2_bytes = wlen;
	}
}

/* After rd__commit_write returned, on the loop's thread: the figures, the
 * new durable state, then the caches. */
void rd__commit_publish(struct rd_storage *st, struct rd_storage_batch *b)
{
	if (b->w1_synced)
		rd__record_sync(st, b->sync_ns);
	if (b->w1_lazy)
		st->stats.commit_only_writes++;
	st->stats.bytes_written += b->w1_bytes;
	st->stats.entries_written += b->nents;
	st->stats.state_bytes_written += b->w2_bytes;

	/* Durable now: publish the new state, then feed the caches. */
	for (size_t i = 0; i < b->npend; i++) {
		struct rd_pend *p = &b->pend[i];
		struct rd_sgroup *g = p->g;
		if (p->flags == 0)
			continue;
		g->present = true;
		g->hs = p->hs;
		if (!rd_conf_equal(g->conf, &p->cs))
			rd_conf_assign(&g->conf, &p->cs);
		if (p->flags & RD_P_COMPACT) {
			rd_conf_assign(&g->start_conf, &p->start_conf);
			g->start_conf_legacy = false;
		}
		g->applied = p->applied;
		g->first = p->first;
		g->last = p->last;
		g->last_term = p->last_term;
		g->compact_term = p->compact_term;
	}
	rd__session_publish(b);
	for (size_t i = 0; i < b->nents; i++) {
		const struct rd_bent *e = &b->ents[i];
		rd__cache_push(st, e->g, e->index, rd_be64_get(e->val + 4), e->val[12],
		               e->val + RD_LOG_VAL_HDR, e->len);
	}
	for (size_t i = 0; i < b->npend; i++) {
		struct rd_pend *p = &b->pend[i];
		if (p->flags & RD_P_COMPACT)
			rd__cache_drop_upto(p->g, p->first - 1);
		rd__cache_drop_from(p->g, p->last + 1);
	}
	b->committed = true;
}

void rd_storage_commit(struct rd_storage *st, struct rd_storage_batch *b)
{
	if (rd_storage_commit_start(st, b))
		rd_storage_commit_finish(st, b);
}
