/*
 * Replacing a group's state wholesale: finishing a snapshot install, and
 * dropping a group.
 *
 * Finishing a snapshot install: one synced write that replaces the group's
 * state machine, records the snapshot and cuts the log (Raft §7: "if an
 * existing log entry has the same index and term as the snapshot's last
 * included entry, retain log entries following it"; otherwise discard the
 * whole log).
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "storage/snapshot.h"
#include "util/err.h"

#define ULL(x) ((unsigned long long)(x))

static void put_state(struct rd_storage *st, rocksdb_writebatch_t *wb, uint64_t group,
                      uint8_t kind, const uint8_t *v, size_t vlen)
{
	uint8_t k[RD_STATE_KEY_LEN];
	rd_state_key(k, group, kind);
	rocksdb_writebatch_put_cf(wb, st->cf[RD_CF_STATE], (const char *)k, sizeof k,
	                          (const char *)v, vlen);
}

int rd__snapshot_install(struct rd_storage *st, rocksdb_writebatch_t *wb, uint64_t group,
                         const struct rd_snapshot_meta *m, const uint64_t *sess,
                         size_t nsess, char *msg)
{
	struct rd_sgroup *g = rd__group_get(st, group);
	uint8_t v[RD_STATE_VAL_MAX];
	uint64_t t = 0;

	/* The batch being filled was built on the state this install
	 * replaces; committing it afterwards would publish that state back
	 * (log start, applied index, entries below the snapshot). */
	if (rd__batch_holds(st, g))
		return rd_errorf(msg, RD_EAGAIN,
		                 "group %llu: a batch holds uncommitted work for the "
		                 "group; install after it commits",
		                 ULL(group));
	if (g->present && m->index <= g->applied)
		return rd_errorf(
		    msg, RD_EINVAL,
		    "group %llu index %llu: snapshot is not newer than applied %llu",
		    ULL(group), ULL(m->index), ULL(g->applied));
	bool keep = m->index <= g->last &&
	            rd_storage_term(st, group, m->index, &t, NULL) == 0 && t == m->term;
	/* The log holds exactly [first, last] (load.c checks it at open). */
	if (g->present && g->last >= g->first)
		rd__log_delete(st, wb, group, g->first, keep ? m->index : g->last);

	struct rd_hard_state hs = g->hs;
	if (hs.term < m->term) {
		hs.term = m->term;
		hs.vote = 0;
	}
	if (hs.commit < m->index)
		hs.commit = m->index;
	put_state(st, wb, group, RD_STATE_HARD, v, rd__enc_hard(v, group, &hs));
	put_state(st, wb, group, RD_STATE_CONF, v, rd__enc_conf(v, group, &m->conf));
	put_state(st, wb, group, RD_STATE_APPLIED, v,
	          rd__enc_u64(v, group, RD_STATE_APPLIED, m->index));
	put_state(st, wb, group, RD_STATE_LOGSTART, v,
	          rd__enc_logstart(v, group, m->index, m->term, &m->conf));
	put_state(st, wb, group, RD_STATE_SNAPSHOT, v, rd__enc_snap(v, group, m));
	/* The entries the snapshot covers were never applied here one by one:
	 * the journal restarts after it (journal.h). */
	rd__journal_restart(st, wb, group, m->index + 1);

	rd__synced_write(st, wb, "snapshot install (synced write)");

	rd__batch_forget(g);
	g->present = true;
	g->hs = hs;
	rd_conf_assign(&g->conf, &m->conf);
	rd_conf_assign(&g->start_conf, &m->conf);
	g->start_conf_legacy = false;
	g->applied = m->index;
	/* This synced write holds the state machine at m->index, so it is on
	 * disk. A read of the persisted tier may still return an older flushed
	 * applied index (below m->index: a snapshot installs only past what
	 * the group applied), which rd_storage_durable_applied never lets
	 * lower it. */
	g->durable = m->index;
	g->has_snap = true;
	g->snap_index = m->index;
	g->snap_term = m->term;
	rd_conf_assign(&g->snap_conf, &m->conf);
	g->first = m->index + 1;
	g->compact_term = m->term;
	/* The session table is part of the state machine: the snapshot's. */
	rd__sessions_clear(g);
	for (size_t i = 0; i + 2 < nsess; i += 3)
		rd__session_put(g, sess[i], sess[i + 1], sess[i + 2]);
	rd__sessions_sort(g);
	if (keep) {
		rd__cache_drop_upto(g, m->index);
	} else {
		g->last = m->index;
		g->last_term = m->term;
		rd__cache_clear(g);
	}
	return 0;
}

void rd_snapshot_writer_set_conf(struct rd_snapshot_writer *w,
                                 const struct rd_conf_state *conf)
{
	w->meta.conf = *conf;
}

int rd_snapshot_writer_spill(struct rd_snapshot_writer *w, char *msg)
{
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	char *err = NULL;

	rocksdb_write(w->st->db, wo, w->wb, &err);
	rocksdb_writeoptions_destroy(wo);
	if (err != NULL)
		return rd__rocks_err(err, msg, "snapshot: spill staged keys");
	rocksdb_writebatch_clear(w->wb);
	return 0;
}

int rd_snapshot_writer_finish(struct rd_snapshot_writer *w, struct rd_snapshot_meta *meta,
                              char *msg)
{
	const struct rd_snapshot_writer *v = w;
	int rv;

	if (!v->done) {
		rv = rd_errorf(msg, RD_EINVAL, "snapshot: stream incomplete (%u chunks)",
		               v->next_seq);
	} else {
		rv = rd__snapshot_install(v->st, v->wb, v->group, &v->meta, v->sess,
		                          v->nsess, msg);
		if (rv == RD_EAGAIN)
			return rv; /* nothing written; the writer stays for a retry */
		if (rv == 0 && meta != NULL)
			*meta = v->meta;
	}
	rd_snapshot_writer_abort(w);
	return rv;
}

int rd_storage_drop_group(struct rd_storage *st, uint64_t group, char *msg)
{
	uint8_t lo[RD_KV_KEY_PREFIX], hi[RD_KV_KEY_PREFIX];

	if (group == UINT64_MAX)
		return rd_errorf(msg, RD_EINVAL, "group id out of range");
	struct rd_sgroup *held = rd__group_find(st, group);
	if (held != NULL && rd__batch_holds(st, held))
		return rd_errorf(msg, RD_EAGAIN,
		                 "group %llu: a batch holds uncommitted work for the "
		                 "group; drop it after it commits",
		                 ULL(group));
	/* Every key of every column family starts with the 8-byte group id,
	 * so [group, group + 1) as 8-byte bounds covers exactly the group; the
	 * log, which holds exactly [first, last], by point deletions
	 * (rd__log_delete says why). */
	rd_be64_put(lo, group);
	rd_be64_put(hi, group + 1);
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	const int cfs[4] = {RD_CF_STATE, RD_CF_KV, RD_CF_SESSION, RD_CF_JOURNAL};
	if (held != NULL && held->present && held->last >= held->first)
		rd__log_delete(st, wb, group, held->first, held->last);
	for (int i = 0; i < 4; i++)
		rocksdb_writebatch_delete_range_cf(wb, st->cf[cfs[i]], (const char *)lo,
		                                   sizeof lo, (const char *)hi,
		                                   sizeof hi);
	rd__synced_write(st, wb, "drop group (synced write)");
	rocksdb_writebatch_destroy(wb);

	struct rd_sgroup *g = rd__group_find(st, group);
	if (g != NULL) {
		rd__cache_clear(g);
		rd__sessions_clear(g);
		rd__group_release_confs(g);
		struct rd_cache c = g->cache;
		memset(g, 0, sizeof *g); /* also unlinks a batch's view (batch_epoch 0) */
		rd__group_release_confs(g); /* rd_conf_none, not NULL */
		g->id = group;
		g->first = 1;
		g->cache = c;
		/* The dropped group's applied record may be in SST files until a
		 * flush writes the deletion: never trust the persisted tier for
		 * this group again in this process (rd_storage_durable_applied). */
		g->durable_fenced = true;
	}
	return 0;
}
