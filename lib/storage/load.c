/*
 * The open-time scan: read every group's Raft state, then walk every log
 * record once, checking what must hold before the node may speak Raft again:
 *
 *   - every state and log record's checksum (a flipped byte is caught here,
 *     not when a follower asks for the entry);
 *   - each group's log is gap-free from its log start to its last entry and
 *     terms never decrease along it (Raft §5.3 Log Matching relies on it);
 *   - the hard state's commit is within the log (commit ≤ last index): a
 *     commit beyond the last entry means acknowledged entries are gone;
 *   - applied ≤ commit, and applied ≥ the compaction point (entries are
 *     compacted only after they are applied).
 *
 * Then the client sessions are loaded into each group's table (session.c).
 *
 * Any failure refuses the open with a message naming group and index; the
 * scan never truncates or repairs.
 */
#include <stdio.h>
#include <string.h>

#include "storage/internal.h"
#include "util/err.h"
#include "util/log.h"

/* Checks one record of a scan: its key and value (borrowed from the
 * iterator); writes into `where` what an iterator error after it is to
 * name. Returns 0 or an error in `msg`, which ends the scan. */
typedef int (*scan_fn)(struct rd_storage *st, void *arg, const uint8_t *k, size_t klen,
                       const uint8_t *v, size_t vlen, char *where, size_t wsize,
                       char *msg);

/* Walk every record of column family `cf` once, in key order, with `fn`;
 * the iterator's own error (a checksum RocksDB caught) names the last
 * record `fn` accepted, or "`what` scan" before the first. */
static int scan(struct rd_storage *st, const rocksdb_readoptions_t *ro, int cf,
                const char *what, scan_fn fn, void *arg, char *msg)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, ro, st->cf[cf]);
	char where[96], *err = NULL;
	int rv = 0;

	snprintf(where, sizeof where, "%s scan", what);
	for (rocksdb_iter_seek_to_first(it); rv == 0 && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k, *v;
		rd__iter_kv(it, &k, &klen, &v, &vlen);
		rv = fn(st, arg, k, klen, v, vlen, where, sizeof where, msg);
	}
	if (rv == 0) {
		rocksdb_iter_get_error(it, &err);
		if (err != NULL)
			rv = rd__rocks_err(err, msg, where);
	}
	rocksdb_iter_destroy(it);
	return rv;
}

static int state_record(struct rd_storage *st, void *arg, const uint8_t *k, size_t klen,
                        const uint8_t *v, size_t vlen, char *where, size_t wsize,
                        char *msg)
{
	struct rd_sgroup *g;
	int rv;

	(void)arg;
	if (klen != RD_STATE_KEY_LEN)
		return rd_errorf(msg, RD_ECORRUPT, "state record with a %zu-byte key",
		                 klen);
	g = rd__group_get(st, rd_be64_get(k));
	g->present = true;
	if ((rv = rd__dec_state(g, k[8], v, vlen, msg)) != 0)
		return rv;
	snprintf(where, wsize, "state scan after group %llu", (unsigned long long)g->id);
	return 0;
}

static int load_state(struct rd_storage *st, char *msg)
{
	int rv = scan(st, st->ro, RD_CF_STATE, "state", state_record, NULL, msg);

	if (rv != 0)
		return rv;
	for (size_t i = 0; i < st->nslots; i++) {
		struct rd_sgroup *g = st->slots[i];
		if (g != NULL) {
			g->last = g->first - 1;
			g->last_term = g->compact_term;
		}
	}
	return 0;
}

/* One log record: it must extend its group's log by one entry (arg: the
 * group of the previous record). */
static int log_record(struct rd_storage *st, void *arg, const uint8_t *k, size_t klen,
                      const uint8_t *v, size_t vlen, char *where, size_t wsize, char *msg)
{
	struct rd_sgroup **gp = arg, *g = *gp;
	uint64_t term;
	uint8_t type;
	const uint8_t *data;
	uint32_t dlen;
	int rv;

	if (klen != RD_LOG_KEY_LEN)
		return rd_errorf(msg, RD_ECORRUPT, "log record with a %zu-byte key",
		                 klen);
	uint64_t gid = rd_be64_get(k), index = rd_be64_get(k + 8);
	if (g == NULL || g->id != gid) {
		g = *gp = rd__group_get(st, gid);
		if (!g->present) {
			g->present = true;
			g->last = g->first - 1;
			g->last_term = g->compact_term;
		}
	}
	if (index < g->first)
		return rd_errorf(msg, RD_ECORRUPT,
		                 "group %llu index %llu: entry below the log start %llu",
		                 (unsigned long long)gid, (unsigned long long)index,
		                 (unsigned long long)g->first);
	if (index != g->last + 1)
		return rd_errorf(
		    msg, RD_ECORRUPT,
		    "group %llu index %llu: gap in the log, entries %llu..%llu "
		    "are missing",
		    (unsigned long long)gid, (unsigned long long)g->last + 1,
		    (unsigned long long)g->last + 1, (unsigned long long)index - 1);
	if ((rv = rd__dec_entry(gid, index, v, vlen, &term, &type, &data, &dlen, msg)) !=
	    0)
		return rv;
	if (term < g->last_term)
		return rd_errorf(
		    msg, RD_ECORRUPT,
		    "group %llu index %llu: term %llu is below the term %llu "
		    "before it",
		    (unsigned long long)gid, (unsigned long long)index,
		    (unsigned long long)term, (unsigned long long)g->last_term);
	g->last = index;
	g->last_term = term;
	snprintf(where, wsize, "log scan after group %llu index %llu",
	         (unsigned long long)gid, (unsigned long long)index);
	return 0;
}

static int load_log(struct rd_storage *st, char *msg)
{
	/* One pass over every group, checksums verified, without filling
	 * the block cache with the whole log. */
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	struct rd_sgroup *g = NULL;
	int rv;

	rocksdb_readoptions_set_total_order_seek(ro, 1);
	rocksdb_readoptions_set_verify_checksums(ro, 1);
	rocksdb_readoptions_set_fill_cache(ro, 0);
	rv = scan(st, ro, RD_CF_LOG, "log", log_record, &g, msg);
	rocksdb_readoptions_destroy(ro);
	return rv;
}

static int check_group(const struct rd_sgroup *g, char *msg)
{
	unsigned long long id = (unsigned long long)g->id;

	if (g->hs.commit > g->last)
		return rd_errorf(
		    msg, RD_ECORRUPT,
		    "group %llu index %llu: hard state commit is beyond the last "
		    "log index %llu (committed entries are missing)",
		    id, (unsigned long long)g->hs.commit, (unsigned long long)g->last);
	if (g->applied > g->hs.commit)
		return rd_errorf(
		    msg, RD_ECORRUPT,
		    "group %llu index %llu: applied index is beyond the commit "
		    "index %llu",
		    id, (unsigned long long)g->applied, (unsigned long long)g->hs.commit);
	if (g->applied < g->first - 1)
		return rd_errorf(
		    msg, RD_ECORRUPT,
		    "group %llu index %llu: applied index is below the compaction "
		    "point %llu (entries were dropped before they were applied)",
		    id, (unsigned long long)g->applied, (unsigned long long)g->first - 1);
	return 0;
}

/* A log start record written before it carried the membership as of the
 * compaction point: an installed snapshot at that point has it; otherwise
 * the conf state record is the best there is (raftd wrote the latest
 * appended membership there then, which is the one at the compaction
 * point unless a change was still in the log). */
static void resolve_legacy_start(struct rd_sgroup *g)
{
	if (!g->start_conf_legacy)
		return;
	g->start_conf_legacy = false;
	if (g->has_snap && g->snap_index + 1 == g->first) {
		rd_conf_assign(&g->start_conf, g->snap_conf);
		return;
	}
	rd_conf_assign(&g->start_conf, g->conf);
	rd_log_warn("group %llu: log start record without membership (older "
	            "format): taking the stored membership as the one at index %llu",
	            (unsigned long long)g->id, (unsigned long long)g->first - 1);
}

int rd__load(struct rd_storage *st, char *msg)
{
	int rv;

	if ((rv = load_state(st, msg)) != 0)
		return rv;
	if ((rv = load_log(st, msg)) != 0)
		return rv;
	if ((rv = rd__session_load(st, msg)) != 0)
		return rv;
	for (size_t i = 0; i < st->nslots; i++) {
		struct rd_sgroup *g = st->slots[i];
		if (g == NULL)
			continue;
		if ((rv = check_group(g, msg)) != 0)
			return rv;
		resolve_legacy_start(g);
		/* What an open finds is on disk (RocksDB flushes the memtables
		 * it rebuilt from the WAL), the applied index included. */
		g->durable = g->applied;
	}
	return 0;
}
