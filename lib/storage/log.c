/*
 * Log reads: entries by range with a byte limit, term at an index, and a
 * scan for loading at start. Each call costs one RocksDB seek plus the
 * entries it returns (O(log n) to find the start), or nothing from RocksDB
 * when the group's cache of recent entries covers the range.
 *
 * Failure modes: a range outside [first, last] is RD_ECOMPACTED or
 * RD_EUNAVAILABLE; a record whose checksum fails or a hole in the range is
 * RD_ECORRUPT naming group and index.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "util/err.h"
#include "util/log.h"

void rd_entry_buf_free(struct rd_entry_buf *b)
{
	free(b->ents);
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* Append one entry to `b`; its data pointer is fixed up by buf_finish. */
static void buf_add(struct rd_entry_buf *b, uint64_t index, uint64_t term, uint8_t type,
                    const uint8_t *data, uint32_t len)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->ents = rd_xrealloc(b->ents, b->cap * sizeof *b->ents);
	}
	if (b->data_len + len > b->data_cap) {
		size_t c = b->data_cap ? b->data_cap : 4096;
		while (c < b->data_len + len)
			c *= 2;
		b->data = rd_xrealloc(b->data, c);
		b->data_cap = c;
	}
	if (len > 0)
		memcpy(b->data + b->data_len, data, len);
	struct rd_entry *e = &b->ents[b->n++];
	e->index = index;
	e->term = term;
	e->type = type;
	e->len = len;
	e->data = (uint8_t *)(uintptr_t)b->data_len; /* offset until buf_finish */
	b->data_len += len;
}

static void buf_finish(struct rd_entry_buf *b)
{
	for (size_t i = 0; i < b->n; i++)
		b->ents[i].data = b->data + (uintptr_t)b->ents[i].data;
}

static int check_range(const struct rd_sgroup *g, uint64_t group, uint64_t lo,
                       uint64_t hi, char *msg)
{
	uint64_t first = g ? g->first : 1, last = g ? g->last : 0;
	if (lo > hi)
		return rd_errorf(msg, RD_EINVAL, "group %llu: bad range [%llu, %llu)",
		                 (unsigned long long)group, (unsigned long long)lo,
		                 (unsigned long long)hi);
	if (lo < first)
		return rd_errorf(msg, RD_ECOMPACTED,
		                 "group %llu index %llu: compacted (first %llu)",
		                 (unsigned long long)group, (unsigned long long)lo,
		                 (unsigned long long)first);
	if (hi > last + 1)
		return rd_errorf(msg, RD_EUNAVAILABLE,
		                 "group %llu index %llu: not in the log (last %llu)",
		                 (unsigned long long)group, (unsigned long long)hi - 1,
		                 (unsigned long long)last);
	return 0;
}

/* Iterate records [lo, hi) of `group` from RocksDB, calling fn for each. */
typedef int (*rec_fn)(void *arg, uint64_t index, uint64_t term, uint8_t type,
                      const uint8_t *data, uint32_t len);

static int db_range(struct rd_storage *st, uint64_t group, uint64_t lo, uint64_t hi,
                    rec_fn fn, void *arg, char *msg)
{
	uint8_t start[RD_LOG_KEY_LEN];
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(st->db, st->ro, st->cf[RD_CF_LOG]);
	uint64_t want = lo;
	int rv = 0;

	rd_log_key(start, group, lo);
	for (rocksdb_iter_seek(it, (const char *)start, sizeof start);
	     want < hi && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k, *v;
		rd__iter_kv(it, &k, &klen, &v, &vlen);
		uint64_t term;
		uint8_t type;
		const uint8_t *data;
		uint32_t dlen;

		if (klen != RD_LOG_KEY_LEN || rd_be64_get(k) != group ||
		    rd_be64_get(k + 8) != want)
			break;
		rv = rd__dec_entry(group, want, v, vlen, &term, &type, &data, &dlen, msg);
		if (rv == 0)
			rv = fn(arg, want, term, type, data, dlen);
		if (rv != 0)
			goto out;
		want++;
	}
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	if (err != NULL) {
		rv = rd__rocks_err(err, msg, "read log");
		rd_errprefix(msg, "group %llu index %llu: ", (unsigned long long)group,
		             (unsigned long long)want);
	} else if (want < hi) {
		rv = rd_errorf(msg, RD_ECORRUPT,
		               "group %llu index %llu: entry missing from the log",
		               (unsigned long long)group, (unsigned long long)want);
	}
out:
	rocksdb_iter_destroy(it);
	return rv;
}

struct fill {
	struct rd_entry_buf *out;
	uint64_t max_bytes;
	uint64_t bytes;
};

/* Stop before the entry that would pass max_bytes, but keep the first. */
#define FILL_FULL 1000

static int fill_one(void *arg, uint64_t index, uint64_t term, uint8_t type,
                    const uint8_t *data, uint32_t len)
{
	struct fill *f = arg;
	if (f->max_bytes != 0 && f->out->n > 0 && f->bytes + len > f->max_bytes)
		return FILL_FULL;
	buf_add(f->out, index, term, type, data, len);
	f->bytes += len;
	return 0;
}

int rd_storage_entries(struct rd_storage *st, uint64_t group, uint64_t lo, uint64_t hi,
                       uint64_t max_bytes, struct rd_entry_buf *out, char *msg)
{
	struct rd_sgroup *g = rd__group_find(st, group);
	struct fill f = {out, max_bytes, 0};
	int rv;

	out->n = 0;
	out->data_len = 0;
	if ((rv = check_range(g, group, lo, hi, msg)) != 0 || lo == hi)
		return rv;
	if (rd__cache_get(g, lo) != NULL && rd__cache_get(g, hi - 1) != NULL) {
		st->stats.cache_hits++;
		for (uint64_t i = lo; i < hi; i++) {
			const struct rd_centry *e = rd__cache_get(g, i);
			if (fill_one(&f, i, e->term, e->type, e->data, e->len) != 0)
				break;
		}
		buf_finish(out);
		return 0;
	}
	st->stats.cache_misses++;
	rv = db_range(st, group, lo, hi, fill_one, &f, msg);
	buf_finish(out);
	if (rv == FILL_FULL)
		rv = 0;
	if (rv != 0)
		out->n = 0;
	return rv;
}

static int term_one(void *arg, uint64_t index, uint64_t term, uint8_t type,
                    const uint8_t *data, uint32_t len)
{
	(void)index, (void)type, (void)data, (void)len;
	*(uint64_t *)arg = term;
	return 0;
}

int rd_storage_term(struct rd_storage *st, uint64_t group, uint64_t index, uint64_t *term,
                    char *msg)
{
	struct rd_sgroup *g = rd__group_find(st, group);
	uint64_t first = g ? g->first : 1, last = g ? g->last : 0;

	if (index + 1 == first) {
		*term = g ? g->compact_term : 0;
		return 0;
	}
	if (index + 1 < first)
		return rd_errorf(msg, RD_ECOMPACTED, "group %llu index %llu: compacted",
		                 (unsigned long long)group, (unsigned long long)index);
	if (index > last)
		return rd_errorf(msg, RD_EUNAVAILABLE,
		                 "group %llu index %llu: not in the log (last %llu)",
		                 (unsigned long long)group, (unsigned long long)index,
		                 (unsigned long long)last);
	if (index == last) {
		*term = g->last_term;
		return 0;
	}
	const struct rd_centry *e = rd__cache_get(g, index);
	if (e != NULL) {
		*term = e->term;
		return 0;
	}
	return db_range(st, group, index, index + 1, term_one, term, msg);
}

struct scan {
	rd_storage_entry_fn fn;
	void *arg;
};

static int scan_one(void *arg, uint64_t index, uint64_t term, uint8_t type,
                    const uint8_t *data, uint32_t len)
{
	struct scan *s = arg;
	struct rd_entry e = {term, index, type, len, (uint8_t *)(uintptr_t)data};
	return s->fn(s->arg, &e);
}

int rd_storage_log_scan(struct rd_storage *st, uint64_t group, uint64_t lo,
                        rd_storage_entry_fn fn, void *arg, char *msg)
{
	struct rd_sgroup *g = rd__group_find(st, group);
	struct scan s = {fn, arg};
	uint64_t last = g ? g->last : 0;
	int rv;

	if ((rv = check_range(g, group, lo, lo > last + 1 ? lo : last + 1, msg)) != 0)
		return rv;
	if (lo > last)
		return 0;
	return db_range(st, group, lo, last + 1, scan_one, &s, msg);
}
